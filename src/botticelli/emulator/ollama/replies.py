"""What the fake model answers beyond prose, deterministically: tool calls, structured output and
thinking.

- Tool calls: when ``tools`` are offered and the last message is the user's, the model calls
  every offered tool whose name the last user message mentions (case-insensitively, by name or
  with ``_`` read as spaces: ``get_weather`` or "get weather"); it mentions none -> prose. A
  ``tool`` message last is the loop's next turn: prose. Arguments are an object valid for the
  tool's ``parameters`` schema (``schema.instance``), seeded by the tool and the conversation.
  Each call has Ollama's ``id`` (``call_`` + 8 lowercase alphanumerics) and ``function.index``.
- ``format``: a JSON schema -> a JSON document valid for it; ``"json"`` -> a JSON object.
- Thinking: a short deterministic monologue about the last user message.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass
from typing import Any

import orjson

from botticelli.emulator.backend import message_text, script_pieces
from botticelli.emulator.groq.schema import instance  # generic JSON-schema instances
from botticelli.emulator.ollama.gojson import as_go_any
from botticelli.emulator.ollama.validation import Request

_JSON_OBJECT = {"type": "object", "properties": {"response": {"type": "string", "minLength": 12}}}
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


@dataclass(frozen=True, slots=True)
class ToolCall:
    index: int
    name: str
    arguments: dict[str, Any]
    id: str

    def wire(self) -> dict[str, Any]:
        """``api.ToolCall``: ``arguments`` is an object, not a string (ollama-wire.md §3)."""
        return {
            "id": self.id,
            "function": {"index": self.index, "name": self.name, "arguments": self.arguments},
        }

    @property
    def tokens(self) -> int:
        """What the model wrote for it: ``{"name": ..., "arguments": ...}`` in tokens."""
        text = orjson.dumps(as_go_any({"name": self.name, "arguments": self.arguments})).decode()
        return len(script_pieces(text)) + 2


def tool_call_id() -> str:
    """``call_`` + 8 of ``a-z0-9``, as Ollama's ``toolCallId``."""
    return "call_" + "".join(random.choices(_ID_ALPHABET, k=8))


def digest(request: Request) -> str:
    value = 0
    for message in request.messages:
        value = zlib.crc32(str(message.get("role", "")).encode(), value)
        value = zlib.crc32(message_text(message).encode(), value)
    return f"{value:08x}"


def last_user_text(request: Request) -> str:
    for message in reversed(request.messages):
        if message.get("role") == "user":
            return message_text(message)
    return ""


def _mentioned(name: str, text: str) -> bool:
    lowered = name.lower()
    return bool(lowered) and (lowered in text or lowered.replace("_", " ") in text)


def tool_calls(request: Request) -> list[ToolCall]:
    """The calls the model makes (empty: it answers with text)."""
    if not request.tools or not request.messages or request.messages[-1].get("role") != "user":
        return []
    text = last_user_text(request).lower()
    seed = digest(request)
    calls: list[ToolCall] = []
    for tool in request.tools:
        function = tool.get("function")
        if not isinstance(function, dict):
            continue
        name = function.get("name")
        if not isinstance(name, str) or not _mentioned(name, text):
            continue
        schema = function.get("parameters")
        arguments = instance(schema if isinstance(schema, dict) else {"type": "object"}, f"{name}:{seed}")
        if not isinstance(arguments, dict):
            arguments = {}
        calls.append(ToolCall(len(calls), name, arguments, tool_call_id()))
    return calls


def structured_content(request: Request) -> str | None:
    """The content ``format`` asks for (``None``: prose)."""
    if request.format is None:
        return None
    schema: Any = _JSON_OBJECT if request.format == "json" else request.format
    value = instance(schema, f"format:{digest(request)}")
    return orjson.dumps(as_go_any(value)).decode()


def thinking_text(request: Request) -> str:
    """What the model thinks before it answers."""
    words = last_user_text(request).split()[:8]
    topic = " ".join(words) or "the conversation"
    return (
        f"Okay, the user is asking about {topic!r}. "
        "I should answer briefly and directly, without any tools unless they are named."
    )


def failed_tool_call(request: Request) -> str:
    """What a model writes when its tool call does not parse (the ``generation_failed`` fault):
    the call in its own syntax, cut short. Ollama passes such text on as ``content``."""
    function = request.tools[0].get("function") if request.tools else None
    name = function.get("name") if isinstance(function, dict) else "tool"
    return f'<tool_call>\n{{"name": "{name}", "arguments": {{"broken": </tool_call>'
