"""Cache entries: a response as compact orjson bytes, and back.

An entry holds what the answer was, never how it travelled: outputs (or, for a stream, the text
and reasoning of every chunk), finish reason, model, usage, ids. No headers, no rate-limit
state, nothing from the transport, so nothing secret can end up in it.

Layout (``"v"`` is the entry format; an unknown one reads as a miss)::

    {"v": 1, "model", "provider", "id", "request_id", "finish_reason", "usage": {...},
     "outputs": [["text", str] | ["reasoning", str] | ["tool_call", id, name, arguments]],
     "chunks": [[text, reasoning], ...] | null,   # a stream's deltas, in order
     "tool_calls": [[id, name, arguments], ...]}  # a stream's final tool calls
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from ..types import (
    GenerateResponse,
    Output,
    ReasoningOutput,
    StreamChunk,
    TextOutput,
    ToolCall,
    ToolCallOutput,
    Usage,
)

__all__ = ["ENTRY_VERSION", "CachedResponse", "Entry", "encode_response", "encode_stream"]

ENTRY_VERSION = 1
_USAGE_FIELDS = frozenset(f.name for f in dataclasses.fields(Usage))


@dataclass(slots=True)
class CachedResponse(GenerateResponse):
    """A ``GenerateResponse`` served from the cache: ``cached`` is True and ``latency`` is the
    lookup's; ``usage`` and ``request_id`` are those of the original answer."""

    cached: bool = True


def _usage(usage: Usage | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    return {k: v for k, v in dataclasses.asdict(usage).items() if v is not None}


def _output(output: Output) -> list[Any]:
    if isinstance(output, ToolCallOutput):
        return ["tool_call", output.call.id, output.call.name, output.call.arguments]
    return [output.kind, output.text]


def encode_response(response: GenerateResponse) -> bytes:
    return orjson.dumps(
        {
            "v": ENTRY_VERSION,
            "model": response.model,
            "provider": response.provider,
            "id": response.id,
            "request_id": response.request_id,
            "finish_reason": response.finish_reason,
            "usage": _usage(response.usage),
            "outputs": [_output(o) for o in response.outputs],
            "chunks": None,
            "tool_calls": [],
        }
    )


def encode_stream(
    chunks: Sequence[tuple[str, str]], final: StreamChunk, *, model: str, provider: str
) -> bytes:
    """A finished stream: its delta chunks' (text, reasoning) and its final chunk."""
    return orjson.dumps(
        {
            "v": ENTRY_VERSION,
            "model": model,
            "provider": provider,
            "id": None,
            "request_id": final.request_id,
            "finish_reason": final.finish_reason,
            "usage": _usage(final.usage),
            "outputs": None,
            "chunks": chunks,
            "tool_calls": [[c.id, c.name, c.arguments] for c in final.tool_calls],
        }
    )


class Entry:
    """A decoded entry; ``response()`` and ``replay()`` build fresh objects on every call, so a
    caller that mutates a hit never changes the next one."""

    __slots__ = ("_data",)

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    @staticmethod
    def decode(value: bytes) -> Entry | None:
        """``None`` for bytes that are not an entry of this version (treated as a miss)."""
        try:
            data = orjson.loads(value)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(data, dict) or data.get("v") != ENTRY_VERSION:
            return None
        return Entry(data)

    def _usage(self) -> Usage:
        usage = self._data.get("usage") or {}
        return Usage(**{k: v for k, v in usage.items() if k in _USAGE_FIELDS})

    def _tool_calls(self) -> tuple[ToolCall, ...]:
        return tuple(ToolCall(*c) for c in self._data.get("tool_calls") or ())

    def outputs(self) -> list[Output]:
        stored = self._data.get("outputs")
        if stored is not None:
            outputs: list[Output] = []
            for item in stored:
                if item[0] == "tool_call":
                    outputs.append(ToolCallOutput(ToolCall(item[1], item[2], item[3])))
                elif item[0] == "reasoning":
                    outputs.append(ReasoningOutput(item[1]))
                else:
                    outputs.append(TextOutput(item[1]))
            return outputs
        # a stored stream: the same outputs ResponseStream builds from its chunks
        chunks = self._data.get("chunks") or ()
        reasoning = "".join(c[1] for c in chunks)
        text = "".join(c[0] for c in chunks)
        built: list[Output] = []
        if reasoning:
            built.append(ReasoningOutput(reasoning))
        if text:
            built.append(TextOutput(text))
        built.extend(ToolCallOutput(c) for c in self._tool_calls())
        return built

    def response(self, latency: float) -> CachedResponse:
        data = self._data
        return CachedResponse(
            outputs=self.outputs(),
            finish_reason=data.get("finish_reason"),
            model=data.get("model") or "",
            provider=data.get("provider") or "",
            id=data.get("id"),
            request_id=data.get("request_id"),
            usage=self._usage(),
            latency=latency,
        )

    def replay(self) -> Iterator[StreamChunk]:
        """The stream again: the stored chunks (for a stored ``generate``, its reasoning and its
        text as one chunk each), then a final chunk with finish reason, usage and request id."""
        data = self._data
        chunks = data.get("chunks")
        if chunks is not None:
            for text, reasoning in chunks:
                yield StreamChunk(text=text, reasoning=reasoning)
            tool_calls = self._tool_calls()
        else:
            calls = []
            for output in self.outputs():
                if isinstance(output, ToolCallOutput):
                    calls.append(output.call)
                elif isinstance(output, ReasoningOutput):
                    yield StreamChunk(reasoning=output.text)
                else:
                    yield StreamChunk(text=output.text)
            tool_calls = tuple(calls)
        yield StreamChunk(
            is_final=True,
            finish_reason=data.get("finish_reason"),
            usage=self._usage(),
            request_id=data.get("request_id"),
            tool_calls=tool_calls,
        )
