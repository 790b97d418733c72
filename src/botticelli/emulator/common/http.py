"""Small pieces of HTTP every emulator needs: JSON answers and answers that never come."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

if TYPE_CHECKING:
    from botticelli.emulator.common.state import State

JSON = "application/json"


def json_response(
    status: int, body: dict[str, Any] | bytes, headers: dict[str, str] | None = None
) -> web.Response:
    """``body`` (a dict, or bytes already encoded) as ``application/json``, plus ``headers``."""
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    all_headers = {"content-type": JSON}
    if headers:
        all_headers.update(headers)
    return web.Response(status=status, body=data, headers=all_headers)


class Aborted(web.StreamResponse):
    """Returned after the transport was aborted: nothing is sent, nothing is counted."""


def abort(request: web.BaseRequest) -> Aborted:
    """Close the connection without an answer (the ``drop`` and ``hang`` faults)."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    return Aborted()


async def withhold(state: State, request: web.BaseRequest, kind: str) -> Aborted | None:
    """The ``drop`` and ``hang`` faults, the same on every wire: no answer at all (``hang``:
    until the emulator stops or the client gives up); ``None`` for any other kind."""
    if kind == "drop":
        return abort(request)
    if kind != "hang":
        return None
    stopping = state.stopping
    if stopping is not None:
        await stopping.wait()
    else:  # pragma: no cover - only when the app is served outside an EmulatorServer
        await asyncio.Event().wait()
    return abort(request)
