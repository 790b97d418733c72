"""Ollama's request bodies as Go types (``api/types.go``), for ``gojson.decode``.

Field names and Go types follow ``api.ChatRequest``, ``api.GenerateRequest``, ``api.ShowRequest``
and ``api.EmbedRequest`` (ollama-wire.md §3 lists the fields; their Go types decide the error
texts). ``api.Message`` has its own ``UnmarshalJSON`` (it lowercases the role), so an error
inside a message names the outer struct: ``Go struct field ChatRequest.messages.content``. The
custom types: ``think`` (a bool or a string; the level is checked later), ``keep_alive``
(``api.Duration``), tool-call ``arguments`` (an object) and a tool property's ``type`` (a string
or a list of strings).

``read_body`` turns raw bytes into a decoded dict or the ``WireError`` Ollama answers with
(``gojson`` parses, ``gotypes`` decodes).
"""

from __future__ import annotations

from typing import Any

import orjson

from botticelli.emulator.ollama import wire
from botticelli.emulator.ollama.gojson import EmptyBody, GoJSONError, TypeMismatch, as_go_any, parse
from botticelli.emulator.ollama.gotime import parse_keep_alive
from botticelli.emulator.ollama.gotypes import (
    ANY,
    BOOL,
    IMAGE_DATA,
    INT,
    INT32,
    RAW,
    STRING,
    GoType,
    custom,
    decode,
    fresh,
    json_kind,
    map_of,
    ptr,
    slice_of,
    struct,
)


def _think(value: Any) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    raise GoJSONError("think must be a boolean or string")


def _arguments(value: Any) -> Any:
    if value is None or isinstance(value, dict):
        return value
    raise TypeMismatch(json_kind(value), "api.ToolCallFunctionArguments")


def _property_type(value: Any) -> Any:
    if isinstance(value, str):
        return [value]
    if value is None:
        return value
    if not isinstance(value, list):
        raise TypeMismatch(json_kind(value), "[]string")
    for item in value:
        if not isinstance(item, str):
            raise TypeMismatch(json_kind(item), "string")
    return value


def _tool_property_fields() -> dict[str, GoType]:
    return {
        "anyOf": slice_of(TOOL_PROPERTY),
        "type": custom("api.PropertyType", _property_type),
        "items": ANY,
        "description": STRING,
        "enum": slice_of(ANY, "[]interface {}"),
        "properties": ptr(TOOL_PROPERTIES),
    }


TOOL_PROPERTY = struct("ToolProperty", _tool_property_fields)
#: An ordered map with its own ``UnmarshalJSON``: errors inside name the outer field.
TOOL_PROPERTIES = fresh("api.ToolPropertiesMap", map_of(TOOL_PROPERTY))

TOOL = struct(
    "Tool",
    {
        "type": STRING,
        "items": ANY,
        "function": struct(
            "ToolFunction",
            {
                "name": STRING,
                "description": STRING,
                "parameters": struct(
                    "ToolFunctionParameters",
                    {
                        "type": STRING,
                        "$defs": ANY,
                        "items": ANY,
                        "required": slice_of(STRING),
                        "properties": ptr(TOOL_PROPERTIES),
                    },
                ),
            },
        ),
    },
)

TOOL_CALL = struct(
    "ToolCall",
    {
        "id": STRING,
        "function": struct(
            "ToolCallFunction",
            {
                "index": INT,
                "name": STRING,
                "arguments": custom("api.ToolCallFunctionArguments", _arguments),
            },
        ),
    },
)

MESSAGE = fresh(
    "api.Message",
    struct(
        "Alias",
        {
            "role": STRING,
            "content": STRING,
            "thinking": STRING,
            "images": slice_of(IMAGE_DATA),
            "tool_calls": slice_of(TOOL_CALL),
            "tool_name": STRING,
            "tool_call_id": STRING,
        },
    ),
)

KEEP_ALIVE = ptr(custom("api.Duration", parse_keep_alive))
THINK = ptr(custom("api.ThinkValue", _think))
OPTIONS = map_of(ANY, "map[string]interface {}")

_COMMON: dict[str, GoType] = {
    "stream": ptr(BOOL),
    "format": RAW,
    "keep_alive": KEEP_ALIVE,
    "options": OPTIONS,
    "think": THINK,
    "truncate": ptr(BOOL),
    "shift": ptr(BOOL),
    "_debug_render_only": BOOL,
    "logprobs": BOOL,
    "top_logprobs": INT,
}

CHAT_REQUEST = struct(
    "ChatRequest",
    {
        "model": STRING,
        "messages": slice_of(MESSAGE),
        **_COMMON,
        "tools": slice_of(TOOL, "api.Tools"),
    },
)

GENERATE_REQUEST = struct(
    "GenerateRequest",
    {
        "model": STRING,
        "prompt": STRING,
        "suffix": STRING,
        "system": STRING,
        "template": STRING,
        "context": slice_of(INT),
        "raw": BOOL,
        "images": slice_of(IMAGE_DATA),
        **_COMMON,
        "width": INT32,
        "height": INT32,
        "steps": INT32,
    },
)

SHOW_REQUEST = struct(
    "ShowRequest",
    {
        "model": STRING,
        "system": STRING,
        "template": STRING,
        "verbose": BOOL,
        "options": OPTIONS,
        "name": STRING,
    },
)

EMBED_REQUEST = struct(
    "EmbedRequest",
    {
        "model": STRING,
        "input": ANY,
        "keep_alive": KEEP_ALIVE,
        "truncate": ptr(BOOL),
        "dimensions": INT,
        "options": OPTIONS,
    },
)

EMBEDDING_REQUEST = struct(
    "EmbeddingRequest",
    {"model": STRING, "prompt": STRING, "keep_alive": KEEP_ALIVE, "options": OPTIONS},
)


def read_body(raw: bytes, go_type: GoType) -> tuple[Any, dict[str, Any]]:
    """``(parsed JSON or None, decoded fields)``; raises ``WireError`` (400) as ``ShouldBindJSON``
    fails: ``missing request body`` for an empty body, else the decoder's text."""
    try:
        parsed = parse(raw)
    except EmptyBody:
        raise wire.missing_body() from None
    except GoJSONError as error:
        raise wire.bad_request(error.message) from None
    try:
        decoded = decode(parsed, go_type)
    except GoJSONError as error:
        raise wire.bad_request(error.message) from None
    return parsed, decoded if isinstance(decoded, dict) else {}


def peek(raw: bytes) -> tuple[Any, str | None]:
    """The body as the request log keeps it (``None`` if it does not parse) and its ``model``,
    read before validation for the log, the counters and fault matching."""
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:
            parsed = as_go_any(parse(raw))
        except GoJSONError:
            return None, None
    model = parsed.get("model") if isinstance(parsed, dict) else None
    return parsed, model if isinstance(model, str) else None


def raw_field(parsed: Any, name: str) -> Any:
    """A top-level field of the parsed body as sent, matched as Go matches it (case-insensitively,
    the last of several wins): the tools' full schemas, which ``api.Tool`` would cut down."""
    if not isinstance(parsed, dict):
        return None
    value = None
    for key, item in parsed.items():
        if key == name or key.casefold() == name:
            value = item
    return value
