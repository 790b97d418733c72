"""Client-side rate limits: keep under the provider's limits before it has to refuse.

    driver = GroqDriver("openai/gpt-oss-20b", plan="free")          # catalog limits of the plan
    driver = GroqDriver(..., limits={"rpm": 20, "budget": 0.8})      # explicit, 80 % of each
    print(driver.rate_limit_status())

One ``Limiter`` per (provider, server, key, model): requests and tokens per minute and per day
as continuously refilling buckets (what Groq's reset headers describe), plus concurrent requests.
Limits come from ``limits=``, ``botticelli.toml``, the catalog for the provider's plan (``Plans``),
and the live rate-limit headers as the provider's ``RateLimitSchema`` names them (sanity-checked:
one odd response cannot poison it); with ``BOTTICELLI_REDIS_URL`` the buckets live in Redis and
every process on the quota shares them, falling back to in-process limits while Redis is
unreachable. Token estimates come from the request itself (``estimate.prompt_tokens``).

The modules, one concern each: ``spec`` (the limit kinds, ``RateLimits``, merging sources),
``registry`` (``limiter_for``: where limits come from, one limiter per key and model),
``plans`` (a provider's plans), ``learning`` (what the limiter believes of reported limits),
``buckets`` and ``redis_state`` (the arithmetic, in process and as a Redis script), ``state``
(both behind one interface, Redis degrading to in-process), ``slots`` (concurrency),
``limiter`` (ties them to requests; its docstring follows one through), ``estimate`` (prompt
tokens), ``status`` (what ``rate_limit_status()`` shows).

Names resolve lazily, so importing ``botticelli.ratelimit.plans`` (a provider's plans) does not
load the limiter.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .estimate import prompt_tokens
    from .limiter import Limiter
    from .plans import Plans
    from .registry import clear_registry, fingerprint, limiter_for, resolve_limits
    from .spec import KINDS, NAMES, RateLimits
    from .status import LimitState, RateLimitStatus, format_seconds

__all__ = [
    "KINDS",
    "NAMES",
    "LimitState",
    "Limiter",
    "Plans",
    "RateLimitStatus",
    "RateLimits",
    "clear_registry",
    "fingerprint",
    "format_seconds",
    "limiter_for",
    "notices_to",
    "prompt_tokens",
    "resolve_limits",
]

_WHERE = {
    "prompt_tokens": "estimate",
    "Limiter": "limiter",
    "Plans": "plans",
    "clear_registry": "registry",
    "fingerprint": "registry",
    "limiter_for": "registry",
    "resolve_limits": "registry",
    "KINDS": "spec",
    "NAMES": "spec",
    "RateLimits": "spec",
    "LimitState": "status",
    "RateLimitStatus": "status",
    "format_seconds": "status",
}

logger = logging.getLogger("botticelli.ratelimit")


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


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
