"""``GET /openai/v1/models`` and ``GET /openai/v1/models/{id}`` (groq-wire.md §2), from the catalog."""

from __future__ import annotations

from aiohttp import web

from botticelli import catalog
from botticelli.emulator.common.http import json_response
from botticelli.emulator.common.state import State
from botticelli.emulator.groq import wire
from botticelli.emulator.groq.http import accepted_key, error_response


def list_models(state: State, request: web.BaseRequest) -> web.Response:
    if accepted_key(request, state.settings.api_keys) is None:
        return error_response(wire.invalid_api_key())
    return json_response(200, wire.models_list())


def get_model(state: State, request: web.BaseRequest, model_id: str) -> web.Response:
    if accepted_key(request, state.settings.api_keys) is None:
        return error_response(wire.invalid_api_key())
    info = catalog.lookup(model_id)
    if info is None or info.retired:
        return error_response(wire.model_not_found(model_id))
    return json_response(200, wire.model_object(info))
