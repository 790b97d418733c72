"""A deterministic JSON value for a JSON schema: tool-call arguments and structured outputs.

``instance(schema, seed)`` returns a value that validates against ``schema`` for the subset of
JSON Schema that tools and ``response_format`` use in practice (what pydantic and the OpenAI/Groq
SDKs emit): ``type`` (one or a list), ``enum``, ``const``, ``properties``/``required``,
``additionalProperties``, ``items``/``prefixItems``, ``minItems``/``maxItems``, ``minimum``/
``maximum`` (and their exclusive forms), ``multipleOf``, ``minLength``/``maxLength``, common
``format`` values, ``anyOf``/``oneOf`` (the first branch that is not ``null``), ``allOf``
(merged), and ``$ref`` into ``$defs``/``definitions``. ``pattern`` is not honoured. The same
schema and seed give the same value, so a test can predict what the emulator answers.
"""

from __future__ import annotations

import math
import random
from typing import Any

from botticelli.emulator.textgen import VOCABULARY

_FORMATS = {
    "date": "2026-10-01",
    "date-time": "2026-10-01T12:00:00Z",
    "time": "12:00:00",
    "email": "someone@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "ipv4": "192.0.2.1",
    "hostname": "example.com",
}
#: The most characters, items or properties one value gets, whatever a schema's minimum asks: a
#: request must not make the emulator build a gigabyte (a real model would stop at max_tokens).
MAX_SIZE = 10_000
_MAX_DEPTH = 8


def instance(schema: Any, seed: str = "") -> Any:
    """A value valid for ``schema`` (``True``/``{}`` accept anything: an empty object then)."""
    rng = random.Random(seed)
    root = schema if isinstance(schema, dict) else {}
    return _value(root, root, rng, 0)


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    seen = 0
    while isinstance(schema.get("$ref"), str) and seen < 32:
        ref: str = schema["$ref"]
        target: Any = root
        if ref.startswith("#"):
            for part in ref[1:].split("/"):
                if part:
                    part = part.replace("~1", "/").replace("~0", "~")
                    target = target.get(part, {}) if isinstance(target, dict) else {}
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**(target if isinstance(target, dict) else {}), **rest}
        seen += 1
    return schema


def _merge_all_of(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    parts = schema.get("allOf")
    if not isinstance(parts, list):
        return schema
    merged = {k: v for k, v in schema.items() if k != "allOf"}
    for part in parts:
        if not isinstance(part, dict):
            continue
        part = _merge_all_of(_resolve(part, root), root)
        for key, value in part.items():
            if key == "properties" and isinstance(value, dict):
                merged["properties"] = {**merged.get("properties", {}), **value}
            elif key == "required" and isinstance(value, list):
                merged["required"] = [*merged.get("required", []), *value]
            else:
                merged.setdefault(key, value)
    return merged


def _value(schema: Any, root: dict[str, Any], rng: random.Random, depth: int) -> Any:
    if not isinstance(schema, dict):
        return {}
    schema = _merge_all_of(_resolve(schema, root), root)
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[rng.randrange(len(enum))]
    for key in ("anyOf", "oneOf"):
        branches = schema.get(key)
        if isinstance(branches, list) and branches:
            options = [b for b in branches if not (isinstance(b, dict) and b.get("type") == "null")]
            branch = options[0] if options else branches[0]
            rest = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}
            merged = {**rest, **_resolve(branch, root)} if isinstance(branch, dict) else rest
            return _value(merged, root, rng, depth)
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"] or ["null"]
        kind = kinds[0]
    if kind is None:
        kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
    if kind == "object":
        return _object(schema, root, rng, depth)
    if kind == "array":
        return _array(schema, root, rng, depth)
    if kind == "string":
        return _string(schema, rng)
    if kind == "integer":
        return _integer(schema, rng)
    if kind == "number":
        return _number(schema, rng)
    if kind == "boolean":
        return rng.random() < 0.5
    return None


def _object(schema: dict[str, Any], root: dict[str, Any], rng: random.Random, depth: int) -> dict[str, Any]:
    properties = schema.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    required = [r for r in schema.get("required", []) if isinstance(r, str)]
    out: dict[str, Any] = {}
    # Every declared property while shallow (a strict schema requires them all); only the required
    # ones deeper down, so recursive schemas end.
    names = list(properties) if depth < _MAX_DEPTH // 2 else [n for n in properties if n in required]
    for name in names:
        out[name] = _value(properties[name], root, rng, depth + 1)
    for name in required:
        if name not in out:
            out[name] = "value" if schema.get("additionalProperties") is not False else None
    minimum = schema.get("minProperties")
    extra = schema.get("additionalProperties", True)
    if isinstance(minimum, int) and extra is not False:
        minimum = min(minimum, MAX_SIZE)
        index = 0
        while len(out) < minimum:
            out.setdefault(
                f"field_{index}", _value(extra if isinstance(extra, dict) else {}, root, rng, depth + 1)
            )
            index += 1
    return out


def _array(schema: dict[str, Any], root: dict[str, Any], rng: random.Random, depth: int) -> list[Any]:
    prefix = schema.get("prefixItems")
    prefix = prefix if isinstance(prefix, list) else []
    items = schema.get("items", {})
    low = schema.get("minItems", 0)
    high = schema.get("maxItems")
    low = min(low, MAX_SIZE) if isinstance(low, int) and low >= 0 else 0
    count = max(low, len(prefix), 1 if depth < _MAX_DEPTH else 0)
    if isinstance(high, int):
        count = min(count, max(high, low))
    if depth >= _MAX_DEPTH:
        count = max(low, 0)
    out = [_value(prefix[i], root, rng, depth + 1) for i in range(min(count, len(prefix)))]
    while len(out) < count:
        out.append(_value(items if isinstance(items, dict) else {}, root, rng, depth + 1))
    if schema.get("uniqueItems") is True and len(out) > 1:
        # Distinct values for the common case of strings / numbers: suffix a counter.
        out = [f"{v}{i}" if isinstance(v, str) else v + i if _is_number(v) else v for i, v in enumerate(out)]
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _string(schema: dict[str, Any], rng: random.Random) -> str:
    fmt = schema.get("format")
    if isinstance(fmt, str) and fmt in _FORMATS:
        text = _FORMATS[fmt]
    else:
        words = [VOCABULARY[rng.randrange(len(VOCABULARY))] for _ in range(1 + rng.randrange(3))]
        text = " ".join(words)
    low = schema.get("minLength")
    high = schema.get("maxLength")
    if isinstance(low, int):
        low = min(low, MAX_SIZE)
    if isinstance(low, int) and len(text) < low:
        text = (text + " " + "x" * low)[: max(low, 0)] if low > 0 else text
        text = text.ljust(low, "x")
    if isinstance(high, int) and high >= 0 and len(text) > high:
        text = text[:high]
    return text


def _bounds(schema: dict[str, Any]) -> tuple[float | None, float | None, bool, bool]:
    low = schema.get("minimum")
    high = schema.get("maximum")
    low_open = high_open = False
    ex_low = schema.get("exclusiveMinimum")
    ex_high = schema.get("exclusiveMaximum")
    if _is_number(ex_low):
        low, low_open = ex_low, True
    elif ex_low is True:
        low_open = True
    if _is_number(ex_high):
        high, high_open = ex_high, True
    elif ex_high is True:
        high_open = True
    return (
        float(low) if isinstance(low, (int, float)) else None,
        float(high) if isinstance(high, (int, float)) else None,
        low_open,
        high_open,
    )


def _integer(schema: dict[str, Any], rng: random.Random) -> int:
    low, high, low_open, high_open = _bounds(schema)
    lo = math.floor(low) + 1 if low is not None and low_open else math.ceil(low) if low is not None else None
    hi = (
        math.ceil(high) - 1
        if high is not None and high_open
        else math.floor(high)
        if high is not None
        else None
    )
    if lo is None and hi is None:
        lo, hi = 1, 100
    elif lo is None:
        assert hi is not None
        lo = hi - 100
    elif hi is None:
        hi = lo + 100
    if hi < lo:
        hi = lo
    step = schema.get("multipleOf")
    if isinstance(step, int) and not isinstance(step, bool) and step > 0:
        first = -(-lo // step) * step
        if first > hi:
            return first
        return first + step * rng.randrange((hi - first) // step + 1)
    return rng.randint(lo, hi)


def _number(schema: dict[str, Any], rng: random.Random) -> float | int:
    if isinstance(schema.get("multipleOf"), int):
        return _integer(schema, rng)
    low, high, _, _ = _bounds(schema)  # strictly inside: fits open and closed bounds
    if low is None and high is None:
        low, high = 0.0, 100.0
    elif low is None:
        assert high is not None
        low = high - 100.0
    elif high is None:
        high = low + 100.0
    if high <= low:
        return low
    value = round(low + (high - low) * (0.1 + 0.8 * rng.random()), 3)
    if not low < value < high:
        value = (low + high) / 2
    return value
