"""A provider's plans, behind one small value the limiter and the registry read: the plan names,
the one assumed when nobody chose, the environment variable that chooses one, each plan's limits
for a model (from the catalog) and which plan the limits a server reports reveal.

The generic rate-limit code knows no provider's plans; Groq's are
``botticelli.providers.groq_plans.GROQ_PLANS``, handed to ``limiter_for(..., plans=...)``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from ..catalog import PlanLimits

#: Where a plan came from when nobody chose it (``Plans.resolve``): only assumed.
ASSUMED = "default"


@dataclass(frozen=True, slots=True)
class Plans:
    """One provider's plans.

    - ``provider``: whose catalog holds the per-plan limits, and whose ``botticelli.toml`` table
      (``[providers.<provider>] plan = ...``) may choose one.
    - ``names``: every plan, in the order messages list them.
    - ``default``: the plan assumed when none is chosen (requests are then never refused for
      size on its numbers, and messages say how to choose).
    - ``env``: the environment variable that chooses one (``BOTTICELLI_GROQ_PLAN``).
    - ``unlimited``: the name meaning "no client-side limits", if the provider has one.
    - ``upgrade``: the plan a hint suggests to someone on another one (Groq: ``developer``).
    """

    provider: str
    names: tuple[str, ...]
    default: str
    env: str
    unlimited: str | None = None
    upgrade: str | None = None

    def __post_init__(self) -> None:
        if self.default not in self.names:
            raise ValueError(
                f"{self.provider} plans: the default {self.default!r} is not one of {self.names}"
            )

    def resolve(self, plan: str | None) -> tuple[str, str]:
        """(plan, where it came from): ``plan`` ("plan="), else the environment variable, else
        ``botticelli.toml``, else the default ("default": only assumed). An unknown name is a
        ``ConfigurationError`` naming its setting and the known plans."""
        from ..config import config_table, load_config

        where = "plan="
        if not plan:
            plan, where = os.environ.get(self.env) or None, self.env
        if not plan:
            found = config_table(load_config(), "providers", self.provider).get("plan")
            plan, where = found, "botticelli.toml"
        if not plan:
            return self.default, ASSUMED
        plan = str(plan).strip().lower()
        if plan not in self.names:
            raise ConfigurationError(f"{where}: unknown plan {plan!r}; use {', '.join(self.names)}")
        return plan, where

    def table(self, model: str) -> Mapping[str, PlanLimits]:
        """Every plan's limits for ``model`` from the catalog (empty for a model it does not know)."""
        from .. import catalog

        info = catalog.lookup(model, self.provider)
        return dict(info.limits) if info is not None else {}

    def limits(self, plan: str | None, model: str) -> PlanLimits | None:
        """The catalog's limits of ``plan`` for ``model``; ``None`` for no plan, the unlimited
        one, or a model or plan the catalog does not list."""
        if not plan or plan == self.unlimited:
            return None
        return self.table(model).get(plan)

    def detect(
        self, reported: Mapping[int, float], table: Mapping[str, PlanLimits], current: str | None
    ) -> str | None:
        """The plan of ``table`` (``table(model)``) whose limits are exactly the ``reported`` ones
        (limit kind index, as in ``spec.KINDS`` -> value), the current plan first; ``None`` when
        none matches, nothing was reported, or no plan (or the unlimited one) is in force."""
        if not reported or not table or current in (None, self.unlimited):
            return None
        known = table.get(current or "")
        if known is not None and _matches(known, reported):
            return current
        for name, limits in table.items():
            if _matches(limits, reported):
                return name
        return None

    def alternative(self, plan: str | None) -> str:
        """The plan a hint suggests to someone on ``plan``."""
        if self.upgrade is not None and plan != self.upgrade:
            return self.upgrade
        return self.default if plan != self.default else next(n for n in self.names if n != plan)


def _matches(limits: PlanLimits, reported: Mapping[int, float]) -> bool:
    values = (limits.rpm, limits.rpd, limits.tpm, limits.tpd)
    for kind, value in reported.items():
        known = values[kind]
        if known is None or float(known) != value:
            return False
    return True
