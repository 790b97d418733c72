"""Ollama's wire format: content types, bodies, NDJSON lines and error texts (ollama-wire.md §1-§8).

Every body is built here as a ``dict`` in the key order of Ollama's Go structs and encoded like
Go's ``json.Marshal`` (``gojson.dumps``). Errors are ``WireError`` values whose ``message`` is the
whole ``{"error": ...}`` text; their ``type`` is unused by Ollama and set to ``"ollama"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from botticelli.emulator.common.errors import WireError
from botticelli.emulator.ollama.gojson import dumps, go_quote

#: ``GET /api/version`` (ollama-wire.md §1).
VERSION = "0.32.15"
#: gin's ``c.JSON`` (every JSON answer and most errors). ollama-wire.md §6 gives the media type,
#: ``application/json``; the bytes Ollama sends carry gin's charset parameter.
JSON = "application/json; charset=utf-8"
#: An error that reaches a streamed request before its first line: Ollama sets this one first.
JSON_PLAIN = "application/json"
NDJSON = "application/x-ndjson"
#: gin's ``c.String`` (``GET /``).
TEXT = "text/plain; charset=utf-8"
#: gin's own 404/405 bodies.
PLAIN = "text/plain"
RUNNING = "Ollama is running"

#: The mid-stream error documented in errors.mdx (ollama-wire.md §5).
STREAM_ERROR = "an error was encountered while running the model"
#: A runner that died: Ollama's usual 500 text for a load/runtime failure (ollama-wire.md §6).
RUNNER_DIED = "llama runner process has terminated: exit status 2"
#: The queue-full 503 (two spaces, as the reference has it).
SERVER_BUSY = "server busy, please try again.  maximum pending requests exceeded"

_KIND = "ollama"


def error(status: int, message: str) -> WireError:
    return WireError(status, message, _KIND)


def error_body(message: str) -> bytes:
    return dumps({"error": message})


def error_response(failure: WireError, content_type: str = JSON) -> web.Response:
    """``{"error": message}`` with the failure's status."""
    return web.Response(
        status=failure.status, body=error_body(failure.message), headers={"content-type": content_type}
    )


def json_response(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(status=status, body=dumps(body), headers={"content-type": JSON})


def text_response(status: int, text: str, content_type: str = TEXT) -> web.Response:
    return web.Response(status=status, body=text.encode(), headers={"content-type": content_type})


# -- error texts (ollama-wire.md §6, and Ollama's routes.go where the reference has no text) ------


def missing_body() -> WireError:
    return error(400, "missing request body")


def bad_request(message: str) -> WireError:
    return error(400, message)


def model_required() -> WireError:
    return error(400, "model is required")


def invalid_model_name() -> WireError:
    return error(400, "invalid model name")


def model_not_found(name: str) -> WireError:
    """The handler's lookup (chat, generate, show, embed): ``model 'llama9' not found``."""
    return error(404, f"model '{name}' not found")


def model_not_pulled(name: str) -> WireError:
    """The scheduler's (the legacy ``/api/embeddings``): ``model "llama9" not found, try pulling it
    first``."""
    return error(404, f"model {go_quote(name)} not found, try pulling it first")


def top_logprobs_range() -> WireError:
    return error(400, "top_logprobs must be between 0 and 20")


def no_thinking(name: str) -> WireError:
    return error(400, f"{go_quote(name)} does not support thinking")


def invalid_think_value(value: str) -> WireError:
    return error(
        400,
        f'invalid think value: {go_quote(value)} (must be "high", "medium", "low", "max", true, or false)',
    )


def lacks_capability(full_name: str, capability: str) -> WireError:
    """``registry.ollama.ai/library/gemma3:latest does not support tools``."""
    return error(400, f"{full_name} does not support {capability}")


def no_completion(name: str, endpoint: str) -> WireError:
    """A chat (``endpoint="chat"``) or generate request to a model that only embeds."""
    return error(400, f"{go_quote(name)} does not support {endpoint}")


def raw_mode() -> WireError:
    return error(400, "raw mode does not support template, system, or context")


def invalid_format() -> WireError:
    """A ``format`` that is neither ``"json"`` nor a schema object (Ollama's runner; the exact text
    is NOT FOUND in the reference, this is what Ollama's main branch answers)."""
    return error(400, 'invalid format: expected "json" or a valid JSON schema')


def no_vision() -> WireError:
    """Images sent to a model without the vision capability (Ollama's runner, a 500; NOT FOUND in
    the reference)."""
    return error(500, "this model is missing data required for image input")


def invalid_input() -> WireError:
    return error(400, "invalid input type")


# -- bodies -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Metrics:
    """``api.Metrics``: durations in nanoseconds; every field ``omitempty``."""

    total_duration: int = 0
    load_duration: int = 0
    prompt_eval_count: int = 0
    prompt_eval_duration: int = 0
    eval_count: int = 0
    eval_duration: int = 0

    def fields(self) -> dict[str, int]:
        return {
            name: value
            for name, value in (
                ("total_duration", self.total_duration),
                ("load_duration", self.load_duration),
                ("prompt_eval_count", self.prompt_eval_count),
                ("prompt_eval_duration", self.prompt_eval_duration),
                ("eval_count", self.eval_count),
                ("eval_duration", self.eval_duration),
            )
            if value
        }


def message(
    content: str = "",
    *,
    thinking: str = "",
    tool_calls: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """An assistant ``api.Message``: ``content`` always present, the rest ``omitempty``."""
    out: dict[str, Any] = {"role": "assistant", "content": content}
    if thinking:
        out["thinking"] = thinking
    if tool_calls:
        out["tool_calls"] = tool_calls
    return out


def chat_response(
    model: str,
    created_at: str,
    msg: dict[str, Any],
    *,
    done: bool,
    done_reason: str = "",
    metrics: Metrics | None = None,
) -> dict[str, Any]:
    """``api.ChatResponse``: model, created_at, message, done, done_reason?, metrics… (the Go
    struct's order; the two examples in ollama-wire.md §4-§5 disagree on done / done_reason)."""
    out: dict[str, Any] = {"model": model, "created_at": created_at, "message": msg, "done": done}
    if done_reason:
        out["done_reason"] = done_reason
    if metrics is not None:
        out.update(metrics.fields())
    return out


def generate_response(
    model: str,
    created_at: str,
    response: str,
    *,
    done: bool,
    thinking: str = "",
    done_reason: str = "",
    context: list[int] | None = None,
    metrics: Metrics | None = None,
) -> dict[str, Any]:
    """``api.GenerateResponse``: model, created_at, response, thinking?, done, done_reason?,
    context?, metrics…"""
    out: dict[str, Any] = {"model": model, "created_at": created_at, "response": response}
    if thinking:
        out["thinking"] = thinking
    out["done"] = done
    if done_reason:
        out["done_reason"] = done_reason
    if context:
        out["context"] = context
    if metrics is not None:
        out.update(metrics.fields())
    return out


def line(body: dict[str, Any]) -> bytes:
    """One NDJSON line."""
    return dumps(body) + b"\n"


def error_line(message: str, status: int | None = None) -> bytes:
    """The in-stream error: ``{"error": "..."}`` (a ``status`` only when a fault asks for it)."""
    body: dict[str, Any] = {"error": message}
    if status is not None:
        body["status"] = status
    return line(body)


def malformed_line(model: str) -> bytes:
    """A line cut short (the ``malformed`` fault in a stream)."""
    return b'{"model":' + dumps(model) + b',"created_at":\n'
