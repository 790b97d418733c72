"""The Groq emulator's request handler: routes on aiohttp's low-level ``web.Server``.

The low-level server skips aiohttp's router and middlewares (an ``if`` chain routes a handful of
paths) and lets handlers abort transports, which the ``drop``/``hang``/``stream_drop`` faults need.
Chat completions: ``chat``; models: ``models``; audio: ``audio``; files and batches: ``batches``;
the control plane under ``/_emulator/``: ``common.control``.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from botticelli.emulator.common.control import PREFIX as CONTROL_PREFIX
from botticelli.emulator.common.control import handle_control
from botticelli.emulator.common.errors import WireError
from botticelli.emulator.common.http import Aborted
from botticelli.emulator.common.state import State
from botticelli.emulator.groq import wire
from botticelli.emulator.groq.audio import handle_speech, handle_transcription
from botticelli.emulator.groq.batches import BatchAPI
from botticelli.emulator.groq.chat import ChatCompletions
from botticelli.emulator.groq.http import error_response
from botticelli.emulator.groq.models import get_model, list_models

PREFIX = "/openai/v1"
CHAT_PATH = PREFIX + "/chat/completions"
MODELS_PATH = PREFIX + "/models"
TRANSCRIPTIONS_PATH = PREFIX + "/audio/transcriptions"
TRANSLATIONS_PATH = PREFIX + "/audio/translations"
SPEECH_PATH = PREFIX + "/audio/speech"


class GroqApp:
    """The request handler given to ``aiohttp.web.Server``."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.chat = ChatCompletions(state)
        self.batches = BatchAPI(state, self.chat)  # /files and /batches

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        if path.startswith(CONTROL_PREFIX):
            return await self._control(request, path[len(CONTROL_PREFIX) :])
        method = request.method
        response: web.StreamResponse
        if path == CHAT_PATH and method == "POST":
            try:
                response = await self.chat.handle(request)
            except asyncio.CancelledError:  # aiohttp cancels the handler when the client goes away
                if not self.state.is_stopping:
                    self.state.recorder.disconnect()
                raise
            except ConnectionResetError:  # a write found the connection already closed
                self.state.recorder.disconnect()
                return Aborted()
        else:
            self.state.record(request, None, None)
            if path == MODELS_PATH and method == "GET":
                response = list_models(self.state, request)
            elif path.startswith(MODELS_PATH + "/") and method == "GET":
                response = get_model(self.state, request, path[len(MODELS_PATH) + 1 :])
            elif path in (TRANSCRIPTIONS_PATH, TRANSLATIONS_PATH) and method == "POST":
                response = await handle_transcription(
                    self.state, request, translate=path == TRANSLATIONS_PATH
                )
            elif path == SPEECH_PATH and method == "POST":
                response = await handle_speech(self.state, request)
            elif BatchAPI.handles(path):
                response = await self.batches.handle(request)
            else:
                response = error_response(wire.unknown_url(method, path))
        if not isinstance(response, Aborted):
            self.state.recorder.response(response.status)
        return response

    async def _control(self, request: web.BaseRequest, action: str) -> web.StreamResponse:
        try:
            response = await handle_control(self.state, request, action)
        except WireError as error:
            return error_response(error)
        if response is None:  # not `or`: an aiohttp response is a mapping, falsy when empty
            return error_response(wire.unknown_url(request.method, request.path))
        return response
