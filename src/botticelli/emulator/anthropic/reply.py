"""One reply as a sequence of content events, shared by the JSON answer and the SSE stream.

``Reply.events()`` yields ``(kind, index, data)``: ``("start", i, content_block)``,
``("delta", i, delta)`` and ``("stop", i, {})``, exactly what the stream sends as
``content_block_start`` / ``content_block_delta`` / ``content_block_stop`` (§5). The JSON answer
folds the same events with ``Accumulator`` (as the SDK's stream helper does), so a streamed and
a non-streamed reply to one request cannot differ. ``Reply.outcome`` holds the stop reason and
token counts once the events are exhausted.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import orjson

from botticelli.emulator.anthropic import thinking, wire
from botticelli.emulator.anthropic.generation import TextGeneration
from botticelli.emulator.anthropic.replies import Plan
from botticelli.emulator.anthropic.validation import MessageParams
from botticelli.emulator.backend import Backend, script_pieces

Event = tuple[str, int, dict[str, Any]]


@dataclass(slots=True)
class Outcome:
    stop_reason: str = "end_turn"
    stop_sequence: str | None = None
    stop_details: dict[str, Any] | None = None
    output_tokens: int = 0
    thinking_tokens: int = 0


class Reply:
    """The content of one answer to ``params`` following ``plan``."""

    def __init__(self, params: MessageParams, plan: Plan, backend: Backend) -> None:
        self.params = params
        self.plan = plan
        self.backend = backend
        self.outcome = Outcome()

    @property
    def output_tokens(self) -> int:
        """``usage.output_tokens``: never 0 for a reply that could say something (§4)."""
        tokens = self.outcome.output_tokens
        return max(tokens, 1) if self.params.max_tokens > 0 else tokens

    async def events(self) -> AsyncGenerator[Event, None]:
        params, plan, out = self.params, self.plan, self.outcome
        remaining = params.max_tokens
        if remaining <= 0:  # max_tokens 0 pre-warms the cache and generates nothing (§3)
            out.stop_reason = "max_tokens"
            return
        index = 0
        if plan.thinking is not None:
            text, cost = plan.thinking, thinking.tokens(plan.thinking)
            cut = cost > remaining
            if cut:
                text, cost = text[: remaining * 4], remaining
            yield "start", index, {"type": "thinking", "thinking": "", "signature": ""}
            if not plan.omit_thinking:
                for piece in script_pieces(text):
                    yield "delta", index, {"type": "thinking_delta", "thinking": piece}
            yield "delta", index, {"type": "signature_delta", "signature": thinking.sign(text)}
            yield "stop", index, {}
            index += 1
            remaining -= cost
            out.output_tokens += cost
            out.thinking_tokens = cost
            if cut or remaining <= 0:
                out.stop_reason = "max_tokens"
                return
        if plan.refusal is not None:  # [FIX] refusal_response.txt: one empty text block
            yield "start", index, {"type": "text", "text": ""}
            yield "stop", index, {}
            out.stop_reason = "refusal"
            out.stop_details = wire.refusal_details(plan.refusal or None)
            return
        if plan.preamble is not None:
            async for item in self._script(index, plan.preamble):
                yield item
            remaining -= len(script_pieces(plan.preamble))
            index += 1
        if plan.tool_uses:
            for call in plan.tool_uses:
                yield "start", index, call.start_block()
                yield "delta", index, {"type": "input_json_delta", "partial_json": ""}
                for piece in script_pieces(call.json):
                    yield "delta", index, {"type": "input_json_delta", "partial_json": piece}
                yield "stop", index, {}
                out.output_tokens += call.tokens
                index += 1
            out.stop_reason = "tool_use"
            return
        if plan.script is not None:
            async for item in self._script(index, plan.script):
                yield item
            out.stop_reason = "end_turn"
            return
        async for item in self._generate(index, max(remaining, 0)):
            yield item

    async def _script(self, index: int, text: str) -> AsyncGenerator[Event, None]:
        yield "start", index, {"type": "text", "text": ""}
        for piece in script_pieces(text):
            self.outcome.output_tokens += 1
            yield "delta", index, {"type": "text_delta", "text": piece}
        yield "stop", index, {}

    async def _generate(self, index: int, limit: int) -> AsyncGenerator[Event, None]:
        params = self.params
        window = params.model.max_input_tokens - params.prompt_tokens - self.outcome.output_tokens
        generation = TextGeneration(
            self.backend,
            params.convo.turns,
            limit=limit,
            stops=params.stop_sequences,
            temperature=params.temperature,
            top_p=params.top_p,
            window=window if window < limit else None,
        )
        started = False
        try:
            async with aclosing(generation.pieces()) as pieces:
                async for piece in pieces:
                    if not started:
                        started = True
                        yield "start", index, {"type": "text", "text": ""}
                    yield "delta", index, {"type": "text_delta", "text": piece}
        finally:
            self.outcome.output_tokens += generation.tokens
        if not started and index == 0:  # nothing said at all: still one (empty) text block
            yield "start", index, {"type": "text", "text": ""}
            started = True
        if started:
            yield "stop", index, {}
        self.outcome.stop_reason = generation.stop_reason
        self.outcome.stop_sequence = generation.stop_sequence


class Accumulator:
    """Folds content events into the ``content`` list of a message (the SDK's way, §5)."""

    def __init__(self) -> None:
        self.content: list[dict[str, Any]] = []
        self._json: dict[int, str] = {}

    def feed(self, kind: str, index: int, data: dict[str, Any]) -> None:
        if kind == "start":
            self.content.append(dict(data))
            return
        block = self.content[index]
        if kind == "stop":
            if block["type"] == "tool_use":
                raw = self._json.pop(index, "")
                block["input"] = orjson.loads(raw) if raw else {}
            return
        delta_type = data["type"]
        if delta_type == "text_delta":
            block["text"] += data["text"]
        elif delta_type == "thinking_delta":
            block["thinking"] += data["thinking"]
        elif delta_type == "signature_delta":
            block["signature"] = data["signature"]
        elif delta_type == "input_json_delta":
            self._json[index] = self._json.get(index, "") + data["partial_json"]
