"""Ollama's native chat API (``POST /api/chat``), as ollama-wire.md describes it.

What differs from OpenAI's shape, and why this is its own codec: ``stream`` defaults to *true*
on the server, so it is always sent; sampling goes in ``options`` (``num_predict`` is the token
cap); images are bare base64 strings in the message's ``images``; tool-call ``arguments`` are a
JSON *object* both ways; ``think`` switches reasoning (``message.thinking``); ``format`` is
``"json"`` or a JSON schema. A stream is newline-delimited JSON ending at a ``"done": true``
line that carries the usage (counts, durations in nanoseconds) and ``done_reason``, which says
``"stop"`` for tool calls too. Errors are ``{"error": "text"}``, also as a line mid-stream with
the status still 200. No I/O here, and nothing Ollama means by an error (that is the provider's).
"""

from __future__ import annotations

import base64
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
    Usage,
)
from . import _shape
from .base import ErrorFields, Framing

#: Runtime and sampling parameters the server reads from ``options`` (ollama-wire.md §3). Found
#: at the top level of ``GenerateRequest.extra`` they are moved into ``options``: the server
#: would silently ignore them there.
OPTION_NAMES = frozenset(
    {
        "temperature",
        "top_p",
        "top_k",
        "min_p",
        "typical_p",
        "seed",
        "num_predict",
        "stop",
        "num_ctx",
        "repeat_penalty",
        "repeat_last_n",
        "presence_penalty",
        "frequency_penalty",
        "num_keep",
        "num_batch",
        "num_gpu",
        "main_gpu",
        "num_thread",
        "use_mmap",
    }
)

#: The levels ``think`` takes besides a boolean (§3: ``ThinkValue``); anything else is a 400.
THINK_LEVELS = ("low", "medium", "high", "max")

#: ``done_reason`` words beyond the neutral ones: ``load`` / ``unload`` answer a request that only
#: loaded or unloaded the model (§4.2): nothing was cut, nothing more will come.
FINISH_REASONS = {"load": FinishReason.STOP, "unload": FinishReason.STOP}

#: Statuses an in-stream error's text implies when the line carries none (§6's texts).
_IMPLIED_STATUS = (
    ("not found", 404),
    ("does not support", 400),
    ("server busy", 503),
)

_NANOSECONDS = 1e9


# ---- requests ----------------------------------------------------------------------------------


def _refuse(
    message: str, provider: str, model: str, code: str = "unsupported_parameter"
) -> InvalidRequestError:
    return InvalidRequestError(message, provider=provider, model=model, code=code)


def _image(item: Input, provider: str, model: str) -> str:
    """An image as Ollama takes it: the bytes in base64, no ``data:`` prefix (§3)."""
    if item.data is not None:
        return base64.b64encode(item.data).decode("ascii")
    url = item.url or ""
    if url.startswith("data:"):
        head, comma, data = url.partition(",")
        if comma and head.endswith(";base64") and data:
            return data
        raise _refuse(
            "image: a data: URL must carry base64 (data:<type>;base64,...)",
            provider,
            model,
            "unsupported_input",
        )
    raise _refuse(
        "image URLs are not supported by Ollama: it takes only the image itself, in base64 "
        "(download it and pass Input.image(<bytes or a file path>))",
        provider,
        model,
        "unsupported_input",
    )


def _content(message: Message, provider: str, model: str) -> tuple[str, list[str]]:
    texts: list[str] = []
    images: list[str] = []
    for item in message.content:
        if item.kind == "text":
            texts.append(item.text_value or "")
        elif item.kind == "image":
            images.append(_image(item, provider, model))
        else:
            raise _refuse(
                f"{item.kind} inputs are not supported by Ollama's chat API (text and images only)",
                provider,
                model,
                "unsupported_input",
            )
    return "\n".join(texts), images


def _arguments(call: ToolCall, provider: str, model: str) -> dict[str, Any]:
    """A call's JSON text as the object Ollama wants back (§3: arguments are an object)."""
    if not call.arguments.strip():
        return {}
    try:
        value = orjson.loads(call.arguments)
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise InvalidRequestError(
            f"tool call {call.name!r}: its arguments are not a JSON object, so Ollama cannot take them back",
            provider=provider,
            model=model,
        )
    return value


def encode_messages(
    messages: tuple[Message, ...], provider: str = "", model: str = ""
) -> list[dict[str, Any]]:
    """The conversation as ``/api/chat`` messages. A tool result names its tool (``tool_name``,
    which templates read) from the assistant call it answers: the latest call with that id."""
    names: dict[str, str] = {}
    wire: list[dict[str, Any]] = []
    for message in messages:
        content, images = _content(message, provider, model)
        out: dict[str, Any] = {"role": message.role.value, "content": content}
        if images:
            out["images"] = images
        if message.role is Role.ASSISTANT and message.reasoning:
            thinking = "".join(r.text for r in message.reasoning)
            if thinking:
                out["thinking"] = thinking
        if message.tool_calls:
            calls = []
            for call in message.tool_calls:
                names[call.id] = call.name
                wired: dict[str, Any] = {
                    "function": {"name": call.name, "arguments": _arguments(call, provider, model)}
                }
                if call.id:
                    wired["id"] = call.id
                calls.append(wired)
            out["tool_calls"] = calls
        if message.tool_call_id is not None:
            out["tool_call_id"] = message.tool_call_id
            name = names.get(message.tool_call_id)
            if name is not None and message.role is Role.TOOL:
                out["tool_name"] = name
        wire.append(out)
    return wire


def _tool(tool: Tool, provider: str, model: str) -> dict[str, Any]:
    if tool.kind == "builtin":
        raise _refuse(f"the built-in tool {tool.name!r}: Ollama runs no tools itself", provider, model)
    function: dict[str, Any] = {"name": tool.name, "parameters": dict(tool.parameters)}
    if tool.description:
        function["description"] = tool.description
    return {"type": "function", "function": function}


def _offered(request: GenerateRequest) -> tuple[Tool, ...]:
    """The tools to send. The API has no ``tool_choice`` (§3), so it is approximated: ``"none"``
    sends none, a named tool only that one; ``"required"`` cannot be enforced and sends them
    all (the model may still answer in text: ``finish_reason`` then says ``STOP``)."""
    choice = request.tool_choice
    if choice is None or choice.mode in ("auto", "required"):
        return request.tools
    if choice.mode == "none":
        return ()
    return tuple(t for t in request.tools if t.name == choice.name)


def _think(request: GenerateRequest, provider: str, model: str) -> bool | str | None:
    """``think`` from ``reasoning_effort`` (a level) or ``include_reasoning`` (on / off)."""
    effort = request.reasoning_effort
    if effort is None:
        return request.include_reasoning
    if request.include_reasoning is False:
        raise _refuse(
            "reasoning_effort with include_reasoning=False: Ollama's think is one switch; give one",
            provider,
            model,
        )
    if effort not in THINK_LEVELS:
        raise _refuse(
            f"reasoning_effort {effort!r}: Ollama's think takes {', '.join(THINK_LEVELS)}", provider, model
        )
    return effort


# ---- responses ---------------------------------------------------------------------------------


def _nanos(value: Any) -> float | None:
    seconds = _shape.seconds(value)
    return None if seconds is None else seconds / _NANOSECONDS


def _usage(body: dict[str, Any]) -> Usage:
    """Counts and timings of a finished answer: they inform, so odd values are dropped (§4.1:
    both counts are omitted when zero, e.g. a fully cached prompt)."""
    get = body.get
    prompt = _shape.count(get("prompt_eval_count")) or 0
    completion = _shape.count(get("eval_count")) or 0
    return Usage(
        prompt,
        completion,
        prompt + completion,
        prompt_time=_nanos(get("prompt_eval_duration")),
        completion_time=_nanos(get("eval_duration")),
        total_time=_nanos(get("total_duration")),
    )


def _tool_calls(raw: Any, where: str, first: int = 0) -> list[ToolCall]:
    """Whole tool calls (§3, §5: complete in one message); ``arguments`` (an object) become JSON
    text. Ollama may send no id: ``call_<n>``, ``n`` counting the answer's calls from 0."""
    if raw is None:
        return []
    if type(raw) is not list:
        raise _shape.Malformed(f"{where} is not an array")
    calls = []
    for i, item in enumerate(raw):
        at = f"{where}[{i}]"
        item = _shape.obj(item, at)
        function = _shape.obj(item.get("function"), f"{at}.function")
        name = _shape.opt_str(function.get("name"), f"{at}.function.name")
        if not name:
            raise _shape.Malformed(f"{at}.function.name is missing")
        arguments = function.get("arguments")
        if arguments is None:
            text = "{}"
        elif isinstance(arguments, dict):
            text = orjson.dumps(arguments).decode()
        elif isinstance(arguments, str):  # a proxy that re-encoded them
            text = arguments
        else:
            raise _shape.Malformed(f"{at}.function.arguments is not an object")
        calls.append(ToolCall(_shape.label(item.get("id")) or f"call_{first + i}", name, text))
    return calls


def _finish(raw: str | None, tool_calls: bool) -> FinishReason | None:
    """``done_reason`` as the neutral reason; ``stop`` (or none) with tool calls is TOOL_CALLS,
    since Ollama has no word of its own for it (§4.2)."""
    if tool_calls and raw in (None, "", "stop"):
        return FinishReason.TOOL_CALLS
    return FinishReason.of(raw or None, FINISH_REASONS)


def _is_error(data: Any) -> bool:
    """The SDK's rule: an object whose ``error`` is truthy (a line or a 200 body)."""
    return type(data) is dict and bool(data.get("error"))


def _decode(data: Any, headers: Mapping[str, str], *, provider: str, model: str) -> GenerateResponse:
    """A whole ``/api/chat`` answer; any body of the wrong shape is a ``ResponseError`` keeping it."""
    request_id = redact_optional(headers.get("x-request-id"))
    try:
        body = _shape.obj(data, "the body")
        if body.get("done") is False:
            raise _shape.Malformed('the body says "done": false (a stream\'s line, not a whole answer)')
        message = _shape.obj(body.get("message"), "message")
        outputs: list[Output] = []
        thinking = _shape.opt_str(message.get("thinking"), "message.thinking")
        if thinking:
            outputs.append(ReasoningOutput(thinking))
        content = _shape.opt_str(message.get("content"), "message.content")
        if content:
            outputs.append(TextOutput(content))
        calls = _tool_calls(message.get("tool_calls"), "message.tool_calls")
        outputs.extend(ToolCallOutput(c) for c in calls)
        raw = _shape.opt_str(body.get("done_reason"), "done_reason") or None
    except _shape.Malformed as exc:
        raise _shape.wrong_shape(
            exc, data, headers, provider=provider, model=model, request_id=request_id
        ) from None
    return GenerateResponse(
        outputs=outputs,
        finish_reason=_finish(raw, bool(calls)),
        raw_finish_reason=raw,
        model=_shape.label(body.get("model")) or model,
        provider=provider,
        request_id=request_id,
        usage=_usage(body),
    )


class OllamaStreamDecoder:
    """The lines of one ``/api/chat`` stream into chunks: ``message.content`` and
    ``message.thinking`` deltas; tool calls kept for the final chunk; the ``"done": true`` line
    ends it with ``done_reason`` and the usage. An ``{"error": ...}`` line is a typed error."""

    __slots__ = ("_calls", "done", "finish_reason", "model", "provider", "rate_limit", "request_id", "usage")

    def __init__(
        self, *, provider: str, model: str, request_id: str | None, rate_limit: RateLimitInfo | None
    ) -> None:
        self.provider = provider
        self.model = model
        self.request_id = redact_optional(request_id)
        self.rate_limit = rate_limit
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.done = False
        self._calls: list[ToolCall] = []

    def feed(self, data: str, event: str = "message") -> StreamChunk | None:
        """One line → a chunk with new text or thinking, or ``None`` for a line with neither."""
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise self._malformed(f"a line that is not valid JSON: {data[:80]!r}", data) from None
        try:
            return self._line(payload)
        except _shape.Malformed as exc:
            raise self._malformed(f"a line of the wrong shape: {exc}", payload) from None

    def _line(self, payload: Any) -> StreamChunk | None:
        # Inline type checks first (this runs once per token); the helpers only on odd values.
        if type(payload) is not dict:
            payload = _shape.obj(payload, "the line")
        if payload.get("error"):
            raise self._stream_error(payload)
        done = payload.get("done")
        if done is not None and type(done) is not bool:
            raise _shape.Malformed("done is not a boolean")
        message = payload.get("message")
        text = thinking = ""
        if message is not None:
            if type(message) is not dict:
                message = _shape.obj(message, "message")
            text = message.get("content") or ""
            if type(text) is not str:
                text = _shape.opt_str(text, "message.content") or ""
            thinking = message.get("thinking") or ""
            if type(thinking) is not str:
                thinking = _shape.opt_str(thinking, "message.thinking") or ""
            calls = message.get("tool_calls")
            if calls:
                self._calls.extend(_tool_calls(calls, "message.tool_calls", len(self._calls)))
        if done:
            self.done = True
            self.finish_reason = _shape.opt_str(payload.get("done_reason"), "done_reason") or None
            self.usage = _usage(payload)
        if text or thinking:
            return StreamChunk(text=text, reasoning=thinking, request_id=self.request_id)
        return None

    def tool_calls(self) -> tuple[ToolCall, ...]:
        return tuple(self._calls)

    def final(self) -> StreamChunk:
        calls = self.tool_calls()
        return StreamChunk(
            is_final=True,
            finish_reason=_finish(self.finish_reason, bool(calls)),
            raw_finish_reason=self.finish_reason,
            usage=self.usage,
            request_id=self.request_id,
            rate_limit=self.rate_limit,
            tool_calls=calls,
        )

    def _malformed(self, what: str, body: Any) -> ResponseError:
        return _shape.stream_malformed(
            what, body, provider=self.provider, model=self.model, request_id=self.request_id
        )

    def _stream_error(self, payload: dict[str, Any]) -> ModelsError:
        """An error line after the 200 (§5): the class its ``status`` (sent by some builds) or
        else its text implies; a runner failure with neither is a ``ResponseError``."""
        from .._status import classify

        fields = _error_fields(200, payload, "an error line without a message")
        status = payload.get("status")
        given = status if type(status) is int and 400 <= status < 600 else None
        implied = given
        if implied is None:
            lowered = fields.message.lower()
            implied = next((s for words, s in _IMPLIED_STATUS if words in lowered), None)
        cls = classify(implied, fields) if implied is not None else ResponseError
        return cls(
            f"the stream failed: {fields.message}",
            provider=self.provider,
            model=self.model,
            status=given,
            code=fields.code,
            request_id=self.request_id,
            body=payload,
        )


# ---- errors ------------------------------------------------------------------------------------


def _error_fields(status: int, data: Any, default: str | None = None) -> ErrorFields:
    """``{"error": "text"}`` (§6) as fields; the OpenAI shape ``{"error": {"message", ...}}`` of
    a proxy in front is read too. A cloud model's 401 names where to sign in."""
    top = data if isinstance(data, dict) else {}
    error = top.get("error")
    code = kind = None
    if isinstance(error, dict):
        message = _shape.label(error.get("message"))
        code = _shape.label(error.get("code"))
        kind = _shape.label(error.get("type"))
    else:
        message = _shape.label(error)
    message = message or default or f"HTTP {status}"
    signin = _shape.label(top.get("signin_url"))
    if signin:
        message += f" (run `ollama signin`, or sign in at {signin})"
    return ErrorFields(message=message, code=code, type=kind)


# ---- the codec ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OllamaChat:
    """``/api/chat``. ``keep_alive``: how long the server keeps the model loaded after a request
    (``"5m"``, seconds, ``0`` unloads; ``None``: the server's default), unless ``extra`` says.

    ``GenerateRequest.extra`` reaches the body so: its ``options`` are merged into the options
    built from the typed fields (key by key, ``extra`` wins), option names at its top level
    (``num_ctx``, ``top_k``, ... see ``OPTION_NAMES``) are moved into ``options``, and the rest
    (``keep_alive``, ``think``, ``format``, ``truncate``, ``logprobs``, ...) is set at the top
    level, e.g. ``extra={"options": {"num_ctx": 8192}, "keep_alive": "10m"}``. ``stream`` is
    always the driver's. No ``tool_choice`` on this API: ``"none"`` leaves the tools out, a named
    tool sends only it, ``"required"`` is best effort (see ``_offered``); ``parallel_tool_calls``
    has no switch and is not sent."""

    keep_alive: str | float | None = None
    path: str = "/chat"
    framing: Framing = "ndjson"
    request_id_header: str = "x-request-id"
    end_marker: str = 'a "done": true line'

    def url(self, base_url: str, model: str, *, stream: bool) -> str:
        return base_url + self.path

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        return {"authorization": f"Bearer {api_key}"} if api_key else {}

    def body(
        self, request: GenerateRequest, model: str, *, stream: bool, provider: str = ""
    ) -> dict[str, Any]:
        """The request as the JSON object ``/api/chat`` expects."""
        if request.reasoning_format is not None:
            raise _refuse(
                "reasoning_format is Groq's; Ollama takes include_reasoning (think on or off) or "
                "reasoning_effort",
                provider,
                model,
            )
        if request.service_tier is not None:
            raise _refuse("service_tier: Ollama has no service tiers", provider, model)
        body: dict[str, Any] = {
            "model": model,
            "messages": encode_messages(request.messages, provider, model),
        }
        options: dict[str, Any] = {}
        if request.temperature is not None:
            options["temperature"] = request.temperature
        if request.top_p is not None:
            options["top_p"] = request.top_p
        if request.seed is not None:
            options["seed"] = request.seed
        if request.stop is not None:
            options["stop"] = list(request.stop)
        if request.max_tokens is not None:
            options["num_predict"] = request.max_tokens
        tools = _offered(request)
        if tools:
            body["tools"] = [_tool(t, provider, model) for t in tools]
        fmt = request.response_format
        if fmt is not None and fmt.type != "text":
            body["format"] = dict(fmt.schema or {}) if fmt.type == "json_schema" else "json"
        think = _think(request, provider, model)
        if think is not None:
            body["think"] = think
        if self.keep_alive is not None:
            body["keep_alive"] = self.keep_alive
        if request.extra:
            extra = dict(request.extra)
            more = extra.pop("options", None)
            if more is not None:
                if not isinstance(more, Mapping):
                    raise _refuse("extra['options']: expected an object of Ollama options", provider, model)
                options.update(more)
            for name in OPTION_NAMES.intersection(extra):
                options[name] = extra.pop(name)
            body.update(extra)
        if options:
            body["options"] = options
        body["stream"] = stream  # the server streams unless told not to (§3)
        return body

    def encode(self, request: GenerateRequest, model: str, *, stream: bool, provider: str = "") -> bytes:
        return orjson.dumps(self.body(request, model, stream=stream, provider=provider))

    def decode(self, data: Any, headers: Mapping[str, str], *, provider: str, model: str) -> GenerateResponse:
        return _decode(data, headers, provider=provider, model=model)

    def is_error(self, data: Any) -> bool:
        """A body that is an error object although the status said success."""
        return _is_error(data)

    def stream_decoder(
        self, *, provider: str, model: str, request_id: str | None, rate_limit: RateLimitInfo | None
    ) -> OllamaStreamDecoder:
        return OllamaStreamDecoder(
            provider=provider, model=model, request_id=request_id, rate_limit=rate_limit
        )

    def error_fields(self, status: int, data: Any) -> ErrorFields:
        return _error_fields(status, data)


#: The codec as the driver uses it by default.
OLLAMA_CHAT = OllamaChat()
