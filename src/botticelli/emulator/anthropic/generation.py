"""Text from the backend, cut the way the Messages API cuts it, with its stop reasons (§4.1).

``backend.Generation`` reports OpenAI-style finish reasons and not which stop sequence matched;
Anthropic answers ``stop_sequence`` with the matched string, ``max_tokens``, ``end_turn`` and
``model_context_window_exceeded`` (the context window, not ``max_tokens``, ran out), so this
module drives the backend itself. The backend has no seed to take (the API has none): seed 0,
so the same request always gets the same text.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence

from botticelli.emulator.backend import Backend, Finish, Message


class StopFinder:
    """Cuts streamed text at the first stop sequence, holding back what could start one, and
    remembers which sequence it was."""

    __slots__ = ("_held", "_stops", "matched")

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = [s for s in stops if s]
        self._held = ""
        self.matched: str | None = None

    def feed(self, piece: str) -> str:
        """The text that is safe to emit now (after a match: the text before it, then nothing)."""
        if self.matched is not None:
            return ""
        text = self._held + piece
        best: tuple[int, str] | None = None
        for stop in self._stops:
            at = text.find(stop)
            if at >= 0 and (best is None or at < best[0]):
                best = (at, stop)
        if best is not None:
            self._held = ""
            self.matched = best[1]
            return text[: best[0]]
        keep = 0
        for stop in self._stops:
            for n in range(min(len(stop) - 1, len(text)), keep, -1):
                if text.endswith(stop[:n]):
                    keep = n
                    break
        self._held = text[len(text) - keep :] if keep else ""
        return text[: len(text) - keep] if keep else text

    def flush(self) -> str:
        held, self._held = self._held, ""
        return held


class TextGeneration:
    """One text block: iterate ``pieces()``, then read ``tokens``, ``stop_reason`` and
    ``stop_sequence``. ``limit`` is what ``max_tokens`` leaves; ``window`` what the context
    window leaves (``None``: no tighter than ``limit``)."""

    __slots__ = (
        "_backend",
        "_messages",
        "_stops",
        "_temperature",
        "_top_p",
        "limit",
        "stop_reason",
        "stop_sequence",
        "tokens",
        "window",
    )

    def __init__(
        self,
        backend: Backend,
        messages: Sequence[Message],
        *,
        limit: int,
        stops: Sequence[str] = (),
        temperature: float = 1.0,
        top_p: float = 1.0,
        window: int | None = None,
    ) -> None:
        self._backend = backend
        self._messages = messages
        self._stops = stops
        self._temperature = temperature
        self._top_p = top_p
        self.limit = limit
        self.window = window
        self.tokens = 0
        self.stop_reason = "end_turn"
        self.stop_sequence: str | None = None

    async def pieces(self) -> AsyncGenerator[str, None]:
        """Non-empty text pieces; use under ``contextlib.aclosing`` when you may stop early."""
        budget = self.limit if self.window is None else min(self.limit, self.window)
        if budget <= 0:
            self.stop_reason = self._cut_reason()
            return
        finder = StopFinder(self._stops) if self._stops else None
        explicit: str | None = None
        stream = self._backend.stream(
            self._messages,
            max_tokens=budget,
            temperature=self._temperature,
            top_p=self._top_p,
            seed=0,
            stop=self._stops,
        )
        try:
            async for piece in stream:
                if isinstance(piece, Finish):
                    explicit = piece.reason
                    break
                self.tokens += 1
                text = finder.feed(piece) if finder is not None else piece
                if text:
                    yield text
                if (finder is not None and finder.matched is not None) or self.tokens >= budget:
                    break
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()
        if finder is not None and finder.matched is not None:
            self.stop_reason, self.stop_sequence = "stop_sequence", finder.matched
            return
        if finder is not None:
            rest = finder.flush()
            if rest:
                yield rest
        if explicit == "length" or (explicit is None and self.tokens >= budget):
            self.stop_reason = self._cut_reason()
        else:
            self.stop_reason = "end_turn"

    def _cut_reason(self) -> str:
        if self.window is not None and self.window < self.limit:
            return "model_context_window_exceeded"
        return "max_tokens"

    async def text(self) -> str:
        return "".join([piece async for piece in self.pieces()])
