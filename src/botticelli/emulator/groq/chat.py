"""``POST /openai/v1/chat/completions``: a JSON answer or an SSE stream (groq-wire.md §3, §6).

Order of checks: queued or header fault -> API key -> body (``validation.validate_chat``) ->
rate limits -> generation. ``complete`` is also what the Batch API runs for each line.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

import orjson
from aiohttp import web

from botticelli.emulator.backend import Generation, script_pieces
from botticelli.emulator.common.errors import WireError
from botticelli.emulator.common.faults import STREAM_ONLY, Fault
from botticelli.emulator.common.http import abort, json_response
from botticelli.emulator.common.limits import Denial
from botticelli.emulator.common.state import State
from botticelli.emulator.groq import replies, wire
from botticelli.emulator.groq.fault_responses import IMMEDIATE_FAULTS, fire
from botticelli.emulator.groq.http import accepted_key, denied, error_response
from botticelli.emulator.groq.validation import ChatParams, fault_from_header, validate_chat

_STREAM_ERROR_DEFAULT = {  # the one in-stream error observed on the wire (§4.4)
    "message": (
        "Failed to call a function. Please adjust your prompt. See 'failed_generation' for more details."
    ),
    "type": "invalid_request_error",
    "code": "tool_use_failed",
    "failed_generation": "Tool use failed: JSON does not match the expected schema for tool calls",
    "status_code": 400,
}


class ChatCompletions:
    """Answers chat completions for one ``State``."""

    def __init__(self, state: State) -> None:
        self.state = state

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        state = self.state
        started = time.perf_counter()
        req_id = wire.request_id()
        raw = await request.content.read()  # not request.read(): no 1 MiB cap on big prompts
        try:
            body: Any = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None  # validate_chat answers "could not parse" for it, as for any non-object
        is_object = isinstance(body, dict)
        model_id = body.get("model") if is_object else None
        if not isinstance(model_id, str):
            model_id = None
        stream = is_object and body.get("stream") is True
        state.record(request, body, model_id)
        headers = {"x-request-id": req_id}

        fault: Fault | None
        fault_header = request.headers.get("x-emulator-fault")
        try:
            if fault_header:
                fault = fault_from_header(fault_header)
                if (fault.model is not None and fault.model != model_id) or (
                    fault.kind in STREAM_ONLY and not stream
                ):
                    fault = None
            else:
                fault = state.faults.take(model_id, stream)
            if fault is not None:
                state.recorder.fault(fault.kind)
                if fault.kind in IMMEDIATE_FAULTS or (fault.kind == "malformed" and not stream):
                    return await fire(state, request, fault, model_id, body, req_id)

            key = accepted_key(request, state.settings.api_keys)
            if key is None:
                raise wire.invalid_api_key()
            params = validate_chat(body, state.settings.backend)
            if fault is not None and fault.kind == "generation_failed":
                raise replies.failed_generation(params, fault["failed_generation"])
        except WireError as error:
            return error_response(error, headers)

        info = params.model
        limits = state.limits_for(info)
        charged = params.prompt_tokens + params.max_tokens
        verdict = state.limiter.acquire(key, info.id, limits, charged, enforce=state.settings.enforce_limits)
        if isinstance(verdict, Denial):
            rate_headers = {"x-request-id": req_id, **verdict.snapshot.headers()}
            return denied(self.state.settings, verdict, info.id, rate_headers)
        headers.update(verdict.headers())

        generation = self.generation(params)
        try:
            if params.stream:
                return await self._stream(request, params, generation, headers, req_id, started, fault)
            body = await self.complete(params, generation, req_id, started, fault)
            return json_response(200, orjson.dumps(body), headers)
        finally:
            used = params.prompt_tokens + generation.completion_tokens
            state.limiter.refund(key, info.id, charged - used)

    def generation(self, params: ChatParams) -> Generation:
        """The backend's answer to validated parameters (chat completions and batch lines)."""
        return Generation(
            self.state.settings.backend,
            params.messages,
            max_tokens=params.max_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            seed=params.seed,
            stop=params.stop,
            script=replies.structured_content(params),
        )

    def _usage(
        self, params: ChatParams, generation: Generation, started: float, gen_started: float
    ) -> dict[str, Any]:
        now = time.perf_counter()
        tokens = generation.completion_tokens
        thought = replies.reasoning_tokens(replies.reasoning_text(params)) if params.reasoning else 0
        return wire.usage(
            params.prompt_tokens,
            tokens,
            queue_time=round(gen_started - started, 9),
            prompt_time=round(params.prompt_tokens * 2e-5, 9),  # a plausible ~50k tokens/s prefill
            completion_time=round(max(now - gen_started, tokens * 1e-3), 9),
            reasoning_tokens=thought,
        )

    async def complete(
        self, params: ChatParams, generation: Generation, req_id: str, started: float, fault: Fault | None
    ) -> dict[str, Any]:
        """Generate the whole answer; the ``chat.completion`` object (counted as a completion)."""
        if fault is not None and fault.kind == "slow_first_token":
            await asyncio.sleep(fault["delay"])
        gen_started = time.perf_counter()
        calls = replies.tool_calls(params)
        content: str | None
        if calls:
            content = None
            generation.completion_tokens = sum(call.tokens for call in calls)
            generation.finish_reason = "tool_calls"
        else:
            content = "".join([piece async for piece in generation.pieces()])
        reasoning = None
        if params.reasoning:
            thought = replies.reasoning_text(params)
            generation.completion_tokens += replies.reasoning_tokens(thought)
            if params.reasoning == "parsed":
                reasoning = thought
            elif params.reasoning == "raw":
                content = f"<think>\n{thought}\n</think>\n\n{content or ''}"
        delay = self.state.settings.token_delay
        if delay:
            await asyncio.sleep(delay * generation.completion_tokens)
        usage = self._usage(params, generation, started, gen_started)
        body = wire.completion_object(
            cid=wire.completion_id(),
            created=int(time.time()),
            model=params.model.id,
            content=content,
            finish_reason=generation.finish_reason,
            usage=usage,
            req_id=req_id,
            seed=params.seed,
            tool_calls=[call.wire() for call in calls] or None,
            reasoning=reasoning,
            executed_tools=replies.executed_tools(params) or None,
        )
        self.state.recorder.completion(
            stream=False, prompt_tokens=params.prompt_tokens, completion_tokens=generation.completion_tokens
        )
        return body

    async def _stream(
        self,
        request: web.BaseRequest,
        params: ChatParams,
        generation: Generation,
        headers: dict[str, str],
        req_id: str,
        started: float,
        fault: Fault | None,
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            status=200, headers={**headers, "content-type": wire.EVENT_STREAM, "cache-control": "no-cache"}
        )
        await response.prepare(request)
        framer = wire.ChunkFramer(cid=wire.completion_id(), created=int(time.time()), model=params.model.id)
        kind = fault.kind if fault is not None else None
        fire_at = fault["after_chunks"] if fault is not None and "after_chunks" in fault.params else -1
        if fault is not None and kind == "slow_first_token":
            await asyncio.sleep(fault["delay"])
        gen_started = time.perf_counter()
        await response.write(framer.role(req_id, params.seed))
        delay = self.state.settings.token_delay
        sent = 0
        async with aclosing(self._frames(params, generation, framer)) as frames:
            async for frame in frames:
                if sent == fire_at and fault is not None:
                    if kind != "malformed":
                        return await self._break_stream(request, response, fault)
                    await response.write(framer.malformed())
                    fire_at = -1
                if delay:
                    await asyncio.sleep(delay)
                await response.write(frame)
                sent += 1
        if fire_at >= 0 and fault is not None:  # the reply was shorter than `after_chunks`
            if kind != "malformed":
                return await self._break_stream(request, response, fault)
            await response.write(framer.malformed())
        usage = self._usage(params, generation, started, gen_started)
        await response.write(framer.final(generation.finish_reason, req_id, usage) + wire.DONE_FRAME)
        await response.write_eof()
        self.state.recorder.completion(
            stream=True, prompt_tokens=params.prompt_tokens, completion_tokens=generation.completion_tokens
        )
        return response

    async def _frames(
        self, params: ChatParams, generation: Generation, framer: wire.ChunkFramer
    ) -> AsyncGenerator[bytes, None]:
        """The SSE frames between the role frame and the final one: reasoning, then content or
        tool-call deltas."""
        if params.reasoning:
            thought = replies.reasoning_text(params)
            generation.completion_tokens += replies.reasoning_tokens(thought)
            if params.reasoning == "parsed":
                for piece in script_pieces(thought):
                    yield framer.reasoning(piece)
            elif params.reasoning == "raw":
                for piece in script_pieces(f"<think>\n{thought}\n</think>\n\n"):
                    yield framer.content(piece)
        runs = replies.executed_tools(params)
        if runs:
            yield framer.executed_tools(runs)
        calls = replies.tool_calls(params)
        if not calls:
            async with aclosing(generation.pieces()) as pieces:
                async for piece in pieces:
                    yield framer.content(piece)
            return
        generation.finish_reason = "tool_calls"
        for index, call in enumerate(calls):
            parts = script_pieces(call.arguments)
            generation.completion_tokens += 3
            yield framer.tool_call(index, call.id, call.name, "".join(parts[:1]))
            for piece in parts[1:]:
                generation.completion_tokens += 1
                yield framer.tool_arguments(index, piece)

    async def _break_stream(
        self, request: web.BaseRequest, response: web.StreamResponse, fault: Fault
    ) -> web.StreamResponse:
        """Apply a mid-stream fault (``stream_error``, ``stream_drop`` or ``truncate``)."""
        if fault.kind == "stream_drop":
            abort(request)
            return response
        if fault.kind == "stream_error":
            error = dict(_STREAM_ERROR_DEFAULT)
            if fault["message"] is not None:
                error["message"] = fault["message"]
                error.pop("failed_generation")
            for name in ("type", "code", "status_code"):
                if fault[name] is not None:
                    error[name] = fault[name]
            await response.write(wire.error_frame({"error": error}))
        await response.write_eof()  # `truncate`: a clean end without the final chunk or [DONE]
        return response
