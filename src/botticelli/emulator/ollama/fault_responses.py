"""The shared faults (``common.faults``) in Ollama's shapes, for ``/api/chat`` and ``/api/generate``.

Faults that replace the response, before the body is looked at:

- ``server_error``: ``{"error": ...}`` with 500/502/503/504; the default texts are Ollama's (a dead
  runner for 500, the queue-full text for 503, ollama-wire.md §6) or the HTTP phrase;
- ``rate_limit``: 429 ``{"error": ...}`` plus ``retry-after`` when given. A local Ollama never
  limits and the cloud's 429 body is NOT FOUND (ollama-wire.md §10); the SDK only reads the
  ``error`` text and the status, so this shape is what it sees either way;
- ``status``: any status, ``body`` (dict -> JSON, str -> text) and ``headers``;
- ``drop`` / ``hang``: no answer; ``html_403``: the bare 403 without a body that Ollama's
  allowed-hosts check sends (there is no HTML block page in front of a local Ollama);
- ``malformed`` without streaming: a 200 whose JSON is cut short.

Mid-stream faults (``stream_error``: the error line, HTTP status still 200; ``stream_drop``;
``truncate``: no ``done`` line; a streamed ``malformed`` line) and ``slow_first_token`` are
applied by ``inference``; ``generation_failed`` by ``generation``: the tool call or JSON the model
could not finish comes out as plain ``content`` (Ollama refuses nothing, it passes the text on).
"""

from __future__ import annotations

from http import HTTPStatus

from aiohttp import web

from botticelli.emulator.common.faults import Fault
from botticelli.emulator.common.http import withhold
from botticelli.emulator.common.state import State
from botticelli.emulator.ollama import wire
from botticelli.emulator.ollama.gojson import dumps
from botticelli.emulator.ollama.gotime import timestamp

#: Faults answered before the body is validated.
IMMEDIATE_FAULTS = frozenset({"rate_limit", "server_error", "status", "drop", "hang", "html_403"})

_SERVER_ERRORS = {500: wire.RUNNER_DIED, 503: wire.SERVER_BUSY}


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower()
    except ValueError:
        return f"error {status}"


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}".rstrip("0").rstrip(".")


async def fire(state: State, request: web.BaseRequest, fault: Fault, model: str | None) -> web.StreamResponse:
    """The response (or the missing one) that ``fault`` puts in place of the real answer."""
    kind = fault.kind
    withheld = await withhold(state, request, kind)
    if withheld is not None:
        return withheld
    if kind == "server_error":
        status: int = fault["status"]
        message = fault["message"] or _SERVER_ERRORS.get(status) or _phrase(status)
        return wire.error_response(wire.error(status, message))
    if kind == "rate_limit":
        return _rate_limit(fault)
    if kind == "status":
        return _status(fault)
    if kind == "html_403":
        return web.Response(status=403, headers={"content-length": "0"})
    # malformed, not streamed: a 200 whose JSON is cut short
    text = wire.line(
        wire.chat_response(
            model or "unknown",
            timestamp(),
            wire.message("This body is cut short"),
            done=True,
            done_reason="stop",
        )
    )
    return web.Response(status=200, body=text[: len(text) // 2], headers={"content-type": wire.JSON})


def _rate_limit(fault: Fault) -> web.Response:
    headers = {"content-type": wire.JSON}
    retry_after = fault["retry_after"]
    if retry_after is None and fault["retry_after_ms"] is not None:
        retry_after = fault["retry_after_ms"] / 1000
    if retry_after is not None:
        headers["retry-after"] = _seconds(retry_after)
    message = fault["message"] or "too many requests, please try again later"
    return web.Response(status=429, body=wire.error_body(message), headers=headers)


def _status(fault: Fault) -> web.Response:
    status: int = fault["status"]
    headers = {str(k): str(v) for k, v in (fault["headers"] or {}).items()}
    custom = fault["body"]
    if isinstance(custom, str):
        headers.setdefault("content-type", wire.TEXT)
        return web.Response(status=status, body=custom.encode(), headers=headers)
    if isinstance(custom, dict):
        headers.setdefault("content-type", wire.JSON)
        return web.Response(status=status, body=dumps(custom), headers=headers)
    headers.setdefault("content-type", wire.JSON)
    message = fault["message"] or _phrase(status)
    return web.Response(status=status, body=wire.error_body(message), headers=headers)
