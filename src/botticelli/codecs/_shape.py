"""Reading JSON a server sent, without trusting its shape.

Every codec reads bodies through these: a field that decides the answer (text, tool calls,
choices) must have the right type or the decode fails with ``Malformed``, which the codec turns
into a ``ResponseError`` keeping the body; a field that only informs (usage counts, timings, ids)
is coerced when its meaning is unambiguous (``"12"`` → 12) and dropped otherwise.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import orjson

from ..errors import ResponseError

logger = logging.getLogger("botticelli.codecs")

#: Counts above this are nonsense from any provider (and would overflow what we store them in).
MAX_COUNT = 2**53


class Malformed(Exception):
    """The body does not have the shape the format requires; the message names where."""


def obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Malformed(f"{where} is {_kind(value)}, not an object")
    return value


def opt_obj(value: Any, where: str) -> dict[str, Any] | None:
    """An optional object: ``None`` when absent, ``Malformed`` when it is something else."""
    if value is None:
        return None
    return obj(value, where)


def lenient_obj(value: Any, where: str) -> dict[str, Any]:
    """An informational object: anything but an object reads as empty."""
    if isinstance(value, dict):
        return value
    if value is not None:
        logger.debug("ignoring %s: %s, not an object", where, _kind(value))
    return {}


def opt_str(value: Any, where: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise Malformed(f"{where} is {_kind(value)}, not a string")


def label(value: Any) -> str | None:
    """An informational string (an id, a model name): numbers become text, other shapes None."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def count(value: Any) -> int | None:
    """A token count: a non-negative integer, from an int, an integral float or a numeric
    string; ``None`` for anything else (logged at debug). Clamped to ``MAX_COUNT``."""
    if type(value) is int:  # the usual case, first (bool is not int here)
        if 0 <= value <= MAX_COUNT:
            return value
        return min(max(value, 0), MAX_COUNT)
    if value is None:
        return None
    number: float
    if isinstance(value, bool):
        number = math.nan
    elif isinstance(value, int):
        number = float(min(max(value, 0), MAX_COUNT))
    elif isinstance(value, float):
        number = value
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = math.nan
    else:
        number = math.nan
    if not math.isfinite(number) or number < 0:
        logger.debug("ignoring a token count of %r", value)
        return None
    return int(min(number, MAX_COUNT))


def seconds(value: Any) -> float | None:
    """A duration in seconds: finite and non-negative, else ``None``."""
    if type(value) is float:  # the usual case, first
        return value if 0 <= value < math.inf else None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


def opt_text(value: Any) -> str | None:
    """Informational text (a failed generation): a string, or other JSON as its text; ``None``
    when absent."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return None


def text(value: Any, where: str) -> str:
    """Message text: a string, null, or a list of text parts (joined); anything else is
    ``Malformed``, since coercing it would change the answer."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = []
        for i, part in enumerate(value):
            if isinstance(part, str):
                parts.append(part)
                continue
            part = obj(part, f"{where}[{i}]")
            piece = part.get("text")
            if part.get("type", "text") == "text" and isinstance(piece, str):
                parts.append(piece)
            elif piece is not None or part.get("type") in (None, "text"):
                raise Malformed(f"{where}[{i}].text is {_kind(piece)}, not a string")
        return "".join(parts)
    raise Malformed(f"{where} is {_kind(value)}, not a string")


def arguments(value: Any, where: str) -> str:
    """Tool-call arguments as JSON text; an object (as some servers send) is serialised."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    raise Malformed(f"{where} is {_kind(value)}, not JSON text")


def index(value: Any, where: str) -> int:
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1024:
        return value
    raise Malformed(f"{where} is {value!r}, not a small index")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "an array"
    return "an object" if isinstance(value, dict) else type(value).__name__


def parse_json(
    content: bytes, *, provider: str, model: str, request_id: str | None, status: int = 200
) -> Any:
    """A body as JSON, or a ``ResponseError`` keeping the start of what came instead."""
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        snippet = content[:80].decode("utf-8", "replace")
        raise ResponseError(
            f"the server sent a body that is not valid JSON: {snippet!r}",
            provider=provider,
            model=model,
            status=status,
            request_id=request_id,
            body=content[:4096].decode("utf-8", "replace"),
        ) from None


def wrong_shape(
    exc: Malformed,
    data: Any,
    headers: Mapping[str, str],
    *,
    provider: str,
    model: str,
    request_id: str | None,
) -> ResponseError:
    """The error for a whole (200) body that is JSON but not the format's shape; it keeps the body."""
    return ResponseError(
        f"the server sent a response of the wrong shape: {exc}",
        provider=provider,
        model=model,
        status=200,
        request_id=request_id,
        body=data,
        headers=headers,
    )


def stream_malformed(
    what: str, body: Any, *, provider: str, model: str, request_id: str | None
) -> ResponseError:
    """The error for a stream's frame or line that ``what`` describes; it keeps the payload."""
    return ResponseError(
        f"the stream sent {what}",
        provider=provider,
        model=model,
        status=200,
        request_id=request_id,
        body=body,
    )
