"""What the fake model answers beyond prose: tool calls, thinking and structured output.

The rules, deterministic so a test can predict them:

- Tools are called when client tools are offered and ``tool_choice`` is not ``none``:
  ``{"type": "tool", "name": N}`` calls N; ``any`` calls the tools the last user turn names (the
  first tool when it names none); ``auto`` calls the tools the last user turn names, by name or
  with ``_`` read as spaces ("use the get_weather tool", "what is the get weather for Paris"),
  and answers prose when it names none. ``auto`` is also prose when the last user turn carries
  ``tool_result`` blocks (the loop's next step) or the request ends with an assistant prefill.
  ``disable_parallel_tool_use`` keeps the first call. Server tools are never called (not
  emulated): forcing one gets prose. Under ``auto`` a short text block ("I'll use
  the X tool.") comes first, as in the [FIX] tool-use stream; a forced choice starts with the
  ``tool_use`` block (the docs: forced tool use prefills the assistant turn).
- ``input`` comes from ``groq.schema.instance`` (a generic JSON-schema instance maker), seeded by
  the tool name and the conversation: valid for the tool's ``input_schema``, the same for the
  same request.
- ``thinking`` enabled always thinks first; ``adaptive`` thinks unless ``output_config.effort``
  is ``low``. The thinking block is signed (``thinking.sign``).
- ``output_config.format`` (structured output) answers one text block holding JSON valid for the
  schema, unless a tool is called.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from botticelli.emulator.anthropic import thinking, wire
from botticelli.emulator.anthropic.validation import MessageParams
from botticelli.emulator.backend import script_pieces
from botticelli.emulator.groq.schema import instance


@dataclass(frozen=True, slots=True)
class ToolUse:
    id: str
    name: str
    input: dict[str, Any]

    @property
    def json(self) -> str:
        return orjson.dumps(self.input).decode()

    @property
    def tokens(self) -> int:
        return len(script_pieces(self.json)) + 3  # the name and the block's framing

    def start_block(self) -> dict[str, Any]:
        """The block as ``content_block_start`` opens it: ``input`` empty ([FIX] tool_use)."""
        return {
            "type": "tool_use",
            "id": self.id,
            "name": self.name,
            "caller": {"type": "direct"},
            "input": {},
        }


@dataclass(slots=True)
class Plan:
    """The blocks of one reply, in order (the text blocks' words come from the backend)."""

    thinking: str | None = None
    omit_thinking: bool = False  # display "omitted": the text is withheld, the signature sent
    preamble: str | None = None
    tool_uses: list[ToolUse] = field(default_factory=list)
    script: str | None = None  # structured output: this text instead of the backend's
    refusal: str | None = None  # a refusal's explanation (the generation_failed fault)


def digest(params: MessageParams) -> str:
    value = 0
    for turn in params.convo.turns:
        value = zlib.crc32(str(turn["role"]).encode(), value)
        value = zlib.crc32(str(turn["content"]).encode(), value)
    return f"{value:08x}"


def _mentioned(name: str, text: str) -> bool:
    lowered = name.lower()
    return lowered in text or lowered.replace("_", " ") in text


def tool_uses(params: MessageParams) -> list[ToolUse]:
    """The calls the model makes (empty: it answers with text)."""
    choice = params.tool_choice.get("type", "auto")
    if not params.tools or choice == "none":
        return []
    convo = params.convo
    if choice == "auto" and (convo.tool_result_pending or convo.prefill is not None):
        return []
    by_name = {str(t["name"]): t for t in params.tools}
    if choice == "tool":
        names = [str(params.tool_choice["name"])]
    else:
        text = convo.last_user_text.lower()
        names = [name for name in by_name if _mentioned(name, text)]
        if not names and choice == "any":
            names = list(by_name)[:1]
    names = [name for name in names if name in by_name]  # a forced server tool: not emulated, prose
    if not params.parallel_tool_use:
        names = names[:1]
    seed = digest(params)
    calls = []
    for name in names:
        value = instance(by_name[name].get("input_schema") or {"type": "object"}, f"{name}:{seed}")
        calls.append(ToolUse(wire.tool_use_id(), name, value if isinstance(value, dict) else {}))
    return calls


def preamble(calls: list[ToolUse]) -> str:
    names = [call.name for call in calls]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"I'll use the {listed} tool{'s' if len(names) > 1 else ''}."


def plan(params: MessageParams, *, refusal: str | None = None) -> Plan:
    out = Plan()
    config = params.thinking
    if config is not None and (config.type == "enabled" or params.effort != "low"):
        out.thinking = thinking.thinking_text(params.convo.last_user_text)
        out.omit_thinking = config.display == "omitted"
    if refusal is not None:
        out.refusal = refusal
        return out
    out.tool_uses = tool_uses(params)
    if out.tool_uses and params.tool_choice.get("type", "auto") == "auto":
        out.preamble = preamble(out.tool_uses)
    if not out.tool_uses and params.output_schema is not None:
        value = instance(params.output_schema, f"output:{digest(params)}")
        out.script = orjson.dumps(value).decode()
    return out
