"""What the fake model answers beyond prose: tool calls and structured outputs (deterministic).

- Tool calls: when ``function`` tools are offered, ``tool_choice`` is not ``none`` and the last
  message is not a tool result: ``required`` calls the tools the last user message names (or the
  first tool when it names none), a named ``tool_choice`` calls that tool, ``auto`` calls the tools
  the last user message names (by name, or with ``_`` read as spaces) and answers prose when it
  names none. ``parallel_tool_calls`` false keeps the first call only. A message with
  ``role: "tool"`` last is the loop's next turn: prose.
- Arguments and ``json_schema`` contents come from ``schema.instance``, seeded by the tool (or
  schema) name and the conversation, so the same request gets the same JSON.
- ``json_object``: a JSON object holding the fake model's reply text.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass
from typing import Any

import orjson

from botticelli.emulator.backend import message_text, script_pieces
from botticelli.emulator.common.errors import WireError
from botticelli.emulator.groq.schema import instance
from botticelli.emulator.groq.validation import ChatParams

_JSON_OBJECT = {"type": "object", "properties": {"response": {"type": "string", "minLength": 12}}}
_ID_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # a JSON object, as text (what the wire carries)

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }

    @property
    def tokens(self) -> int:
        return len(script_pieces(self.arguments)) + 3  # name and framing


def tool_call_id() -> str:
    """``call_`` + 24 lowercase alphanumerics (groq-wire.md §6 shows only the ``call_`` prefix)."""
    return "call_" + "".join(random.choices(_ID_ALPHABET, k=24))


def _digest(params: ChatParams) -> str:
    value = 0
    for message in params.messages:
        value = zlib.crc32(str(message.get("role", "")).encode(), value)
        value = zlib.crc32(message_text(message).encode(), value)
    return f"{value:08x}"


def _last_user_text(params: ChatParams) -> str:
    for message in reversed(params.messages):
        if message.get("role") == "user":
            return message_text(message).lower()
    return ""


def _mentioned(name: str, text: str) -> bool:
    lowered = name.lower()
    return lowered in text or lowered.replace("_", " ") in text


def tool_calls(params: ChatParams) -> list[ToolCall]:
    """The calls the model makes for ``params`` (empty: it answers with content)."""
    if not params.tools or params.tool_choice == "none":
        return []
    if params.messages and params.messages[-1].get("role") in ("tool", "function"):
        return []
    by_name = {t["function"]["name"]: t["function"] for t in params.tools}
    choice = params.tool_choice
    if isinstance(choice, dict):
        names = [choice["function"]["name"]]
    else:
        text = _last_user_text(params)
        names = [name for name in by_name if _mentioned(name, text)]
        if not names and choice == "required":
            names = list(by_name)
    if not params.parallel_tool_calls:
        names = names[:1]
    digest = _digest(params)
    calls = []
    for name in names:
        arguments = instance(by_name[name].get("parameters") or {"type": "object"}, f"{name}:{digest}")
        if not isinstance(arguments, dict):
            arguments = {}
        calls.append(ToolCall(tool_call_id(), name, orjson.dumps(arguments).decode()))
    return calls


def structured_content(params: ChatParams) -> str | None:
    """The content for ``response_format`` json_object / json_schema (``None``: plain text)."""
    fmt = params.response_format
    if fmt is None:
        return None
    if fmt["type"] == "json_object":
        value = instance(_JSON_OBJECT, f"json_object:{_digest(params)}")
        return orjson.dumps(value).decode()
    spec = fmt["json_schema"]
    schema = spec.get("schema") or {"type": "object"}
    value = instance(schema, f"{spec['name']}:{_digest(params)}")
    return orjson.dumps(value).decode()


def failed_generation(params: ChatParams, text: str | None) -> WireError:
    """Groq's 400 for a generation that did not become what was asked (groq-wire.md §4.3):
    ``tool_use_failed`` when tools were offered, else ``json_validate_failed``. The default
    ``failed_generation`` is what such a model writes: a call in its own tag syntax, or JSON cut
    short."""
    if params.tools:
        name = params.tools[0]["function"]["name"]
        generated = text if text is not None else f'<function={name}>{{"broken": </function>'
        return WireError(
            400,
            "Failed to call a function. Please adjust your prompt. See 'failed_generation' for more details.",
            "invalid_request_error",
            code="tool_use_failed",
            extra={"failed_generation": generated},
        )
    content = structured_content(params) or '{"answer": "unfinished'
    generated = text if text is not None else content[: max(1, len(content) // 2)]
    return WireError(
        400,
        "Failed to generate JSON. Please adjust your prompt. See 'failed_generation' for more details.",
        "invalid_request_error",
        code="json_validate_failed",
        extra={"failed_generation": generated},
    )


def reasoning_text(params: ChatParams) -> str:
    """What the fake model thinks before it answers (deterministic, from the last user turn)."""
    words = _last_user_text(params).split()[:8]
    topic = " ".join(words) or "the conversation"
    return f"The user asks about {topic!r}. A short, direct answer fits; no tools are needed."


def reasoning_tokens(text: str) -> int:
    return max(1, len(text) // 4)


def executed_tools(params: ChatParams) -> list[dict[str, Any]]:
    """The built-in tools the fake model "ran" before answering: each offered one once, with
    arguments from the last user turn and a deterministic output (``message.executed_tools``)."""
    text = _last_user_text(params) or "the question"
    found: list[dict[str, Any]] = []
    for index, kind in enumerate(params.builtin_tools):
        if kind == "browser_search":
            arguments = {"query": text[:200]}
            page = f"https://example.com/search/{_digest(params)}"
            output = f"Title: About {text[:60]}\nURL: {page}\nA page about it."
        else:  # code_interpreter
            arguments = {"code": f"print(len({text[:60]!r}))"}
            output = str(len(text[:60]))
        found.append(
            {"index": index, "type": kind, "arguments": orjson.dumps(arguments).decode(), "output": output}
        )
    return found
