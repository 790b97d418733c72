"""Client-side rate limits: keep under the provider's limits before it has to refuse.

    driver = GroqDriver("openai/gpt-oss-20b", plan="free")          # catalog limits of the plan
    driver = GroqDriver(..., limits={"rpm": 20, "budget": 0.8})      # explicit, 80 % of each
    print(driver.rate_limit_status())

One ``Limiter`` per (provider, server, key, model): requests and tokens per minute and per day
as continuously refilling buckets (what Groq's reset headers describe), plus concurrent requests.
Limits come from ``limits=``, ``botticelli.toml``, the catalog for the plan, and the live
``x-ratelimit-*`` headers (sanity-checked: one odd response cannot poison it); with
``BOTTICELLI_REDIS_URL`` the buckets live in Redis and every process on the quota shares them,
falling back to in-process limits while Redis is unreachable. Token estimates come from the
request itself (``estimate.prompt_tokens``). See ``limiter.py`` for how a request flows through it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from .estimate import prompt_tokens
from .limiter import Limiter, logger
from .registry import clear_registry, fingerprint, limiter_for, resolve_limits, resolve_plan
from .spec import KINDS, NAMES, RateLimits
from .status import LimitState, RateLimitStatus, format_seconds

__all__ = [
    "KINDS",
    "NAMES",
    "LimitState",
    "Limiter",
    "RateLimitStatus",
    "RateLimits",
    "clear_registry",
    "fingerprint",
    "format_seconds",
    "limiter_for",
    "notices_to",
    "prompt_tokens",
    "resolve_limits",
    "resolve_plan",
]


class _Forward(logging.Handler):
    def __init__(self, callback: Callable[[str], None]) -> None:
        super().__init__(logging.INFO)
        self._callback = callback

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._callback(record.getMessage())
        except Exception:  # a notice must never break a request
            self.handleError(record)


def notices_to(callback: Callable[[str], None]) -> Callable[[], None]:
    """Send the limiter's notices (waits, plan detected) to ``callback`` (the CLI: one stderr
    line each) instead of only to logging; returns a function that undoes it."""
    handler = _Forward(callback)
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)

    def undo() -> None:
        logger.removeHandler(handler)

    return undo
