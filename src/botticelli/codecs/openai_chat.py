"""The OpenAI chat-completions wire format (Groq, vLLM, llama.cpp, Ollama /v1, HuggingFace router).

One ``OpenAIChat`` codec (``codecs/base.Codec``), configured per server family: request → JSON
bytes, JSON → response, SSE ``data:`` frames → chunks (``[DONE]`` ends a stream), error body →
fields. No I/O here, and nothing any one provider means by its errors (that is the provider's).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from ..errors import InvalidRequestError, ModelsError, ResponseError, redact, redact_optional
from ..types import (
    ExecutedTool,
    FinishReason,
    GenerateRequest,
    GenerateResponse,
    Message,
    Output,
    RateLimitInfo,
    ReasoningOutput,
    StreamChunk,
    TextOutput,
    Tool,
    ToolCall,
    ToolCallOutput,
    ToolChoice,
    Usage,
)
from . import _shape
from .base import ErrorFields, Framing

#: Error codes meaning "the model's output could not be used"; they carry ``failed_generation``.
_FAILED_GENERATION_CODES = frozenset({"tool_use_failed", "json_validate_failed"})

#: The format's words for why a choice ended, beyond the neutral ones it shares.
FINISH_REASONS = {"function_call": FinishReason.TOOL_CALLS}


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


def _tool(tool: Tool) -> dict[str, Any]:
    if tool.kind == "builtin":
        return {"type": tool.name}
    function: dict[str, Any] = {"name": tool.name, "parameters": dict(tool.parameters)}
    if tool.description:
        function["description"] = tool.description
    if tool.strict is not None:
        function["strict"] = tool.strict
    return {"type": "function", "function": function}


def _tool_choice(choice: ToolChoice) -> str | dict[str, Any]:
    if choice.mode == "tool":
        return {"type": "function", "function": {"name": choice.name}}
    return choice.mode


# ---- responses ---------------------------------------------------------------------------------


def _usage(data: Any) -> Usage | None:
    """Usage informs, it never changes the answer: odd values are coerced or dropped."""
    if type(data) is not dict:
        data = _shape.lenient_obj(data, "usage")
    if not data:
        return None
    get = data.get
    details = get("completion_tokens_details")
    prompt_details = get("prompt_tokens_details")
    count, seconds = _shape.count, _shape.seconds
    prompt = count(get("prompt_tokens")) or 0
    completion = count(get("completion_tokens")) or 0
    return Usage(
        prompt,
        completion,
        count(get("total_tokens")) or prompt + completion,
        seconds(get("queue_time")),
        seconds(get("prompt_time")),
        seconds(get("completion_time")),
        seconds(get("total_time")),
        None
        if details is None
        else count(_shape.lenient_obj(details, "usage.completion_tokens_details").get("reasoning_tokens")),
        None
        if prompt_details is None
        else count(_shape.lenient_obj(prompt_details, "usage.prompt_tokens_details").get("cached_tokens")),
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


def _executed_tools(raw: Any) -> list[ExecutedTool]:
    """Groq's ``message.executed_tools``: informative, so odd entries are dropped, not fatal."""
    if not isinstance(raw, list):
        return []
    found = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            continue
        results = {k: item[k] for k in ("browser_results", "code_results", "search_results") if item.get(k)}
        found.append(
            ExecutedTool(
                type=item["type"],
                arguments=_shape.opt_text(item.get("arguments")) or "",
                output=_shape.opt_text(item.get("output")),
                index=_shape.count(item.get("index")) or i,
                results=results or None,
            )
        )
    return found


def _decode(data: Any, headers: Mapping[str, str], *, provider: str, model: str) -> GenerateResponse:
    """A chat-completions body as a response; any body of the wrong shape is a ``ResponseError``
    that keeps it. (A 200 whose body is an error object is the driver's to map.)"""
    request_id = _request_id(data, headers)
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
        if calls:
            outputs.extend(ToolCallOutput(c) for c in calls)
        finish_reason = _shape.opt_str(choice.get("finish_reason"), "choices[0].finish_reason")
        executed = _executed_tools(message.get("executed_tools"))
    except _shape.Malformed as exc:
        raise _shape.wrong_shape(
            exc, data, headers, provider=provider, model=model, request_id=request_id
        ) from None
    return GenerateResponse(
        outputs=outputs,
        finish_reason=FinishReason.of(finish_reason, FINISH_REASONS),
        raw_finish_reason=finish_reason,
        model=_shape.label(body.get("model")) or model,
        provider=provider,
        id=redact_optional(_shape.label(body.get("id"))),
        request_id=request_id,
        usage=_usage(body.get("usage")) or Usage(),
        executed_tools=executed,
    )


def _request_id(data: Any, headers: Mapping[str, str]) -> str | None:
    if isinstance(data, dict):
        x_groq = data.get("x_groq")
        if isinstance(x_groq, dict):
            found = _shape.label(x_groq.get("id"))
            if found:
                return redact(found)
    return redact_optional(headers.get("x-request-id"))


class ChatStreamDecoder:
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
        # Type checks first and inline (the shape helpers only on the odd value): this runs
        # once per token.
        if event == "error" or (type(payload) is dict and "error" in payload):
            raise self._stream_error(payload)
        if type(payload) is not dict:
            payload = _shape.obj(payload, "the frame")
        x_groq = payload.get("x_groq")
        if x_groq is not None:
            x_groq = _shape.lenient_obj(x_groq, "x_groq")
            found = _shape.label(x_groq.get("id"))
            if found:
                self.request_id = redact(found)
            if x_groq.get("usage"):
                self.usage = _usage(x_groq["usage"]) or self.usage
            if x_groq.get("error"):
                raise self._stream_error({"error": x_groq["error"]})
        usage = payload.get("usage")
        if usage:
            self.usage = _usage(usage) or self.usage
        choices = payload.get("choices")
        if not choices:
            return None
        if type(choices) is not list:
            raise _shape.Malformed("choices is not an array")
        choice = choices[0]
        if type(choice) is not dict:
            choice = _shape.obj(choice, "choices[0]")
        finish = choice.get("finish_reason")
        if finish is not None:
            finish = _shape.opt_str(finish, "choices[0].finish_reason")
            if finish:
                self.finish_reason = finish
        delta = choice.get("delta")
        if delta is None:
            return None
        if type(delta) is not dict:
            delta = _shape.obj(delta, "choices[0].delta")
        text = delta.get("content")
        if type(text) is not str:
            text = _shape.text(text, "choices[0].delta.content")
        reasoning = delta.get("reasoning")
        if reasoning is not None or "reasoning_content" in delta:
            reasoning = _shape.text(reasoning, "choices[0].delta.reasoning") or _shape.text(
                delta.get("reasoning_content"), "choices[0].delta.reasoning_content"
            )
        tool_deltas = delta.get("tool_calls")
        if tool_deltas:
            self._add_tool_deltas(tool_deltas)
        if text or reasoning:
            return StreamChunk(text=text, reasoning=reasoning or "", request_id=self.request_id)
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

    def final(self) -> StreamChunk:
        return StreamChunk(
            is_final=True,
            finish_reason=FinishReason.of(self.finish_reason, FINISH_REASONS),
            raw_finish_reason=self.finish_reason,
            usage=self.usage,
            request_id=self.request_id,
            rate_limit=self.rate_limit,
            tool_calls=self.tool_calls(),
        )

    def _malformed(self, what: str, body: Any) -> ResponseError:
        return _shape.stream_malformed(
            what, body, provider=self.provider, model=self.model, request_id=self.request_id
        )

    def _stream_error(self, payload: Any) -> ModelsError:
        error = payload.get("error") if isinstance(payload, dict) else None
        if isinstance(error, str):
            error = {"message": error}
        if not isinstance(error, dict):
            error = {}
        message = _shape.label(error.get("message")) or "An error occurred during streaming"
        status = error.get("status_code")
        status = status if isinstance(status, int) and not isinstance(status, bool) else None
        code = _shape.label(error.get("code"))
        context: dict[str, Any] = {
            "provider": self.provider,
            "model": self.model,
            "status": status,
            "code": code,
            "request_id": self.request_id,
            "body": payload,
        }
        failed = _shape.opt_text(error.get("failed_generation"))
        if failed is not None or code in _FAILED_GENERATION_CODES:
            # The model's output could not become the tool call or JSON asked for: the request
            # (prompt, schema) is what to change, as with the same error before the stream.
            return InvalidRequestError(f"the stream failed: {message}", failed_generation=failed, **context)
        return ResponseError(f"the stream failed: {message}", **context)


# ---- errors ------------------------------------------------------------------------------------


def _error_fields(status: int, data: Any) -> ErrorFields:
    """``{"error": {"message", "type", "code", "param"}}`` (or ``{"error": "text"}``) as fields."""
    error: Any = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, str):
        error = {"message": error}
    elif not isinstance(error, dict):
        error = {}
    top = data if isinstance(data, dict) else {}
    return ErrorFields(
        message=_shape.label(error.get("message")) or _shape.label(top.get("message")) or f"HTTP {status}",
        code=_shape.label(error.get("code")),
        type=_shape.label(error.get("type")),
        param=_shape.label(error.get("param")),
        failed_generation=_shape.opt_text(error.get("failed_generation")),
    )


# ---- the codec ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenAIChat:
    """OpenAI chat completions as one server family speaks them."""

    max_tokens_field: str = "max_tokens"  # Groq: "max_completion_tokens" (max_tokens is deprecated)
    stream_usage_option: bool = False  # send stream_options.include_usage (OpenAI needs it for usage)
    path: str = "/chat/completions"
    framing: Framing = "sse"
    request_id_header: str = "x-request-id"
    end_marker: str = "[DONE]"

    def url(self, base_url: str, model: str, *, stream: bool) -> str:
        return base_url + self.path

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        return {"authorization": f"Bearer {api_key}"} if api_key else {}

    def body(
        self, request: GenerateRequest, model: str, *, stream: bool, provider: str = ""
    ) -> dict[str, Any]:
        """The request as the JSON object this family expects (the Batch API embeds it)."""
        body: dict[str, Any] = {
            "model": model,
            "messages": [encode_message(m, provider, model) for m in request.messages],
        }
        if request.max_tokens is not None:
            body[self.max_tokens_field] = request.max_tokens
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.top_p is not None:
            body["top_p"] = request.top_p
        if request.stop is not None:
            body["stop"] = list(request.stop)
        if request.seed is not None:
            body["seed"] = request.seed
        if request.tools:
            body["tools"] = [_tool(t) for t in request.tools]
        if request.tool_choice is not None:
            body["tool_choice"] = _tool_choice(request.tool_choice)
        if request.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = request.parallel_tool_calls
        response_format = request.response_format
        if response_format is not None:
            if response_format.type == "json_schema":
                schema: dict[str, Any] = {
                    "name": response_format.name,
                    "schema": dict(response_format.schema or {}),
                }
                if response_format.strict is not None:
                    schema["strict"] = response_format.strict
                body["response_format"] = {"type": "json_schema", "json_schema": schema}
            else:
                body["response_format"] = {"type": response_format.type}
        if request.reasoning_effort is not None:
            body["reasoning_effort"] = request.reasoning_effort
        if request.reasoning_format is not None:
            body["reasoning_format"] = request.reasoning_format
        if request.include_reasoning is not None:
            body["include_reasoning"] = request.include_reasoning
        if request.service_tier is not None:
            body["service_tier"] = request.service_tier
        if stream:
            body["stream"] = True
            if self.stream_usage_option:
                body["stream_options"] = {"include_usage": True}
        if request.extra:
            body.update(request.extra)
        return body

    def encode(self, request: GenerateRequest, model: str, *, stream: bool, provider: str = "") -> bytes:
        return orjson.dumps(self.body(request, model, stream=stream, provider=provider))

    def decode(self, data: Any, headers: Mapping[str, str], *, provider: str, model: str) -> GenerateResponse:
        return _decode(data, headers, provider=provider, model=model)

    def is_error(self, data: Any) -> bool:
        """A body that is an error object although the status said success."""
        return isinstance(data, dict) and "error" in data and not data.get("choices")

    def stream_decoder(
        self, *, provider: str, model: str, request_id: str | None, rate_limit: RateLimitInfo | None
    ) -> ChatStreamDecoder:
        return ChatStreamDecoder(provider=provider, model=model, request_id=request_id, rate_limit=rate_limit)

    def error_fields(self, status: int, data: Any) -> ErrorFields:
        return _error_fields(status, data)


#: Groq: ``max_completion_tokens``; usage arrives in the last frame without asking.
GROQ = OpenAIChat(max_tokens_field="max_completion_tokens")
#: Any other compatible server: the fields every implementation reads.
GENERIC = OpenAIChat()
