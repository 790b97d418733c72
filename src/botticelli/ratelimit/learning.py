"""What the limiter believes of the limits a server reports, in its headers (read through the
provider's ``RateLimitSchema``) or in a 429 (``RateLimitError.limit_kind`` / ``limit_value``).

A reported limit is believed only if it is a whole number >= 1 within [smallest catalog value x
``LOW``, largest x ``HIGH``] for its kind (any plan of the model; without catalog values within
[1, ``ABSURD``]). It is adopted at once when a plan of the catalog has it (that is plan
detection, ``Plans.detect``), otherwise only after ``CONFIRMATIONS`` identical responses.
Remaining counts are clamped into [0, limit]. Nothing here raises on what a server sent.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .._headers import RateLimitSchema, Window, parse_family
from .spec import KINDS, NAMES, RPD, RPM, TPD, TPM

if TYPE_CHECKING:
    from ..catalog import PlanLimits

logger = logging.getLogger("botticelli.ratelimit")

#: Identical responses needed before a reported limit that is no known plan's value is adopted.
CONFIRMATIONS = 3
#: A reported limit is plausible within [smallest catalog value x LOW, largest x HIGH].
LOW, HIGH, ABSURD = 0.01, 1000.0, 1e12

_REQUESTS: dict[Window, int] = {"minute": RPM, "day": RPD}
_TOKENS: dict[Window, int] = {"minute": TPM, "day": TPD}


def header_kinds(schema: RateLimitSchema) -> tuple[int | None, int | None]:
    """The bucket kinds the schema's requests and tokens families describe, by their windows
    (requests per day -> RPD, tokens per minute -> TPM, ...); ``None`` for a family it lacks."""
    return (
        _REQUESTS[schema.requests_window] if schema.requests is not None else None,
        _TOKENS[schema.tokens_window] if schema.tokens is not None else None,
    )


@dataclass(frozen=True, slots=True)
class Reported:
    """One response's limit headers, judged: ``limits`` the plausible limit per kind,
    ``remaining`` the count left per kind (clamped into [0, limit]; only for kinds in
    ``limits``), ``key`` the raw limit texts (identical texts need no judging again)."""

    limits: dict[int, float]
    remaining: dict[int, float]
    key: tuple[str | None, ...]


class Learning:
    """The limits a server reported and the limiter accepted, and the votes for the others."""

    __slots__ = ("_families", "_label", "_schema", "_table", "header_said", "seen", "server", "votes")

    def __init__(self, schema: RateLimitSchema, table: Mapping[str, PlanLimits], label: str) -> None:
        self._schema = schema
        self._table = table
        self._label = label
        kinds = header_kinds(schema)
        self._families = tuple(
            (family, kind)
            for family, kind in ((schema.requests, kinds[0]), (schema.tokens, kinds[1]))
            if family is not None and kind is not None
        )
        self.server: dict[int, float] = {}  # limits the server reported and we accepted
        self.votes: dict[int, tuple[float, int]] = {}  # kind -> (unconfirmed value, responses)
        self.header_said: dict[int, float] = {}  # the last header limit per kind
        self.seen: tuple[str | None, ...] | None = None  # limit texts fully judged already

    @property
    def table(self) -> Mapping[str, PlanLimits]:
        """The catalog's limits per plan for the model (empty without plans)."""
        return self._table

    def read(self, headers: Mapping[str, str]) -> Reported | None:
        """The schema's headers of a response, judged; ``None`` when it has no limit header of
        the schema (or the schema has none: ``NO_RATE_LIMITS``)."""
        if not self._families:
            return None
        picked = self._schema.pick(headers)
        if not picked:
            return None
        key = tuple(picked.get(family.limit) for family, _ in self._families)
        if all(text is None for text in key):
            return None
        limits: dict[int, float] = {}
        remaining: dict[int, float] = {}
        for (family, kind), text in zip(self._families, key, strict=True):
            if text is None:
                continue
            reading = parse_family(picked, family, self._schema.reset)
            value = reading.limit if reading is not None else None
            if value is None or not self.plausible(kind, value):
                logger.debug("%s: implausible %s limit %r ignored", self._label, KINDS[kind], text[:40])
                continue
            limits[kind] = value
            left = reading.remaining if reading is not None else None
            if left is None:
                if family.remaining in picked:
                    logger.debug(
                        "%s: unreadable remaining count %r ignored",
                        self._label,
                        picked[family.remaining][:40],
                    )
                continue
            remaining[kind] = min(max(left, 0.0), value)
        return Reported(limits, remaining, key)

    def plausible(self, kind: int, value: float) -> bool:
        if not math.isfinite(value) or value < 1 or value != math.floor(value):
            return False
        known = self.known(kind)
        if not known:
            return value <= ABSURD
        return min(known) * LOW <= value <= max(known) * HIGH

    def known(self, kind: int) -> set[float]:
        """The catalog's values for ``kind`` over every plan of the model."""
        name = KINDS[kind]
        return {float(v) for p in self._table.values() if (v := getattr(p, name)) is not None}

    def vote(self, kind: int, value: float, current: float | None) -> bool:
        """One response says ``kind``'s limit is ``value``: adopt it at once when a plan of the
        catalog has it (or it is ``current`` or accepted already), else once ``CONFIRMATIONS``
        responses in a row said the same. Returns whether it is adopted."""
        if self.server.get(kind) == value or value == current or value in self.known(kind):
            self.server[kind] = value
            self.votes.pop(kind, None)
            return True
        previous, count = self.votes.get(kind, (None, 0))
        count = count + 1 if previous == value else 1
        if count < CONFIRMATIONS:
            self.votes[kind] = (value, count)
            return False
        self.votes.pop(kind, None)
        self.server[kind] = value
        logger.info(
            "%s: %s limit %g confirmed by %d responses; using it", self._label, NAMES[kind], value, count
        )
        return True

    def accept(self, reported: Mapping[int, float]) -> None:
        """``reported`` matched a plan: believed at once; any count for those kinds starts again."""
        self.server.update(reported)
        for kind in reported:
            self.votes.pop(kind, None)
