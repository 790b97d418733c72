"""Reading the headers providers use to talk about limits: ``retry-after`` and ``x-ratelimit-*``."""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Mapping

from .types import RateLimitInfo

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
    try:
        return float(text)
    except ValueError:
        pass
    total, pos = 0.0, 0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            return None
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    return total if pos == len(text) and pos else None


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """The wait a server asked for: ``retry-after-ms``, else ``retry-after`` in seconds or as an
    HTTP date. Negative or unparsable values give ``None``."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            value = float(ms) / 1000.0
        except ValueError:
            value = -1.0
        if value >= 0:
            return value
    raw = headers.get("retry-after")
    if raw is None:
        return None
    seconds = parse_duration(raw)
    if seconds is None:
        parsed = email.utils.parsedate_tz(raw)
        if parsed is None:
            return None
        seconds = email.utils.mktime_tz(parsed) - time.time()
    return seconds if seconds >= 0 else None


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(float(value))
    except ValueError:
        return None


def parse_rate_limit(headers: Mapping[str, str]) -> RateLimitInfo | None:
    """The ``x-ratelimit-*`` headers as a typed snapshot, or ``None`` if the response has none."""
    limit_requests = headers.get("x-ratelimit-limit-requests")
    limit_tokens = headers.get("x-ratelimit-limit-tokens")
    retry_after = headers.get("retry-after")
    if limit_requests is None and limit_tokens is None and retry_after is None:
        return None
    return RateLimitInfo(
        requests_limit=_int(limit_requests),
        requests_remaining=_int(headers.get("x-ratelimit-remaining-requests")),
        requests_reset=parse_duration(headers.get("x-ratelimit-reset-requests")),
        tokens_limit=_int(limit_tokens),
        tokens_remaining=_int(headers.get("x-ratelimit-remaining-tokens")),
        tokens_reset=parse_duration(headers.get("x-ratelimit-reset-tokens")),
        retry_after=parse_retry_after(headers),
    )
