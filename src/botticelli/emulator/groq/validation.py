"""Checks of a ``POST /chat/completions`` body, in Groq's order and with Groq's texts (groq-wire.md §3-§4).

``validate_chat`` turns a parsed JSON body into ``ChatParams`` or raises ``WireError`` (the
status and fields Groq answers with); nothing else escapes it. The HTTP handler renders the error
as a response, the Batch API as an error line; neither has to look inside the other.
Order: JSON object -> model -> messages -> ``n`` -> temperature, top_p -> unsupported fields ->
stop -> seed -> max tokens -> tools, tool_choice -> response_format -> reasoning -> service_tier
-> context window.

Where groq-wire.md has no exact text for a refusal (NOT FOUND: the enum errors, the reasoning
errors, `tools` on a model without tool use), the status is Groq's documented 400 and the message
follows the style of Groq's schema-validation texts (``'<param>' : value must be one of [...]``);
the official SDK does not check these fields itself, it sends them and raises ``BadRequestError``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from botticelli import catalog
from botticelli.catalog import ModelInfo
from botticelli.emulator.backend import Backend, Message
from botticelli.emulator.common.errors import WireError
from botticelli.emulator.common.faults import Fault
from botticelli.emulator.groq import wire
from botticelli.emulator.groq.wire import invalid_request

#: ``max_tokens`` used when a request sets none: short replies keep tests and benchmarks fast.
DEFAULT_MAX_TOKENS = 128

ROLES = frozenset({"system", "user", "assistant", "tool", "function", "developer"})
UNSUPPORTED = ("logprobs", "logit_bias")
MAX_STOP = 4
MAX_TOOLS = 128
TOOL_TYPES = ("function", "browser_search", "code_interpreter")
TOOL_CHOICES = ("none", "auto", "required")
RESPONSE_FORMATS = ("text", "json_object", "json_schema")
REASONING_EFFORTS = ("none", "default", "low", "medium", "high")
REASONING_FORMATS = ("hidden", "raw", "parsed")
SERVICE_TIERS = ("auto", "on_demand", "flex", "performance")


@dataclass(slots=True)
class ChatParams:
    """A validated request: what the backend is asked and what the answer reports."""

    model: ModelInfo
    messages: list[Message]
    stream: bool
    max_tokens: int
    temperature: float
    top_p: float
    seed: int
    stop: tuple[str, ...]
    prompt_tokens: int
    tools: tuple[dict[str, Any], ...] = ()  # the `function` tools offered
    tool_choice: str | dict[str, Any] = "auto"  # "none" / "auto" / "required" / {"type": "function", ...}
    parallel_tool_calls: bool = True
    response_format: dict[str, Any] | None = None  # json_object / json_schema; None for text
    reasoning: str | None = None  # how the answer shows its reasoning: parsed / raw / hidden; None: none
    builtin_tools: tuple[str, ...] = ()  # server-side tools offered (browser_search, code_interpreter)


def validate_chat(body: Any, backend: Backend) -> ChatParams:
    """The parameters of ``body`` (parsed JSON, ``None`` when it did not parse).

    Raises ``common.errors.WireError`` with Groq's status and fields for anything it refuses.
    """
    if not isinstance(body, dict):
        raise invalid_request("We could not parse the JSON body of your request.")
    info = _model(body)
    messages = _messages(body)
    _n(body)
    temperature = _number(body, "temperature", 1.0, 0.0, 2.0)
    top_p = _number(body, "top_p", 1.0, 0.0, 1.0)
    for name in UNSUPPORTED:
        if body.get(name) not in (None, False, {}):
            raise invalid_request(f"`{name}` is not supported with this model", name)
    if body.get("top_logprobs") is not None:  # any value, 0 included: [OAICOMPAT] "a 400 if supplied"
        raise invalid_request("`top_logprobs` is not supported with this model", "top_logprobs")
    stop = _stop(body)
    seed = _seed(body)
    requested = _max_tokens(body, info)
    tools = _tools(body, info)
    tool_choice = _tool_choice(body, tools)
    parallel = body.get("parallel_tool_calls")
    if parallel is not None and not isinstance(parallel, bool):
        raise invalid_request("'parallel_tool_calls' : value must be a boolean", "parallel_tool_calls")
    response_format = _response_format(body, info)
    reasoning = _reasoning(body, info, json_mode=response_format is not None, tools=bool(body.get("tools")))
    _enum(body, "service_tier", SERVICE_TIERS)

    prompt_tokens = backend.count_tokens(messages)
    window = info.context_window
    backend_window = getattr(backend, "context_window", None)
    if backend_window is not None:  # a real model (the local backend) may hold less than Groq's
        window = backend_window if window is None else min(window, backend_window)
    if window is not None and prompt_tokens + (requested or 1) > window:
        raise wire.context_length_exceeded()
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
        tools=tuple(t for t in tools if t.get("type") == "function"),
        builtin_tools=tuple(str(t["type"]) for t in tools if t.get("type") != "function"),
        tool_choice=tool_choice,
        parallel_tool_calls=parallel is not False,
        response_format=response_format,
        reasoning=reasoning,
    )


def fault_from_header(value: str) -> Fault:
    """The fault an ``x-emulator-fault`` header asks for; a 400 ``WireError`` if it is malformed."""
    try:
        return Fault.from_header(value)
    except ValueError as exc:
        raise invalid_request(f"invalid x-emulator-fault header: {exc}") from None


def _model(body: dict[str, Any]) -> ModelInfo:
    model_id = body.get("model")
    if not isinstance(model_id, str) or not model_id:
        raise invalid_request("'model' : property 'model' is missing", "model")
    info = catalog.lookup(model_id)
    if info is None or (info.retired and info.server_error != "model_decommissioned"):
        raise wire.model_not_found(model_id)
    if info.retired:
        raise wire.model_decommissioned(model_id)
    if info.kind != "chat":
        raise invalid_request(f"The model `{model_id}` does not support chat completions", "model")
    return info


def _messages(body: dict[str, Any]) -> list[Message]:
    messages = body.get("messages")
    if messages is None:
        raise invalid_request("'messages' : property 'messages' is missing", "messages")
    if not isinstance(messages, list):
        raise invalid_request("'messages' : value must be an array", "messages")
    if not messages:
        raise invalid_request("'messages' : minimum number of items is 1", "messages")
    for i, message in enumerate(messages):
        problem = _message_problem(i, message)
        if problem is not None:
            raise invalid_request(problem, "messages")
    return messages


def _message_problem(index: int, message: Any) -> str | None:
    where = f"messages.{index}"
    if not isinstance(message, dict):
        return f"'{where}' : value must be an object"
    role = message.get("role")
    if not isinstance(role, str) or role not in ROLES:  # not `in` alone: a list role is unhashable
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


def _n(body: dict[str, Any]) -> None:
    n = body.get("n")
    if n is None:
        return
    if isinstance(n, bool) or not isinstance(n, int):
        raise invalid_request("'n' : value must be an integer", "n")
    if n > 1:
        raise invalid_request("'n' : number must be at most 1", "n")
    if n < 1:
        raise invalid_request("'n' : number must be at least 1", "n")


def _number(body: dict[str, Any], name: str, default: float, low: float, high: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid_request(f"'{name}' : value must be a number", name)
    if value < low:
        raise invalid_request(f"'{name}' : number must be at least {low:g}", name)
    if value > high:
        raise invalid_request(f"'{name}' : number must be at most {high:g}", name)
    return float(value)


def _stop(body: dict[str, Any]) -> tuple[str, ...]:
    stop = body.get("stop")
    if stop is None:
        return ()
    if isinstance(stop, str):
        return (stop,)
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        if len(stop) > MAX_STOP:
            raise invalid_request(f"'stop' : maximum number of items is {MAX_STOP}", "stop")
        return tuple(stop)
    raise invalid_request("'stop' : value must be a string or an array of strings", "stop")


def _seed(body: dict[str, Any]) -> int:
    seed = body.get("seed")
    if seed is None:
        return random.getrandbits(31)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise invalid_request("'seed' : value must be an integer", "seed")
    return seed


def _max_tokens(body: dict[str, Any], info: ModelInfo) -> int | None:
    """``max_completion_tokens`` (else ``max_tokens``) if set and valid; ``None`` when unset."""
    name = "max_completion_tokens"
    requested = body.get(name)
    if requested is None:
        name = "max_tokens"
        requested = body.get(name)
    if requested is None:
        return None
    if isinstance(requested, bool) or not isinstance(requested, int):
        raise invalid_request(f"'{name}' : value must be an integer", name)
    if requested < 1:
        raise invalid_request(f"'{name}' : number must be at least 1", name)
    if info.max_completion_tokens is not None and requested > info.max_completion_tokens:
        raise wire.max_tokens_too_large(info.max_completion_tokens)
    return requested


def _one_of(values: tuple[str, ...]) -> str:
    return "[" + " ".join(values) + "]"


def _enum(body: dict[str, Any], name: str, values: tuple[str, ...]) -> str | None:
    """``body[name]`` if it is one of ``values`` (``None`` when unset); a 400 otherwise."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or value not in values:
        raise invalid_request(f"'{name}' : value must be one of {_one_of(values)}", name)
    return value


def _tools(body: dict[str, Any], info: ModelInfo) -> list[dict[str, Any]]:
    tools = body.get("tools")
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise invalid_request("'tools' : value must be an array", "tools")
    if len(tools) > MAX_TOOLS:
        raise invalid_request(f"'tools' : maximum number of items is {MAX_TOOLS}", "tools")
    if tools and not info.capabilities.tools:
        raise invalid_request(f"`tools` is not supported with model `{info.id}`", "tools")
    for i, tool in enumerate(tools):
        where = f"tools.{i}"
        if not isinstance(tool, dict):
            raise invalid_request(f"'{where}' : value must be an object", "tools")
        kind = tool.get("type")
        if not isinstance(kind, str) or kind not in TOOL_TYPES:
            raise invalid_request(f"'{where}.type' : value must be one of {_one_of(TOOL_TYPES)}", "tools")
        if kind != "function":
            if kind not in info.capabilities.builtin_tools:
                raise invalid_request(f"`{kind}` is not supported with model `{info.id}`", "tools")
            continue
        function = tool.get("function")
        if not isinstance(function, dict):
            raise invalid_request(f"'{where}.function' : property 'function' is missing", "tools")
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise invalid_request(f"'{where}.function.name' : property 'name' is missing", "tools")
        parameters = function.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise invalid_request(f"'{where}.function.parameters' : value must be an object", "tools")
    return tools


def _tool_choice(body: dict[str, Any], tools: list[dict[str, Any]]) -> str | dict[str, Any]:
    choice = body.get("tool_choice")
    if choice is None:
        return "auto"
    if isinstance(choice, str):
        if choice not in TOOL_CHOICES:
            raise invalid_request(
                f"'tool_choice' : value must be one of {_one_of(TOOL_CHOICES)}", "tool_choice"
            )
        return choice
    if not isinstance(choice, dict) or choice.get("type") != "function":
        raise invalid_request(
            "'tool_choice' : value must be one of [none auto required] or a named function", "tool_choice"
        )
    function = choice.get("function")
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str):
        raise invalid_request("'tool_choice.function.name' : property 'name' is missing", "tool_choice")
    names = {t["function"]["name"] for t in tools if t.get("type") == "function"}
    if name not in names:
        # The observed body has neither `param` nor `code` (groq-wire.md §4.3, litellm#11001).
        raise WireError(400, "requested tool does not exist", "invalid_request_error")
    return choice


def _response_format(body: dict[str, Any], info: ModelInfo) -> dict[str, Any] | None:
    fmt = body.get("response_format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict):
        raise invalid_request("'response_format' : value must be an object", "response_format")
    kind = fmt.get("type")
    if not isinstance(kind, str) or kind not in RESPONSE_FORMATS:
        raise invalid_request(
            f"'response_format.type' : value must be one of {_one_of(RESPONSE_FORMATS)}", "response_format"
        )
    if kind == "text":
        return None
    capabilities = info.capabilities
    if not (capabilities.json_schema if kind == "json_schema" else capabilities.json_object):
        raise invalid_request(
            f"`response_format` `{kind}` is not supported with model `{info.id}`", "response_format"
        )
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        if not isinstance(spec, dict):
            raise invalid_request(
                "'response_format.json_schema' : property 'json_schema' is missing", "response_format"
            )
        if not isinstance(spec.get("name"), str):
            raise invalid_request(
                "'response_format.json_schema.name' : property 'name' is missing", "response_format"
            )
        schema = spec.get("schema")
        if schema is not None and not isinstance(schema, dict):
            raise invalid_request(
                "'response_format.json_schema.schema' : value must be an object", "response_format"
            )
        if body.get("stream") is True:
            # "Streaming and tool use are not currently supported with Structured Outputs" [SO]; the
            # observed text for JSON mode with stream (litellm#4804), no `param`.
            raise WireError(400, "`response_format` does not support streaming", "invalid_request_error")
    return fmt


def _reasoning(body: dict[str, Any], info: ModelInfo, *, json_mode: bool, tools: bool) -> str | None:
    """Refuse what [REASON] refuses; else how the answer carries its reasoning (``None``: the
    model does not reason, or ``reasoning_effort`` is ``none``)."""
    capabilities = info.capabilities
    effort = _enum(body, "reasoning_effort", REASONING_EFFORTS)
    if effort is not None and not capabilities.accepts_effort(effort):
        supported = capabilities.reasoning_efforts or ()
        if not supported:
            raise invalid_request(
                f"`reasoning_effort` is not supported with model `{info.id}`", "reasoning_effort"
            )
        raise invalid_request(
            f"'reasoning_effort' : value must be one of {_one_of(supported)} for model `{info.id}`",
            "reasoning_effort",
        )
    reasoning_format = _enum(body, "reasoning_format", REASONING_FORMATS)
    include = body.get("include_reasoning")
    if include is not None and not isinstance(include, bool):
        raise invalid_request("'include_reasoning' : value must be a boolean", "include_reasoning")
    if include is not None and reasoning_format is not None:
        raise invalid_request(
            "`include_reasoning` and `reasoning_format` are mutually exclusive; set only one",
            "reasoning_format",
        )
    if reasoning_format is not None:
        if not capabilities.reasoning_format:  # gpt-oss takes include_reasoning instead [NOTES-2609]
            raise invalid_request(
                f"`reasoning_format` is not supported with model `{info.id}`; use `include_reasoning`",
                "reasoning_format",
            )
        if reasoning_format == "raw" and (json_mode or tools):  # [REASON]
            raise invalid_request(
                "`reasoning_format` `raw` is not supported with JSON mode or tool use", "reasoning_format"
            )
    if include is not None and not capabilities.include_reasoning:
        raise invalid_request(
            f"`include_reasoning` is not supported with model `{info.id}`", "include_reasoning"
        )
    if not capabilities.reasoning or effort == "none":
        return None
    if effort is None and reasoning_format is None and include is None:
        # Deviation, on purpose: Groq reasons by default (gpt-oss's include_reasoning defaults to
        # true [REASON]); the emulator shows reasoning only to a request that names a reasoning
        # field, so the many tests and clients that never look at it see the plain shape and
        # their max_tokens counts the answer alone.
        return None
    if capabilities.include_reasoning and not capabilities.reasoning_format:  # gpt-oss: default true
        return "hidden" if include is False else "parsed"
    if reasoning_format is not None:
        return str(reasoning_format)
    if include is not None:
        return "parsed" if include else "hidden"
    # The default format is NOT FOUND in groq-wire.md; "raw" cannot go with JSON mode or tools, so
    # the emulator defaults to raw (<think> in the content) only where raw is allowed.
    return "parsed" if json_mode or tools else "raw"
