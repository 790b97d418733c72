"""The Ollama emulator's request handler: routes on aiohttp's low-level ``web.Server``.

The routes of Ollama's native API (ollama-wire.md §2) that a client library uses: ``/``,
``/api/version``, ``/api/tags``, ``/api/show``, ``/api/ps``, ``/api/chat``, ``/api/generate``,
``/api/embed`` and ``/api/embeddings``; and the control plane under ``/_emulator/``. A known path
with another method gets gin's ``405 method not allowed``, any other path gin's ``404 page not
found`` (both ``text/plain``). Model management (pull, push, create, copy, delete) and the
OpenAI/Anthropic-compatible ``/v1`` routes are not emulated: 404.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from botticelli.emulator.common.control import PREFIX as CONTROL_PREFIX
from botticelli.emulator.common.control import handle_control
from botticelli.emulator.common.errors import WireError
from botticelli.emulator.common.http import Aborted
from botticelli.emulator.ollama import models, wire
from botticelli.emulator.ollama.embed import handle_embed, handle_embeddings
from botticelli.emulator.ollama.inference import Inference
from botticelli.emulator.ollama.names import parse_name
from botticelli.emulator.ollama.requests import SHOW_REQUEST, peek, read_body
from botticelli.emulator.ollama.state import OllamaState

Route = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


class OllamaApp:
    """The request handler given to ``aiohttp.web.Server``."""

    def __init__(self, state: OllamaState) -> None:
        self.state = state
        self.inference = Inference(state)
        self.routes: dict[str, dict[str, Route]] = {
            "/": {"GET": self._root, "HEAD": self._root},
            "/api/version": {"GET": self._version, "HEAD": self._version},
            "/api/tags": {"GET": self._tags, "HEAD": self._tags},
            "/api/show": {"POST": self._show},
            "/api/ps": {"GET": self._ps},
            "/api/chat": {"POST": self._chat},
            "/api/generate": {"POST": self._generate},
            "/api/embed": {"POST": self._embed},
            "/api/embeddings": {"POST": self._embeddings},
        }

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        if path.startswith(CONTROL_PREFIX):
            return await self._control(request, path[len(CONTROL_PREFIX) :])
        methods = self.routes.get(path)
        route = methods.get(request.method) if methods else None
        response: web.StreamResponse
        if route is None:
            self.state.record(request, None, None)
            if methods:
                response = wire.text_response(405, "405 method not allowed", wire.PLAIN)
            else:
                response = wire.text_response(404, "404 page not found", wire.PLAIN)
        else:
            try:
                response = await route(request)
            except asyncio.CancelledError:  # aiohttp cancels the handler when the client goes away
                if not self.state.is_stopping:
                    self.state.recorder.disconnect()
                raise
            except ConnectionResetError:  # a write found the connection already closed
                self.state.recorder.disconnect()
                return Aborted()
        if not isinstance(response, Aborted):
            self.state.recorder.response(response.status)
        return response

    async def _root(self, request: web.BaseRequest) -> web.StreamResponse:
        self.state.record(request, None, None)
        return wire.text_response(200, wire.RUNNING)

    async def _version(self, request: web.BaseRequest) -> web.StreamResponse:
        self.state.record(request, None, None)
        return wire.json_response({"version": wire.VERSION})

    async def _tags(self, request: web.BaseRequest) -> web.StreamResponse:
        self.state.record(request, None, None)
        return wire.json_response(models.tags(self.state.catalog.all()))

    async def _ps(self, request: web.BaseRequest) -> web.StreamResponse:
        self.state.record(request, None, None)
        return wire.json_response(self.state.loaded.ps())

    async def _show(self, request: web.BaseRequest) -> web.StreamResponse:
        """``POST /api/show``: ``model`` (or the deprecated ``name``) -> ``models.show``."""
        raw = await request.content.read()
        self.state.record(request, *peek(raw))
        try:
            _, body = read_body(raw, SHOW_REQUEST)
            name = body.get("model") or body.get("name") or ""
            if not name:
                raise wire.model_required()
            parsed = parse_name(name)
            if not parsed.valid:
                raise wire.invalid_model_name()
            model = self.state.catalog.lookup(parsed)
            if model is None:
                raise wire.model_not_found(name)
        except WireError as error:
            return wire.error_response(error)
        return wire.json_response(models.show(model))

    async def _chat(self, request: web.BaseRequest) -> web.StreamResponse:
        return await self.inference.handle(request, "chat")

    async def _generate(self, request: web.BaseRequest) -> web.StreamResponse:
        return await self.inference.handle(request, "generate")

    async def _embed(self, request: web.BaseRequest) -> web.StreamResponse:
        return await handle_embed(self.state, request)

    async def _embeddings(self, request: web.BaseRequest) -> web.StreamResponse:
        return await handle_embeddings(self.state, request)

    async def _control(self, request: web.BaseRequest, action: str) -> web.StreamResponse:
        try:
            response = await handle_control(self.state, request, action)
        except WireError as error:
            return wire.error_response(error)
        if response is None:  # not `or`: an aiohttp response is a mapping, falsy when empty
            return wire.text_response(404, "404 page not found", wire.PLAIN)
        return response
