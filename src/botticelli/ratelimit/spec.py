"""What a limiter enforces: the four Groq limit kinds, their windows, and ``RateLimits``, the one
value that says how many of each (plus concurrency, a budget and a window scale).

Kinds are indexed 0..3 in a fixed order (rpm, rpd, tpm, tpd) so the hot path and the Redis script
work on small tuples instead of dicts.

Speech-to-text models also have audio seconds per hour and per day (``AUDIO_KINDS``: ash, asd).
No chat request spends them, so they stay out of the hot path's vectors and live in a separate
budget that only ``audio.py`` consults (``Limiter.reserve_audio``): four slots (rpm, rpd, ash,
asd; ``AUDIO_SLOT_WINDOWS``), so one upload reserves its request and its seconds in one atomic
step (no upload holds seconds while it queues for a request, which could bunch arrivals at the
server), and the same bucket code, in process or in Redis, runs it (slots 1 and 3 are daily, as
RPD and TPD are).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import ConfigurationError

#: The limit kinds, in index order.
KINDS: tuple[str, str, str, str] = ("rpm", "rpd", "tpm", "tpd")
RPM, RPD, TPM, TPD = 0, 1, 2, 3
#: Window of each kind in seconds (before ``window_scale``).
WINDOWS: tuple[float, float, float, float] = (60.0, 86400.0, 60.0, 86400.0)
#: Groq's wording, as in its 429 bodies.
NAMES: tuple[str, str, str, str] = (
    "requests per minute (RPM)",
    "requests per day (RPD)",
    "tokens per minute (TPM)",
    "tokens per day (TPD)",
)
DAILY: tuple[bool, bool, bool, bool] = (False, True, False, True)

#: Audio seconds per hour and per day (groq-wire.md §5.2), outside the four request kinds.
AUDIO_KINDS: tuple[str, str] = ("ash", "asd")
#: Their slots in the audio budget's vectors (0 and 1: the model's requests per minute and day).
ASH, ASD = 2, 3
AUDIO_WINDOWS: tuple[float, float] = (3600.0, 86400.0)
AUDIO_SLOT_WINDOWS: tuple[float, float, float, float] = (60.0, 86400.0, *AUDIO_WINDOWS)
AUDIO_NAMES: tuple[str, str] = ("audio seconds per hour (ASH)", "audio seconds per day (ASD)")
#: Every kind a limits mapping, a budget or ``botticelli.toml`` may name.
ALL_KINDS: tuple[str, ...] = KINDS + AUDIO_KINDS

Number = float | int


def _positive(name: str, value: object, *, allow_none: bool = True) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or math.isinf(value):
        raise ConfigurationError(f"rate limit {name}: expected a positive number or None, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Limits for one (provider, organisation, model). ``None`` means no such limit.

    - ``rpm``/``rpd``/``tpm``/``tpd``: requests and tokens per minute and per day, as the server
      counts them (the budget is applied on top).
    - ``concurrency``: requests in flight at once, per process.
    - ``budget``: share of each limit to use, per kind (rpm, rpd, tpm, tpd); 1.0 = all of it.
    - ``window_scale``: multiplies every window (tests: 0.1 makes a minute last 6 s).
    - ``ash``/``asd``: audio seconds per hour and per day (speech-to-text models), with their
      own ``audio_budget`` (ash, asd); spent only by audio uploads, never by the request path.
    """

    rpm: float | None = None
    rpd: float | None = None
    tpm: float | None = None
    tpd: float | None = None
    concurrency: int | None = None
    budget: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    window_scale: float = 1.0
    ash: float | None = None
    asd: float | None = None
    audio_budget: tuple[float, float] = (1.0, 1.0)

    def values(self) -> tuple[float | None, float | None, float | None, float | None]:
        return (self.rpm, self.rpd, self.tpm, self.tpd)

    def limit(self, kind: int) -> float | None:
        return self.values()[kind]

    @property
    def empty(self) -> bool:
        """No rate and no concurrency limit: nothing to enforce."""
        return (
            self.concurrency is None
            and all(v is None for v in self.values())
            and self.ash is None
            and self.asd is None
        )

    def capacities(self) -> tuple[float, float, float, float]:
        """Bucket sizes after the budget; 0 = kind not limited."""
        return tuple(  # type: ignore[return-value]
            0.0 if v is None else max(v * b, 1e-9) for v, b in zip(self.values(), self.budget, strict=True)
        )

    def rates(self) -> tuple[float, float, float, float]:
        """Refill per second of each bucket (capacity / scaled window); 0 = not limited."""
        caps = self.capacities()
        return tuple(  # type: ignore[return-value]
            c / (w * self.window_scale) for c, w in zip(caps, WINDOWS, strict=True)
        )

    def audio_capacities(self) -> tuple[float, float, float, float]:
        """The audio budget's bucket sizes (rpm, rpd, ash, asd) after the budget; all 0 when
        neither audio limit is set (no audio budget); 0 = kind not limited."""
        if self.ash is None and self.asd is None:
            return (0.0, 0.0, 0.0, 0.0)
        values = (self.rpm, self.rpd, self.ash, self.asd)
        shares = (*self.budget[:2], *self.audio_budget)
        return tuple(  # type: ignore[return-value]
            0.0 if v is None else max(v * b, 1e-9) for v, b in zip(values, shares, strict=True)
        )

    def audio_rates(self) -> tuple[float, float, float, float]:
        """Refill per second of the audio budget's buckets (capacity / scaled window)."""
        caps = self.audio_capacities()
        return tuple(  # type: ignore[return-value]
            c / (w * self.window_scale) for c, w in zip(caps, AUDIO_SLOT_WINDOWS, strict=True)
        )

    def with_values(self, **values: float | None) -> RateLimits:
        return replace(self, **values)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class LimitsLayer:
    """Limits from one source (argument, toml, catalog, headers); ``None`` fields say nothing."""

    source: str
    values: dict[str, float | None] = field(default_factory=dict)  # only the kinds this source sets
    concurrency: int | None = None
    budget: dict[str, float] = field(default_factory=dict)
    window_scale: float | None = None


_BUDGET_ALIASES = {f"{k}_multiplier": k for k in ALL_KINDS}


def parse_budget(value: object, where: str) -> dict[str, float]:
    """``0.8`` (every kind) or ``{"rpm": 0.8, "rpd_multiplier": 0.5}`` -> per-kind multipliers in (0, 1]."""
    if isinstance(value, Mapping):
        out: dict[str, float] = {}
        for key, item in value.items():
            kind = _BUDGET_ALIASES.get(str(key), str(key))
            if kind not in ALL_KINDS:
                raise ConfigurationError(
                    f"{where}: unknown budget key {key!r}; use rpm, rpd, tpm, tpd, ash, asd"
                )
            out[kind] = _budget_value(item, where)
        return out
    share = _budget_value(value, where)
    return dict.fromkeys(ALL_KINDS, share)


def _budget_value(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ConfigurationError(f"{where}: budget must be a number in (0, 1], got {value!r}")
    return float(value)


def layer_from_mapping(data: Mapping[str, Any] | RateLimits, source: str) -> LimitsLayer:
    """A layer from ``{"rpm": 30, "tpm": None, "concurrency": 4, "budget": 0.8, "window_scale": 0.1}``
    (a ``RateLimits`` counts as setting every kind). Unknown keys are an error, never ignored."""
    if isinstance(data, RateLimits):
        return LimitsLayer(
            source,
            {**dict(zip(KINDS, data.values(), strict=True)), "ash": data.ash, "asd": data.asd},
            data.concurrency,
            dict(zip(ALL_KINDS, data.budget + data.audio_budget, strict=True)),
            data.window_scale,
        )
    if not isinstance(data, Mapping):
        raise ConfigurationError(f"{source}: limits must be a mapping, got {type(data).__name__}")
    values: dict[str, float | None] = {}
    concurrency: int | None = None
    budget: dict[str, float] = {}
    scale: float | None = None
    for key, value in data.items():
        if key in ALL_KINDS:
            values[key] = _positive(f"{source}: {key}", value)
        elif key in ("concurrency", "max_concurrent"):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigurationError(f"{source}: concurrency must be a positive int, got {value!r}")
            concurrency = value
        elif key == "budget":
            budget = parse_budget(value, source)
        elif key in _BUDGET_ALIASES:
            budget[_BUDGET_ALIASES[key]] = _budget_value(value, source)
        elif key == "window_scale":
            scale = _positive(f"{source}: window_scale", value, allow_none=False)
        else:
            raise ConfigurationError(
                f"{source}: unknown limit {key!r}; use rpm, rpd, tpm, tpd, ash, asd, concurrency, budget, "
                "window_scale"
            )
    return LimitsLayer(source, values, concurrency, budget, scale)


def merge(layers: list[LimitsLayer]) -> tuple[RateLimits, dict[str, str]]:
    """First layer wins per field. Returns the limits and, per kind, the source of its value."""
    values: dict[str, float | None] = {}
    sources: dict[str, str] = {}
    concurrency: int | None = None
    budget: dict[str, float] = {}
    scale: float | None = None
    for layer in layers:
        for kind, value in layer.values.items():
            if kind not in values:
                values[kind] = value
                sources[kind] = layer.source
        if concurrency is None and layer.concurrency is not None:
            concurrency = layer.concurrency
        for kind, share in layer.budget.items():
            budget.setdefault(kind, share)
        if scale is None and layer.window_scale is not None:
            scale = layer.window_scale
    limits = RateLimits(
        rpm=values.get("rpm"),
        rpd=values.get("rpd"),
        tpm=values.get("tpm"),
        tpd=values.get("tpd"),
        concurrency=concurrency,
        budget=tuple(budget.get(k, 1.0) for k in KINDS),  # type: ignore[arg-type]
        window_scale=scale or 1.0,
        ash=values.get("ash"),
        asd=values.get("asd"),
        audio_budget=(budget.get("ash", 1.0), budget.get("asd", 1.0)),
    )
    return limits, {k: s for k, s in sources.items() if values.get(k) is not None}
