"""Go's times on Ollama's wire: RFC 3339 timestamps with nanoseconds, and ``keep_alive`` durations.

- ``timestamp``: ``time.Time``'s JSON (``RFC3339Nano``): ``2023-08-04T19:22:45.499127Z``, trailing
  zeros of the fraction dropped (ollama-wire.md §4.1 "RFC 3339 with nanoseconds").
- ``parse_keep_alive``: ``api.Duration``'s ``UnmarshalJSON`` (ollama-wire.md §3: "duration string
  (``"5m"``) or seconds number; ``0`` unloads"): a number is seconds, a string is a Go duration
  (``time.ParseDuration``), a negative value keeps the model loaded forever, anything else is
  ``unsupported duration type: '<Go type>'``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from botticelli.emulator.ollama.gojson import GoJSONError, time_quote
from botticelli.emulator.ollama.gotypes import go_type_of

#: ``time.Duration(math.MaxInt64)``: what a negative ``keep_alive`` means ("forever").
FOREVER = (1 << 63) - 1
#: Ollama's ``OLLAMA_KEEP_ALIVE`` default.
DEFAULT_KEEP_ALIVE = 5 * 60 * 10**9

_DIGITS = frozenset("0123456789")
_UNITS = {
    "ns": 1,
    "us": 10**3,
    "\u00b5s": 10**3,  # micro sign
    "\u03bcs": 10**3,  # Greek mu
    "ms": 10**6,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}


def now_ns() -> int:
    return time.time_ns()


def timestamp(ns: int | None = None) -> str:
    """``ns`` since the epoch (now by default) as Go marshals a UTC ``time.Time``."""
    value = now_ns() if ns is None else ns
    seconds, nanos = divmod(value, 10**9)
    base = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f".{nanos:09d}".rstrip("0") if nanos else ""
    return f"{base}{fraction}Z"


def parse_duration(text: str) -> int:
    """``time.ParseDuration``: nanoseconds, or ``GoJSONError`` with Go's text."""
    original = text
    negative = False
    if text and text[0] in "+-":
        negative = text[0] == "-"
        text = text[1:]
    if text == "0":
        return 0
    if not text:
        raise GoJSONError(f"time: invalid duration {time_quote(original)}")
    total = 0
    while text:
        if not (text[0] == "." or _is_digit(text[0])):
            raise GoJSONError(f"time: invalid duration {time_quote(original)}")
        digits = _leading(text, _is_digit)
        whole = int(digits) if digits else 0
        text = text[len(digits) :]
        fraction = ""
        if text.startswith("."):
            text = text[1:]
            fraction = _leading(text, _is_digit)
            text = text[len(fraction) :]
        if not digits and not fraction:
            raise GoJSONError(f"time: invalid duration {time_quote(original)}")
        unit = _leading(text, _is_unit)
        if not unit:
            raise GoJSONError(f"time: missing unit in duration {time_quote(original)}")
        text = text[len(unit) :]
        scale = _UNITS.get(unit)
        if scale is None:
            raise GoJSONError(f"time: unknown unit {time_quote(unit)} in duration {time_quote(original)}")
        value = whole * scale
        if fraction:
            value += int(fraction) * scale // 10 ** len(fraction)
        total += value
        if total > FOREVER + (1 if negative else 0):
            raise GoJSONError(f"time: invalid duration {time_quote(original)}")
    return -total if negative else total


def _leading(text: str, accept: Callable[[str], bool]) -> str:
    end = 0
    while end < len(text) and accept(text[end]):
        end += 1
    return text[:end]


def _is_digit(char: str) -> bool:
    return char in _DIGITS


def _is_unit(char: str) -> bool:
    return char != "." and char not in _DIGITS


def parse_keep_alive(value: Any) -> int:
    """``api.Duration`` from its JSON value (not ``null``: the pointer stays nil for that)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < 0:
            return FOREVER
        return min(int(value * 10**9), FOREVER)
    if isinstance(value, str):
        duration = parse_duration(value)
        return FOREVER if duration < 0 else duration
    raise GoJSONError(f"unsupported duration type: '{go_type_of(value)}'")
