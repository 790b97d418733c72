"""Routes and request handling of the emulator (aiohttp's low-level ``web.Server``).

The low-level server skips aiohttp's router and middlewares (a dict-free ``if`` chain routes four
paths) and lets handlers abort transports, which the ``drop``/``hang``/``stream_drop`` faults need.
Order of checks on ``POST /chat/completions``: queued or header fault -> API key -> JSON body ->
model -> parameters -> context window -> rate limits -> generation.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from contextlib import aclosing
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import orjson
from aiohttp import web

from botticelli import catalog
from botticelli.catalog import ModelInfo, PlanLimits
from botticelli.emulator import wire
from botticelli.emulator.backend import Backend, Generation, Message
from botticelli.emulator.batches import DEFAULT_BATCH_STEP, BatchAPI
from botticelli.emulator.faults import STREAM_ONLY, Fault, FaultQueue
from botticelli.emulator.limits import LIMIT_KINDS, Denial, Limits, RateLimiter, go_duration, limit_kind_of
from botticelli.emulator.stats import RecordedRequest, Recorder

PREFIX = "/openai/v1"
CHAT_PATH = PREFIX + "/chat/completions"
MODELS_PATH = PREFIX + "/models"
CONTROL_PREFIX = "/_emulator/"

#: ``max_tokens`` used when a request sets none: short replies keep tests and benchmarks fast.
DEFAULT_MAX_TOKENS = 128

_ROLES = frozenset({"system", "user", "assistant", "tool", "function", "developer"})
_IMMEDIATE_FAULTS = frozenset({"rate_limit", "server_error", "status", "drop", "hang", "html_403"})
_FALLBACK_LIMITS = {"rpm": 30, "rpd": 1000, "tpm": 8000, "tpd": 200000}  # free plan of current models
_STREAM_ERROR_DEFAULT = {  # the one in-stream error observed on the wire (§4.4)
    "message": (
        "Failed to call a function. Please adjust your prompt. See 'failed_generation' for more details."
    ),
    "type": "invalid_request_error",
    "code": "tool_use_failed",
    "failed_generation": "Tool use failed: JSON does not match the expected schema for tool calls",
    "status_code": 400,
}


@dataclass
class Settings:
    """Configuration read by every request; ``enforce_limits`` may be flipped at run time."""

    backend: Backend
    api_keys: frozenset[str] | None = None
    plan: str = "free"
    enforce_limits: bool = False
    limit_overrides: dict[str, int | None] = field(default_factory=dict)
    token_delay: float = 0.0
    org_id: str = field(default_factory=wire.organization_id)
    batch_step: float = DEFAULT_BATCH_STEP  # seconds between Batch API phases (batches.py)


class State:
    """Everything the handlers share: settings, pending faults, limiter and counters."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.faults = FaultQueue()
        self.limiter = RateLimiter()
        self.recorder = Recorder()
        self.stopping: asyncio.Event | None = None  # set when the server stops; releases `hang`
        self._limits: dict[str, Limits] = {}

    def limits_for(self, info: ModelInfo) -> Limits:
        limits = self._limits.get(info.id)
        if limits is None:
            base = info.limits.get(self.settings.plan) or PlanLimits()
            over = self.settings.limit_overrides
            limits = Limits(
                rpm=over.get("rpm", base.rpm),
                rpd=over.get("rpd", base.rpd),
                tpm=over.get("tpm", base.tpm),
                tpd=over.get("tpd", base.tpd),
            )
            self._limits[info.id] = limits
        return limits

    def reset(self) -> None:
        self.faults.clear()
        self.limiter.reset()
        self.recorder.reset()


class _Aborted(web.StreamResponse):
    """Returned after the transport was aborted: nothing is sent, nothing is counted."""


@dataclass(slots=True)
class ChatParams:
    model: ModelInfo
    messages: list[Message]
    stream: bool
    max_tokens: int
    temperature: float
    top_p: float
    seed: int
    stop: tuple[str, ...]
    prompt_tokens: int


# -- helpers ------------------------------------------------------------------------------------


def _json(status: int, body: dict[str, Any] | bytes, headers: dict[str, str] | None = None) -> web.Response:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    all_headers = {"content-type": wire.JSON}
    if headers:
        all_headers.update(headers)
    return web.Response(status=status, body=data, headers=all_headers)


def _bad_request(message: str, param: str | None = None, req_id: str = "") -> web.Response:
    return _json(400, wire.error_body(message, param=param), {"x-request-id": req_id})


def _seconds_header(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}".rstrip("0").rstrip(".")


def _abort(request: web.BaseRequest) -> _Aborted:
    transport = request.transport
    if transport is not None:
        transport.abort()
    return _Aborted()


def _number(body: dict[str, Any], name: str, default: float, low: float, high: float) -> float | str:
    """The value of a numeric field, or the Groq-style error message when it is invalid."""
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"'{name}' : value must be a number"
    if value < low:
        return f"'{name}' : number must be at least {low:g}"
    if value > high:
        return f"'{name}' : number must be at most {high:g}"
    return float(value)


# -- the application --------------------------------------------------------------------------


class EmulatorApp:
    """The request handler given to ``aiohttp.web.Server``."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.batches = BatchAPI(self)  # /files and /batches

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        if path.startswith(CONTROL_PREFIX):
            return await self._control(request, path[len(CONTROL_PREFIX) :])
        method = request.method
        if path == CHAT_PATH and method == "POST":
            try:
                response = await self._chat(request)
            except asyncio.CancelledError:  # aiohttp cancels the handler when the client goes away
                if self.state.stopping is None or not self.state.stopping.is_set():
                    self.state.recorder.disconnect()
                raise
            except ConnectionResetError:  # a write found the connection already closed
                self.state.recorder.disconnect()
                return _Aborted()
        else:
            self._record(request, None, None)
            if path == MODELS_PATH and method == "GET":
                response = self._models(request)
            elif path.startswith(MODELS_PATH + "/") and method == "GET":
                response = self._model(request, path[len(MODELS_PATH) + 1 :])
            elif BatchAPI.handles(path):
                response = await self.batches.handle(request)
            else:
                response = _json(404, wire.unknown_url(method, path))
        if not isinstance(response, _Aborted):
            self.state.recorder.response(response.status)
        return response

    def _record(self, request: web.BaseRequest, body: Any, model: str | None) -> None:
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.state.recorder.request(
            RecordedRequest(request.method, request.path, headers, body), model, request.transport
        )

    def _api_key(self, request: web.BaseRequest) -> str | None:
        """The bearer token if it is accepted (never logged or echoed)."""
        auth = request.headers.get("Authorization")
        if not auth:
            return None
        scheme, _, token = auth.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        keys = self.state.settings.api_keys
        if keys is None:
            return token if token.startswith("gsk_") else None
        return token if token in keys else None

    # -- models -----------------------------------------------------------------------------

    def _models(self, request: web.BaseRequest) -> web.Response:
        if self._api_key(request) is None:
            return _json(401, wire.INVALID_API_KEY)
        return _json(200, wire.models_list())

    def _model(self, request: web.BaseRequest, model_id: str) -> web.Response:
        if self._api_key(request) is None:
            return _json(401, wire.INVALID_API_KEY)
        info = catalog.lookup(model_id)
        if info is None or info.retired:
            return _json(404, wire.model_not_found(model_id))
        return _json(200, wire.model_object(info))

    # -- chat completions -------------------------------------------------------------------

    async def _chat(self, request: web.BaseRequest) -> web.StreamResponse:
        state = self.state
        started = time.perf_counter()
        req_id = wire.request_id()
        raw = await request.content.read()  # not request.read(): no 1 MiB cap on big prompts
        body: Any = None
        bad_json = False
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            bad_json = True
        is_object = isinstance(body, dict)
        model_id = body.get("model") if is_object else None
        if not isinstance(model_id, str):
            model_id = None
        stream = is_object and body.get("stream") is True
        self._record(request, body, model_id)

        fault: Fault | None
        fault_header = request.headers.get("x-emulator-fault")
        if fault_header:
            try:
                fault = Fault.from_header(fault_header)
            except ValueError as exc:
                return _bad_request(f"invalid x-emulator-fault header: {exc}", req_id=req_id)
            if (fault.model is not None and fault.model != model_id) or (
                fault.kind in STREAM_ONLY and not stream
            ):
                fault = None
        else:
            fault = state.faults.take(model_id, stream)
        if fault is not None:
            state.recorder.fault(fault.kind)
            if fault.kind in _IMMEDIATE_FAULTS or (fault.kind == "malformed" and not stream):
                return await self._fire(request, fault, model_id, body, req_id)

        key = self._api_key(request)
        if key is None:
            return _json(401, wire.INVALID_API_KEY, {"x-request-id": req_id})
        if bad_json or not is_object:
            return _bad_request("We could not parse the JSON body of your request.", req_id=req_id)
        params = self._validate(body, req_id)
        if isinstance(params, web.Response):
            return params

        info = params.model
        limits = state.limits_for(info)
        charged = params.prompt_tokens + params.max_tokens
        verdict = state.limiter.acquire(key, info.id, limits, charged, enforce=state.settings.enforce_limits)
        if isinstance(verdict, Denial):
            return self._denied(verdict, info.id, req_id)
        headers = {"x-request-id": req_id, **verdict.headers()}

        generation = self._generation(params)
        try:
            if params.stream:
                return await self._stream(request, params, generation, headers, req_id, started, fault)
            return await self._complete(params, generation, headers, req_id, started, fault)
        finally:
            used = params.prompt_tokens + generation.completion_tokens
            state.limiter.refund(key, info.id, charged - used)

    def _generation(self, params: ChatParams) -> Generation:
        """The backend's answer to validated parameters (chat completions and batch lines)."""
        return Generation(
            self.state.settings.backend,
            params.messages,
            max_tokens=params.max_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            seed=params.seed,
            stop=params.stop,
        )

    def _validate(self, body: dict[str, Any], req_id: str) -> ChatParams | web.Response:
        model_id = body.get("model")
        if not isinstance(model_id, str) or not model_id:
            return _bad_request("'model' : property 'model' is missing", "model", req_id)
        info = catalog.lookup(model_id)
        if info is None or (info.retired and info.server_error != "model_decommissioned"):
            return _json(404, wire.model_not_found(model_id), {"x-request-id": req_id})
        if info.retired:
            return _json(400, wire.model_decommissioned(model_id), {"x-request-id": req_id})
        if info.kind != "chat":
            return _bad_request(f"The model `{model_id}` does not support chat completions", "model", req_id)

        messages = body.get("messages")
        if messages is None:
            return _bad_request("'messages' : property 'messages' is missing", "messages", req_id)
        if not isinstance(messages, list):
            return _bad_request("'messages' : value must be an array", "messages", req_id)
        if not messages:
            return _bad_request("'messages' : minimum number of items is 1", "messages", req_id)
        for i, message in enumerate(messages):
            problem = _message_problem(i, message)
            if problem is not None:
                return _bad_request(problem, "messages", req_id)

        n = body.get("n")
        if n is not None:
            if isinstance(n, bool) or not isinstance(n, int):
                return _bad_request("'n' : value must be an integer", "n", req_id)
            if n > 1:
                return _bad_request("'n' : number must be at most 1", "n", req_id)
            if n < 1:
                return _bad_request("'n' : number must be at least 1", "n", req_id)
        temperature = _number(body, "temperature", 1.0, 0.0, 2.0)
        if isinstance(temperature, str):
            return _bad_request(temperature, "temperature", req_id)
        top_p = _number(body, "top_p", 1.0, 0.0, 1.0)
        if isinstance(top_p, str):
            return _bad_request(top_p, "top_p", req_id)
        for name in ("logprobs", "logit_bias", "top_logprobs"):
            if body.get(name) not in (None, False, {}):
                return _bad_request(f"`{name}` is not supported with this model", name, req_id)

        stop_field = body.get("stop")
        stop: tuple[str, ...]
        if stop_field is None:
            stop = ()
        elif isinstance(stop_field, str):
            stop = (stop_field,)
        elif isinstance(stop_field, list) and all(isinstance(s, str) for s in stop_field):
            if len(stop_field) > 4:
                return _bad_request("'stop' : maximum number of items is 4", "stop", req_id)
            stop = tuple(stop_field)
        else:
            return _bad_request("'stop' : value must be a string or an array of strings", "stop", req_id)

        seed = body.get("seed")
        if seed is None:
            seed = random.getrandbits(31)
        elif isinstance(seed, bool) or not isinstance(seed, int):
            return _bad_request("'seed' : value must be an integer", "seed", req_id)

        name = "max_completion_tokens"
        requested = body.get(name)
        if requested is None:
            name = "max_tokens"
            requested = body.get(name)
        if requested is not None:
            if isinstance(requested, bool) or not isinstance(requested, int):
                return _bad_request(f"'{name}' : value must be an integer", name, req_id)
            if requested < 1:
                return _bad_request(f"'{name}' : number must be at least 1", name, req_id)
            if info.max_completion_tokens is not None and requested > info.max_completion_tokens:
                return _json(
                    400, wire.max_tokens_too_large(info.max_completion_tokens), {"x-request-id": req_id}
                )

        prompt_tokens = self.state.settings.backend.count_tokens(messages)
        window = info.context_window
        backend_window = getattr(self.state.settings.backend, "context_window", None)
        if backend_window is not None:  # a real model (the local backend) may hold less than Groq's
            window = backend_window if window is None else min(window, backend_window)
        if window is not None and prompt_tokens + (requested or 1) > window:
            return _json(400, wire.context_length_exceeded(), {"x-request-id": req_id})
        if requested is None:
            requested = min(DEFAULT_MAX_TOKENS, info.max_completion_tokens or DEFAULT_MAX_TOKENS)
            if window is not None:
                requested = max(1, min(requested, window - prompt_tokens))
        return ChatParams(
            model=info,
            messages=messages,
            stream=body.get("stream") is True,
            max_tokens=requested,
            temperature=temperature,
            top_p=top_p,
            seed=seed,
            stop=stop,
            prompt_tokens=prompt_tokens,
        )

    def _denied(self, denial: Denial, model: str, req_id: str) -> web.Response:
        settings = self.state.settings
        headers = {"x-request-id": req_id, **denial.snapshot.headers()}
        if denial.status == 413:
            message = wire.request_too_large_message(
                model=model,
                org=settings.org_id,
                limit_name=denial.limit_name,
                limit=denial.limit,
                requested=denial.requested,
                upsell=settings.plan == "free",
            )
        else:
            headers["retry-after"] = denial.retry_after()
            message = wire.rate_limit_message(
                model=model,
                org=settings.org_id,
                limit_name=denial.limit_name,
                limit=denial.limit,
                used=denial.used,
                requested=denial.requested,
                wait=go_duration(denial.wait),
                upsell=settings.plan == "free",
            )
        body = wire.error_body(message, denial.error_type, code="rate_limit_exceeded")
        return _json(denial.status, body, headers)

    def _usage(
        self, params: ChatParams, generation: Generation, started: float, gen_started: float
    ) -> dict[str, Any]:
        now = time.perf_counter()
        tokens = generation.completion_tokens
        return wire.usage(
            params.prompt_tokens,
            tokens,
            queue_time=round(gen_started - started, 9),
            prompt_time=round(params.prompt_tokens * 2e-5, 9),  # a plausible ~50k tokens/s prefill
            completion_time=round(max(now - gen_started, tokens * 1e-3), 9),
        )

    async def _complete(
        self,
        params: ChatParams,
        generation: Generation,
        headers: dict[str, str],
        req_id: str,
        started: float,
        fault: Fault | None,
    ) -> web.Response:
        if fault is not None and fault.kind == "slow_first_token":
            await asyncio.sleep(fault["delay"])
        gen_started = time.perf_counter()
        content = "".join([piece async for piece in generation.pieces()])
        delay = self.state.settings.token_delay
        if delay:
            await asyncio.sleep(delay * generation.completion_tokens)
        usage = self._usage(params, generation, started, gen_started)
        body = wire.completion(
            cid=wire.completion_id(),
            created=int(time.time()),
            model=params.model.id,
            content=content,
            finish_reason=generation.finish_reason,
            usage=usage,
            req_id=req_id,
            seed=params.seed,
        )
        self.state.recorder.completion(
            stream=False, prompt_tokens=params.prompt_tokens, completion_tokens=generation.completion_tokens
        )
        return _json(200, body, headers)

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
        async with aclosing(generation.pieces()) as pieces:
            async for piece in pieces:
                if sent == fire_at and fault is not None:
                    if kind != "malformed":
                        return await self._break_stream(request, response, fault)
                    await response.write(framer.malformed())
                    fire_at = -1
                if delay:
                    await asyncio.sleep(delay)
                await response.write(framer.content(piece))
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

    async def _break_stream(
        self, request: web.BaseRequest, response: web.StreamResponse, fault: Fault
    ) -> web.StreamResponse:
        """Apply a mid-stream fault (``stream_error``, ``stream_drop`` or ``truncate``)."""
        if fault.kind == "stream_drop":
            _abort(request)
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

    # -- faults that replace the response -----------------------------------------------------

    async def _fire(
        self, request: web.BaseRequest, fault: Fault, model: str | None, body: Any, req_id: str
    ) -> web.StreamResponse:
        kind = fault.kind
        if kind == "drop":
            return _abort(request)
        if kind == "hang":
            stopping = self.state.stopping
            if stopping is not None:
                await stopping.wait()
            else:  # pragma: no cover - only when the app is served outside Emulator
                await asyncio.Event().wait()
            return _abort(request)
        if kind == "rate_limit":
            return self._fault_rate_limit(request, fault, model, body, req_id)
        if kind == "server_error":
            status = fault["status"]
            message = fault["message"] or HTTPStatus(status).phrase
            return _json(status, wire.error_body(message, "internal_server_error"), {"x-request-id": req_id})
        if kind == "status":
            return self._fault_status(fault, req_id)
        if kind == "html_403":
            ray = os.urandom(8).hex() + "-SJC"
            return web.Response(
                status=403,
                body=wire.cloudflare_403(ray),
                headers={"content-type": "text/html; charset=UTF-8", "server": "cloudflare", "cf-ray": ray},
            )
        # malformed, non-streaming: a 200 whose JSON body is cut short
        text = wire.completion(
            cid=wire.completion_id(),
            created=int(time.time()),
            model=model or "unknown",
            content="This body is cut short",
            finish_reason="stop",
            usage=wire.usage(1, 1, queue_time=0.0, prompt_time=0.0, completion_time=0.0),
            req_id=req_id,
            seed=0,
        )
        return _json(200, text[: len(text) // 2], {"x-request-id": req_id})

    def _fault_rate_limit(
        self, request: web.BaseRequest, fault: Fault, model: str | None, body: Any, req_id: str
    ) -> web.Response:
        settings = self.state.settings
        daily = bool(fault["daily"])
        limit_kind = limit_kind_of(fault["limit"], daily=daily)
        limit_name, error_type, _ = LIMIT_KINDS[limit_kind]
        retry_after = fault["retry_after"]
        retry_after_ms = fault["retry_after_ms"]
        wait = retry_after
        if wait is None:
            wait = retry_after_ms / 1000 if retry_after_ms is not None else (578.016 if daily else 1.0)
        info = catalog.lookup(model) if model else None
        limits = self.state.limits_for(info) if info is not None and not info.retired else None
        limit = (getattr(limits, limit_kind) if limits else None) or _FALLBACK_LIMITS[limit_kind]
        if error_type == "requests":
            requested, used = 1, limit
        else:
            messages = body.get("messages") if isinstance(body, dict) else None
            requested = 1
            if isinstance(messages, list):
                requested = settings.backend.count_tokens([m for m in messages if isinstance(m, dict)])
            used = max(0, limit - requested + 1)
        message = fault["message"] or wire.rate_limit_message(
            model=model or "unknown",
            org=settings.org_id,
            limit_name=limit_name,
            limit=limit,
            used=used,
            requested=requested,
            wait=go_duration(wait),
            upsell=settings.plan == "free",
        )
        headers = {"x-request-id": req_id}
        key = self._api_key(request)
        if key is not None and info is not None and limits is not None:
            headers.update(self.state.limiter.snapshot(key, info.id, limits).headers())
            exhausted = "x-ratelimit-remaining-" + ("requests" if limit_kind == "rpd" else "tokens")
            if limit_kind != "rpm" and exhausted in headers:
                headers[exhausted] = "0"
        if retry_after is not None or retry_after_ms is None:
            headers["retry-after"] = _seconds_header(wait)
        if retry_after_ms is not None:
            headers["retry-after-ms"] = _seconds_header(retry_after_ms)
        return _json(429, wire.error_body(message, error_type, code="rate_limit_exceeded"), headers)

    def _fault_status(self, fault: Fault, req_id: str) -> web.Response:
        status: int = fault["status"]
        headers = {"x-request-id": req_id}
        if fault["headers"]:
            headers.update({str(k): str(v) for k, v in fault["headers"].items()})
        custom = fault["body"]
        if isinstance(custom, str):
            content_type = "text/html" if custom.lstrip().startswith("<") else "text/plain"
            headers.setdefault("content-type", f"{content_type}; charset=utf-8")
            return web.Response(status=status, body=custom.encode(), headers=headers)
        if isinstance(custom, dict):
            return _json(status, custom, headers)
        if status == 498:
            message, code = "`flex` tier capacity exceeded. Please try again later.", "capacity_exceeded"
        else:
            try:
                message = HTTPStatus(status).phrase
            except ValueError:
                message = f"Error {status}"
            code = None
        error_type = fault["type"] or ("internal_server_error" if status >= 500 else "invalid_request_error")
        body = wire.error_body(fault["message"] or message, error_type, code=fault["code"] or code)
        return _json(status, body, headers)

    # -- control plane ------------------------------------------------------------------------

    async def _control(self, request: web.BaseRequest, action: str) -> web.StreamResponse:
        """``/_emulator/{faults,stats,reset,requests}``: drive an emulator in another process."""
        state = self.state
        method = request.method
        if action == "faults" and method == "POST":
            try:
                data = orjson.loads(await request.read())
                items = data if isinstance(data, list) else data.get("faults", [data])
                faults = [Fault.from_dict(item) for item in items]
            except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError) as exc:
                return _json(400, wire.error_body(f"invalid fault: {exc}"))
            for fault in faults:
                state.faults.push(fault)
            return _json(200, {"queued": len(faults), "pending": state.faults.pending()})
        if action == "faults" and method == "GET":
            return _json(200, {"pending": state.faults.pending()})
        if action == "stats" and method == "GET":
            return _json(200, state.recorder.snapshot().to_dict())
        if action == "reset" and method == "POST":
            state.reset()
            return _json(200, {"reset": True})
        if action == "requests" and method == "GET":
            records = [
                {
                    "method": r.method,
                    "path": r.path,
                    "headers": {
                        k: ("<redacted>" if k == "authorization" else v) for k, v in r.headers.items()
                    },
                    "body": r.body,
                }
                for r in state.recorder.requests()
            ]
            return _json(200, {"requests": records})
        return _json(404, wire.unknown_url(method, request.path))


def _message_problem(index: int, message: Any) -> str | None:
    where = f"messages.{index}"
    if not isinstance(message, dict):
        return f"'{where}' : value must be an object"
    role = message.get("role")
    if role not in _ROLES:
        return f"'{where}' : discriminator property 'role' has invalid value {role!r}"
    if message.get("name") is not None:
        return (
            f"'{where}' : for 'role:{role}' the following must be satisfied"
            f"[('{where}.name' : property 'name' is unsupported)]"
        )
    content = message.get("content")
    if role in ("system", "user", "developer") and not isinstance(content, (str, list)):
        return (
            f"'{where}' : for 'role:{role}' the following must be satisfied"
            f"[('{where}.content' : value must be a string or an array)]"
        )
    return None
