"""The emulator's ``local`` backend: real text from a local GGUF (the bundled SmolLM2 by default).

``Emulator(backend=LocalBackend())`` or ``python -m botticelli.emulator --backend local`` then
answers Groq-format requests, for any catalog model id, with text the local model generates, at
its real speed. Model loading and generation are the llama.cpp runtime's
(``botticelli.local.runtime``), shared with ``LocalDriver`` (one model per process); the emulator
applies ``max_tokens``, stop sequences and the wire format as for every backend.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from botticelli import _defaults
from botticelli.emulator.backend import Finish, Message, message_text, register_backend
from botticelli.local.runtime import (
    Generation,
    LocalModel,
    Sampling,
    load_model,
    resolve_model_path,
    stream_text,
)

__all__ = ["LocalBackend"]


class LocalBackend:
    """Implements the emulator's ``Backend`` protocol over a llama.cpp model.

    The model loads here, at construction, not on the first request: the emulator counts prompt
    tokens on its event loop, which must not wait for a load."""

    def __init__(
        self,
        model: str | None = None,
        *,
        model_path: str | os.PathLike[str] | None = None,
        n_ctx: int = _defaults.LOCAL_N_CTX,
        n_threads: int | None = _defaults.LOCAL_N_THREADS,
        reuse_prompt: bool = False,
        llama_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = model or (str(model_path) if model_path is not None else _defaults.LOCAL_BUNDLED_MODEL)
        path = resolve_model_path(model_path if model_path is not None else self.name, name=self.name)
        self.model: LocalModel = load_model(
            path, n_ctx=n_ctx, n_threads=n_threads, llama_options=llama_options
        )
        self.reuse_prompt = reuse_prompt

    @property
    def context_window(self) -> int:
        """Tokens the loaded context holds (prompt + completion); smaller than any Groq model's."""
        return self.model.n_ctx

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return self.model.count_tokens(_text_messages(messages))

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int,
        temperature: float,
        top_p: float,
        seed: int,
        stop: Sequence[str],
    ) -> AsyncIterator[str | Finish]:
        # Stop sequences are left to the emulator, so that every piece is exactly one token.
        sampling = Sampling(max_tokens=max_tokens, temperature=temperature, top_p=top_p, seed=seed)
        pieces = stream_text(
            self.model,
            _text_messages(messages),
            sampling,
            model_name=self.name,
            reuse_prompt=self.reuse_prompt,
        )
        try:
            async for item in pieces:
                if isinstance(item, Generation):
                    yield Finish("stop" if item.finish_reason == "stop" else "length")
                else:
                    yield item
        finally:
            await pieces.aclose()

    def __repr__(self) -> str:
        return f"LocalBackend(model={self.name!r}, path={self.model.path!r})"


def _text_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Wire messages reduced to what a text chat template takes: a role and a string."""
    return [{"role": str(m.get("role", "user")), "content": message_text(m)} for m in messages]


register_backend("local", LocalBackend)
