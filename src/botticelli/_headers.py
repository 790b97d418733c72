"""Reading the headers providers use to talk about limits: ``retry-after`` and ``x-ratelimit-*``."""

from __future__ import annotations

import email.utils
import logging
import math
import re
import time
from collections.abc import Mapping

from .types import RateLimitInfo

logger = logging.getLogger("botticelli.headers")

#: A server asking for more than a week, or reporting more than 10^15 of anything, is wrong; the
#: values are capped so nothing downstream (sleeps, clocks, formatting) can overflow.
MAX_HEADER_SECONDS = 86_400.0 * 7
MAX_HEADER_COUNT = 10**15

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|h|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def parse_duration(value: str | None) -> float | None:
    """Seconds in a Go-style duration (``2m59.56s``, ``7.66s``, ``1h0m0s``, ``120ms``) or a bare
    number of seconds; ``None`` when it is neither."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if len(text) > 64:
        return None
    try:
        number = float(text)
    except (ValueError, OverflowError):
        pass
    else:
        return number if math.isfinite(number) else None
    total, pos = 0.0, 0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            return None
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not pos or not math.isfinite(total):
        return None
    return total


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """The wait a server asked for: ``retry-after-ms``, else ``retry-after`` in seconds or as an
    HTTP date. Negative, non-finite or unreadable values give ``None``; absurd ones are capped at
    ``MAX_HEADER_SECONDS``. Never raises: a header we cannot read is ignored."""
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            value = _finite(ms)
            if value is not None and value >= 0:
                return min(value / 1000.0, MAX_HEADER_SECONDS)
        raw = headers.get("retry-after")
        if raw is None:
            return None
        seconds = parse_duration(raw)
        if seconds is None:
            parsed = email.utils.parsedate_tz(raw)
            if parsed is None:
                return None
            seconds = email.utils.mktime_tz(parsed) - time.time()
    except (ValueError, OverflowError, TypeError, IndexError) as exc:
        logger.debug("ignoring an unreadable retry-after header: %s", exc)
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return min(seconds, MAX_HEADER_SECONDS)


def _finite(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _count(value: str | None) -> int | None:
    """A header count: finite, clamped to [0, MAX_HEADER_COUNT]; ``None`` if unreadable."""
    number = _finite(value)
    if number is None:
        if value is not None:
            logger.debug("ignoring an unreadable rate-limit header value %r", value[:40])
        return None
    return int(min(max(number, 0.0), MAX_HEADER_COUNT))


def _reset(value: str | None) -> float | None:
    seconds = parse_duration(value)
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return None
    return min(seconds, MAX_HEADER_SECONDS)


def parse_rate_limit(headers: Mapping[str, str]) -> RateLimitInfo | None:
    """The ``x-ratelimit-*`` headers as a typed snapshot, or ``None`` if the response has none.
    Unreadable values read as ``None``; this never raises, so odd headers never cost an answer."""
    limit_requests = headers.get("x-ratelimit-limit-requests")
    limit_tokens = headers.get("x-ratelimit-limit-tokens")
    retry_after = headers.get("retry-after")
    if limit_requests is None and limit_tokens is None and retry_after is None:
        return None
    return RateLimitInfo(
        requests_limit=_count(limit_requests),
        requests_remaining=_count(headers.get("x-ratelimit-remaining-requests")),
        requests_reset=_reset(headers.get("x-ratelimit-reset-requests")),
        tokens_limit=_count(limit_tokens),
        tokens_remaining=_count(headers.get("x-ratelimit-remaining-tokens")),
        tokens_reset=_reset(headers.get("x-ratelimit-reset-tokens")),
        retry_after=parse_retry_after(headers),
    )
