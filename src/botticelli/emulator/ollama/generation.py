"""One answer of the model as a sequence of deltas: thinking, then tool calls or content.

``Answer.deltas()`` yields what each streamed line carries; afterwards ``done_reason`` and
``eval_count`` say how it ended. ``num_predict`` bounds everything the model writes, thinking
included (a long thought can use it all: ``done_reason: "length"`` and no content), as in
Ollama; ``num_predict`` <= 0 means no limit but Ollama's ten contexts (``10 * num_ctx``). Stop
sequences cut prose (``done_reason: "stop"``). Tool calls arrive whole, in one delta with empty
content, and end with ``"stop"`` (there is no ``tool_calls`` reason, ollama-wire.md §4.2).
Structured output is the schema's JSON in token-sized pieces, cut by ``num_predict`` like
anything else.
"""

from __future__ import annotations

import random
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from botticelli.emulator.backend import Backend, Generation, script_pieces
from botticelli.emulator.ollama import replies
from botticelli.emulator.ollama.validation import Request


@dataclass(slots=True)
class Delta:
    """What one streamed line adds: text to ``content`` or ``thinking``, or whole tool calls."""

    content: str = ""
    thinking: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)


class Answer:
    """The model's answer to a validated request (``failed``: the ``generation_failed`` fault)."""

    def __init__(self, request: Request, backend: Backend, *, failed: bool = False) -> None:
        assert request.options is not None
        self.request = request
        self.backend = backend
        self.failed = failed
        self.done_reason = "stop"
        self.eval_count = 0
        options = request.options
        ceiling = 10 * options.num_ctx
        self.limit = options.num_predict if 0 < options.num_predict <= ceiling else ceiling
        self.seed = options.seed if options.seed >= 0 else random.getrandbits(31)

    def _room(self) -> int:
        return self.limit - self.eval_count

    async def deltas(self) -> AsyncGenerator[Delta, None]:
        """The deltas in order; use under ``contextlib.aclosing`` when you may stop early."""
        request = self.request
        if request.thinking:
            for piece in script_pieces(replies.thinking_text(request)):
                if self._room() <= 0:
                    self.done_reason = "length"
                    return
                self.eval_count += 1
                yield Delta(thinking=piece)
        calls = [] if self.failed else replies.tool_calls(request)
        if calls:
            self.eval_count += sum(call.tokens for call in calls)
            yield Delta(tool_calls=[call.wire() for call in calls])
            return
        script = replies.failed_tool_call(request) if self.failed and request.tools else None
        if script is None:
            script = replies.structured_content(request)
            if script is not None and self.failed:
                script = script[: max(1, len(script) // 2)]  # JSON the model did not finish
        if script is not None:
            for piece in script_pieces(script):
                if self._room() <= 0:
                    self.done_reason = "length"
                    return
                self.eval_count += 1
                yield Delta(content=piece)
            return
        async for delta in self._prose():
            yield delta

    async def _prose(self) -> AsyncGenerator[Delta, None]:
        room = self._room()
        if room <= 0:
            self.done_reason = "length"
            return
        options = self.request.options
        assert options is not None
        generation = Generation(
            self.backend,
            self.request.messages,
            max_tokens=room,
            temperature=options.temperature,
            top_p=options.top_p,
            seed=self.seed,
            stop=options.stop,
        )
        try:
            async with aclosing(generation.pieces()) as pieces:
                async for piece in pieces:
                    yield Delta(content=piece)
        finally:
            self.eval_count += generation.completion_tokens
            self.done_reason = generation.finish_reason
