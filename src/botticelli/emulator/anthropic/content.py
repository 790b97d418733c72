"""Checks of ``messages`` and ``system``: roles, content blocks, tool-use pairing (§3).

``conversation`` turns the validated ``messages`` (and ``system``) into a ``Conversation``: plain
text turns for the backend plus what the fake model's answer depends on (the last user turn, a
pending tool result, a prefill). Texts the reference quotes are used verbatim; the others follow
the observed pydantic style of ``errors`` (NOT FOUND for: blocks in the wrong role, invalid base64,
the 2026-10-21 refusals of ``document`` in assistant turns and of ``citations`` in user turns).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import orjson

from botticelli.emulator.anthropic import errors as e
from botticelli.emulator.anthropic import thinking, wire

ROLES = ("user", "assistant", "system")
#: Every block type the 2.x SDK's ``ContentBlockParam`` union knows, in its order.
BLOCK_TYPES = (
    "text",
    "image",
    "document",
    "search_result",
    "thinking",
    "redacted_thinking",
    "tool_use",
    "tool_result",
    "server_tool_use",
    "web_search_tool_result",
    "web_fetch_tool_result",
    "code_execution_tool_result",
    "bash_code_execution_tool_result",
    "text_editor_code_execution_tool_result",
    "tool_search_tool_result",
    "container_upload",
)
_ASSISTANT_ONLY = frozenset({"thinking", "redacted_thinking", "tool_use", "server_tool_use"})
_USER_ONLY = frozenset({"tool_result", "image"})
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
TOOL_RESULT_BLOCKS = ("text", "image", "document", "search_result")
#: Prompt tokens charged per image and per PDF: the fake backend does not decode them. An image
#: costs about (width x height) / 750 tokens, ~1,600 at the largest size the API keeps.
IMAGE_TOKENS = 1_600
DOCUMENT_TOKENS = 1_500


@dataclass(slots=True)
class Conversation:
    """The validated conversation, and what the fake model's reply depends on."""

    turns: list[dict[str, Any]]  # {"role", "content": str} for the backend, system first
    extra_tokens: int = 0  # images and PDFs
    last_user_text: str = ""
    tool_result_pending: bool = False  # the last user turn carries tool results
    prefill: str | None = None  # the text of a final assistant turn


def system_text(value: Any, version: str) -> str:
    """``system``: a string or a list of ``text`` blocks; their text."""
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        raise e.wrong_type("system", "string")
    texts = []
    for i, block in enumerate(value):
        where = e.loc("system", i)
        block = e.dictionary(block, where)
        if block.get("type") != "text":
            raise e.bad_tag(where, block.get("type"), ("text",))
        texts.append(_text_block(block, where, "system", version))
    return "\n".join(texts)


def conversation(messages: Any, system: str, version: str) -> Conversation:
    """Validate ``messages`` (already known to be present); raise a 400 ``WireError`` otherwise."""
    items = e.array(messages, "messages")
    if not items:
        raise wire.invalid("messages: at least one message is required")
    if len(items) > wire.MAX_MESSAGES:
        raise wire.invalid(f"messages: too many messages, the maximum is {wire.MAX_MESSAGES:,}")
    convo = Conversation(turns=[{"role": "system", "content": system}] if system else [])
    parsed: list[tuple[str, list[dict[str, Any]]]] = []
    last = len(items) - 1
    for i, message in enumerate(items):
        role, blocks = _message(message, i, version, final=i == last)
        parsed.append((role, blocks))
    _check_tool_pairing(parsed)
    for i, (role, blocks) in enumerate(parsed):
        text = _flatten(blocks, convo)
        convo.turns.append({"role": role, "content": text})
        if role == "user":
            convo.last_user_text = text
            convo.tool_result_pending = any(b.get("type") == "tool_result" for b in blocks)
        if role == "assistant" and i == last:
            convo.prefill = text
    if convo.prefill and convo.prefill != convo.prefill.rstrip():
        raise wire.invalid("messages: final assistant content cannot end with trailing whitespace")
    return convo


def _message(message: Any, i: int, version: str, *, final: bool) -> tuple[str, list[dict[str, Any]]]:
    where = e.loc("messages", i)
    message = e.dictionary(message, where)
    e.check_keys(message, where, ("role", "content"), ("role", "content"))
    role = message["role"]
    if role not in ROLES:
        raise e.one_of(e.loc(where, "role"), ROLES)
    content = message["content"]
    if isinstance(content, str):
        blocks: list[dict[str, Any]] = [{"type": "text", "text": content}] if content else []
    elif isinstance(content, list):
        blocks = [_block(block, e.loc(where, "content", j), role, version) for j, block in enumerate(content)]
    else:
        raise e.wrong_type(e.loc(where, "content"), "string")
    if not blocks and not (final and role == "assistant"):
        raise wire.invalid(
            f"{where}: all messages must have non-empty content except for the optional final "
            "assistant message"
        )
    return role, blocks


def _block(value: Any, where: str, role: str, version: str) -> dict[str, Any]:
    block = e.dictionary(value, where)
    kind = block.get("type")
    if kind not in BLOCK_TYPES:
        raise e.bad_tag(where, kind, BLOCK_TYPES)
    assert isinstance(kind, str)
    at = e.loc(where, kind)
    if role == "system" and kind != "text":
        raise wire.invalid(f"{where}: `{kind}` blocks are not permitted in `system` messages")
    if role == "user" and kind in _ASSISTANT_ONLY:
        raise wire.invalid(f"{where}: `{kind}` blocks are not permitted in `user` messages")
    if role == "assistant" and kind in _USER_ONLY:
        raise wire.invalid(f"{where}: `{kind}` blocks are not permitted in `assistant` messages")
    if kind == "text":
        _text_block(block, at, role, version)
    elif kind == "image":
        _image(block, at)
    elif kind == "document":
        if role == "assistant" and version == wire.LATEST_VERSION:  # §1.1
            raise wire.invalid(f"{where}: `document` blocks are not permitted in `assistant` messages")
        _document(block, at)
    elif kind == "tool_use":
        e.check_keys(
            block,
            at,
            ("type", "id", "name", "input", "cache_control", "caller", "toolset_name"),
            ("id", "name", "input"),
        )
        e.string(block["id"], e.loc(at, "id"))
        e.string(block["name"], e.loc(at, "name"))
        e.dictionary(block["input"], e.loc(at, "input"))
    elif kind == "tool_result":
        _tool_result(block, at, version)
    elif kind == "thinking":
        e.check_keys(block, at, ("type", "thinking", "signature"), ("signature", "thinking"))
        text = e.string(block["thinking"], e.loc(at, "thinking"))
        signature = e.string(block["signature"], e.loc(at, "signature"))
        if not thinking.verify(text, signature):
            raise wire.invalid(f"{where}: Invalid `signature` in `thinking` block")
    elif kind == "redacted_thinking":
        e.check_keys(block, at, ("type", "data"), ("data",))
        e.string(block["data"], e.loc(at, "data"))
    return block


def _text_block(block: dict[str, Any], where: str, role: str, version: str) -> str:
    e.check_keys(block, where, ("type", "text", "cache_control", "citations"), ("text",))
    text = e.string(block["text"], e.loc(where, "text"))
    if not text:
        raise wire.invalid("messages: text content blocks must be non-empty")
    citations = block.get("citations")
    if citations is not None:
        e.array(citations, e.loc(where, "citations"))
        if citations and role == "user" and version == wire.LATEST_VERSION:  # §1.1
            raise wire.invalid(f"{where}.citations: citations are not permitted in `user` messages")
    return text


def _image(block: dict[str, Any], where: str) -> None:
    e.check_keys(block, where, ("type", "source", "cache_control", "transformations"), ("source",))
    at = e.loc(where, "source")
    source = e.dictionary(block["source"], at)
    kind = source.get("type")
    if kind not in ("base64", "url", "file"):
        raise e.bad_tag(at, kind, ("base64", "url", "file"))
    at = e.loc(at, str(kind))
    if kind == "base64":
        e.check_keys(source, at, ("type", "media_type", "data"), ("data", "media_type"))
        if source["media_type"] not in IMAGE_TYPES:
            raise e.one_of(e.loc(at, "media_type"), IMAGE_TYPES)
        _base64(source["data"], e.loc(at, "data"))
    elif kind == "url":
        e.check_keys(source, at, ("type", "url"), ("url",))
        e.string(source["url"], e.loc(at, "url"))
    else:
        e.check_keys(source, at, ("type", "file_id"), ("file_id",))
        e.string(source["file_id"], e.loc(at, "file_id"))


def _base64(value: Any, where: str) -> None:
    data = e.string(value, where)
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise wire.invalid(f"{where}: invalid base64 data") from None


def _document(block: dict[str, Any], where: str) -> None:
    e.check_keys(
        block, where, ("type", "source", "cache_control", "citations", "context", "title"), ("source",)
    )
    at = e.loc(where, "source")
    source = e.dictionary(block["source"], at)
    kinds = ("base64", "text", "content", "url", "file")
    kind = source.get("type")
    if kind not in kinds:
        raise e.bad_tag(at, kind, kinds)
    at = e.loc(at, str(kind))
    if kind == "base64":
        e.check_keys(source, at, ("type", "media_type", "data"), ("data", "media_type"))
        if source["media_type"] != "application/pdf":
            raise e.one_of(e.loc(at, "media_type"), ("application/pdf",))
        _base64(source["data"], e.loc(at, "data"))
    elif kind == "text":
        e.check_keys(source, at, ("type", "media_type", "data"), ("data", "media_type"))
        if source["media_type"] != "text/plain":
            raise e.one_of(e.loc(at, "media_type"), ("text/plain",))
        e.string(source["data"], e.loc(at, "data"))
    elif kind == "content":
        e.check_keys(source, at, ("type", "content"), ("content",))
        if not isinstance(source["content"], (str, list)):
            raise e.wrong_type(e.loc(at, "content"), "string")
    elif kind == "url":
        e.check_keys(source, at, ("type", "url"), ("url",))
        e.string(source["url"], e.loc(at, "url"))
    else:
        e.check_keys(source, at, ("type", "file_id"), ("file_id",))
        e.string(source["file_id"], e.loc(at, "file_id"))


def _tool_result(block: dict[str, Any], where: str, version: str) -> None:
    e.check_keys(
        block,
        where,
        ("type", "tool_use_id", "content", "is_error", "cache_control", "toolset_name"),
        ("tool_use_id",),
    )
    e.string(block["tool_use_id"], e.loc(where, "tool_use_id"))
    if "is_error" in block:
        e.boolean(block["is_error"], e.loc(where, "is_error"))
    content = block.get("content")
    if content is None or isinstance(content, str):
        return
    for j, part in enumerate(e.array(content, e.loc(where, "content"))):
        at = e.loc(where, "content", j)
        part = e.dictionary(part, at)
        kind = part.get("type")
        if kind not in TOOL_RESULT_BLOCKS:
            raise e.bad_tag(at, kind, TOOL_RESULT_BLOCKS)
        if kind == "text":
            _text_block(part, e.loc(at, "text"), "user", version)
        elif kind == "image":
            _image(part, e.loc(at, "image"))
        elif kind == "document":
            _document(part, e.loc(at, "document"))


def _check_tool_pairing(parsed: list[tuple[str, list[dict[str, Any]]]]) -> None:
    """Every ``tool_use`` is answered by a ``tool_result`` in the next turn, and every
    ``tool_result`` answers a ``tool_use`` of the previous one (texts: §6 issues, e.g.
    anthropics/claude-code#8210 and #64383). Consecutive turns of one role count as one (§3:
    the API merges them); ``system`` turns are left out."""
    Indexed = list[tuple[int, int, dict[str, Any]]]  # (message index, block index, block)
    turns: list[tuple[str, Indexed]] = []
    for m, (role, message_blocks) in enumerate(parsed):
        if role == "system":
            continue
        indexed = [(m, j, b) for j, b in enumerate(message_blocks)]
        if turns and turns[-1][0] == role:
            turns[-1][1].extend(indexed)
        else:
            turns.append((role, indexed))
    for k, (role, turn) in enumerate(turns):
        if role == "assistant" and k + 1 < len(turns):
            used = [(m, str(b["id"])) for m, _, b in turn if b.get("type") == "tool_use"]
            answered = {b["tool_use_id"] for _, _, b in turns[k + 1][1] if b.get("type") == "tool_result"}
            missing = [tool_id for _, tool_id in used if tool_id not in answered]
            if missing:
                where = next(m for m, tool_id in used if tool_id == missing[0])
                raise wire.invalid(
                    f"messages.{where}: `tool_use` ids were found without `tool_result` blocks "
                    f"immediately after: {', '.join(missing)}. Each `tool_use` block must have a "
                    "corresponding `tool_result` block in the next message."
                )
        if role == "user":
            previous = turns[k - 1][1] if k > 0 and turns[k - 1][0] == "assistant" else []
            offered = {b["id"] for _, _, b in previous if b.get("type") == "tool_use"}
            for m, j, b in turn:
                if b.get("type") == "tool_result" and b["tool_use_id"] not in offered:
                    raise wire.invalid(
                        f"messages.{m}.content.{j}: unexpected `tool_use_id` found in `tool_result` "
                        f"blocks: {b['tool_use_id']}. Each `tool_result` block must have a "
                        "corresponding `tool_use` block in the previous message."
                    )


def _flatten(blocks: list[dict[str, Any]], convo: Conversation) -> str:
    """The text a turn puts in front of the model; images and PDFs are counted separately."""
    parts: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "text":
            parts.append(str(block["text"]))
        elif kind == "tool_use":
            parts.append(f"[tool_use {block['name']}] {orjson.dumps(block['input']).decode()}")
        elif kind == "tool_result":
            parts.append(_tool_result_text(block, convo))
        elif kind == "image":
            convo.extra_tokens += IMAGE_TOKENS
        elif kind == "document":
            source = block["source"]
            if source.get("type") == "text":
                parts.append(str(source["data"]))
            else:
                convo.extra_tokens += DOCUMENT_TOKENS
    return "\n".join(p for p in parts if p)


def _tool_result_text(block: dict[str, Any], convo: Conversation) -> str:
    content = block.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts = []
    for part in content:
        if part.get("type") == "text":
            texts.append(str(part["text"]))
        else:
            convo.extra_tokens += IMAGE_TOKENS if part.get("type") == "image" else DOCUMENT_TOKENS
    return "\n".join(texts)
