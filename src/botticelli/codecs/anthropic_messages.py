"""Anthropic's Messages API (``POST /v1/messages``), as anthropic-wire.md describes it.

The neutral request becomes Anthropic's shape: system turns go to the top-level ``system``,
``Role.TOOL`` messages become ``tool_result`` blocks of one user turn, an assistant's tool calls
``tool_use`` blocks (with its thinking blocks, signature and all, in front: the API wants them
back unchanged in a tool loop), images ``image`` blocks, ``response_format`` a JSON-schema
``output_config.format``. Streams are named SSE events ending at ``message_stop``; an ``error``
event in the middle is a typed error. No I/O here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from ..errors import InvalidRequestError, ModelsError, ResponseError, redact_optional
from ..types import (
    FinishReason,
    GenerateRequest,
    GenerateResponse,
    Input,
    Message,
    Output,
    RateLimitInfo,
    ReasoningOutput,
    Role,
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

#: The API versions: ``2026-10-21`` (the 2.x SDKs; key as a bearer token, no sampling
#: parameters) and ``2023-06-01`` (the 0.x/1.x SDKs; key as ``x-api-key``), anthropic-wire.md §1.
CURRENT_VERSION = "2026-10-21"
LEGACY_VERSION = "2023-06-01"
VERSIONS = (CURRENT_VERSION, LEGACY_VERSION)

#: ``max_tokens`` is required by the API; per-model output limits are NOT FOUND in the
#: reference (§10), so a request without one gets this, well under every current model's limit.
DEFAULT_MAX_TOKENS = 4096

#: Stop reasons (§4.1) onto the neutral ones; ``end_turn`` and ``max_tokens`` need no entry
#: beyond their mapping here because the neutral words differ.
FINISH_REASONS: dict[str, FinishReason] = {
    "end_turn": FinishReason.STOP,
    "stop_sequence": FinishReason.STOP,
    "max_tokens": FinishReason.LENGTH,
    "model_context_window_exceeded": FinishReason.LENGTH,
    "tool_use": FinishReason.TOOL_CALLS,
    "refusal": FinishReason.CONTENT_FILTER,
    "pause_turn": FinishReason.PAUSED,
}

#: Built-in (server) tools by their neutral names; the API wants a versioned ``type`` (§3).
SERVER_TOOLS = {
    "web_search": "web_search_20260318",
    "web_fetch": "web_fetch_20260318",
    "code_execution": "code_execution_20260521",
}

_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


# ---- requests ----------------------------------------------------------------------------------


def _source(item: Input, provider: str, model: str) -> dict[str, Any]:
    """An image or document ``source``: a URL, or the bytes in base64 (a ``data:`` URL unpacked)."""
    url = item.url
    if url is not None and not url.startswith("data:"):
        return {"type": "url", "url": url}
    if url is not None:  # data:<type>;base64,<data>
        head, _, data = url.partition(",")
        media_type = head[5:].split(";", 1)[0] or (item.mime_type or "")
        return {"type": "base64", "media_type": media_type, "data": data}
    import base64

    assert item.data is not None
    return {
        "type": "base64",
        "media_type": item.mime_type or "",
        "data": base64.b64encode(item.data).decode("ascii"),
    }


def _block(item: Input, provider: str, model: str) -> dict[str, Any]:
    if item.kind == "text":
        return {"type": "text", "text": item.text_value or ""}
    if item.kind == "image":
        source = _source(item, provider, model)
        if source["type"] == "base64" and source["media_type"] not in _IMAGE_TYPES:
            raise InvalidRequestError(
                f"image type {source['media_type']!r}: Anthropic takes JPEG, PNG, GIF or WebP",
                provider=provider,
                model=model,
                code="unsupported_input",
            )
        return {"type": "image", "source": source}
    if item.kind == "document":
        block: dict[str, Any] = {"type": "document", "source": _source(item, provider, model)}
        if item.name:
            block["title"] = item.name
        return block
    raise InvalidRequestError(
        f"{item.kind} inputs are not supported by the Messages API",
        provider=provider,
        model=model,
        code="unsupported_input",
    )


def _thinking_blocks(message: Message) -> list[dict[str, Any]]:
    """The assistant's reasoning, sent back as it came: a ``thinking`` block with its signature,
    or a ``redacted_thinking`` block (no text, the encrypted ``data`` kept as the signature)."""
    blocks: list[dict[str, Any]] = []
    for reasoning in message.reasoning:
        if reasoning.signature is None:
            continue  # unsigned reasoning (another provider's) cannot go back to Anthropic
        if reasoning.text:
            blocks.append({"type": "thinking", "thinking": reasoning.text, "signature": reasoning.signature})
        else:
            blocks.append({"type": "redacted_thinking", "data": reasoning.signature})
    return blocks


def _tool_input(call: ToolCall, provider: str, model: str) -> Any:
    if not call.arguments.strip():
        return {}
    try:
        return orjson.loads(call.arguments)
    except orjson.JSONDecodeError:
        raise InvalidRequestError(
            f"tool call {call.name!r}: its arguments are not JSON, so they cannot be sent back as "
            "a tool_use input",
            provider=provider,
            model=model,
        ) from None


def _turns(messages: tuple[Message, ...] | list[Message], provider: str, model: str) -> tuple[Any, list[Any]]:
    """(``system``, ``messages``): system turns lifted out; tool results grouped into the user
    turn after the assistant's calls; neighbouring turns of one role merged (the API merges them
    too, §3, but a tool_result must open its user turn)."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role is Role.SYSTEM:
            system.append(message.text)
            continue
        if message.role is Role.TOOL:
            role = "user"
            result: dict[str, Any] = {
                "type": "tool_result",
                "tool_use_id": message.tool_call_id or "",
                "content": [_block(i, provider, model) for i in message.content] or "",
            }
            blocks = [result]
        elif message.role is Role.ASSISTANT:
            role = "assistant"
            blocks = _thinking_blocks(message)
            blocks.extend(
                _block(i, provider, model) for i in message.content if i.kind != "text" or i.text_value
            )
            blocks.extend(
                {"type": "tool_use", "id": c.id, "name": c.name, "input": _tool_input(c, provider, model)}
                for c in message.tool_calls
            )
        else:
            role = "user"
            blocks = [_block(i, provider, model) for i in message.content]
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        content = turn["content"]
        if len(content) == 1 and content[0]["type"] == "text":
            turn["content"] = content[0]["text"]  # the short form, as people write it
    return ("\n\n".join(system) if system else None), turns


def _tool(tool: Tool) -> dict[str, Any]:
    if tool.kind == "builtin":
        kind = SERVER_TOOLS.get(tool.name, tool.name)
        return {"type": kind, "name": tool.name}
    wire: dict[str, Any] = {"name": tool.name, "input_schema": dict(tool.parameters)}
    if tool.description:
        wire["description"] = tool.description
    if tool.strict is not None:
        wire["strict"] = tool.strict
    return wire


def _tool_choice(choice: ToolChoice | None, parallel: bool | None) -> dict[str, Any] | None:
    if choice is None and parallel is not False:
        return None
    mode = choice.mode if choice is not None else "auto"
    wire: dict[str, Any]
    if mode == "tool":
        wire = {"type": "tool", "name": choice.name if choice is not None else ""}
    elif mode == "required":
        wire = {"type": "any"}
    else:
        wire = {"type": mode}
    if parallel is False and mode != "none":
        wire["disable_parallel_tool_use"] = True
    return wire


# ---- responses ---------------------------------------------------------------------------------


def _usage(data: Any) -> Usage | None:
    """Prompt tokens are input + cache writes + cache reads (§4); usage never fails a response."""
    if type(data) is not dict:
        data = _shape.lenient_obj(data, "usage")
    if not data:
        return None
    count = _shape.count
    fresh = count(data.get("input_tokens")) or 0
    written = count(data.get("cache_creation_input_tokens")) or 0
    read = count(data.get("cache_read_input_tokens"))
    prompt = fresh + written + (read or 0)
    completion = count(data.get("output_tokens")) or 0
    details = data.get("output_tokens_details")
    thinking = None
    if details is not None:
        thinking = count(_shape.lenient_obj(details, "usage.output_tokens_details").get("thinking_tokens"))
    return Usage(
        prompt,
        completion,
        prompt + completion,
        reasoning_tokens=thinking,
        cached_tokens=read,
    )


def _outputs(content: Any, where: str) -> list[Output]:
    if not isinstance(content, list):
        raise _shape.Malformed(f"{where} is not an array")
    outputs: list[Output] = []
    for i, block in enumerate(content):
        block = _shape.obj(block, f"{where}[{i}]")
        kind = block.get("type")
        if kind == "text":
            text = _shape.text(block.get("text"), f"{where}[{i}].text")
            if text:
                outputs.append(TextOutput(text))
        elif kind == "thinking":
            outputs.append(
                ReasoningOutput(
                    _shape.text(block.get("thinking"), f"{where}[{i}].thinking"),
                    signature=_shape.opt_str(block.get("signature"), f"{where}[{i}].signature"),
                )
            )
        elif kind == "redacted_thinking":
            outputs.append(
                ReasoningOutput("", signature=_shape.opt_str(block.get("data"), f"{where}[{i}].data"))
            )
        elif kind == "tool_use":
            tool_input = block.get("input")
            if tool_input is None:
                tool_input = {}
            outputs.append(
                ToolCallOutput(
                    ToolCall(
                        _shape.label(block.get("id")) or "",
                        _shape.opt_str(block.get("name"), f"{where}[{i}].name") or "",
                        _shape.arguments(tool_input, f"{where}[{i}].input"),
                    )
                )
            )
        # server_tool_use, *_tool_result, container_upload and types added later: not ours to run
    return outputs


def _decode(data: Any, headers: Mapping[str, str], *, provider: str, model: str) -> GenerateResponse:
    request_id = redact_optional(headers.get("request-id"))
    try:
        body = _shape.obj(data, "the body")
        outputs = _outputs(body.get("content"), "content")
        stop = _shape.opt_str(body.get("stop_reason"), "stop_reason")
    except _shape.Malformed as exc:
        raise _shape.wrong_shape(
            exc, data, headers, provider=provider, model=model, request_id=request_id
        ) from None
    return GenerateResponse(
        outputs=outputs,
        finish_reason=FinishReason.of(stop, FINISH_REASONS),
        raw_finish_reason=stop,
        model=_shape.label(body.get("model")) or model,
        provider=provider,
        id=redact_optional(_shape.label(body.get("id"))),
        request_id=request_id,
        usage=_usage(body.get("usage")) or Usage(),
    )


class MessagesStreamDecoder:
    """Named SSE events of one Messages stream → chunks; the blocks are assembled by index so
    the final chunk has the tool calls (``input_json_delta`` parts joined) and the signature."""

    __slots__ = (
        "_blocks",
        "_input_usage",
        "done",
        "finish_reason",
        "model",
        "provider",
        "rate_limit",
        "request_id",
        "signature",
        "usage",
    )

    def __init__(
        self, *, provider: str, model: str, request_id: str | None, rate_limit: RateLimitInfo | None
    ) -> None:
        self.provider = provider
        self.model = model
        self.request_id = redact_optional(request_id)
        self.rate_limit = rate_limit
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.signature: str | None = None
        self.done = False
        self._input_usage: dict[str, Any] = {}
        self._blocks: dict[int, list[str]] = {}  # index -> [type, id, name, partial json]

    def feed(self, data: str, event: str = "message") -> StreamChunk | None:
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise self._malformed(f"a frame that is not valid JSON: {data[:80]!r}", data) from None
        try:
            return self._frame(payload, event)
        except _shape.Malformed as exc:
            raise self._malformed(f"a frame of the wrong shape: {exc}", payload) from None

    def _frame(self, payload: Any, event: str) -> StreamChunk | None:
        if type(payload) is not dict:
            payload = _shape.obj(payload, "the frame")
        kind = payload.get("type")
        if kind is None or event not in ("message", kind):
            kind = event  # the event name is the frame's type; the JSON repeats it (§5)
        if kind == "content_block_delta":
            delta = payload.get("delta")
            if type(delta) is not dict:
                delta = _shape.obj(delta, "content_block_delta.delta")
            delta_type = delta.get("type")
            if delta_type == "text_delta":
                text = delta.get("text")
                if type(text) is not str:
                    text = _shape.text(text, "text_delta.text")
                return StreamChunk(text=text, request_id=self.request_id) if text else None
            if delta_type == "thinking_delta":
                thinking = _shape.text(delta.get("thinking"), "thinking_delta.thinking")
                return StreamChunk(reasoning=thinking, request_id=self.request_id) if thinking else None
            index = _shape.index(payload.get("index"), "content_block_delta.index")
            if delta_type == "input_json_delta":
                block = self._blocks.setdefault(index, ["tool_use", "", "", ""])
                block[3] += _shape.text(delta.get("partial_json"), "input_json_delta.partial_json")
            elif delta_type == "signature_delta":
                self.signature = _shape.opt_str(delta.get("signature"), "signature_delta.signature")
            return None  # citations_delta and later kinds: nothing for the text
        if kind == "content_block_start":
            index = _shape.index(payload.get("index"), "content_block_start.index")
            opened = _shape.obj(payload.get("content_block"), "content_block_start.content_block")
            block_type = _shape.opt_str(opened.get("type"), "content_block.type") or ""
            if block_type == "tool_use":
                self._blocks[index] = [
                    block_type,
                    _shape.label(opened.get("id")) or "",
                    _shape.opt_str(opened.get("name"), "content_block.name") or "",
                    "",
                ]
            elif block_type == "redacted_thinking":
                self.signature = _shape.opt_str(opened.get("data"), "content_block.data")
            text = opened.get("text") if block_type == "text" else None
            if text:
                return StreamChunk(text=_shape.text(text, "content_block.text"), request_id=self.request_id)
            return None
        if kind == "message_start":
            message = _shape.obj(payload.get("message"), "message_start.message")
            found = _shape.label(message.get("model"))
            if found:
                self.model = found
            usage = message.get("usage")
            if isinstance(usage, dict):
                self._input_usage = usage
                self.usage = _usage(usage)
            return None
        if kind == "message_delta":
            delta = _shape.lenient_obj(payload.get("delta"), "message_delta.delta")
            stop = _shape.opt_str(delta.get("stop_reason"), "message_delta.delta.stop_reason")
            if stop:
                self.finish_reason = stop
            usage = payload.get("usage")
            if isinstance(usage, dict):  # cumulative counts (§5); input ones may be left out
                self.usage = _usage({**self._input_usage, **usage})
            return None
        if kind == "message_stop":
            self.done = True
            return None
        if kind == "error":
            raise self._stream_error(payload)
        return None  # ping, content_block_stop, and event types added later (§5: ignore them)

    def tool_calls(self) -> tuple[ToolCall, ...]:
        return tuple(
            ToolCall(block[1], block[2], block[3] or "{}")
            for _, block in sorted(self._blocks.items())
            if block[0] == "tool_use"
        )

    def final(self) -> StreamChunk:
        return StreamChunk(
            is_final=True,
            finish_reason=FinishReason.of(self.finish_reason, FINISH_REASONS),
            raw_finish_reason=self.finish_reason,
            usage=self.usage,
            request_id=self.request_id,
            rate_limit=self.rate_limit,
            tool_calls=self.tool_calls(),
            reasoning_signature=self.signature,
        )

    def _malformed(self, what: str, body: Any) -> ResponseError:
        return _shape.stream_malformed(
            what, body, provider=self.provider, model=self.model, request_id=self.request_id
        )

    def _stream_error(self, payload: Any) -> ModelsError:
        """An ``error`` event after the 200 (§5): the class its ``error.type`` would have had as
        a status (``overloaded_error`` is the 529 one, a server error)."""
        from .._status import classify

        fields = _error_fields(200, payload)
        status = _STATUS_OF_TYPE.get(fields.type or "", 500)
        cls = classify(status, fields)
        return cls(
            f"the stream failed: {fields.message}",
            provider=self.provider,
            model=self.model,
            status=status,
            code=fields.type,
            request_id=self.request_id,
            body=payload,
        )


# ---- errors ------------------------------------------------------------------------------------

#: ``error.type`` → the status it comes with (§6.2), for errors that arrive inside a stream.
_STATUS_OF_TYPE = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def _error_fields(status: int, data: Any) -> ErrorFields:
    """``{"type": "error", "error": {"type", "message", "details"?}, "request_id"}`` as fields;
    ``code`` is the stable ``details.error_code`` where sent, else the error type."""
    error: Any = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, str):
        error = {"message": error}
    elif not isinstance(error, dict):
        error = {}
    details = _shape.lenient_obj(error.get("details"), "error.details")
    kind = _shape.label(error.get("type"))
    return ErrorFields(
        message=_shape.label(error.get("message")) or f"HTTP {status}",
        code=_shape.label(details.get("error_code")) or kind,
        type=kind,
    )


# ---- the codec ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AnthropicMessages:
    """The Messages API at one ``version``; ``bearer``: send the key as ``Authorization: Bearer``
    (every key on ``2026-10-21``, an ``ANTHROPIC_AUTH_TOKEN`` on either), else ``x-api-key``."""

    version: str = CURRENT_VERSION
    bearer: bool = True
    default_max_tokens: int = DEFAULT_MAX_TOKENS
    framing: Framing = "sse"
    request_id_header: str = "request-id"
    end_marker: str = "message_stop"

    def url(self, base_url: str, model: str, *, stream: bool) -> str:
        return base_url + "/messages"

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        headers = {"anthropic-version": self.version}
        if api_key:
            if self.bearer:
                headers["authorization"] = f"Bearer {api_key}"
            else:
                headers["x-api-key"] = api_key
        return headers

    def body(
        self, request: GenerateRequest, model: str, *, stream: bool, provider: str = ""
    ) -> dict[str, Any]:
        system, messages = _turns(request.messages, provider, model)
        body: dict[str, Any] = {
            "model": model,
            "max_tokens": request.max_tokens if request.max_tokens is not None else self.default_max_tokens,
            "messages": messages,
        }
        if system is not None:
            body["system"] = system
        if request.stop is not None:
            body["stop_sequences"] = list(request.stop)
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.top_p is not None:
            body["top_p"] = request.top_p
        if request.tools:
            body["tools"] = [_tool(t) for t in request.tools]
        choice = _tool_choice(request.tool_choice, request.parallel_tool_calls)
        if choice is not None:
            body["tool_choice"] = choice
        output_config: dict[str, Any] = {}
        fmt = request.response_format
        if fmt is not None and fmt.type != "text":
            # No JSON-object mode on this API (only schemas): "any object" is the object schema.
            schema = dict(fmt.schema or {}) if fmt.type == "json_schema" else {"type": "object"}
            output_config["format"] = {"type": "json_schema", "schema": schema}
        if request.reasoning_effort is not None:
            output_config["effort"] = request.reasoning_effort
        if output_config:
            body["output_config"] = output_config
        if request.include_reasoning is not None:
            body["thinking"] = {"type": "adaptive" if request.include_reasoning else "disabled"}
        if request.service_tier is not None:
            body["service_tier"] = request.service_tier
        if stream:
            body["stream"] = True
        if request.extra:
            body.update(request.extra)
        return body

    def encode(self, request: GenerateRequest, model: str, *, stream: bool, provider: str = "") -> bytes:
        return orjson.dumps(self.body(request, model, stream=stream, provider=provider))

    def decode(self, data: Any, headers: Mapping[str, str], *, provider: str, model: str) -> GenerateResponse:
        return _decode(data, headers, provider=provider, model=model)

    def is_error(self, data: Any) -> bool:
        return isinstance(data, dict) and data.get("type") == "error"

    def stream_decoder(
        self, *, provider: str, model: str, request_id: str | None, rate_limit: RateLimitInfo | None
    ) -> MessagesStreamDecoder:
        return MessagesStreamDecoder(
            provider=provider, model=model, request_id=request_id, rate_limit=rate_limit
        )

    def error_fields(self, status: int, data: Any) -> ErrorFields:
        return _error_fields(status, data)
