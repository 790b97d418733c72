"""``POST /api/chat`` and ``POST /api/generate``: one JSON object or an NDJSON stream.

``stream`` defaults to true (ollama-wire.md §3). A stream is ``application/x-ndjson``, one object
per ``\\n``-terminated line: deltas with ``done: false``, then one ``done: true`` line with
``done_reason`` and the metrics (§5). ``stream: false`` answers the same fields in one
``application/json; charset=utf-8`` object, content and thinking joined.

Order: queued or header fault -> body checks (``validation``) -> generation. A failure of the
runner (``validation.Late``) is a JSON error even for a streamed request, as nothing was
written yet. Durations are plausible rather than measured on a model: ``load_duration`` is the
real time before generation, ``eval_duration`` the real generation time, ``prompt_eval_duration``
20 µs per prompt token, and ``total_duration`` at least their sum.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

from aiohttp import web

from botticelli.emulator.common.errors import WireError
from botticelli.emulator.common.faults import STREAM_ONLY, Fault
from botticelli.emulator.common.http import abort
from botticelli.emulator.ollama import wire
from botticelli.emulator.ollama.fault_responses import IMMEDIATE_FAULTS, fire
from botticelli.emulator.ollama.generation import Answer, Delta
from botticelli.emulator.ollama.gotime import now_ns, timestamp
from botticelli.emulator.ollama.options import DEFAULT_NUM_CTX
from botticelli.emulator.ollama.requests import peek
from botticelli.emulator.ollama.state import OllamaState
from botticelli.emulator.ollama.validation import (
    LOAD,
    UNLOAD,
    Late,
    Request,
    validate_chat,
    validate_generate,
)

_PROMPT_NS_PER_TOKEN = 20_000
_VOCABULARY_SIZE = 128_256  # llama 3's; only the range of the `context` token ids


def _header_fault(value: str) -> Fault:
    try:
        return Fault.from_header(value)
    except ValueError as exc:
        raise wire.bad_request(f"invalid x-emulator-fault header: {exc}") from None


def context_tokens(request: Request, count: int) -> list[int]:
    """The deprecated ``context`` of ``/api/generate``: token ids of prompt and answer (made up,
    stable for the same conversation)."""
    seed = zlib.crc32(repr(request.messages).encode())
    return [(seed + i * 2654435761) % _VOCABULARY_SIZE for i in range(count)]


class Inference:
    """Answers ``/api/chat`` (``endpoint="chat"``) and ``/api/generate`` for one state."""

    def __init__(self, state: OllamaState) -> None:
        self.state = state

    async def handle(self, request: web.BaseRequest, endpoint: str) -> web.StreamResponse:
        state = self.state
        started = now_ns()
        raw = await request.content.read()  # not request.read(): no 1 MiB cap on big prompts
        body, model_name = peek(raw)
        stream = not isinstance(body, dict) or body.get("stream") is not False
        state.record(request, body, model_name)
        try:
            fault = self._fault(request, model_name, stream)
            if fault is not None:
                state.recorder.fault(fault.kind)
                if fault.kind in IMMEDIATE_FAULTS or (fault.kind == "malformed" and not stream):
                    return await fire(state, request, fault, model_name)
            validate = validate_chat if endpoint == "chat" else validate_generate
            _, outcome = validate(raw, state.catalog, state.settings.backend)
        except WireError as error:
            return wire.error_response(error)
        if isinstance(outcome, Late):
            return wire.error_response(outcome.error, wire.JSON_PLAIN if stream else wire.JSON)
        if outcome.action in (LOAD, UNLOAD):
            return self._load(outcome)
        assert outcome.options is not None
        state.loaded.touch(outcome.model, outcome.keep_alive, outcome.options.num_ctx)
        answer = Answer(
            outcome, state.settings.backend, failed=fault is not None and fault.kind == "generation_failed"
        )
        try:
            if outcome.stream:
                return await self._stream(request, outcome, answer, fault, started)
            return await self._whole(outcome, answer, fault, started)
        finally:
            if outcome.keep_alive == 0:
                state.loaded.unload(outcome.model)

    def _fault(self, request: web.BaseRequest, model: str | None, stream: bool) -> Fault | None:
        header = request.headers.get("x-emulator-fault")
        if not header:
            return self.state.faults.take(model, stream)
        fault = _header_fault(header)
        if (fault.model is not None and fault.model != model) or (fault.kind in STREAM_ONLY and not stream):
            return None
        return fault

    def _load(self, request: Request) -> web.Response:
        """The one object of a request with nothing to generate: the model (un)loaded."""
        if request.action == UNLOAD:
            self.state.loaded.unload(request.model)
        else:
            context = request.options.num_ctx if request.options is not None else DEFAULT_NUM_CTX
            self.state.loaded.touch(request.model, request.keep_alive, context)
        return wire.json_response(self._final(request, request.action, None, "", ""))

    def _final(
        self,
        request: Request,
        reason: str,
        metrics: wire.Metrics | None,
        content: str,
        thinking: str,
        **extra: Any,
    ) -> dict[str, Any]:
        now = timestamp()
        if request.endpoint == "chat":
            msg = wire.message(content, thinking=thinking, tool_calls=extra.get("tool_calls"))
            return wire.chat_response(request.name, now, msg, done=True, done_reason=reason, metrics=metrics)
        return wire.generate_response(
            request.name,
            now,
            content,
            done=True,
            thinking=thinking,
            done_reason=reason,
            context=extra.get("context"),
            metrics=metrics,
        )

    def _delta(self, request: Request, delta: Delta) -> bytes:
        now = timestamp()
        if request.endpoint == "chat":
            msg = wire.message(delta.content, thinking=delta.thinking, tool_calls=delta.tool_calls)
            return wire.line(wire.chat_response(request.name, now, msg, done=False))
        body = wire.generate_response(request.name, now, delta.content, done=False, thinking=delta.thinking)
        return wire.line(body)

    def _metrics(self, request: Request, answer: Answer, started: int, gen_started: int) -> wire.Metrics:
        finished = now_ns()
        load = max(1, gen_started - started)
        prompt_eval = max(1, request.prompt_tokens * _PROMPT_NS_PER_TOKEN)
        evaluation = max(1, finished - gen_started)
        return wire.Metrics(
            total_duration=max(finished - started, load + prompt_eval + evaluation),
            load_duration=load,
            prompt_eval_count=request.prompt_tokens,
            prompt_eval_duration=prompt_eval,
            eval_count=answer.eval_count,
            eval_duration=evaluation,
        )

    def _extra(self, request: Request, answer: Answer) -> dict[str, Any]:
        if request.endpoint == "generate" and not request.raw:
            return {"context": context_tokens(request, request.prompt_tokens + answer.eval_count)}
        return {}

    async def _whole(
        self, request: Request, answer: Answer, fault: Fault | None, started: int
    ) -> web.Response:
        if fault is not None and fault.kind == "slow_first_token":
            await asyncio.sleep(fault["delay"])
        gen_started = now_ns()
        content: list[str] = []
        thinking: list[str] = []
        calls: list[dict[str, Any]] = []
        async with aclosing(answer.deltas()) as deltas:
            async for delta in deltas:
                content.append(delta.content)
                thinking.append(delta.thinking)
                calls.extend(delta.tool_calls)
        delay = self.state.settings.token_delay
        if delay:
            await asyncio.sleep(delay * answer.eval_count)
        metrics = self._metrics(request, answer, started, gen_started)
        body = self._final(
            request,
            answer.done_reason,
            metrics,
            "".join(content),
            "".join(thinking),
            tool_calls=calls or None,
            **self._extra(request, answer),
        )
        self.state.recorder.completion(
            stream=False, prompt_tokens=request.prompt_tokens, completion_tokens=answer.eval_count
        )
        return wire.json_response(body)

    async def _stream(
        self, request: web.BaseRequest, params: Request, answer: Answer, fault: Fault | None, started: int
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers={"content-type": wire.NDJSON})
        await response.prepare(request)
        kind = fault.kind if fault is not None else None
        fire_at = fault["after_chunks"] if fault is not None and "after_chunks" in fault.params else -1
        if fault is not None and kind == "slow_first_token":
            await asyncio.sleep(fault["delay"])
        gen_started = now_ns()
        delay = self.state.settings.token_delay
        sent = 0
        async with aclosing(self._lines(params, answer)) as lines:
            async for data in lines:
                if sent == fire_at and fault is not None:
                    if kind != "malformed":
                        return await self._break(request, response, fault)
                    await response.write(wire.malformed_line(params.name))
                    fire_at = -1
                if delay:
                    await asyncio.sleep(delay)
                await response.write(data)
                sent += 1
        if fire_at >= 0 and fault is not None:  # the answer was shorter than `after_chunks`
            if kind != "malformed":
                return await self._break(request, response, fault)
            await response.write(wire.malformed_line(params.name))
        metrics = self._metrics(params, answer, started, gen_started)
        final = self._final(params, answer.done_reason, metrics, "", "", **self._extra(params, answer))
        # counted (and unloaded) before the done line goes out: a client that has read it sees both
        self.state.recorder.completion(
            stream=True, prompt_tokens=params.prompt_tokens, completion_tokens=answer.eval_count
        )
        if params.keep_alive == 0:
            self.state.loaded.unload(params.model)
        await response.write(wire.line(final))
        await response.write_eof()
        return response

    async def _lines(self, request: Request, answer: Answer) -> AsyncGenerator[bytes, None]:
        async with aclosing(answer.deltas()) as deltas:
            async for delta in deltas:
                yield self._delta(request, delta)

    async def _break(
        self, request: web.BaseRequest, response: web.StreamResponse, fault: Fault
    ) -> web.StreamResponse:
        """A mid-stream fault: an error line (``stream_error``, HTTP status stays 200), a dropped
        connection (``stream_drop``) or a clean end without the ``done`` line (``truncate``)."""
        if fault.kind == "stream_drop":
            abort(request)
            return response
        if fault.kind == "stream_error":
            await response.write(wire.error_line(fault["message"] or wire.STREAM_ERROR, fault["status_code"]))
        await response.write_eof()
        return response
