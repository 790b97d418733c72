"""Anthropic's wire format: ids, the error envelope, bodies, SSE frames and error texts.

Section numbers (§) refer to ``shared/reference/anthropic-wire.md``. Everything here is a pure
function of its arguments, so every shape is checked in one place. A refused request is a
``WireError``; ``error_body`` renders it as ``{"type": "error", "error": {...}, "request_id"}``
(§6.1). Where the reference says NOT FOUND, the comment says what we chose instead.
"""

from __future__ import annotations

import math
import random
import uuid
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any

import orjson

from botticelli.emulator.common.errors import WireError

EVENT_STREAM = "text/event-stream; charset=utf-8"
#: ``anthropic-version`` values served: 0.x/1.x SDKs send 2023-06-01, 2.x sends 2026-10-21 (§1);
#: 2023-01-01 is the original version the versioning page still lists.
VERSIONS = ("2023-01-01", "2023-06-01", "2026-10-21")
LATEST_VERSION = "2026-10-21"
RATE_LIMITS_URL = "https://docs.claude.com/en/api/rate-limits"
THINKING_DOCS = "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
MAX_REQUEST_BYTES = 32 * 1024 * 1024  # Messages and Token Counting (§2)
MAX_MESSAGES = 100_000  # §2

_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

#: status -> ``error.type`` (§6.2); another 4xx is ``invalid_request_error`` ("also used for other
#: 4xx"), another 5xx ``api_error``.
ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}

#: Messages for statuses whose text §6.3 shows (500's "Internal server error" is the docs' wording
#: of api_error) or leaves open (§10: NOT FOUND for 413, 503 and 504; ours, in the same terse style).
DEFAULT_MESSAGES: dict[int, str] = {
    413: "Request exceeds the maximum allowed number of bytes.",
    500: "Internal server error",
    503: "Service unavailable",
    504: "Request timed out",
    529: "Overloaded",
}


def _base58(n: int) -> str:
    return "".join(random.choices(_BASE58, k=n))


def request_id() -> str:
    """``req_011C`` + 20 base58 characters, as in the ``request-id`` header (§1)."""
    return "req_011C" + _base58(20)


def message_id() -> str:
    """``msg_01`` + 22 base58 characters (§4)."""
    return "msg_01" + _base58(22)


def tool_use_id() -> str:
    """``toolu_01`` + 22 base58 characters (the [FIX] tool-use stream)."""
    return "toolu_01" + _base58(22)


def organization_id() -> str:
    """Organizations are UUIDs (``anthropic-organization-id``, §1)."""
    return str(uuid.uuid4())


def error_type_for(status: int) -> str:
    return ERROR_TYPES.get(status) or ("api_error" if status >= 500 else "invalid_request_error")


def default_message(status: int) -> str:
    if status in DEFAULT_MESSAGES:
        return DEFAULT_MESSAGES[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"Error {status}"


def rfc3339(seconds_from_now: float) -> str:
    """A reset time as ``anthropic-ratelimit-*-reset`` writes it (§7): whole seconds, UTC, rounded
    up so a client that waits until then is never early."""
    moment = datetime.now(UTC) + timedelta(seconds=math.ceil(max(0.0, seconds_from_now)))
    return moment.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- errors ---------------------------------------------------------------------------------


def error_object(error: WireError) -> dict[str, Any]:
    """``{"type", "message"}``, plus 2.x's ``details.error_code`` when ``error.code`` is set (§6.1)."""
    out: dict[str, Any] = {"type": error.type, "message": error.message}
    if error.code is not None:
        out["details"] = {"error_code": error.code}
    return out


def error_body(error: WireError, req_id: str | None) -> dict[str, Any]:
    """The envelope of §6.1: ``{"type": "error", "error": {...}, "request_id": ...}``."""
    body: dict[str, Any] = {"type": "error", "error": error_object(error)}
    if req_id is not None:
        body["request_id"] = req_id
    return body


def invalid(message: str) -> WireError:
    """A 400 ``invalid_request_error``; Anthropic names the field inside the message."""
    return WireError(400, message, "invalid_request_error")


def status_error(status: int, message: str | None = None, type_: str | None = None) -> WireError:
    return WireError(status, message or default_message(status), type_ or error_type_for(status))


def missing_credentials() -> WireError:
    """No ``x-api-key`` and no bearer token. The wording is the one curl users report; the
    reference has no text for it (NOT FOUND)."""
    return WireError(401, "x-api-key header is required", "authentication_error")


def invalid_credentials(header: str) -> WireError:
    """A key the emulator does not accept: ``invalid x-api-key`` (§6.3) or, for
    ``Authorization: Bearer``, ``Invalid bearer token`` (AndyMik90/Aperant#1421, 2026-01)."""
    text = "invalid x-api-key" if header == "x-api-key" else "Invalid bearer token"
    return WireError(401, text, "authentication_error")


def missing_version() -> WireError:
    # The observed text (envoyproxy/ai-gateway#1909, PipedreamHQ/pipedream#9697).
    return invalid("anthropic-version: header is required")


def invalid_version(value: str) -> WireError:
    # The observed text (directus-labs/extensions#285, decolua/9router#1227).
    return invalid(f"anthropic-version: {orjson.dumps(value).decode()} is not a valid version")


def model_not_found(model: str) -> WireError:
    return WireError(404, f"model: {model}", "not_found_error")  # §6.3


def not_found() -> WireError:
    # NOT FOUND: the body for an unknown path; a bare 404 in Anthropic's envelope.
    return WireError(404, "Not Found", "not_found_error")


def request_too_large() -> WireError:
    """413 for a body over 32 MB (§2). The real one comes from Cloudflare and may be HTML (§10:
    NOT FOUND); we answer in the API's envelope so clients parse it like every other error."""
    return WireError(413, DEFAULT_MESSAGES[413], "request_too_large")


def rate_limit_message(*, limit: int, what: str, org: str, model: str) -> str:
    """The 429 text of §6.3 in its 2026 wording (anthropics/claude-code#55132): ``… rate limit of
    30,000 input tokens per minute (org: …, model: …)…``. The tail after "current usage." is cut
    in the reference (NOT FOUND); we end with the advice older responses carry."""
    return (
        f"This request would exceed your organization's rate limit of {limit:,} {what} "
        f"(org: {org}, model: {model}). For details, refer to: {RATE_LIMITS_URL}. You can see the "
        "response headers for current usage. Please reduce the prompt length or the maximum tokens "
        "requested, or try again later."
    )


# -- messages -------------------------------------------------------------------------------


def usage(input_tokens: int, output_tokens: int, *, thinking_tokens: int = 0) -> dict[str, Any]:
    """The ``usage`` of a non-streamed message, in the key order of the §4 example."""
    out: dict[str, Any] = {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "server_tool_use": None,
        "service_tier": "standard",
        "inference_geo": "not_available",
    }
    if thinking_tokens:
        out["output_tokens_details"] = {"thinking_tokens": thinking_tokens}
    return out


def start_usage(input_tokens: int) -> dict[str, Any]:
    """The ``usage`` of ``message_start`` (§5: the [FIX] tool-use stream plus the newer
    ``cache_creation`` and ``inference_geo``); ``output_tokens`` is 1 there."""
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": 1,
        "service_tier": "standard",
        "inference_geo": "not_available",
    }


def delta_usage(output_tokens: int, thinking_tokens: int = 0) -> dict[str, Any]:
    """The cumulative ``usage`` of ``message_delta`` (§5: ``output_tokens`` only, as in [FIX])."""
    out: dict[str, Any] = {"output_tokens": output_tokens}
    if thinking_tokens:
        out["output_tokens_details"] = {"thinking_tokens": thinking_tokens}
    return out


def message_object(
    *,
    mid: str,
    model: str,
    content: list[dict[str, Any]],
    stop_reason: str | None,
    stop_sequence: str | None,
    usage: dict[str, Any],
    stop_details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``message`` in the key order of §4."""
    return {
        "id": mid,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "stop_details": stop_details,
        "usage": usage,
    }


def refusal_details(explanation: str | None = None) -> dict[str, Any]:
    """``stop_details`` of a refusal (§4.1, [FIX] refusal_response.txt)."""
    return {
        "type": "refusal",
        "category": "cyber",
        "explanation": explanation or "This request was refused due to policy.",
    }


# -- SSE ------------------------------------------------------------------------------------


def frame(event: str, data: dict[str, Any]) -> bytes:
    """One SSE frame, ``event: <name>\\ndata: <json>\\n\\n`` (§5)."""
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def event(data: dict[str, Any]) -> bytes:
    """A frame named after ``data["type"]`` (the JSON repeats the event name, §5)."""
    return frame(str(data["type"]), data)


PING = b'event: ping\ndata: {"type": "ping"}\n\n'  # byte for byte as in [FIX] basic_response.txt
MESSAGE_STOP = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'


def message_start(message: dict[str, Any]) -> bytes:
    return event({"type": "message_start", "message": message})


def block_start(index: int, block: dict[str, Any]) -> bytes:
    return event({"type": "content_block_start", "index": index, "content_block": block})


def block_delta(index: int, delta: dict[str, Any]) -> bytes:
    return event({"type": "content_block_delta", "index": index, "delta": delta})


def block_stop(index: int) -> bytes:
    return event({"type": "content_block_stop", "index": index})


def message_delta(
    stop_reason: str,
    stop_sequence: str | None,
    usage: dict[str, Any],
    stop_details: dict[str, Any] | None = None,
) -> bytes:
    delta: dict[str, Any] = {"stop_reason": stop_reason, "stop_sequence": stop_sequence}
    if stop_details is not None:
        delta["stop_details"] = stop_details
    return event({"type": "message_delta", "delta": delta, "usage": usage})


def error_frame(error: WireError) -> bytes:
    """A mid-stream error (§5): ``event: error`` with the error object and no ``request_id``."""
    return frame("error", {"type": "error", "error": error_object(error)})


def malformed_frame(index: int) -> bytes:
    """A ``content_block_delta`` whose JSON is cut short (the ``malformed`` fault)."""
    return (
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
        + str(index).encode()
        + b',"delta":{"type":"text_delta","text":"unterminated\n\n'
    )


# -- Cloudflare -----------------------------------------------------------------------------


def cloudflare_403(ray_id: str) -> bytes:
    """The HTML block page Cloudflare (in front of the API, §1 ``server: cloudflare``) may send."""
    return f"""<!DOCTYPE html>
<html class="no-js" lang="en-US">
<head>
<title>Attention Required! | Cloudflare</title>
<meta charset="UTF-8" />
<meta name="robots" content="noindex, nofollow" />
</head>
<body>
<div id="cf-wrapper">
  <h1 data-translate="block_headline">Sorry, you have been blocked</h1>
  <h2 class="cf-subheadline">You are unable to access anthropic.com</h2>
  <p>This website is using a security service to protect itself from online attacks.</p>
  <div class="cf-footer">Cloudflare Ray ID: <strong class="font-semibold">{ray_id}</strong></div>
</div>
</body>
</html>
""".encode()
