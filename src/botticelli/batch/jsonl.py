"""Reading batch input: one JSON request per line, in a simple or a chat form.

    {"id": "q1", "prompt": "...", "system": "...", "max_tokens": 100, "temperature": 0.2}
    {"id": "q2", "messages": [{"role": "user", "content": "..."}], "max_tokens": 100}

A bad line never stops the batch: it comes back as ``BadLine(line, reason)`` and the rest is
read on. The reason names the field, because the person fixing line 7 of a 2,000-line file
needs to know what is wrong with it without a debugger.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from typing import IO, Any, NamedTuple

import orjson

from ..types import GenerateRequest, Input, Message, Role, ToolCall
from .items import BatchId, BatchItem

__all__ = ["BadLine", "parse_jsonl", "parse_lines", "parse_record"]

#: Request fields read from a line; anything else goes into ``GenerateRequest.extra`` as is
#: (``response_format``, ``tools``, ``reasoning_effort``...), to be judged by the server.
_OWN_FIELDS = frozenset(
    {"id", "prompt", "system", "messages", "model", "max_tokens", "max_completion_tokens"}
    | {"temperature", "top_p", "stop", "seed"}
)
#: Fields that would change what kind of answer comes back: refused per line, not sent.
_REFUSED = {"stream": "batch answers are not streamed", "stream_options": "batch answers are not streamed"}

_BOM = b"\xef\xbb\xbf"


class BadLine(NamedTuple):
    """An input line that could not be used: 1-based ``line`` number and a one-line ``reason``."""

    line: int
    reason: str


def parse_jsonl(source: str | os.PathLike[str] | IO[bytes]) -> tuple[list[BatchItem], list[BadLine]]:
    """Read a JSONL file (a path, ``"-"`` for stdin, or a binary stream): the good items in file
    order, and the bad lines. Blank lines are skipped silently; a repeated id is a bad line (the
    later one), so every result can be joined back to exactly one request."""
    if isinstance(source, (str, os.PathLike)):
        if os.fspath(source) == "-":
            return parse_lines(sys.stdin.buffer)
        with open(source, "rb") as handle:
            return parse_lines(handle)
    return parse_lines(source)


def parse_lines(lines: Iterable[bytes]) -> tuple[list[BatchItem], list[BadLine]]:
    items: list[BatchItem] = []
    bad: list[BadLine] = []
    first_seen: dict[BatchId, int] = {}
    for number, raw in enumerate(lines, 1):
        if number == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM) :]
        if not raw.strip():
            continue
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            bad.append(BadLine(number, _json_reason(raw, exc)))
            continue
        try:
            item = parse_record(data, line=number)
        except (ValueError, TypeError) as exc:
            bad.append(BadLine(number, str(exc)))
            continue
        earlier = first_seen.get(item.id)
        if earlier is not None:
            bad.append(BadLine(number, f"duplicate id {_show(item.id)} (first on line {earlier})"))
            continue
        first_seen[item.id] = number
        items.append(item)
    return items, bad


def _json_reason(raw: bytes, exc: orjson.JSONDecodeError) -> str:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return "not valid UTF-8"
    return f"not valid JSON ({exc})"


def _show(value: object) -> str:
    return orjson.dumps(value).decode()


def parse_record(data: Any, *, line: int | None = None) -> BatchItem:
    """One decoded line to a ``BatchItem``; ``ValueError`` with the reason if it is not one."""
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {_json_type(data)}")
    item_id = _item_id(data)
    for name, why in _REFUSED.items():
        if name in data:
            raise ValueError(f'remove "{name}": {why}')
    has_prompt, has_messages = "prompt" in data, "messages" in data
    if has_prompt == has_messages:
        raise ValueError('needs exactly one of "prompt" (simple form) or "messages" (chat form)')
    if has_prompt:
        prompt = data["prompt"]
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError('"prompt" must be a non-empty string')
        system = data.get("system")
        if system is not None and not isinstance(system, str):
            raise ValueError('"system" must be a string')
        messages = [Message.system(system)] if system else []
        messages.append(Message.user(prompt))
    else:
        if "system" in data:
            raise ValueError('"system" goes with "prompt"; in the chat form put a system message first')
        messages = _messages(data["messages"])
    model = data.get("model")
    if model is not None and (not isinstance(model, str) or not model.strip()):
        raise ValueError('"model" must be a non-empty string')
    request = GenerateRequest(tuple(messages), **_params(data))
    return BatchItem(item_id, request, line=line, model=model)


def _item_id(data: Mapping[str, Any]) -> BatchId:
    if "id" not in data:
        raise ValueError('missing "id"')
    value = data["id"]
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        raise ValueError(f'"id" must be a non-empty string or an integer, got {_show_short(value)}')
    return value


def _params(data: Mapping[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if "max_tokens" in data and "max_completion_tokens" in data:
        raise ValueError('give "max_tokens" or "max_completion_tokens", not both')
    max_tokens = data.get("max_tokens", data.get("max_completion_tokens"))
    if max_tokens is not None:
        params["max_tokens"] = max_tokens
    for name in ("temperature", "top_p", "seed"):
        if data.get(name) is not None:
            params[name] = data[name]
    stop = data.get("stop")
    if stop is not None:
        if not isinstance(stop, (str, list)):
            raise ValueError("stop: one to four non-empty strings")
        params["stop"] = stop
    extra = {k: v for k, v in data.items() if k not in _OWN_FIELDS}
    if extra:
        params["extra"] = extra
    return params


def _messages(raw: Any) -> list[Message]:
    if not isinstance(raw, list) or not raw:
        raise ValueError('"messages" must be a non-empty list')
    messages = []
    for index, entry in enumerate(raw):
        try:
            messages.append(_message(entry))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"messages[{index}]: {exc}") from None
    return messages


def _message(raw: Any) -> Message:
    """One OpenAI-style chat message: string or parts content, tool calls, tool results."""
    if not isinstance(raw, dict):
        raise ValueError(f"expected an object, got {_json_type(raw)}")
    role = raw.get("role")
    if role not in {r.value for r in Role}:
        raise ValueError(f"role: expected one of system, user, assistant, tool, got {_show_short(role)}")
    content = _content(raw.get("content"))
    calls = _tool_calls(raw.get("tool_calls"))
    call_id = raw.get("tool_call_id")
    if call_id is not None and not isinstance(call_id, str):
        raise ValueError("tool_call_id: must be a string")
    if role == "tool" and call_id is None:
        raise ValueError('a "tool" message needs "tool_call_id"')
    return Message(Role(role), content, tool_call_id=call_id, tool_calls=calls)


def _content(raw: Any) -> tuple[Input, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        return (Input.text(raw),)
    if not isinstance(raw, list):
        raise ValueError(f"content: expected a string or a list of parts, got {_json_type(raw)}")
    parts = []
    for part in raw:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            parts.append(Input.text(part["text"]))
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if not isinstance(url, str) or not url:
                raise ValueError('content: an "image_url" part needs a URL')
            parts.append(Input.image(url))
        else:
            raise ValueError(
                'content: parts must be {"type": "text", "text": ...} or {"type": "image_url", ...}'
            )
    return tuple(parts)


def _tool_calls(raw: Any) -> tuple[ToolCall, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ValueError("tool_calls: expected a list")
    calls = []
    for call in raw:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(call.get("id"), str):
            raise ValueError('tool_calls: each needs "id" and "function": {"name", "arguments"}')
        name, arguments = function.get("name"), function.get("arguments", "")
        if not isinstance(name, str):
            raise ValueError("tool_calls: function name must be a string")
        if not isinstance(arguments, str):
            arguments = orjson.dumps(arguments).decode()
        calls.append(ToolCall(call["id"], name, arguments))
    return tuple(calls)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _show_short(value: object) -> str:
    text = _show(value) if isinstance(value, (str, int, float, bool, type(None))) else _json_type(value)
    return text if len(text) <= 40 else text[:37] + "..."
