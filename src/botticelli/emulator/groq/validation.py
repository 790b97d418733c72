"""Checks of a ``POST /chat/completions`` body, in Groq's order and with Groq's texts (groq-wire.md §3-§4).

``validate_chat`` turns a parsed JSON body into ``ChatParams`` or raises ``WireError`` (the
status and fields Groq answers with); nothing else escapes it. The HTTP handler renders the error
as a response, the Batch API as an error line; neither has to look inside the other.
Order: JSON object -> model -> messages -> ``n`` -> temperature, top_p -> unsupported fields ->
stop -> seed -> max tokens -> context window.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from botticelli import catalog
from botticelli.catalog import ModelInfo
from botticelli.emulator.backend import Backend, Message
from botticelli.emulator.common.faults import Fault
from botticelli.emulator.groq import wire
from botticelli.emulator.groq.wire import invalid_request

#: ``max_tokens`` used when a request sets none: short replies keep tests and benchmarks fast.
DEFAULT_MAX_TOKENS = 128

ROLES = frozenset({"system", "user", "assistant", "tool", "function", "developer"})
UNSUPPORTED = ("logprobs", "logit_bias", "top_logprobs")
MAX_STOP = 4


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
    stop = _stop(body)
    seed = _seed(body)
    requested = _max_tokens(body, info)

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
