"""``POST /api/embed`` and the legacy ``POST /api/embeddings`` (ollama-wire.md §2).

Vectors are deterministic (the same model and text give the same vector), unit length, as long as
the model's ``embedding_length``; ``dimensions`` keeps the first N and normalizes again, as
Ollama does. Values are float32 (Go marshals them in float32's shortest form). Any pulled model
embeds: Ollama asks no capability for it. Errors follow ``EmbedHandler``: a missing name is a
404 ``model '' not found``; the legacy endpoint answers the scheduler's ``not found, try pulling
it first``.
"""

from __future__ import annotations

import math
import random
import struct
import zlib
from typing import Any

from aiohttp import web

from botticelli.emulator.common.errors import WireError
from botticelli.emulator.ollama import wire
from botticelli.emulator.ollama.catalog import OllamaModel
from botticelli.emulator.ollama.gotime import now_ns
from botticelli.emulator.ollama.names import parse_name
from botticelli.emulator.ollama.requests import EMBED_REQUEST, EMBEDDING_REQUEST, peek, read_body
from botticelli.emulator.ollama.state import OllamaState


def _float32(value: float) -> float:
    """``value`` rounded to float32, written with the fewest digits that read back the same."""
    single: float = struct.unpack("f", struct.pack("f", value))[0]
    for digits in range(1, 10):
        text = f"{single:.{digits}g}"
        if struct.unpack("f", struct.pack("f", float(text)))[0] == single:
            return float(text)
    return single


def vector(model: OllamaModel, text: str, dimensions: int = 0) -> list[float]:
    rng = random.Random(zlib.crc32(f"{model.name}\0{text}".encode()))
    values = [rng.gauss(0.0, 1.0) for _ in range(model.embedding_length)]
    if 0 < dimensions < len(values):
        values = values[:dimensions]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [_float32(v / norm) for v in values]


def _tokens(text: str) -> int:
    """Input tokens of one text: ~4 characters each, plus the BOS and EOS tokens."""
    return (len(text) + 3) // 4 + 2


def _model(state: OllamaState, name: str, *, legacy: bool) -> OllamaModel:
    if not name:
        raise wire.model_required() if legacy else wire.model_not_found(name)
    parsed = parse_name(name)
    if not parsed.valid:
        raise wire.invalid_model_name()
    model = state.catalog.lookup(parsed)
    if model is None:
        raise wire.model_not_pulled(name) if legacy else wire.model_not_found(name)
    return model


def _inputs(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    raise wire.invalid_input()


async def handle_embed(state: OllamaState, request: web.BaseRequest) -> web.Response:
    started = now_ns()
    raw = await request.content.read()
    state.record(request, *peek(raw))
    try:
        _, body = read_body(raw, EMBED_REQUEST)
        model = _model(state, body.get("model", ""), legacy=False)
        texts = _inputs(body.get("input"))
    except WireError as error:
        return wire.error_response(error)
    state.loaded.touch(model, body.get("keep_alive"), model.context_length)
    if not texts:
        return wire.json_response({"model": body["model"], "embeddings": []})
    dimensions = body.get("dimensions") or 0
    embeddings = [vector(model, text, dimensions) for text in texts]
    tokens = sum(_tokens(text) for text in texts)
    loaded = now_ns()
    return wire.json_response(
        {
            "model": body["model"],
            "embeddings": embeddings,
            "total_duration": max(1, now_ns() - started),
            "load_duration": max(1, loaded - started),
            "prompt_eval_count": tokens,
        }
    )


async def handle_embeddings(state: OllamaState, request: web.BaseRequest) -> web.Response:
    raw = await request.content.read()
    state.record(request, *peek(raw))
    try:
        _, body = read_body(raw, EMBEDDING_REQUEST)
        model = _model(state, body.get("model", ""), legacy=True)
    except WireError as error:
        return wire.error_response(error)
    state.loaded.touch(model, body.get("keep_alive"), model.context_length)
    prompt = body.get("prompt", "")
    return wire.json_response({"embedding": vector(model, prompt) if prompt else []})
