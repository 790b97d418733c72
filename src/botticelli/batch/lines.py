"""The one place batch files are serialised: result lines of the output (the journal) and the
remote state record. Whatever a server sent, a line can always be written, and never holds a key.

Every string goes through ``errors.redact`` (a server may echo the key into a request id, an error
message, even the text); lone surrogates become U+FFFD (orjson refuses them); integers outside
the signed 64-bit range are clamped to it and non-finite floats become ``null`` (orjson refuses
the first and JSON has no spelling for the second). Without this, one odd usage count would stop
the run at that item on every rerun, and the batch could never finish.

The one exception is a result's own ``id``: it comes from the input, not a server, and is the key
a rerun joins results on, so it is written as given (surrogates fixed, an integer beyond 64 bits
as its decimal text); ``journal_id`` is that form, for lookups.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import orjson

from ..errors import redact
from .items import BatchId, BatchResult

__all__ = ["INT_MAX", "INT_MIN", "clean_json", "dump_line", "journal_id", "result_json", "result_line"]

INT_MIN = -(2**63)
INT_MAX = 2**63 - 1
#: orjson refuses more than 254 levels of nesting; nobody's usage dict is this deep.
MAX_DEPTH = 64
#: Integers orjson writes as they are (ids only; values are clamped to the signed range).
_ID_MIN, _ID_MAX = INT_MIN, 2**64 - 1


def result_line(result: BatchResult) -> tuple[bytes, bool]:
    """The journal line of ``result`` (``result_json`` as one line), and whether it is a success
    (a result that could not be written is not)."""
    record = result_json(result)
    return orjson.dumps(record) + b"\n", "error" not in record


def result_json(result: BatchResult) -> dict[str, Any]:
    """``result.to_json()``, cleaned. If the result itself cannot be turned into JSON (a broken
    response object), it is an error for that item instead, so ``--retry-errors`` redoes it and
    the rest of the batch carries on."""
    try:
        data = result.to_json()
    except Exception as exc:  # an item's own broken data must not stop the batch
        data = {
            "id": result.id,
            "error": {
                "class": type(exc).__name__,
                "message": f"the result could not be written: {_describe(exc)}",
                "status": None,
                "code": "unwritable_result",
                "request_id": None,
            },
        }
    body = clean_json({k: v for k, v in data.items() if k != "id"})
    return {"id": journal_id(result.id), **body}


def dump_line(value: Any) -> bytes:
    """Any JSON-like value as one line, cleaned like a result (redacted, numbers in range)."""
    return orjson.dumps(clean_json(value)) + b"\n"


def journal_id(item_id: BatchId) -> BatchId:
    """The id as a result line carries it (and as a journal reads it back)."""
    if isinstance(item_id, int) and not isinstance(item_id, bool):
        return item_id if _ID_MIN <= item_id <= _ID_MAX else str(item_id)
    return _unicode(item_id if isinstance(item_id, str) else str(item_id))


def clean_json(value: Any, _depth: int = 0) -> Any:
    """A copy of ``value`` that orjson can always write and that holds no key (see the module)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return min(max(value, INT_MIN), INT_MAX)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return redact(_unicode(value))
    if _depth >= MAX_DEPTH:
        return None
    if isinstance(value, Mapping):
        return {clean_json(_key(k), _depth + 1): clean_json(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [clean_json(v, _depth + 1) for v in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return redact(bytes(value).decode("utf-8", "replace"))
    return redact(_unicode(_describe(value)))


def _key(key: object) -> str:
    return key if isinstance(key, str) else _describe(key)


def _unicode(text: str) -> str:
    """``text`` with lone surrogates replaced (a proper pair written as two code points is joined)."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def _describe(value: object) -> str:
    try:
        return str(value)
    except Exception:  # a __str__ that raises: say what it was, not what it holds
        return f"<unprintable {type(value).__name__}>"
