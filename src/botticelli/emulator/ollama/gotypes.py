"""Go's typed JSON decoding: a parsed body into the Go struct Ollama declares, with Go's errors.

``decode`` walks a value against ``GoType`` descriptions. A type mismatch is remembered (the first
wins) while decoding goes on; an error of a custom ``UnmarshalJSON`` stops it at once and wins
over a remembered mismatch, named with the field path of the outer struct, exactly as
``encoding/json``'s ``addErrorContext`` composes ``json: cannot unmarshal string into Go struct
field ChatRequest.messages.content of type string``. Field names match case-insensitively,
unknown fields are ignored, ``null`` leaves a field unset. A ``[]byte`` is a base64 string,
checked as ``encoding/base64.StdEncoding`` does (``base64_problem``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botticelli.emulator.ollama.gojson import GoJSONError, TypeMismatch


def json_kind(value: Any) -> str:
    """The JSON kind as ``UnmarshalTypeError.Value`` names it (numbers without their text)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def go_type_of(value: Any) -> str:
    """``%T`` of the value ``json.Unmarshal`` puts into an ``any``."""
    kind = json_kind(value)
    return {
        "null": "<nil>",
        "bool": "bool",
        "number": "float64",
        "string": "string",
        "array": "[]interface {}",
        "object": "map[string]interface {}",
    }[kind]


@dataclass(frozen=True, eq=False)
class GoType:
    """A Go type the decoder fills. ``kind``: string, bool, int, float, any, raw, bytes, slice,
    map, struct, ptr, custom (an ``UnmarshalJSON`` given as ``parse``) or fresh (an
    ``UnmarshalJSON`` that decodes ``elem`` with a new decoder, as ``api.Message`` does)."""

    name: str  # as Go prints it in errors: "string", "[]api.Message", "api.Tools"
    kind: str
    elem: GoType | None = None
    fields: Mapping[str, GoType] | Callable[[], Mapping[str, GoType]] = field(default_factory=dict)
    struct: str = ""  # the struct's bare name, for "Go struct field ChatRequest.model"
    bits: int = 64
    parse: Callable[[Any], Any] | None = None  # custom: the decoded value, or raises GoJSONError

    def field_map(self) -> Mapping[str, GoType]:
        return self.fields() if callable(self.fields) else self.fields


STRING = GoType("string", "string")
BOOL = GoType("bool", "bool")
INT = GoType("int", "int")
INT32 = GoType("int32", "int", bits=32)
FLOAT32 = GoType("float32", "float", bits=32)
ANY = GoType("interface {}", "any")
RAW = GoType("json.RawMessage", "raw")
IMAGE_DATA = GoType("api.ImageData", "bytes")  # []byte: a base64 string on the wire


def slice_of(elem: GoType, name: str | None = None) -> GoType:
    return GoType(name or f"[]{elem.name}", "slice", elem)


def map_of(elem: GoType, name: str | None = None) -> GoType:
    return GoType(name or f"map[string]{elem.name}", "map", elem)


def ptr(elem: GoType) -> GoType:
    return GoType(elem.name, "ptr", elem)  # mismatches name the pointed-to type


def struct(
    name: str, fields: Mapping[str, GoType] | Callable[[], Mapping[str, GoType]], package: str = "api"
) -> GoType:
    return GoType(f"{package}.{name}", "struct", fields=fields, struct=name)


def custom(name: str, parse: Callable[[Any], Any]) -> GoType:
    return GoType(name, "custom", parse=parse)


def fresh(name: str, elem: GoType) -> GoType:
    return GoType(name, "fresh", elem)


_FLOAT32_MAX = 3.4028234663852886e38


class _Decoder:
    """One ``decodeState``: the error context (struct and field stack) and the saved error."""

    def __init__(self) -> None:
        self.struct = ""
        self.stack: list[str] = []
        self.saved: GoJSONError | None = None

    def save(self, error: GoJSONError) -> None:
        if self.saved is None:
            self.saved = self.context(error)

    def context(self, error: GoJSONError) -> GoJSONError:
        if isinstance(error, TypeMismatch):
            return error.in_context(self.struct, self.stack)
        return error

    def mismatch(self, value: Any, go_type: GoType, *, number_text: bool = False) -> None:
        kind = json_kind(value)
        if number_text and kind == "number":
            kind = f"number {value!r}"
        self.save(TypeMismatch(kind, go_type.name))

    def value(self, value: Any, go_type: GoType) -> Any:
        kind = go_type.kind
        if kind == "ptr":
            assert go_type.elem is not None
            return None if value is None else self.value(value, go_type.elem)
        if kind == "custom":
            assert go_type.parse is not None
            try:
                return go_type.parse(value)
            except GoJSONError as error:
                raise _Abort(self.context(error)) from None
        if kind == "fresh":
            assert go_type.elem is not None
            inner = _Decoder()
            try:
                decoded = inner.value(value, go_type.elem)
            except _Abort as abort:
                raise _Abort(self.context(abort.error)) from None
            if inner.saved is not None:
                raise _Abort(self.context(inner.saved))
            return decoded
        if value is None or kind in ("any", "raw"):
            return value
        if kind == "string":
            if isinstance(value, str):
                return value
        elif kind == "bool":
            if isinstance(value, bool):
                return value
        elif kind == "int":
            if isinstance(value, int) and not isinstance(value, bool):
                if -(1 << (go_type.bits - 1)) <= value < 1 << (go_type.bits - 1):
                    return value
                self.mismatch(value, go_type, number_text=True)
                return None
            if isinstance(value, float):
                self.mismatch(value, go_type, number_text=True)
                return None
        elif kind == "float":
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                if go_type.bits == 32 and abs(value) > _FLOAT32_MAX:
                    self.mismatch(value, go_type, number_text=True)
                    return None
                return float(value)
        elif kind == "bytes":
            if isinstance(value, str):
                problem = base64_problem(value.encode("utf-8", "surrogatepass"))
                if problem is not None:
                    self.save(GoJSONError(f"illegal base64 data at input byte {problem}"))
                    return None
                return value
        elif kind == "slice":
            if isinstance(value, list):
                assert go_type.elem is not None
                return [self.value(item, go_type.elem) for item in value]
        elif kind == "map":
            if isinstance(value, dict):
                assert go_type.elem is not None
                return {key: self.value(item, go_type.elem) for key, item in value.items()}
        elif kind == "struct" and isinstance(value, dict):
            return self.object(value, go_type)
        self.mismatch(value, go_type)
        return None

    def object(self, value: dict[str, Any], go_type: GoType) -> dict[str, Any]:
        fields = go_type.field_map()
        folded = {name.casefold(): name for name in fields}
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = key if key in fields else folded.get(key.casefold())
            if name is None:
                continue  # unknown fields are ignored
            outer_struct, depth = self.struct, len(self.stack)
            self.struct = go_type.struct
            self.stack.append(name)
            decoded = self.value(item, fields[name])
            del self.stack[depth:]
            self.struct = outer_struct
            if item is not None:
                out[name] = decoded
        return out


class _Abort(Exception):
    """An ``UnmarshalJSON`` error: decoding stops and this error is the answer."""

    def __init__(self, error: GoJSONError) -> None:
        super().__init__(error.message)
        self.error = error


def decode(value: Any, go_type: GoType) -> Any:
    """Decode a parsed JSON value into ``go_type``; raises the ``GoJSONError`` Go would return.

    Structs come back as dicts of the fields present (canonical names), with unknown fields
    dropped and ``null`` fields left out.
    """
    decoder = _Decoder()
    try:
        decoded = decoder.value(value, go_type)
    except _Abort as abort:
        raise abort.error from None
    if decoder.saved is not None:
        raise decoder.saved
    return decoded


# -- base64 (encoding/base64.StdEncoding.Decode) ------------------------------------------------

_B64 = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
_NEWLINES = frozenset(b"\r\n")


def base64_problem(src: bytes) -> int | None:
    """The offset Go's ``CorruptInputError`` names for ``src``, ``None`` when it decodes."""
    si, n = 0, len(src)
    while True:
        j = 0
        while j < 4:
            if si == n:
                return None if j == 0 else si - j
            byte = src[si]
            si += 1
            if byte in _B64:
                j += 1
                continue
            if byte in _NEWLINES:
                continue
            if byte != 0x3D or j < 2:  # not "=", or padding too early
                return si - 1
            if j == 2:  # "==" expected; the first "=" is consumed
                while si < n and src[si] in _NEWLINES:
                    si += 1
                if si == n:
                    return n
                if src[si] != 0x3D:
                    return si - 1
                si += 1
            while si < n and src[si] in _NEWLINES:
                si += 1
            return si if si < n else None
        # a full quantum: go on
