"""The pluggable model behind the emulator, and the generation loop shared by every backend.

A backend only has to count prompt tokens and yield text pieces (one piece = one completion
token). The emulator itself applies ``max_tokens`` and stop sequences and decides the finish
reason, so a new backend (e.g. llama.cpp) stays small and behaves like the fake one on the wire.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

Message = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Finish:
    """Yielded by a backend to state its finish reason explicitly (``"stop"`` or ``"length"``).

    Optional: when a backend just ends its iterator, the reason is ``"length"`` if it produced
    ``max_tokens`` pieces and ``"stop"`` otherwise.
    """

    reason: str


@runtime_checkable
class Backend(Protocol):
    """What ``Emulator(backend=...)`` accepts."""

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """Prompt tokens of ``messages`` (used for usage, context-window checks and limits)."""
        ...

    def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int,
        temperature: float,
        top_p: float,
        seed: int,
        stop: Sequence[str],
    ) -> AsyncIterator[str | Finish]:
        """Yield at most ``max_tokens`` text pieces; honouring ``stop`` is optional."""
        ...


def message_text(message: Message) -> str:
    """The text of one message: a string, or the ``text`` parts of a content array."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


_PIECE = re.compile(r"\s*\S{1,4}|\s+")


def script_pieces(text: str) -> list[str]:
    """``text`` cut into token-sized pieces (up to 4 characters after any whitespace)."""
    return _PIECE.findall(text)


class StopScanner:
    """Cuts streamed text at the first stop sequence, holding back what could start one."""

    __slots__ = ("_held", "_stops")

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = [s for s in stops if s]
        self._held = ""

    def feed(self, piece: str) -> tuple[str, bool]:
        """Return (text safe to emit now, whether a stop sequence was reached)."""
        text = self._held + piece
        cut = min((i for i in (text.find(s) for s in self._stops) if i >= 0), default=-1)
        if cut >= 0:
            self._held = ""
            return text[:cut], True
        keep = 0
        for stop in self._stops:
            for n in range(min(len(stop) - 1, len(text)), keep, -1):
                if text.endswith(stop[:n]):
                    keep = n
                    break
        self._held = text[len(text) - keep :] if keep else ""
        return (text[: len(text) - keep] if keep else text), False

    def flush(self) -> str:
        held, self._held = self._held, ""
        return held


class Generation:
    """One completion: iterate ``pieces()``, then read ``completion_tokens`` and ``finish_reason``."""

    __slots__ = ("_args", "_backend", "completion_tokens", "finish_reason", "max_tokens", "script", "stop")

    def __init__(
        self,
        backend: Backend,
        messages: Sequence[Message],
        *,
        max_tokens: int,
        temperature: float,
        top_p: float,
        seed: int,
        stop: Sequence[str],
        script: str | None = None,
    ) -> None:
        self._backend = backend
        self._args = (messages, temperature, top_p, seed)
        self.max_tokens = max_tokens
        self.stop = stop
        #: A fixed answer instead of the backend's (structured outputs): streamed as token-sized
        #: pieces, never cut by ``max_tokens`` or ``stop`` (a cut JSON document would not parse).
        self.script = script
        self.completion_tokens = 0
        self.finish_reason = "stop"

    async def pieces(self) -> AsyncGenerator[str, None]:
        """The non-empty text pieces; use under ``contextlib.aclosing`` when you may stop early."""
        if self.script is not None:
            for part in script_pieces(self.script):
                self.completion_tokens += 1
                yield part
            self.finish_reason = "stop"
            return
        messages, temperature, top_p, seed = self._args
        scanner = StopScanner(self.stop) if self.stop else None
        explicit: str | None = None
        pieces = self._backend.stream(
            messages,
            max_tokens=self.max_tokens,
            temperature=temperature,
            top_p=top_p,
            seed=seed,
            stop=self.stop,
        )
        stopped = False
        try:
            async for piece in pieces:
                if isinstance(piece, Finish):
                    explicit = piece.reason
                    break
                self.completion_tokens += 1
                if scanner is not None:
                    piece, stopped = scanner.feed(piece)
                if piece:
                    yield piece
                if stopped or self.completion_tokens >= self.max_tokens:
                    break
        finally:
            aclose = getattr(pieces, "aclose", None)
            if aclose is not None:
                await aclose()
        if scanner is not None and not stopped:
            rest = scanner.flush()
            if rest:
                yield rest
        if stopped:
            self.finish_reason = "stop"
        elif explicit is not None:
            self.finish_reason = explicit
        else:
            self.finish_reason = "length" if self.completion_tokens >= self.max_tokens else "stop"


BackendFactory = Callable[[], Backend]

#: ``--backend NAME`` choices of the CLI; modules register theirs on import.
BACKENDS: dict[str, BackendFactory] = {}

#: Backends whose module is imported only when asked for (heavy dependencies, e.g. llama.cpp).
LAZY_BACKENDS: dict[str, str] = {
    "fake": "botticelli.emulator.textgen",
    "local": "botticelli.emulator.local_backend",
}


def register_backend(name: str, factory: BackendFactory) -> None:
    BACKENDS[name] = factory


def backend_names() -> list[str]:
    return sorted(set(BACKENDS) | set(LAZY_BACKENDS))


def make_backend(name: str) -> Backend:
    """Build the backend registered as ``name``, importing its module first if need be."""
    if name not in BACKENDS and name in LAZY_BACKENDS:
        importlib.import_module(LAZY_BACKENDS[name])
    try:
        factory = BACKENDS[name]
    except KeyError:
        known = ", ".join(backend_names())
        raise ValueError(f"unknown emulator backend {name!r}; known: {known}") from None
    return factory()
