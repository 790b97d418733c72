"""Go's ``encoding/json``, as far as Ollama's error bodies and bytes show it.

Ollama (Go, gin) decodes a request with ``json.NewDecoder(body).Decode(&req)`` and answers any
failure with ``400 {"error": err.Error()}`` (ollama-wire.md §6: "bad JSON → <json decode
message>"). To answer the same text, this module reproduces what that call does:

- ``first_value``: the decoder's scanner. It reads only the first JSON value (trailing bytes are
  ignored), reports ``EOF`` for a body of whitespace (Ollama: "missing request body"), ``unexpected
  EOF`` for a value cut short and ``invalid character 'x' looking for beginning of value`` style
  texts for syntax errors.
- ``GoJSONError`` and ``TypeMismatch``: Go's error values (``gotypes`` decodes into Go types);
- ``parse``: the body as Python values, as far as Go reads it;
- ``dumps``: ``json.Marshal``'s bytes: ``<``, ``>``, ``&``, U+2028 and U+2029 escaped as ``\\u003c``…
- ``go_quote`` (``%q``) and ``time_quote`` (the ``time`` package's quoting) for error texts.

Number texts in mismatch messages are Python's rendering of the parsed number (``1.0`` for ``1.0``
but ``100.0`` for ``1e2``), the only place the text may differ from Go's.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

# -- errors -----------------------------------------------------------------------------------


class GoJSONError(Exception):
    """A decode failure; ``str()`` is Go's ``err.Error()``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class EmptyBody(GoJSONError):
    """``io.EOF``: the body held nothing but whitespace."""

    def __init__(self) -> None:
        super().__init__("EOF")


class TypeMismatch(GoJSONError):
    """``*json.UnmarshalTypeError``: a JSON kind the Go type cannot hold."""

    def __init__(self, value: str, go_type: str, struct: str = "", path: str = "") -> None:
        self.value = value
        self.go_type = go_type
        self.struct = struct
        self.path = path
        super().__init__(self._render())

    def _render(self) -> str:
        if self.struct or self.path:
            return (
                f"json: cannot unmarshal {self.value} into Go struct field "
                f"{self.struct}.{self.path} of type {self.go_type}"
            )
        return f"json: cannot unmarshal {self.value} into Go value of type {self.go_type}"

    def in_context(self, struct: str, stack: list[str]) -> TypeMismatch:
        """``addErrorContext``: the struct being decoded and the field path from the root."""
        if not struct and not stack:
            return self
        path = ".".join([*stack, self.path] if self.path else stack)
        return TypeMismatch(self.value, self.go_type, struct, path)


# -- quoting ------------------------------------------------------------------------------------

_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def go_quote(text: str) -> str:
    """``strconv.Quote`` (Go's ``%q``): printable characters kept, the rest escaped."""
    out = ['"']
    for char in text:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif char.isprintable():
            out.append(char)
        elif ord(char) < 0x80:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) <= 0xFFFF:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    out.append('"')
    return "".join(out)


def time_quote(text: str) -> str:
    """The ``time`` package's quote: ``"`` and ``\\`` escaped, non-ASCII and control bytes as
    ``\\xHH``."""
    out = ['"']
    for char in text:
        if ord(char) >= 0x80 or char < " ":
            out.extend(f"\\x{byte:02x}" for byte in char.encode("utf-8", "surrogatepass"))
        else:
            out.append("\\" + char if char in '"\\' else char)
    out.append('"')
    return "".join(out)


def _quote_byte(byte: int) -> str:
    """``quoteChar`` of Go's JSON scanner: the offending byte in single quotes."""
    if byte == 0x27:
        return "'\\''"
    if byte == 0x22:
        return "'\"'"
    return "'" + go_quote(chr(byte))[1:-1] + "'"


# -- the scanner: syntax of the first value ------------------------------------------------------

_WHITESPACE = frozenset(b" \t\r\n")
_DIGITS = frozenset(b"0123456789")
_HEX = frozenset(b"0123456789abcdefABCDEF")
_ESCAPE_CODES = frozenset(b'"\\/bfnrtu')
_LITERALS = {ord("t"): b"true", ord("f"): b"false", ord("n"): b"null"}

# what the scanner expects next
_VALUE, _VALUE_OR_END, _KEY_OR_END, _KEY, _COLON, _NEXT = range(6)


def _syntax(byte: int, context: str) -> GoJSONError:
    return GoJSONError(f"invalid character {_quote_byte(byte)} {context}")


def _unexpected_eof() -> GoJSONError:
    return GoJSONError("unexpected EOF")


def first_value(data: bytes) -> tuple[int, int]:
    """``(start, end)`` of the first JSON value in ``data``; raises ``EmptyBody`` for whitespace
    only and ``GoJSONError`` with Go's text for a syntax error or a value cut short."""
    n = len(data)
    pos = _skip_ws(data, 0)
    if pos == n:
        raise EmptyBody()
    start = pos
    stack: list[int] = []  # ord("{") / ord("[")
    expect = _VALUE
    while True:
        pos = _skip_ws(data, pos)
        if pos == n:
            raise _unexpected_eof()
        byte = data[pos]
        if expect in (_VALUE, _VALUE_OR_END):
            if expect == _VALUE_OR_END and byte == 0x5D:  # ]
                stack.pop()
                pos += 1
            elif byte in (0x7B, 0x5B):  # { [
                stack.append(byte)
                expect = _KEY_OR_END if byte == 0x7B else _VALUE_OR_END
                pos += 1
                continue
            elif byte == 0x22:
                pos = _scan_string(data, pos)
            elif byte == 0x2D or byte in _DIGITS:
                pos = _scan_number(data, pos, top=not stack)
            elif byte in _LITERALS:
                pos = _scan_literal(data, pos, _LITERALS[byte])
            else:
                raise _syntax(byte, "looking for beginning of value")
        elif expect in (_KEY_OR_END, _KEY):
            if expect == _KEY_OR_END and byte == 0x7D:  # }
                stack.pop()
                pos += 1
            elif byte == 0x22:
                pos = _scan_string(data, pos)
                expect = _COLON
                continue
            else:
                raise _syntax(byte, "looking for beginning of object key string")
        elif expect == _COLON:
            if byte != 0x3A:
                raise _syntax(byte, "after object key")
            expect = _VALUE
            pos += 1
            continue
        else:  # _NEXT: after a value inside a container
            in_object = stack[-1] == 0x7B
            if byte == 0x2C:  # ,
                expect = _KEY if in_object else _VALUE
                pos += 1
                continue
            if byte == (0x7D if in_object else 0x5D):
                stack.pop()
                pos += 1
            else:
                raise _syntax(byte, "after object key:value pair" if in_object else "after array element")
        # a value just ended
        if not stack:
            return start, pos
        expect = _NEXT


def _skip_ws(data: bytes, pos: int) -> int:
    n = len(data)
    while pos < n and data[pos] in _WHITESPACE:
        pos += 1
    return pos


def _scan_string(data: bytes, pos: int) -> int:
    n = len(data)
    pos += 1
    while pos < n:
        byte = data[pos]
        if byte == 0x22:
            return pos + 1
        if byte == 0x5C:
            pos += 1
            if pos == n:
                break
            code = data[pos]
            if code not in _ESCAPE_CODES:
                raise _syntax(code, "in string escape code")
            if code == 0x75:  # u
                for _ in range(4):
                    pos += 1
                    if pos == n:
                        raise _unexpected_eof()
                    if data[pos] not in _HEX:
                        raise _syntax(data[pos], "in \\u hexadecimal character escape")
        elif byte < 0x20:
            raise _syntax(byte, "in string literal")
        pos += 1
    raise _unexpected_eof()


def _scan_number(data: bytes, pos: int, *, top: bool) -> int:
    n = len(data)

    def at(i: int) -> int | None:
        return data[i] if i < n else None

    if data[pos] == 0x2D:
        pos += 1
        byte = at(pos)
        if byte is None:
            raise _unexpected_eof()
        if byte not in _DIGITS:
            raise _syntax(byte, "in numeric literal")
    if data[pos] == 0x30:
        pos += 1
    else:
        while (b := at(pos)) is not None and b in _DIGITS:
            pos += 1
    if at(pos) == 0x2E:  # .
        pos += 1
        byte = at(pos)
        if byte is None:
            raise _unexpected_eof()
        if byte not in _DIGITS:
            raise _syntax(byte, "after decimal point in numeric literal")
        while (b := at(pos)) is not None and b in _DIGITS:
            pos += 1
    if at(pos) in (0x65, 0x45):  # e E
        pos += 1
        if at(pos) in (0x2B, 0x2D):
            pos += 1
        byte = at(pos)
        if byte is None:
            raise _unexpected_eof()
        if byte not in _DIGITS:
            raise _syntax(byte, "in exponent of numeric literal")
        while (b := at(pos)) is not None and b in _DIGITS:
            pos += 1
    if pos == n and not top:
        raise _unexpected_eof()  # inside a container the closing bracket is still missing
    return pos


def _scan_literal(data: bytes, pos: int, word: bytes) -> int:
    name = word.decode()
    for i in range(1, len(word)):
        if pos + i >= len(data):
            raise _unexpected_eof()
        if data[pos + i] != word[i]:
            expected = _quote_byte(word[i])
            raise _syntax(data[pos + i], f"in literal {name} (expecting {expected})")
    return pos + len(word)


_SURROGATE = re.compile("[\ud800-\udfff]")


def parse(data: bytes) -> Any:
    """The first JSON value of ``data`` as Python values, or Go's error for the body.

    orjson reads valid bodies (an integer beyond 64 bits as a float, as Go's ``any`` holds it);
    what it refuses is checked by ``first_value`` (Go's texts) and then read as Go would:
    trailing bytes dropped, invalid UTF-8 and lone surrogates as U+FFFD.
    """
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    start, end = first_value(data)
    text = data[start:end].decode("utf-8", "replace")
    try:
        value = json.loads(text)
    except ValueError as exc:  # pragma: no cover - the scanner accepted it
        raise GoJSONError(str(exc)) from None
    return _replace_surrogates(value)


def _replace_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_replace_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_replace_surrogates(k): _replace_surrogates(v) for k, v in value.items()}
    return value


# -- encoding (json.Marshal) ---------------------------------------------------------------------

_HTML_ESCAPES = (
    (b"<", b"\\u003c"),
    (b">", b"\\u003e"),
    (b"&", b"\\u0026"),
    ("\u2028".encode(), b"\\u2028"),
    ("\u2029".encode(), b"\\u2029"),
)


def as_go_any(value: Any) -> Any:
    """``value`` as Go's ``any`` holds it: integers beyond 64 bits become float64."""
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return float(value)
    if isinstance(value, list):
        return [as_go_any(item) for item in value]
    if isinstance(value, dict):
        return {key: as_go_any(item) for key, item in value.items()}
    return value


def dumps(obj: Any) -> bytes:
    """``json.Marshal(obj)``: orjson's compact bytes with Go's HTML-safe escapes (these bytes
    occur only inside strings, so replacing them keeps the document valid)."""
    try:
        data = orjson.dumps(obj)
    except TypeError:  # an integer beyond 64 bits, echoed from a request
        data = orjson.dumps(as_go_any(obj))
    for raw, escaped in _HTML_ESCAPES:
        if raw in data:
            data = data.replace(raw, escaped)
    return data
