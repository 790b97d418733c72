"""Groq's wire format: ids, JSON bodies, SSE frames and error texts (groq-wire.md §2-§6).

Everything here is a pure function of its arguments so the shapes can be checked in one place.
Errors are ``WireError`` values (status and fields); ``error_body_of`` renders one as Groq's body.
Bodies are built as ``dict`` literals in Groq's key order and encoded with orjson; the SSE frames
for content tokens are pre-encoded around the token so a stream costs one small encode per token.
"""

from __future__ import annotations

import hashlib
import random
import time
import uuid
from functools import lru_cache
from typing import Any

import orjson

from botticelli import catalog
from botticelli.catalog import ModelInfo
from botticelli.emulator.common.errors import WireError

JSON = "application/json"
EVENT_STREAM = "text/event-stream"
DONE_FRAME = b"data: [DONE]\n\n"
UPSELL = " Need more tokens? Upgrade to Dev Tier today at https://console.groq.com/settings/billing"
DEPRECATIONS_URL = "https://console.groq.com/docs/deprecations"

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def ulid() -> str:
    """A lowercase 26-char ULID (48-bit ms timestamp + 80 random bits), as in Groq's ids."""
    value = (int(time.time() * 1000) << 80) | random.getrandbits(80)
    out = []
    for _ in range(26):
        out.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(out))


def request_id() -> str:
    """``req_01…``: shared by ``x_groq.id`` and the ``x-request-id`` header."""
    return "req_" + ulid()


def organization_id() -> str:
    return "org_" + ulid()


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4()}"


@lru_cache(maxsize=256)
def fingerprint(model: str) -> str:
    """``fp_`` + 10 hex, stable per model (Groq's changes per deployment, not per request)."""
    return "fp_" + hashlib.sha1(model.encode()).hexdigest()[:10]


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


# -- errors ---------------------------------------------------------------------------------


def error_body(
    message: str,
    type_: str = "invalid_request_error",
    *,
    code: str | None = None,
    param: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """``{"error": {message, type, param?, code?, ...}}`` in the key order Groq uses."""
    error: dict[str, Any] = {"message": message, "type": type_}
    if param is not None:
        error["param"] = param
    if code is not None:
        error["code"] = code
    error.update(extra)
    return {"error": error}


def error_body_of(error: WireError) -> dict[str, Any]:
    """The body Groq sends for ``error``."""
    return error_body(error.message, error.type, code=error.code, param=error.param, **error.extra)


def invalid_request(message: str, param: str | None = None) -> WireError:
    """A 400 ``invalid_request_error`` naming the offending parameter."""
    return WireError(400, message, "invalid_request_error", param=param)


def invalid_api_key() -> WireError:
    return WireError(401, "Invalid API Key", "invalid_request_error", code="invalid_api_key")


def model_not_found(model: str) -> WireError:
    return WireError(
        404,
        f"The model `{model}` does not exist or you do not have access to it.",
        "invalid_request_error",
        code="model_not_found",
    )


def model_decommissioned(model: str) -> WireError:
    return WireError(
        400,
        f"The model `{model}` has been decommissioned and is no longer supported. Please refer to "
        f"{DEPRECATIONS_URL} for a recommendation on which model to use instead.",
        "invalid_request_error",
        code="model_decommissioned",
    )


def context_length_exceeded() -> WireError:
    return WireError(
        400,
        "Please reduce the length of the messages or completion.",
        "invalid_request_error",
        param="messages",
        code="context_length_exceeded",
    )


def max_tokens_too_large(maximum: int) -> WireError:
    return invalid_request(
        f"`max_completion_tokens` must be less than or equal to `{maximum}`, the maximum value for "
        "`max_completion_tokens` is less than the `context_window` for this model",
        "max_completion_tokens",
    )


def unknown_url(method: str, path: str) -> WireError:
    return WireError(
        404,
        f"Unknown request URL: {method} {path}. Please check the URL for typos, "
        "or see the docs at https://console.groq.com/docs/",
        "invalid_request_error",
        code="unknown_url",
    )


def rate_limit_message(
    *,
    model: str,
    org: str,
    limit_name: str,
    limit: int,
    used: int,
    requested: int,
    wait: str,
    upsell: bool,
) -> str:
    """The 429 text, e.g. ``… on tokens per minute (TPM): Limit 12000, Used 4437, Requested 9854. …``."""
    return (
        f"Rate limit reached for model `{model}` in organization `{org}` service tier `on_demand` "
        f"on {limit_name}: Limit {limit}, Used {used}, Requested {requested}. "
        f"Please try again in {wait}.{UPSELL if upsell else ''}"
    )


def request_too_large_message(
    *, model: str, org: str, limit_name: str, limit: int, requested: int, upsell: bool
) -> str:
    """The 413 text for a single request bigger than the whole TPM (or TPD) budget."""
    return (
        f"Request too large for model `{model}` in organization `{org}` service tier `on_demand` "
        f"on {limit_name}: Limit {limit}, Requested {requested}, please reduce your message size "
        f"and try again.{UPSELL if upsell else ''}"
    )


# -- chat completions -----------------------------------------------------------------------


def usage(
    prompt_tokens: int,
    completion_tokens: int,
    *,
    queue_time: float,
    prompt_time: float,
    completion_time: float,
    reasoning_tokens: int = 0,
) -> dict[str, Any]:
    """``usage`` with keys in Groq's wire order (§3.2); ``reasoning_tokens`` (part of the
    completion tokens) adds ``completion_tokens_details``."""
    found: dict[str, Any] = {
        "queue_time": queue_time,
        "prompt_tokens": prompt_tokens,
        "prompt_time": prompt_time,
        "completion_tokens": completion_tokens,
        "completion_time": completion_time,
        "total_tokens": prompt_tokens + completion_tokens,
        "total_time": round(prompt_time + completion_time, 9),
    }
    if reasoning_tokens:
        found["completion_tokens_details"] = {"reasoning_tokens": reasoning_tokens}
    return found


def completion_object(
    *,
    cid: str,
    created: int,
    model: str,
    content: str | None,
    finish_reason: str,
    usage: dict[str, Any],
    req_id: str,
    seed: int,
    tool_calls: list[dict[str, Any]] | None = None,
    reasoning: str | None = None,
    executed_tools: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A ``chat.completion`` object in the key order of §3.2 (a Batch API output line embeds it).

    With ``tool_calls`` the message is ``{"role", "content": null, "tool_calls": [...]}``;
    ``reasoning``: the parsed reasoning, ``message.reasoning`` (§3.2, [SDK] message type)."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if reasoning is not None:
        message["reasoning"] = reasoning
    if tool_calls:
        message["tool_calls"] = tool_calls
    if executed_tools:
        message["executed_tools"] = executed_tools
    return {
        "id": cid,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": usage,
        "usage_breakdown": None,
        "system_fingerprint": fingerprint(model),
        "x_groq": {"id": req_id, "seed": seed},
        "service_tier": "on_demand",
    }


def completion(
    *,
    cid: str,
    created: int,
    model: str,
    content: str,
    finish_reason: str,
    usage: dict[str, Any],
    req_id: str,
    seed: int,
) -> bytes:
    """A ``chat.completion`` body, byte for byte in the shape of §3.2."""
    return orjson.dumps(
        completion_object(
            cid=cid,
            created=created,
            model=model,
            content=content,
            finish_reason=finish_reason,
            usage=usage,
            req_id=req_id,
            seed=seed,
        )
    )


class ChunkFramer:
    """Builds the SSE frames of one stream (§6); the constant parts are encoded once."""

    __slots__ = ("_head", "_prefix", "_suffix")

    def __init__(self, *, cid: str, created: int, model: str) -> None:
        head = orjson.dumps(
            {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": fingerprint(model),
            }
        )
        self._head = head[:-1]  # without the closing brace, to append "choices" etc.
        self._prefix = b"data: " + self._head + b',"choices":[{"index":0,"delta":{"content":'
        self._suffix = b'},"logprobs":null,"finish_reason":null}]}\n\n'

    def _frame(self, rest: dict[str, Any]) -> bytes:
        return b"data: " + self._head + b"," + orjson.dumps(rest)[1:] + b"\n\n"

    def role(self, req_id: str, seed: int) -> bytes:
        """First frame: ``delta: {"role": "assistant", "content": ""}`` and ``x_groq.id``."""
        return self._frame(
            {
                "choices": [
                    {
                        "index": 0,
                        "delta": {"role": "assistant", "content": ""},
                        "logprobs": None,
                        "finish_reason": None,
                    }
                ],
                "x_groq": {"id": req_id, "seed": seed},
            }
        )

    def content(self, text: str) -> bytes:
        return self._prefix + orjson.dumps(text) + self._suffix

    def final(self, finish_reason: str, req_id: str, usage: dict[str, Any]) -> bytes:
        """Last frame: empty delta, ``finish_reason``, usage in ``x_groq`` and at the top level."""
        return self._frame(
            {
                "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish_reason}],
                "x_groq": {"id": req_id, "usage": usage},
                "usage": usage,
            }
        )

    def executed_tools(self, runs: list[dict[str, Any]]) -> bytes:
        """The built-in tools' runs, one delta before the answer (the SDK's ``delta.executed_tools``)."""
        return self._delta({"executed_tools": runs})

    def reasoning(self, text: str) -> bytes:
        """A piece of the parsed reasoning: ``delta: {"reasoning": ...}`` (§6, the SDK's delta)."""
        return self._delta({"reasoning": text})

    def tool_call(self, index: int, call_id: str, name: str, arguments: str) -> bytes:
        """The first delta of one tool call: ``index``, ``id``, ``type``, ``function.name`` and the
        first piece of ``arguments`` (§6, the [VAI] tool-call stream)."""
        entry = {
            "index": index,
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": arguments},
        }
        return self._delta({"tool_calls": [entry]})

    def tool_arguments(self, index: int, arguments: str) -> bytes:
        """A later delta of tool call ``index``: ``{"index", "function": {"arguments"}}``."""
        return self._delta({"tool_calls": [{"index": index, "function": {"arguments": arguments}}]})

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return self._frame(
            {"choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}]}
        )

    def malformed(self) -> bytes:
        """A ``data:`` frame whose JSON is cut short (for the ``malformed`` fault)."""
        return self._prefix + b'"unterminated\n\n'


def error_frame(body: dict[str, Any]) -> bytes:
    """An in-stream error (§4.4): ``event: error`` then the error JSON."""
    return b"event: error\ndata: " + orjson.dumps(body) + b"\n\n"


# -- models ---------------------------------------------------------------------------------


def model_object(info: ModelInfo) -> dict[str, Any]:
    """The model object of §2 (the SDK declares four fields; the server sends these eight)."""
    return {
        "id": info.id,
        "object": "model",
        "created": info.created,
        "owned_by": info.owned_by,
        "active": True,
        "context_window": info.context_window,
        "public_apps": None,
        "max_completion_tokens": info.max_completion_tokens,
    }


@lru_cache(maxsize=1)
def models_list() -> bytes:
    """``GET /models``: every model of the catalog that is not retired (computed once)."""
    return orjson.dumps({"object": "list", "data": [model_object(m) for m in catalog.models()]})


# -- Cloudflare -----------------------------------------------------------------------------


def cloudflare_403(ray_id: str) -> bytes:
    """The HTML page Cloudflare serves when it blocks a client (§1: some 403s are HTML)."""
    return f"""<!DOCTYPE html>
<!--[if lt IE 7]> <html class="no-js ie6 oldie" lang="en-US"> <![endif]-->
<html class="no-js" lang="en-US">
<head>
<title>Attention Required! | Cloudflare</title>
<meta charset="UTF-8" />
<meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
<meta name="robots" content="noindex, nofollow" />
</head>
<body>
<div id="cf-wrapper">
  <div id="cf-error-details" class="cf-error-details-wrapper">
    <h1 data-translate="block_headline">Sorry, you have been blocked</h1>
    <h2 class="cf-subheadline">You are unable to access groq.com</h2>
    <p>This website is using a security service to protect itself from online attacks.
    The action you just performed triggered the security solution.</p>
    <p>Please enable cookies.</p>
    <div class="cf-footer">Cloudflare Ray ID: <strong class="font-semibold">{ray_id}</strong></div>
  </div>
</div>
</body>
</html>
""".encode()
