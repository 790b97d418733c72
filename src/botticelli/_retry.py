"""The retry policy, in one place: what is retried and how long to wait."""

from __future__ import annotations

import random
from collections.abc import Mapping

from . import _defaults
from ._headers import parse_retry_after


def should_retry(status: int, headers: Mapping[str, str], never: frozenset[int] = frozenset()) -> bool:
    """Retry 408, 409, 429 and 5xx (Anthropic's 529 overloaded included); never 413 (too large
    stays too large) nor a status the provider says must fail fast (``never``: Groq's 498).
    ``x-should-retry`` from the server wins."""
    hint = headers.get("x-should-retry")
    if hint == "true":
        return True
    if hint == "false" or status in never:
        return False
    return status in _defaults.RETRY_STATUSES or status >= 500


def backoff(retries_taken: int) -> float:
    """Exponential back-off with jitter: 0.5 s, 1 s, 2 s ... capped at 8 s, times (0.75, 1]."""
    delay = min(_defaults.INITIAL_RETRY_DELAY * 2.0**retries_taken, _defaults.MAX_RETRY_DELAY)
    return delay * (1.0 - _defaults.JITTER * random.random())


def retry_delay(retries_taken: int, headers: Mapping[str, str] | None, asked: float | None = None) -> float:
    """The server's word when it gave one (``asked``: read from the error body, e.g. Groq's
    "try again in 7.66s"; else the headers), within the cap and never below
    ``MIN_RETRY_DELAY`` (a ``retry-after: 0`` must not become a storm); else back-off."""
    if asked is None and headers is not None:
        asked = parse_retry_after(headers)
    if asked is not None and asked <= _defaults.MAX_RETRY_AFTER:
        return max(asked, _defaults.MIN_RETRY_DELAY)
    return backoff(retries_taken)
