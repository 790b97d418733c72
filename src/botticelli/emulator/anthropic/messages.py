"""``POST /v1/messages`` (JSON or SSE, §4-§5) and ``POST /v1/messages/count_tokens`` (§2).

Order of checks: queued or header fault -> body size (413) -> credentials (401) ->
``anthropic-version`` (400) -> body (``validation``) -> rate limits (429) -> the answer. Where
the real API puts the version check relative to the credentials is NOT FOUND; credentials first.
Faults (queued or in the ``x-emulator-fault`` header) apply to ``/v1/messages`` only, as the Groq
emulator's apply to chat completions only.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import orjson
from aiohttp import web

from botticelli.emulator.anthropic import replies, wire
from botticelli.emulator.anthropic.fault_responses import IMMEDIATE_FAULTS, fire
from botticelli.emulator.anthropic.http import (
    Credential,
    api_version,
    authenticate,
    base_headers,
    error_response,
)
from botticelli.emulator.anthropic.limits import WORDING, Denial
from botticelli.emulator.anthropic.reply import Accumulator, Reply
from botticelli.emulator.anthropic.state import AnthropicState
from botticelli.emulator.anthropic.validation import MessageParams, validate
from botticelli.emulator.common.errors import WireError
from botticelli.emulator.common.faults import STREAM_ONLY, Fault
from botticelli.emulator.common.http import abort, json_response

#: The mid-stream error when a ``stream_error`` fault names none (§5: the documented example).
_STREAM_ERROR = ("overloaded_error", "Overloaded")


def _parse(raw: bytes) -> tuple[Any, WireError | None]:
    """The JSON body, or the 400 the API sends for one that does not parse (observed wording,
    anthropics/claude-code#8272: ``The request body is not valid JSON: <decoder message>``)."""
    try:
        return orjson.loads(raw), None
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(raw), None  # orjson is stricter (e.g. lone surrogates): take what parses
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return None, wire.invalid(f"The request body is not valid JSON: {exc}")


class Messages:
    """Answers the Messages API for one ``AnthropicState``."""

    def __init__(self, state: AnthropicState) -> None:
        self.state = state

    @property
    def org(self) -> str:
        return self.state.settings.org_id

    async def _read(self, request: web.BaseRequest) -> tuple[bytes | None, WireError | None]:
        length = request.content_length
        if length is not None and length > wire.MAX_REQUEST_BYTES:
            return None, wire.request_too_large()
        raw = await request.content.read()  # not request.read(): no 1 MiB cap on big prompts
        if len(raw) > wire.MAX_REQUEST_BYTES:
            return None, wire.request_too_large()
        return raw, None

    def _fault(self, request: web.BaseRequest, model: str | None, stream: bool) -> Fault | None:
        header = request.headers.get("x-emulator-fault")
        if not header:
            return self.state.faults.take(model, stream)
        try:
            fault = Fault.from_header(header)
        except ValueError as exc:
            raise wire.invalid(f"invalid x-emulator-fault header: {exc}") from None
        if (fault.model is not None and fault.model != model) or (fault.kind in STREAM_ONLY and not stream):
            return None
        return fault

    async def _prologue(
        self, request: web.BaseRequest, req_id: str, *, count_only: bool
    ) -> tuple[MessageParams, Credential, Fault | None] | web.StreamResponse:
        """Everything before the answer: a refusal (or a fault's response), or what to answer."""
        state = self.state
        raw, too_large = await self._read(request)
        body, bad_json = _parse(raw) if raw is not None else (None, None)
        model_id: str | None = None
        stream = False
        if isinstance(body, dict):
            named = body.get("model")
            model_id = named if isinstance(named, str) else None
            stream = not count_only and body.get("stream") is True
        state.record(request, body, model_id)
        fault: Fault | None = None
        try:
            if not count_only:
                fault = self._fault(request, model_id, stream)
            if fault is not None:
                state.recorder.fault(fault.kind)
                if fault.kind in IMMEDIATE_FAULTS or (fault.kind == "malformed" and not stream):
                    return await fire(state, request, fault, model_id, req_id)
            if too_large is not None:
                raise too_large
            credential = authenticate(request, state.settings.api_keys)
            version = api_version(request)
            if bad_json is not None:
                raise bad_json
            params = validate(body, version, state.settings.backend, count_only=count_only)
        except WireError as error:
            return error_response(error, req_id, self.org)
        return params, credential, fault

    async def count_tokens(self, request: web.BaseRequest) -> web.StreamResponse:
        req_id = wire.request_id()
        outcome = await self._prologue(request, req_id, count_only=True)
        if isinstance(outcome, web.StreamResponse):
            return outcome
        params = outcome[0]
        return json_response(200, {"input_tokens": params.prompt_tokens}, base_headers(req_id, self.org))

    async def create(self, request: web.BaseRequest) -> web.StreamResponse:
        state = self.state
        req_id = wire.request_id()
        outcome = await self._prologue(request, req_id, count_only=False)
        if isinstance(outcome, web.StreamResponse):
            return outcome
        params, credential, fault = outcome
        model = params.model.id
        verdict = state.buckets.acquire(
            credential.key,
            model,
            state.limits,
            params.prompt_tokens,
            params.max_tokens,
            enforce=state.settings.enforce_limits,
        )
        if isinstance(verdict, Denial):
            return self._denied(verdict, model, req_id)
        headers = {**base_headers(req_id, self.org), **verdict.headers()}
        refusal = None
        if fault is not None and fault.kind == "generation_failed":
            refusal = str(fault["failed_generation"] or "")
        reply = Reply(params, replies.plan(params, refusal=refusal), state.settings.backend)
        try:
            if params.stream:
                return await self._stream(request, reply, headers, fault)
            return await self._json(reply, headers, fault)
        finally:
            state.buckets.refund(credential.key, model, params.max_tokens - reply.outcome.output_tokens)

    def _denied(self, denial: Denial, model: str, req_id: str) -> web.Response:
        message = wire.rate_limit_message(
            limit=denial.limit, what=WORDING[denial.kind], org=self.org, model=model
        )
        headers = {**denial.snapshot.headers(), "retry-after": denial.retry_after()}
        return error_response(WireError(429, message, "rate_limit_error"), req_id, self.org, headers)

    def _message(self, reply: Reply, content: list[dict[str, Any]], mid: str) -> dict[str, Any]:
        out = reply.outcome
        return wire.message_object(
            mid=mid,
            model=reply.params.model.id,
            content=content,
            stop_reason=out.stop_reason,
            stop_sequence=out.stop_sequence,
            usage=wire.usage(
                reply.params.prompt_tokens, reply.output_tokens, thinking_tokens=out.thinking_tokens
            ),
            stop_details=out.stop_details,
        )

    async def _json(self, reply: Reply, headers: dict[str, str], fault: Fault | None) -> web.Response:
        if fault is not None and fault.kind == "slow_first_token":
            await asyncio.sleep(fault["delay"])
        folded = Accumulator()
        async for kind, index, data in reply.events():
            folded.feed(kind, index, data)
        delay = self.state.settings.token_delay
        if delay:
            await asyncio.sleep(delay * reply.outcome.output_tokens)
        body = self._message(reply, folded.content, wire.message_id())
        self._count(reply, stream=False)
        return json_response(200, body, headers)

    async def _stream(
        self, request: web.BaseRequest, reply: Reply, headers: dict[str, str], fault: Fault | None
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            status=200, headers={**headers, "content-type": wire.EVENT_STREAM, "cache-control": "no-cache"}
        )
        await response.prepare(request)
        kind = fault.kind if fault is not None else None
        fire_at = fault["after_chunks"] if fault is not None and "after_chunks" in fault.params else -1
        if fault is not None and kind == "slow_first_token":
            await asyncio.sleep(fault["delay"])
        start = self._message(reply, [], wire.message_id())
        start.update(stop_reason=None, stop_sequence=None, usage=wire.start_usage(reply.params.prompt_tokens))
        await response.write(wire.message_start(start))
        delay = self.state.settings.token_delay
        sent = 0
        pinged = False
        last_index = 0
        async for event_kind, index, data in reply.events():
            last_index = index
            if event_kind == "delta":
                if sent == fire_at and fault is not None:
                    if kind != "malformed":
                        return await self._break(request, response, fault)
                    await response.write(wire.malformed_frame(index))
                    fire_at = -1
                if delay:
                    await asyncio.sleep(delay)
                sent += 1
                await response.write(wire.block_delta(index, data))
            elif event_kind == "start":
                await response.write(wire.block_start(index, data))
                if not pinged:  # [FIX] basic_response.txt: a ping after the first block opens
                    await response.write(wire.PING)
                    pinged = True
            else:
                await response.write(wire.block_stop(index))
        if fire_at >= 0 and fault is not None:  # the reply was shorter than `after_chunks`
            if kind != "malformed":
                return await self._break(request, response, fault)
            await response.write(wire.malformed_frame(last_index))
        out = reply.outcome
        usage = wire.delta_usage(reply.output_tokens, out.thinking_tokens)
        await response.write(wire.message_delta(out.stop_reason, out.stop_sequence, usage, out.stop_details))
        await response.write(wire.MESSAGE_STOP)
        await response.write_eof()
        self._count(reply, stream=True)
        return response

    async def _break(
        self, request: web.BaseRequest, response: web.StreamResponse, fault: Fault
    ) -> web.StreamResponse:
        """A mid-stream fault: ``stream_drop`` aborts the connection, ``stream_error`` sends an
        ``event: error`` frame (§5; ``status_code`` is Groq's and ignored), ``truncate`` ends the
        stream cleanly without ``message_delta``/``message_stop``."""
        if fault.kind == "stream_drop":
            abort(request)
            return response
        if fault.kind == "stream_error":
            error_type, message = _STREAM_ERROR
            error = WireError(
                200, fault["message"] or message, fault["type"] or error_type, code=fault["code"] or None
            )
            await response.write(wire.error_frame(error))
        await response.write_eof()
        return response

    def _count(self, reply: Reply, *, stream: bool) -> None:
        self.state.recorder.completion(
            stream=stream, prompt_tokens=reply.params.prompt_tokens, completion_tokens=reply.output_tokens
        )
