"""The Anthropic emulator's request handler: routes on aiohttp's low-level ``web.Server``.

As in the Groq emulator, the low-level server skips aiohttp's router (an ``if`` chain routes the
few paths) and lets handlers abort transports (the ``drop``/``hang``/``stream_drop`` faults).
The SDK's beta methods add ``?beta=true`` (§1); routing looks at the path only, so they land on
the same handlers. The control plane under ``/_emulator/`` is ``common.control``.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from botticelli.emulator.anthropic import wire
from botticelli.emulator.anthropic.http import error_response
from botticelli.emulator.anthropic.messages import Messages
from botticelli.emulator.anthropic.models import get_model, list_models
from botticelli.emulator.anthropic.state import AnthropicState
from botticelli.emulator.common.control import PREFIX as CONTROL_PREFIX
from botticelli.emulator.common.control import handle_control
from botticelli.emulator.common.errors import WireError
from botticelli.emulator.common.http import Aborted

MESSAGES_PATH = "/v1/messages"
COUNT_TOKENS_PATH = "/v1/messages/count_tokens"
MODELS_PATH = "/v1/models"


class AnthropicApp:
    """The request handler given to ``aiohttp.web.Server``."""

    def __init__(self, state: AnthropicState) -> None:
        self.state = state
        self.messages = Messages(state)

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        if path.startswith(CONTROL_PREFIX):
            return await self._control(request, path[len(CONTROL_PREFIX) :])
        method = request.method
        response: web.StreamResponse
        if path in (MESSAGES_PATH, COUNT_TOKENS_PATH) and method == "POST":
            handle = self.messages.create if path == MESSAGES_PATH else self.messages.count_tokens
            try:
                response = await handle(request)
            except asyncio.CancelledError:  # aiohttp cancels the handler when the client goes away
                if not self.state.is_stopping:
                    self.state.recorder.disconnect()
                raise
            except ConnectionResetError:  # a write found the connection already closed
                self.state.recorder.disconnect()
                return Aborted()
        else:
            self.state.record(request, None, None)
            req_id = wire.request_id()
            if path == MODELS_PATH and method == "GET":
                response = list_models(self.state, request, req_id)
            elif path.startswith(MODELS_PATH + "/") and method == "GET":
                response = get_model(self.state, request, path[len(MODELS_PATH) + 1 :], req_id)
            else:
                response = error_response(wire.not_found(), req_id, self.state.settings.org_id)
        if not isinstance(response, Aborted):
            self.state.recorder.response(response.status)
        return response

    async def _control(self, request: web.BaseRequest, action: str) -> web.StreamResponse:
        req_id = wire.request_id()
        org = self.state.settings.org_id
        try:
            response = await handle_control(self.state, request, action)
        except WireError as error:
            return error_response(error, req_id, org)
        if response is None:  # not `or`: an aiohttp response is a mapping, falsy when empty
            return error_response(wire.not_found(), req_id, org)
        return response
