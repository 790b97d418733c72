"""Cache entries: a response as compact orjson bytes, and back; and the checksum stores keep
beside each entry so that what they read back is what was written under that very key.

An entry holds what the answer was, never how it travelled: outputs (or, for a stream, the text
and reasoning of every chunk), finish reasons, model, usage, ids. No headers, no rate-limit
state, nothing from the transport; its string metadata (ids, request id, model, the provider's
finish reason, tool call ids) goes through ``errors.redact``, so not even a server echoing a key
into an id can put one in the cache. The answer's texts, tool arguments and reasoning signatures
are kept as they are (a signature must go back to the provider byte for byte).

Layout (``"v"`` is the entry format; an unknown one reads as a miss)::

    {"v": 2, "model", "provider", "id", "request_id", "usage": {...},
     "finish_reason": neutral reason (a FinishReason value) | null,
     "raw_finish_reason": the provider's own word | null,
     "outputs": [["text", str] | ["reasoning", str(, signature)] | ["tool_call", id, name, arguments]],
     "chunks": [[text, reasoning(, signature)], ...] | null,  # a stream's deltas, in order
     "tool_calls": [[id, name, arguments], ...],  # a stream's final tool calls
     "reasoning_signature": str | null}           # the signature on a stream's final chunk

Entries written before ``raw_finish_reason`` existed hold the provider's word in
``finish_reason``: it is read back as ``FinishReason.of(word)`` with the word as the raw reason.
A stored stream reads back through ``drivers.base.assemble_response``, the function
``ResponseStream`` builds its response with, so a hit is the answer that was stored.

``Entry.decode`` checks every field's type, so a malformed entry (a bug, or bytes written by
someone else that happen to carry a valid checksum) is a miss rather than an exception on every
hit.
"""

from __future__ import annotations

import dataclasses
import hashlib
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from ..drivers.base import assemble_response
from ..errors import redact, redact_optional
from ..types import (
    FinishReason,
    GenerateResponse,
    Output,
    ReasoningOutput,
    StreamChunk,
    TextOutput,
    ToolCall,
    ToolCallOutput,
    Usage,
)

__all__ = [
    "CHECKSUM_BYTES",
    "ENTRY_VERSION",
    "CachedResponse",
    "Entry",
    "checksum",
    "encode_response",
    "encode_stream",
]

ENTRY_VERSION = 2  # 2: stores keep a checksum over key, expiry and value beside each entry
CHECKSUM_BYTES = 16
_PERSON = b"botticelli-v%d" % ENTRY_VERSION  # another entry format never verifies
_EXPIRES = struct.Struct("<d")
_USAGE_TYPES: dict[str, tuple[type, ...]] = {  # exact types: a bool is not a token count
    f.name: (int,) if f.name.endswith("tokens") else (int, float) for f in dataclasses.fields(Usage)
}


def checksum(key: str, value: bytes, expires: float | None = None) -> bytes:
    """blake2b over the key, the expiry and the value: an entry verifies only under the key it
    was written for, with its own expiry, byte for byte (~1 µs for a typical answer)."""
    digest = hashlib.blake2b(digest_size=CHECKSUM_BYTES, person=_PERSON)
    name = key.encode("utf-8", "surrogatepass")
    digest.update(len(name).to_bytes(4, "little"))
    digest.update(name)
    digest.update(b"\x00" if expires is None else b"\x01" + _EXPIRES.pack(expires))
    digest.update(value)
    return digest.digest()


@dataclass(slots=True)
class CachedResponse(GenerateResponse):
    """A ``GenerateResponse`` served from the cache: ``cached`` is True and ``latency`` is the
    lookup's; ``usage`` and ``request_id`` are those of the original answer."""

    cached: bool = True


def _usage(usage: Usage | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    return {k: v for k, v in dataclasses.asdict(usage).items() if v is not None}


def _call(call: ToolCall) -> list[Any]:
    return [redact(call.id), call.name, call.arguments]


def _output(output: Output) -> list[Any]:
    if isinstance(output, ToolCallOutput):
        return ["tool_call", *_call(output.call)]
    if isinstance(output, ReasoningOutput) and output.signature is not None:
        return ["reasoning", output.text, output.signature]
    return [output.kind, output.text]


def _reason(reason: FinishReason | str | None) -> str | None:
    """The neutral reason as stored: its value (anything else is the provider's word)."""
    if reason is None:
        return None
    if isinstance(reason, FinishReason):
        return reason.value
    return redact(str(reason))


def encode_response(response: GenerateResponse) -> bytes:
    return orjson.dumps(
        {
            "v": ENTRY_VERSION,
            "model": redact(response.model),
            "provider": redact(response.provider),
            "id": redact_optional(response.id),
            "request_id": redact_optional(response.request_id),
            "finish_reason": _reason(response.finish_reason),
            "raw_finish_reason": redact_optional(response.raw_finish_reason),
            "usage": _usage(response.usage),
            "outputs": [_output(o) for o in response.outputs],
            "chunks": None,
            "tool_calls": [],
            "reasoning_signature": None,
        }
    )


StoredChunk = tuple[str, str] | tuple[str, str, str | None]


def _chunk(chunk: StoredChunk) -> list[str]:
    if len(chunk) == 3 and chunk[2] is not None:
        return [chunk[0], chunk[1], chunk[2]]
    return [chunk[0], chunk[1]]


def encode_stream(chunks: Sequence[StoredChunk], final: StreamChunk, *, model: str, provider: str) -> bytes:
    """A finished stream: its delta chunks' (text, reasoning) or (text, reasoning, reasoning
    signature), and its final chunk (whose own text and reasoning, if any, are stored as one more
    delta)."""
    stored = [_chunk(c) for c in chunks]
    if final.text or final.reasoning:
        stored.append([final.text, final.reasoning])
    return orjson.dumps(
        {
            "v": ENTRY_VERSION,
            "model": redact(model),
            "provider": redact(provider),
            "id": None,
            "request_id": redact_optional(final.request_id),
            "finish_reason": _reason(final.finish_reason),
            "raw_finish_reason": redact_optional(final.raw_finish_reason),
            "usage": _usage(final.usage),
            "outputs": None,
            "chunks": stored,
            "tool_calls": [_call(c) for c in final.tool_calls],
            "reasoning_signature": final.reasoning_signature,
        }
    )


class _Malformed(ValueError):
    """An entry field of the wrong shape."""


_NO_TEXT = (str, type(None))


def _text(value: Any) -> str:
    if type(value) is not str:
        raise _Malformed
    return value


def _list(value: Any) -> list[Any]:
    if type(value) is not list:
        raise _Malformed
    return value


def _tool_call(fields: Any) -> ToolCall:
    if type(fields) is not list or len(fields) != 3:
        raise _Malformed
    call_id, name, arguments = fields
    if type(call_id) is not str or type(name) is not str or type(arguments) is not str:
        raise _Malformed
    return ToolCall(call_id, name, arguments)


def _checked_usage(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if type(value) is not dict:
        raise _Malformed
    usage: dict[str, Any] = {}
    for name, number in value.items():
        allowed = _USAGE_TYPES.get(name)
        if allowed is None or number is None:
            continue  # a field of a newer Usage, or unset
        if type(number) not in allowed:
            raise _Malformed
        usage[name] = number
    return usage


def _checked_output(fields: Any) -> Output:
    if type(fields) is not list or not fields:
        raise _Malformed
    kind = fields[0]
    if kind == "tool_call":
        return ToolCallOutput(_tool_call(fields[1:]))
    if kind == "reasoning" and len(fields) == 3 and type(fields[1]) is str and type(fields[2]) is str:
        return ReasoningOutput(fields[1], signature=fields[2])
    if len(fields) != 2 or type(fields[1]) is not str:
        raise _Malformed
    if kind == "text":
        return TextOutput(fields[1])
    if kind == "reasoning":
        return ReasoningOutput(fields[1])
    raise _Malformed


def _checked_chunk(fields: Any) -> tuple[str, str, str | None]:
    if type(fields) is not list or len(fields) not in (2, 3):
        raise _Malformed
    for text in fields:
        if type(text) is not str:
            raise _Malformed
    return fields[0], fields[1], fields[2] if len(fields) == 3 else None


class Entry:
    """A decoded, type-checked entry; ``response()`` and ``replay()`` build fresh mutable
    objects on every call (outputs and tool calls are frozen and shared), so a caller that
    mutates a hit never changes the next one."""

    __slots__ = (
        "chunks",
        "finish_reason",
        "id",
        "model",
        "outputs",
        "provider",
        "raw_finish_reason",
        "request_id",
        "signature",
        "tool_calls",
        "usage",
    )

    def __init__(self, data: dict[str, Any]) -> None:
        """Raises ``ValueError`` for a field of the wrong shape (``decode`` makes that a miss)."""
        get = data.get
        model, provider, reason = get("model"), get("provider"), get("finish_reason")
        self.id, self.request_id = get("id"), get("request_id")
        # an entry from before raw_finish_reason: finish_reason held the provider's word
        raw = get("raw_finish_reason") if "raw_finish_reason" in data else reason
        self.raw_finish_reason: str | None = raw
        self.signature: str | None = get("reasoning_signature")
        for text in (model, provider, self.id, self.request_id, reason, raw, self.signature):
            if type(text) not in _NO_TEXT:
                raise _Malformed
        self.finish_reason = FinishReason.of(reason)
        self.model: str = model or ""
        self.provider: str = provider or ""
        self.usage = _checked_usage(get("usage"))
        outputs, chunks, calls = get("outputs"), get("chunks"), get("tool_calls")
        if (outputs is None) == (chunks is None):  # exactly one: a generate's or a stream's
            raise _Malformed
        self.outputs = None if outputs is None else tuple(map(_checked_output, _list(outputs)))
        self.chunks = None if chunks is None else tuple(map(_checked_chunk, _list(chunks)))
        self.tool_calls = tuple(map(_tool_call, _list(calls))) if calls else ()

    @staticmethod
    def decode(value: bytes) -> Entry | None:
        """``None`` for bytes that are not a well-formed entry of this version (a miss)."""
        try:
            data = orjson.loads(value)
            if type(data) is not dict or data.get("v") != ENTRY_VERSION:
                return None
            return Entry(data)
        except (ValueError, TypeError):  # orjson.JSONDecodeError and _Malformed are ValueErrors
            return None

    def _usage(self) -> Usage:
        return Usage(**self.usage)

    def output_list(self) -> list[Output]:
        return self.response(0.0).outputs

    def _final(self, tool_calls: tuple[ToolCall, ...]) -> StreamChunk:
        return StreamChunk(
            is_final=True,
            finish_reason=self.finish_reason,
            raw_finish_reason=self.raw_finish_reason,
            usage=self._usage(),
            request_id=self.request_id,
            tool_calls=tool_calls,
            reasoning_signature=self.signature,
        )

    def response(self, latency: float) -> CachedResponse:
        if self.chunks is None:
            assert self.outputs is not None
            return CachedResponse(
                outputs=list(self.outputs),
                finish_reason=self.finish_reason,
                model=self.model,
                provider=self.provider,
                id=self.id,
                request_id=self.request_id,
                usage=self._usage(),
                latency=latency,
                raw_finish_reason=self.raw_finish_reason,
            )
        # a stored stream: the response ResponseStream built from the same chunks
        chunks = self.chunks
        signature = None
        for chunk in chunks:
            if chunk[2] is not None:
                signature = chunk[2]
        return assemble_response(
            (c[0] for c in chunks),
            (c[1] for c in chunks),
            self._final(self.tool_calls),
            model=self.model,
            provider=self.provider,
            into=CachedResponse,
            signature=signature,
            latency=latency,
        )

    def replay(self) -> Iterator[StreamChunk]:
        """The stream again: the stored chunks (for a stored ``generate``, each reasoning output
        (with its signature) and each text as one chunk), then a final chunk with the finish
        reasons, usage, request id and tool calls."""
        if self.chunks is not None:
            for text, reasoning, signature in self.chunks:
                yield StreamChunk(text=text, reasoning=reasoning, reasoning_signature=signature)
            tool_calls = self.tool_calls
        else:
            assert self.outputs is not None
            calls = []
            for output in self.outputs:
                if isinstance(output, ToolCallOutput):
                    calls.append(output.call)
                elif isinstance(output, ReasoningOutput):
                    yield StreamChunk(reasoning=output.text, reasoning_signature=output.signature)
                else:
                    yield StreamChunk(text=output.text)
            tool_calls = tuple(calls)
        yield self._final(tool_calls)
