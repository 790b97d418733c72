"""One assembler for streams (``drivers.base.assemble_response``): a live ``ResponseStream``, a
stored stream read back from the cache and a stored stream replayed all build the response the
plain (non-streamed) path would have returned, for any sequence of chunks; and a stored answer
read back equals the one stored in every field that describes the answer (finish reasons, the raw
one included, tool calls, reasoning signatures)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncGenerator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from botticelli.cache import CachedDriver, CachedResponse, SQLiteCache
from botticelli.cache.codec import Entry, encode_response, encode_stream
from botticelli.drivers.base import Driver, ResponseStream
from botticelli.types import (
    FinishReason,
    GenerateRequest,
    GenerateResponse,
    Output,
    ReasoningOutput,
    StreamChunk,
    TextOutput,
    ToolCall,
    ToolCallOutput,
    Usage,
)

# Fields that say how an answer travelled, not what it was: not stored, not compared.
_TRAVEL = {"latency", "time_to_first_token", "rate_limit", "cached"}


def answer(response: GenerateResponse) -> dict[str, Any]:
    """Every field of a response that describes the answer."""
    return {f.name: getattr(response, f.name) for f in dataclasses.fields(response) if f.name not in _TRAVEL}


_text = st.text(max_size=12)
_ident = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=10)
_signature = st.none() | st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef0123456789+/=", max_size=24)
_call = st.builds(ToolCall, _ident, _ident, st.sampled_from(["{}", '{"city": "Paris"}', '{"a": [1, 2]}']))
_raw_reason = st.none() | st.sampled_from(
    ["stop", "length", "tool_calls", "end_turn", "max_tokens", "pause_turn"]
)
_usage = st.builds(
    Usage,
    st.integers(0, 10_000),
    st.integers(0, 10_000),
    st.integers(0, 20_000),
    queue_time=st.none() | st.floats(0, 10),
    reasoning_tokens=st.none() | st.integers(0, 500),
    cached_tokens=st.none() | st.integers(0, 500),
)
_delta = st.builds(StreamChunk, text=_text, reasoning=_text, reasoning_signature=_signature)


@st.composite
def finals(draw: st.DrawFn) -> StreamChunk:
    raw = draw(_raw_reason)
    return StreamChunk(
        is_final=True,
        text=draw(st.just("") | _text),
        reasoning=draw(st.just("") | _text),
        finish_reason=FinishReason.of(raw),
        raw_finish_reason=raw,
        usage=draw(st.none() | _usage),
        request_id=draw(st.none() | _ident.map(lambda s: "req_" + s)),
        tool_calls=tuple(draw(st.lists(_call, max_size=3))),
        reasoning_signature=draw(_signature),
    )


def plain(
    deltas: Sequence[StreamChunk], final: StreamChunk, *, model: str, provider: str
) -> GenerateResponse:
    """What a non-streamed call would have answered, built by hand: all the reasoning (with the
    last signature sent), then all the text, then the tool calls."""
    chunks = [*deltas, final]
    reasoning = "".join(c.reasoning for c in chunks)
    text = "".join(c.text for c in chunks)
    signatures = [c.reasoning_signature for c in chunks if c.reasoning_signature is not None]
    outputs: list[Output] = []
    if reasoning or signatures:
        outputs.append(ReasoningOutput(reasoning, signature=signatures[-1] if signatures else None))
    if text:
        outputs.append(TextOutput(text))
    outputs += [ToolCallOutput(c) for c in final.tool_calls]
    return GenerateResponse(
        outputs=outputs,
        finish_reason=final.finish_reason,
        model=model,
        provider=provider,
        request_id=final.request_id,
        usage=final.usage or Usage(),
        raw_finish_reason=final.raw_finish_reason,
    )


async def _source(chunks: Sequence[StreamChunk]) -> AsyncGenerator[StreamChunk, None]:
    for chunk in chunks:
        yield dataclasses.replace(chunk)  # the stream stamps timings on the final chunk: a copy


def streamed(chunks: Sequence[StreamChunk]) -> GenerateResponse:
    return asyncio.run(ResponseStream(_source(chunks), model="m", provider="groq").collect())


@settings(max_examples=150, deadline=None)
@given(deltas=st.lists(_delta, max_size=8), final=finals())
def test_any_stream_assembles_to_the_plain_answer(deltas: list[StreamChunk], final: StreamChunk) -> None:
    expected = answer(plain(deltas, final, model="m", provider="groq"))
    live = streamed([*deltas, final])
    assert answer(live) == expected
    assert isinstance(live.finish_reason, (FinishReason, type(None)))

    stored = encode_stream(
        [(c.text, c.reasoning, c.reasoning_signature) for c in deltas], final, model="m", provider="groq"
    )
    entry = Entry.decode(stored)
    assert entry is not None
    hit = entry.response(0.001)
    assert isinstance(hit, CachedResponse) and hit.cached and hit.latency == 0.001
    assert answer(hit) == expected  # a stored stream read by generate()
    assert answer(streamed(list(entry.replay()))) == expected  # and replayed as a stream


@st.composite
def responses(draw: st.DrawFn) -> GenerateResponse:
    """A plain answer in the shape any codec returns: reasoning, text, tool calls."""
    outputs: list[Output] = []
    if draw(st.booleans()):
        outputs.append(ReasoningOutput(draw(_text.filter(bool)), signature=draw(_signature)))
    if draw(st.booleans()):
        outputs.append(TextOutput(draw(_text.filter(bool))))
    outputs += [ToolCallOutput(c) for c in draw(st.lists(_call, max_size=3))]
    raw = draw(_raw_reason)
    return GenerateResponse(
        outputs=outputs,
        finish_reason=FinishReason.of(raw),
        model=draw(_ident),
        provider="groq",
        id=draw(st.none() | _ident),
        request_id=draw(st.none() | _ident),
        usage=draw(_usage),
        raw_finish_reason=raw,
    )


@settings(max_examples=150, deadline=None)
@given(response=responses())
def test_a_stored_answer_reads_back_equal_in_every_field(response: GenerateResponse) -> None:
    entry = Entry.decode(encode_response(response))
    assert entry is not None
    hit = entry.response(0.0)
    assert answer(hit) == answer(response)
    assert type(hit.finish_reason) is type(response.finish_reason)  # a FinishReason, not a str
    replayed = streamed(list(entry.replay()))  # the same answer as a stream
    assert answer(replayed) == answer(response) | {"id": None, "model": "m"}


def test_an_entry_from_before_raw_finish_reasons_reads_as_the_neutral_reason() -> None:
    """Older entries stored the provider's word as ``finish_reason``; it comes back neutral,
    with the word as the raw reason."""
    for word, reason in (
        ("stop", FinishReason.STOP),
        ("length", FinishReason.LENGTH),
        ("end_turn", FinishReason.OTHER),
    ):
        old = {
            "v": 2,
            "model": "m",
            "provider": "groq",
            "id": None,
            "request_id": "req_1",
            "finish_reason": word,
            "usage": {"prompt_tokens": 1},
            "outputs": [["text", "hi"], ["reasoning", "hmm"]],
            "chunks": None,
            "tool_calls": [],
        }
        entry = Entry.decode(orjson.dumps(old))
        assert entry is not None
        hit = entry.response(0.0)
        assert hit.finish_reason is reason and hit.raw_finish_reason == word
        assert hit.outputs == [TextOutput("hi"), ReasoningOutput("hmm")]


@pytest.mark.parametrize(
    "value",
    [
        {"outputs": [["reasoning", "x", 3]]},  # a signature must be a string
        {"outputs": [["reasoning", "x", "s", "extra"]]},
        {"raw_finish_reason": 1},
        {"reasoning_signature": ["s"]},
        {"outputs": None, "chunks": [["a", "b", None]]},  # a chunk's signature, when present, a string
    ],
)
def test_malformed_new_fields_are_a_miss(value: dict[str, Any]) -> None:
    base = orjson.loads(encode_response(GenerateResponse([TextOutput("t")], FinishReason.STOP, "m")))
    assert Entry.decode(orjson.dumps(base | value)) is None


class _Thinking(Driver):
    """A real in-process driver answering with reasoning (signed), text and a tool call, in
    both forms, like a provider that signs its reasoning (Anthropic, Gemini)."""

    provider_name = "test"
    model_name = "thinker"

    def __init__(self) -> None:
        self.calls = 0

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        self.calls += 1
        return GenerateResponse(
            outputs=[
                ReasoningOutput("Let me look it up.", signature="sig-EqQBCkgIARABGAIiQ"),
                TextOutput("Checking the weather."),
                ToolCallOutput(ToolCall("call_1", "get_weather", '{"city": "Paris"}')),
            ],
            finish_reason=FinishReason.TOOL_CALLS,
            raw_finish_reason="tool_use",
            model=self.model_name,
            provider=self.provider_name,
            id="msg_1",
            request_id="req_1",
            usage=Usage(10, 5, 15, reasoning_tokens=3),
        )

    def generate_stream(self, request: GenerateRequest) -> ResponseStream:
        self.calls += 1
        return ResponseStream(self._chunks(), model=self.model_name, provider=self.provider_name)

    async def _chunks(self) -> AsyncGenerator[StreamChunk, None]:
        yield StreamChunk(reasoning="Let me ")
        yield StreamChunk(reasoning="look it up.", reasoning_signature="sig-EqQBCkgIARABGAIiQ")
        yield StreamChunk(text="Checking ")
        yield StreamChunk(text="the weather.")
        yield StreamChunk(
            is_final=True,
            finish_reason=FinishReason.TOOL_CALLS,
            raw_finish_reason="tool_use",
            usage=Usage(10, 5, 15, reasoning_tokens=3),
            request_id="req_2",
            tool_calls=(ToolCall("call_1", "get_weather", '{"city": "Paris"}'),),
        )


async def test_tool_calls_and_signatures_survive_the_cache(tmp_path: Path) -> None:
    """Through a real CachedDriver and SQLite file: a generate and a stream, each stored and read
    back (by generate and by stream), equal in every field to what the driver answered."""
    inner = _Thinking()
    store = SQLiteCache(tmp_path / "cache.sqlite3")
    async with CachedDriver(inner, store) as cached:
        request = GenerateRequest.prompt("Weather in Paris?", temperature=0)
        first = await cached.generate(request)
        hit = await cached.generate(request)
        assert isinstance(hit, CachedResponse) and inner.calls == 1
        assert answer(hit) == answer(first)
        assert hit.outputs[0] == ReasoningOutput("Let me look it up.", signature="sig-EqQBCkgIARABGAIiQ")
        replay = cached.generate_stream(request)
        assert answer(await replay.collect()) == answer(first) | {"id": None}  # a stream has no id

        other = GenerateRequest.prompt("And in Rome?", temperature=0)
        live = cached.generate_stream(other)
        live_answer = await live.collect()
        again = cached.generate_stream(other)
        replayed = await again.collect()
        assert inner.calls == 2 and again.cached is True
        assert answer(replayed) == answer(live_answer)
        assert answer(await cached.generate(other)) == answer(live_answer)
        assert live_answer.outputs[0] == ReasoningOutput(
            "Let me look it up.", signature="sig-EqQBCkgIARABGAIiQ"
        )
        assert (
            live_answer.raw_finish_reason == "tool_use"
            and live_answer.finish_reason is FinishReason.TOOL_CALLS
        )
    await store.aclose()
