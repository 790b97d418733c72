"""Anthropic's answers for the faults that replace a response (``common.faults`` defines them).

- ``rate_limit``: 429 ``rate_limit_error`` with §6.3's wording, the ``anthropic-ratelimit-*``
  headers (the exhausted kind at 0) and ``retry-after``; ``limit`` picks the kind: ``rpm`` ->
  requests per minute, ``tpm`` -> input tokens per minute, ``rpd``/``tpd`` -> the same per day
  (Anthropic has no daily limits; the wording follows the pattern).
- ``server_error``: 500 ``api_error`` (502/503 ``api_error``, 504 ``timeout_error``, §6.2).
- ``status``: any status in Anthropic's envelope, e.g. ``Fault("status", status=529)`` is the
  real 529 ``{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}``;
  ``type``/``message``/``code`` (-> ``error.details.error_code``) override; ``body`` replaces it.
  ``common.faults`` has no ``overloaded`` kind; ``overloaded()`` builds this fault.
- ``drop`` / ``hang``: no answer; ``html_403``: Cloudflare's block page; ``malformed``
  (non-streamed): a 200 whose JSON is cut short.
"""

from __future__ import annotations

import os
from typing import Any

from aiohttp import web

from botticelli.emulator.anthropic import wire
from botticelli.emulator.anthropic.http import base_headers, error_response, presented
from botticelli.emulator.anthropic.limits import AnthropicLimits
from botticelli.emulator.anthropic.model_catalog import lookup
from botticelli.emulator.anthropic.state import AnthropicState
from botticelli.emulator.common.errors import WireError
from botticelli.emulator.common.faults import Fault
from botticelli.emulator.common.http import json_response, withhold
from botticelli.emulator.common.limits import limit_kind_of

#: Faults answered before the credentials or the body are looked at.
IMMEDIATE_FAULTS = frozenset({"rate_limit", "server_error", "status", "drop", "hang", "html_403"})
#: common.faults' limit kinds -> (our bucket, the words of the message)
_LIMIT_WORDS = {
    "rpm": ("rpm", "requests per minute"),
    "rpd": ("rpm", "requests per day"),
    "tpm": ("itpm", "input tokens per minute"),
    "tpd": ("itpm", "input tokens per day"),
}


def overloaded(count: int | None = 1, *, model: str | None = None) -> Fault:
    """The 529 ``overloaded_error`` fault (a ``status`` fault: ``common.faults`` has no kind for it)."""
    return Fault("status", count, model=model, status=529)


def seconds(value: float) -> str:
    """``retry-after`` seconds: ``2``, ``1.5``."""
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}".rstrip("0").rstrip(".")


async def fire(
    state: AnthropicState, request: web.BaseRequest, fault: Fault, model: str | None, req_id: str
) -> web.StreamResponse:
    """The response (or the missing one) that ``fault`` puts in place of the real answer."""
    org = state.settings.org_id
    kind = fault.kind
    withheld = await withhold(state, request, kind)
    if withheld is not None:
        return withheld
    if kind == "rate_limit":
        return _rate_limit(state, request, fault, model, req_id)
    if kind == "server_error":
        status: int = fault["status"]
        return error_response(wire.status_error(status, fault["message"]), req_id, org)
    if kind == "status":
        return _status(fault, req_id, org)
    if kind == "html_403":
        ray = os.urandom(8).hex() + "-SJC"
        return web.Response(
            status=403,
            body=wire.cloudflare_403(ray),
            headers={"content-type": "text/html; charset=UTF-8", "server": "cloudflare", "cf-ray": ray},
        )
    # malformed, non-streamed: a 200 whose JSON body is cut short
    text = (
        b'{"id":"' + wire.message_id().encode() + b'","type":"message","role":"assistant","content":[{"type":'
    )
    return json_response(200, text, base_headers(req_id, org))


def _rate_limit(
    state: AnthropicState, request: web.BaseRequest, fault: Fault, model: str | None, req_id: str
) -> web.Response:
    kind = limit_kind_of(fault["limit"], daily=bool(fault["daily"]))
    bucket, words = _LIMIT_WORDS[kind]
    limits: AnthropicLimits = state.limits
    limit = limits.get(bucket) or AnthropicLimits().get(bucket) or 1
    retry_after, retry_after_ms = fault["retry_after"], fault["retry_after_ms"]
    wait = (
        retry_after
        if retry_after is not None
        else (retry_after_ms / 1000 if retry_after_ms is not None else 1.0)
    )
    spec = lookup(model) if model else None
    message = fault["message"] or wire.rate_limit_message(
        limit=limit, what=words, org=state.settings.org_id, model=spec.id if spec else model or "unknown"
    )
    headers: dict[str, str] = {}
    credential = presented(request)
    if spec is not None and credential is not None:
        snapshot = state.buckets.snapshot(credential.key, spec.id, limits)
        headers.update(snapshot.exhausted(bucket).headers())
    if retry_after is not None or retry_after_ms is None:
        headers["retry-after"] = seconds(wait)
    if retry_after_ms is not None:
        headers["retry-after-ms"] = seconds(retry_after_ms)
    return error_response(WireError(429, message, "rate_limit_error"), req_id, state.settings.org_id, headers)


def _status(fault: Fault, req_id: str, org: str) -> web.Response:
    status: int = fault["status"]
    headers = base_headers(req_id, org)
    if fault["headers"]:
        headers.update({str(k): str(v) for k, v in fault["headers"].items()})
    custom: Any = fault["body"]
    if isinstance(custom, str):
        content_type = "text/html" if custom.lstrip().startswith("<") else "text/plain"
        headers.setdefault("content-type", f"{content_type}; charset=utf-8")
        return web.Response(status=status, body=custom.encode(), headers=headers)
    if isinstance(custom, dict):
        return json_response(status, custom, headers)
    error = wire.status_error(status, fault["message"], fault["type"])
    if fault["code"]:
        error = WireError(error.status, error.message, error.type, code=fault["code"])
    extra = {k: v for k, v in headers.items() if k not in ("request-id", "anthropic-organization-id")}
    return error_response(error, req_id, org, extra)
