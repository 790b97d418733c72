"""The OpenAI chat-completions wire format (Groq, vLLM, llama.cpp, Ollama /v1, HuggingFace router).

Pure functions and one small stateful stream decoder: request → JSON bytes, JSON → response,
SSE data frames → chunks, and error status + headers + body → typed exception. No I/O here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from .. import catalog
from .._headers import parse_duration, parse_rate_limit, parse_retry_after
from ..errors import (
    APITimeoutError,
    AuthenticationError,
    InvalidRequestError,
    ModelNotFoundError,
    ModelsError,
    RateLimitError,
    ResponseError,
    ServerError,
    redact,
    redact_optional,
    redact_value,
)
from ..types import (
    GenerateRequest,
    GenerateResponse,
    Message,
    Output,
    RateLimitInfo,
    ReasoningOutput,
    StreamChunk,
    TextOutput,
    ToolCall,
    ToolCallOutput,
    Usage,
)
from . import _shape


@dataclass(frozen=True, slots=True)
class WireProfile:
    """How one server family speaks the format."""

    max_tokens_field: str = "max_tokens"  # Groq: "max_completion_tokens" (max_tokens is deprecated)
    stream_usage_option: bool = False  # send stream_options.include_usage (OpenAI needs it for usage)
    catalog: str | None = None  # which model catalog explains retired models in errors


GROQ_PROFILE = WireProfile(max_tokens_field="max_completion_tokens", catalog="groq")
GENERIC_PROFILE = WireProfile()


# ---- requests ----------------------------------------------------------------------------------


def _content(message: Message, provider: str, model: str) -> str | list[dict[str, Any]]:
    inputs = message.content
    if all(i.kind == "text" for i in inputs):
        if len(inputs) == 1:
            return inputs[0].text_value or ""
        return "\n".join(i.text_value or "" for i in inputs)
    parts: list[dict[str, Any]] = []
    for item in inputs:
        if item.kind == "text":
            parts.append({"type": "text", "text": item.text_value or ""})
        elif item.kind == "image":
            parts.append({"type": "image_url", "image_url": {"url": item.data_url()}})
        else:
            raise InvalidRequestError(
                f"{item.kind} inputs are not supported by the chat-completions format",
                provider=provider,
                model=model,
            )
    return parts


def encode_message(message: Message, provider: str = "", model: str = "") -> dict[str, Any]:
    wire: dict[str, Any] = {"role": message.role.value}
    if message.content:
        wire["content"] = _content(message, provider, model)
    if message.tool_calls:
        wire.setdefault("content", None)
        wire["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
    if message.tool_call_id is not None:
        wire["tool_call_id"] = message.tool_call_id
    return wire


def request_body(
    request: GenerateRequest, model: str, *, stream: bool, profile: WireProfile, provider: str = ""
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "messages": [encode_message(m, provider, model) for m in request.messages],
    }
    if request.max_tokens is not None:
        body[profile.max_tokens_field] = request.max_tokens
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop is not None:
        body["stop"] = list(request.stop)
    if request.seed is not None:
        body["seed"] = request.seed
    if stream:
        body["stream"] = True
        if profile.stream_usage_option:
            body["stream_options"] = {"include_usage": True}
    if request.extra:
        body.update(request.extra)
    return body


def encode_request(
    request: GenerateRequest, model: str, *, stream: bool, profile: WireProfile, provider: str = ""
) -> bytes:
    return orjson.dumps(request_body(request, model, stream=stream, profile=profile, provider=provider))


# ---- responses ---------------------------------------------------------------------------------


def parse_json(
    content: bytes, *, provider: str, model: str, request_id: str | None, status: int = 200
) -> Any:
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        snippet = content[:80].decode("utf-8", "replace")
        raise ResponseError(
            f"the server sent a body that is not valid JSON: {snippet!r}",
            provider=provider,
            model=model,
            status=status,
            request_id=request_id,
            body=content[:4096].decode("utf-8", "replace"),
        ) from None


def _usage(data: Any) -> Usage | None:
    """Usage informs, it never changes the answer: odd values are coerced or dropped."""
    data = _shape.lenient_obj(data, "usage")
    if not data:
        return None
    details = _shape.lenient_obj(data.get("completion_tokens_details"), "usage.completion_tokens_details")
    prompt_details = _shape.lenient_obj(data.get("prompt_tokens_details"), "usage.prompt_tokens_details")
    prompt = _shape.count(data.get("prompt_tokens")) or 0
    completion = _shape.count(data.get("completion_tokens")) or 0
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=_shape.count(data.get("total_tokens")) or prompt + completion,
        queue_time=_shape.seconds(data.get("queue_time")),
        prompt_time=_shape.seconds(data.get("prompt_time")),
        completion_time=_shape.seconds(data.get("completion_time")),
        total_time=_shape.seconds(data.get("total_time")),
        reasoning_tokens=_shape.count(details.get("reasoning_tokens")),
        cached_tokens=_shape.count(prompt_details.get("cached_tokens")),
    )


def _tool_calls(raw: Any, where: str) -> list[ToolCall]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _shape.Malformed(f"{where} is not an array")
    calls = []
    for i, item in enumerate(raw):
        item = _shape.obj(item, f"{where}[{i}]")
        function = _shape.obj(item.get("function") or {}, f"{where}[{i}].function")
        calls.append(
            ToolCall(
                _shape.label(item.get("id")) or "",
                _shape.opt_str(function.get("name"), f"{where}[{i}].function.name") or "",
                _shape.arguments(function.get("arguments"), f"{where}[{i}].function.arguments"),
            )
        )
    return calls


def decode_response(
    data: Any,
    headers: Mapping[str, str],
    *,
    provider: str,
    model: str,
    latency: float = 0.0,
) -> GenerateResponse:
    """A chat-completions body as a response; any body of the wrong shape is a ``ResponseError``
    that keeps it (or, when it is an error object, the error it describes)."""
    request_id = _request_id(data, headers)
    if isinstance(data, dict) and "error" in data and not data.get("choices"):
        raise error_from_body(200, headers, data, provider=provider, model=model)
    try:
        body = _shape.obj(data, "the body")
        choices = body.get("choices")
        if not isinstance(choices, list) or not choices:
            raise _shape.Malformed("the response has no choices[0].message")
        choice = _shape.obj(choices[0], "choices[0]")
        message = _shape.obj(choice.get("message"), "choices[0].message")
        outputs: list[Output] = []
        reasoning = _shape.text(message.get("reasoning"), "choices[0].message.reasoning") or _shape.text(
            message.get("reasoning_content"), "choices[0].message.reasoning_content"
        )
        if reasoning:
            outputs.append(ReasoningOutput(reasoning))
        content = _shape.text(message.get("content"), "choices[0].message.content")
        if content:
            outputs.append(TextOutput(content))
        calls = _tool_calls(message.get("tool_calls"), "choices[0].message.tool_calls")
        outputs.extend(ToolCallOutput(c) for c in calls)
        finish_reason = _shape.opt_str(choice.get("finish_reason"), "choices[0].finish_reason")
    except _shape.Malformed as exc:
        raise ResponseError(
            f"the server sent a response of the wrong shape: {exc}",
            provider=provider,
            model=model,
            status=200,
            request_id=request_id,
            body=data,
            headers=headers,
        ) from None
    return GenerateResponse(
        outputs=outputs,
        finish_reason=finish_reason,
        model=_shape.label(body.get("model")) or model,
        provider=provider,
        id=redact_optional(_shape.label(body.get("id"))),
        request_id=request_id,
        usage=_usage(body.get("usage")) or Usage(),
        rate_limit=parse_rate_limit(headers),
        latency=latency,
    )


def _request_id(data: Any, headers: Mapping[str, str]) -> str | None:
    if isinstance(data, dict):
        x_groq = data.get("x_groq")
        if isinstance(x_groq, dict):
            found = _shape.label(x_groq.get("id"))
            if found:
                return redact(found)
    return redact_optional(headers.get("x-request-id"))


class StreamDecoder:
    """Turns the ``data:`` payloads of one chat-completions stream into chunks, remembering what
    the final chunk needs (finish reason, usage, request id, tool calls built from deltas)."""

    __slots__ = (
        "_tool_parts",
        "done",
        "finish_reason",
        "model",
        "provider",
        "rate_limit",
        "request_id",
        "usage",
    )

    def __init__(
        self, *, provider: str, model: str, request_id: str | None, rate_limit: RateLimitInfo | None
    ):
        self.provider = provider
        self.model = model
        self.request_id = redact_optional(request_id)
        self.rate_limit = rate_limit
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.done = False
        self._tool_parts: dict[int, list[str]] = {}

    def feed(self, data: str, event: str = "message") -> StreamChunk | None:
        """One SSE event → a chunk with new text, or ``None`` for events that carry none."""
        if data == "[DONE]":
            self.done = True
            return None
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise self._malformed(f"a frame that is not valid JSON: {data[:80]!r}", data) from None
        try:
            return self._frame(payload, event)
        except _shape.Malformed as exc:
            raise self._malformed(f"a frame of the wrong shape: {exc}", payload) from None

    def _frame(self, payload: Any, event: str) -> StreamChunk | None:
        if event == "error" or (isinstance(payload, dict) and "error" in payload):
            raise self._stream_error(payload)
        payload = _shape.obj(payload, "the frame")
        x_groq = _shape.lenient_obj(payload.get("x_groq"), "x_groq")
        if x_groq:
            found = _shape.label(x_groq.get("id"))
            if found:
                self.request_id = redact(found)
            if x_groq.get("usage"):
                self.usage = _usage(x_groq["usage"]) or self.usage
            if x_groq.get("error"):
                raise self._stream_error({"error": x_groq["error"]})
        if payload.get("usage"):
            self.usage = _usage(payload["usage"]) or self.usage
        choices = payload.get("choices")
        if not choices:
            return None
        if not isinstance(choices, list):
            raise _shape.Malformed("choices is not an array")
        choice = _shape.obj(choices[0], "choices[0]")
        finish = _shape.opt_str(choice.get("finish_reason"), "choices[0].finish_reason")
        if finish:
            self.finish_reason = finish
        delta = _shape.opt_obj(choice.get("delta"), "choices[0].delta") or {}
        text = _shape.text(delta.get("content"), "choices[0].delta.content")
        reasoning = _shape.text(delta.get("reasoning"), "choices[0].delta.reasoning") or _shape.text(
            delta.get("reasoning_content"), "choices[0].delta.reasoning_content"
        )
        tool_deltas = delta.get("tool_calls")
        if tool_deltas:
            self._add_tool_deltas(tool_deltas)
        if text or reasoning:
            return StreamChunk(text=text, reasoning=reasoning, request_id=self.request_id)
        return None

    def _add_tool_deltas(self, deltas: Any) -> None:
        if not isinstance(deltas, list):
            raise _shape.Malformed("choices[0].delta.tool_calls is not an array")
        for i, d in enumerate(deltas):
            where = f"choices[0].delta.tool_calls[{i}]"
            d = _shape.obj(d, where)
            parts = self._tool_parts.setdefault(_shape.index(d.get("index"), f"{where}.index"), ["", "", ""])
            call_id = _shape.label(d.get("id"))
            if call_id:
                parts[0] = call_id
            function = _shape.opt_obj(d.get("function"), f"{where}.function") or {}
            name = _shape.opt_str(function.get("name"), f"{where}.function.name")
            if name:
                parts[1] = name
            parts[2] += _shape.arguments(function.get("arguments"), f"{where}.function.arguments")

    def tool_calls(self) -> tuple[ToolCall, ...]:
        return tuple(ToolCall(*self._tool_parts[i]) for i in sorted(self._tool_parts))

    def _malformed(self, what: str, body: Any) -> ResponseError:
        return ResponseError(
            f"the stream sent {what}",
            provider=self.provider,
            model=self.model,
            status=200,
            request_id=self.request_id,
            body=body,
        )

    def _stream_error(self, payload: Any) -> ModelsError:
        error = payload.get("error") if isinstance(payload, dict) else None
        if isinstance(error, str):
            error = {"message": error}
        if not isinstance(error, dict):
            error = {}
        message = _shape.label(error.get("message")) or "An error occurred during streaming"
        status = error.get("status_code")
        return ResponseError(
            f"the stream failed: {message}",
            provider=self.provider,
            model=self.model,
            status=status if isinstance(status, int) and not isinstance(status, bool) else None,
            code=_shape.label(error.get("code")),
            request_id=self.request_id,
            body=payload,
        )


# ---- errors ------------------------------------------------------------------------------------

_TRY_AGAIN = re.compile(r"try again in ([0-9hms.]+)")
_WHICH_LIMIT = re.compile(r" on ([a-z ]+ per (?:minute|day) \([A-Z]+\))")
_TAGS = re.compile(r"<[^>]+>")


def error_from_status(
    status: int,
    headers: Mapping[str, str],
    content: bytes,
    *,
    provider: str,
    model: str,
    profile: WireProfile,
) -> ModelsError:
    """A non-2xx answer as one typed exception (the single place statuses become classes)."""
    try:
        data = orjson.loads(content) if content else None
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        raw = content[:2000].decode("utf-8", "replace")
        text = " ".join(_TAGS.sub(" ", raw).split())[:160]
        kind = "an HTML page" if "html" in headers.get("content-type", "").lower() else "a non-JSON body"
        message = f"the server answered {status} with {kind}"
        if status == 403:
            message += " (a proxy or firewall such as Cloudflare refused the request)"
        error = error_from_body(
            status,
            headers,
            {"error": {"message": f"{message}: {text}" if text else message}},
            provider=provider,
            model=model,
            profile=profile,
        )
        error.body = redact_value(data if data is not None else raw)
        return error
    return error_from_body(status, headers, data, provider=provider, model=model, profile=profile)


def error_from_body(
    status: int,
    headers: Mapping[str, str],
    data: Mapping[str, Any],
    *,
    provider: str,
    model: str,
    profile: WireProfile = GENERIC_PROFILE,
) -> ModelsError:
    error: Any = data.get("error")
    if isinstance(error, str):
        error = {"message": error}
    elif not isinstance(error, dict):
        error = {}
    message = _shape.label(error.get("message")) or _shape.label(data.get("message")) or f"HTTP {status}"
    code = _shape.label(error.get("code"))
    error_type = _shape.label(error.get("type"))
    context: dict[str, Any] = {
        "provider": provider,
        "model": model,
        "status": status,
        "code": code,
        "request_id": headers.get("x-request-id"),
        "body": data,
        "headers": headers,
    }
    if status in (401, 403):
        return AuthenticationError(message, **context)
    if status == 429:
        retry_after = parse_retry_after(headers)
        hinted = _TRY_AGAIN.search(message)
        if retry_after is None and hinted:
            retry_after = parse_duration(hinted.group(1).rstrip("."))
        which = _WHICH_LIMIT.search(message)
        limit = which.group(1) if which else error_type
        daily = bool(limit and "per day" in limit)
        return RateLimitError(message, retry_after=retry_after, limit=limit, daily=daily, **context)
    if code in ("model_not_found", "model_decommissioned") or (status == 404 and "model" in message.lower()):
        info = catalog.lookup(model, profile.catalog) if profile.catalog else None
        replacement = None
        if info is not None and info.retired:
            message = f"{message} {info.retirement_notice()}"
            replacement = info.replacement
        return ModelNotFoundError(message, replacement=replacement, **context)
    if status == 413:
        message += " (one request larger than the per-minute token budget is not retried)"
        return InvalidRequestError(message, **context)
    if status == 408:
        return APITimeoutError(message, **context)
    if status >= 500 or status in (409, 498):
        return ServerError(message, **context)
    if 400 <= status < 500:
        return InvalidRequestError(message, **context)
    return ResponseError(message, **context)
