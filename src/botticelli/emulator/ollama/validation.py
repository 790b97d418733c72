"""A ``/api/chat`` or ``/api/generate`` body -> ``Request`` or ``WireError``, in Ollama's order.

The order is ``ChatHandler``'s / ``GenerateHandler``'s in Ollama's ``server/routes.go``:
body -> ``top_logprobs`` -> model name -> model lookup -> unload (no messages or prompt and
``keep_alive: 0``) -> ``raw`` conflicts (generate) -> thinking -> capabilities -> options ->
load (no messages or prompt) -> images -> ``format``. The texts and statuses are ollama-wire.md
§6's; those the reference lacks (options, images, format) are commented where they are made.

A request that only loads or unloads the model ends here with ``Request.action`` set; the
handler answers it with one ``done`` object, whatever ``stream`` says (Ollama does).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from botticelli.emulator.backend import Backend, Message
from botticelli.emulator.common.errors import WireError
from botticelli.emulator.ollama import options as opts
from botticelli.emulator.ollama import wire
from botticelli.emulator.ollama.catalog import (
    COMPLETION,
    INSERT,
    THINKING,
    TOOLS,
    VISION,
    Catalog,
    OllamaModel,
)
from botticelli.emulator.ollama.gojson import dumps
from botticelli.emulator.ollama.names import parse_name
from botticelli.emulator.ollama.requests import CHAT_REQUEST, GENERATE_REQUEST, raw_field, read_body

THINK_LEVELS = ("low", "medium", "high", "max")

GENERATE, LOAD, UNLOAD = "generate", "load", "unload"


@dataclass(slots=True)
class Request:
    """A validated chat or generate request: what the model is asked and how to answer."""

    endpoint: str  # "chat" or "generate"
    name: str  # the model as the request named it: echoed in every answer
    model: OllamaModel
    stream: bool
    action: str = GENERATE  # or LOAD / UNLOAD: answered at once with one done object
    messages: list[Message] = field(default_factory=list)
    options: opts.Options | None = None
    tools: list[dict[str, Any]] = field(default_factory=list)
    format: str | dict[str, Any] | None = None  # "json", a JSON schema, or None
    thinking: bool = False  # the answer carries `thinking` text
    keep_alive: int | None = None  # nanoseconds; None: the default
    prompt_tokens: int = 0
    raw: bool = False  # generate: no context in the final line


@dataclass(frozen=True, slots=True)
class Late:
    """A failure Ollama reports after it started answering (from its runner): the handler sends it
    as a JSON error, whose content type is ``application/json`` for a streamed request."""

    error: WireError


def validate_chat(raw: bytes, catalog: Catalog, backend: Backend) -> tuple[Any, Request | Late]:
    """``(parsed body, request or late failure)``; raises ``WireError`` for an early refusal."""
    parsed, body = read_body(raw, CHAT_REQUEST)
    _top_logprobs(body)
    name = body.get("model", "")
    if not name:
        raise wire.model_required()
    model = _lookup(name, catalog)
    messages = [_message(m or {}) for m in body.get("messages") or []]
    keep_alive = body.get("keep_alive")
    stream = body.get("stream") is not False
    if not messages and keep_alive == 0:
        return parsed, Request("chat", name, model, stream, action=UNLOAD, keep_alive=0)
    thinking = _thinking(body, model, name)
    sent_tools = raw_field(parsed, "tools") if body.get("tools") else None
    tools = [t for t in sent_tools or [] if isinstance(t, dict)]
    if not model.has(COMPLETION):
        raise wire.no_completion(name, "chat")
    if body.get("tools") and not model.has(TOOLS):
        raise wire.lacks_capability(str(model.qualified), TOOLS)
    options = opts.resolve(model.option_defaults(), body.get("options"))
    if not messages:
        return parsed, Request("chat", name, model, stream, LOAD, options=options, keep_alive=keep_alive)
    if any(m.get("images") for m in messages) and not model.has(VISION):
        raise wire.no_vision()
    request = Request(
        "chat",
        name,
        model,
        stream,
        messages=messages,
        options=options,
        tools=tools,
        thinking=thinking,
        keep_alive=keep_alive,
    )
    _truncate(request, backend, body.get("truncate") is not False)
    try:
        request.format = _format(body)
    except WireError as error:
        return parsed, Late(error)
    return parsed, request


def validate_generate(raw: bytes, catalog: Catalog, backend: Backend) -> tuple[Any, Request | Late]:
    """The same for ``/api/generate``: a ``prompt`` (with ``system``/``suffix``) instead of
    ``messages``."""
    parsed, body = read_body(raw, GENERATE_REQUEST)
    _top_logprobs(body)
    name = body.get("model", "")
    if not name:
        raise wire.model_not_found(name)  # generate's fallback for a missing name is a 404
    model = _lookup(name, catalog)
    prompt = body.get("prompt", "")
    keep_alive = body.get("keep_alive")
    stream = body.get("stream") is not False
    if not prompt and keep_alive == 0:
        return parsed, Request("generate", name, model, stream, action=UNLOAD, keep_alive=0)
    raw_mode = body.get("raw") is True
    if raw_mode and (body.get("template") or body.get("system") or body.get("context")):
        raise wire.raw_mode()
    thinking = _thinking(body, model, name)
    if not model.has(COMPLETION):
        raise wire.no_completion(name, "generate")
    if body.get("suffix") and not model.has(INSERT):
        raise wire.lacks_capability(str(model.qualified), INSERT)
    options = opts.resolve(model.option_defaults(), body.get("options"))
    if not prompt:
        return parsed, Request("generate", name, model, stream, LOAD, options=options, keep_alive=keep_alive)
    if body.get("images") and not model.has(VISION):
        raise wire.no_vision()
    messages: list[Message] = []
    if body.get("system") and not raw_mode:
        messages.append({"role": "system", "content": body["system"]})
    messages.append({"role": "user", "content": prompt + (body.get("suffix") or "")})
    request = Request(
        "generate",
        name,
        model,
        stream,
        messages=messages,
        options=options,
        thinking=thinking,
        keep_alive=keep_alive,
        raw=raw_mode,
    )
    _truncate(request, backend, body.get("truncate") is not False)
    try:
        request.format = _format(body)
    except WireError as error:
        return parsed, Late(error)
    return parsed, request


def _top_logprobs(body: dict[str, Any]) -> None:
    value = body.get("top_logprobs", 0)
    if value is not None and not 0 <= value <= 20:
        raise wire.top_logprobs_range()


def _lookup(name: str, catalog: Catalog) -> OllamaModel:
    parsed = parse_name(name)
    if not parsed.valid:
        raise wire.invalid_model_name()
    model = catalog.lookup(parsed)
    if model is None:
        raise wire.model_not_found(name)
    return model


def _message(message: dict[str, Any]) -> Message:
    """A decoded ``api.Message``: the role lowercased, as its ``UnmarshalJSON`` does."""
    out = dict(message)
    out["role"] = str(out.get("role", "")).lower()
    out.setdefault("content", "")
    return out


def _thinking(body: dict[str, Any], model: OllamaModel, name: str) -> bool:
    """Whether the answer thinks. A thinking model thinks unless told not to (Ollama turns an
    unset ``think`` on for it); asking any other model to think is a 400."""
    think = body.get("think")
    if not model.has(THINKING):
        if think is True or isinstance(think, str):
            raise wire.no_thinking(name)
        return False
    if isinstance(think, str) and think not in THINK_LEVELS:
        raise wire.invalid_think_value(think)
    return think is not False


def _format(body: dict[str, Any]) -> str | dict[str, Any] | None:
    """``"json"``, a schema object, or ``None`` for absent / ``null`` / ``""``; anything else is the
    runner's 400 (reported late)."""
    value = body.get("format")
    if value is None or value == "":
        return None
    if value == "json":
        return "json"
    if isinstance(value, dict):
        return value
    raise wire.invalid_format()


def _truncate(request: Request, backend: Backend, allowed: bool) -> None:
    """Count the prompt; past ``num_ctx`` drop the oldest turns (not system ones, never the last),
    as Ollama's ``truncate`` (on by default) does."""
    assert request.options is not None
    overhead = len(dumps(request.tools)) // 4 if request.tools else 0  # the template lists them
    tokens = backend.count_tokens(request.messages) + overhead
    window = request.options.num_ctx
    while allowed and tokens > window:
        droppable = [i for i, m in enumerate(request.messages[:-1]) if m.get("role") != "system"]
        if not droppable:
            break
        del request.messages[droppable[0]]
        tokens = backend.count_tokens(request.messages) + overhead
    request.prompt_tokens = tokens
