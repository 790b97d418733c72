"""Groq's plans: ``free`` (assumed when nobody chose), ``developer``, and ``unlimited`` (no
client-side limits), chosen by ``plan=``, ``BOTTICELLI_GROQ_PLAN`` or ``botticelli.toml``. The
catalog holds each plan's limits per model; Groq's headers report the plan's RPD and TPM, which is
how the limiter tells an organisation's real plan."""

from __future__ import annotations

from .. import _defaults
from ..ratelimit.plans import Plans

GROQ_PLANS = Plans(
    provider="groq",
    names=_defaults.GROQ_PLANS,
    default=_defaults.GROQ_DEFAULT_PLAN,
    env="BOTTICELLI_GROQ_PLAN",
    unlimited="unlimited",
    upgrade="developer",
)

__all__ = ["GROQ_PLANS"]
