"""Groq's answers for the faults that replace a response (``common.faults`` defines the faults).

``rate_limit`` (a 429 in Groq's words and headers), ``server_error``, ``status`` (any status,
body and headers), ``drop`` and ``hang`` (no answer), ``html_403`` (Cloudflare's block page) and a
non-streamed ``malformed`` (a 200 whose JSON is cut short). Mid-stream faults live in ``chat``.
"""

from __future__ import annotations

import os
import time
from http import HTTPStatus
from typing import Any

from aiohttp import web

from botticelli import catalog
from botticelli.emulator.common.errors import WireError
from botticelli.emulator.common.faults import Fault
from botticelli.emulator.common.http import json_response, withhold
from botticelli.emulator.common.limits import LIMIT_KINDS, go_duration, limit_kind_of
from botticelli.emulator.common.state import State
from botticelli.emulator.groq import wire
from botticelli.emulator.groq.http import accepted_key, error_response

#: Faults answered before the API key or the body is looked at.
IMMEDIATE_FAULTS = frozenset({"rate_limit", "server_error", "status", "drop", "hang", "html_403"})
_FALLBACK_LIMITS = {"rpm": 30, "rpd": 1000, "tpm": 8000, "tpd": 200000}  # free plan of current models


def seconds_header(value: float) -> str:
    """``retry-after`` as Groq writes it: ``2``, ``1.5``, ``0.25``."""
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}".rstrip("0").rstrip(".")


async def fire(
    state: State, request: web.BaseRequest, fault: Fault, model: str | None, body: Any, req_id: str
) -> web.StreamResponse:
    """The response (or the missing one) that ``fault`` puts in place of the real answer."""
    kind = fault.kind
    withheld = await withhold(state, request, kind)
    if withheld is not None:
        return withheld
    if kind == "rate_limit":
        return _rate_limit(state, request, fault, model, body, req_id)
    if kind == "server_error":
        status = fault["status"]
        message = fault["message"] or HTTPStatus(status).phrase
        return error_response(WireError(status, message, "internal_server_error"), {"x-request-id": req_id})
    if kind == "status":
        return _status(fault, req_id)
    if kind == "html_403":
        ray = os.urandom(8).hex() + "-SJC"
        return web.Response(
            status=403,
            body=wire.cloudflare_403(ray),
            headers={"content-type": "text/html; charset=UTF-8", "server": "cloudflare", "cf-ray": ray},
        )
    # malformed, non-streaming: a 200 whose JSON body is cut short
    text = wire.completion(
        cid=wire.completion_id(),
        created=int(time.time()),
        model=model or "unknown",
        content="This body is cut short",
        finish_reason="stop",
        usage=wire.usage(1, 1, queue_time=0.0, prompt_time=0.0, completion_time=0.0),
        req_id=req_id,
        seed=0,
    )
    return json_response(200, text[: len(text) // 2], {"x-request-id": req_id})


def _rate_limit(
    state: State, request: web.BaseRequest, fault: Fault, model: str | None, body: Any, req_id: str
) -> web.Response:
    settings = state.settings
    daily = bool(fault["daily"])
    limit_kind = limit_kind_of(fault["limit"], daily=daily)
    limit_name, error_type, _ = LIMIT_KINDS[limit_kind]
    retry_after = fault["retry_after"]
    retry_after_ms = fault["retry_after_ms"]
    wait = retry_after
    if wait is None:
        wait = retry_after_ms / 1000 if retry_after_ms is not None else (578.016 if daily else 1.0)
    info = catalog.lookup(model) if model else None
    limits = state.limits_for(info) if info is not None and not info.retired else None
    limit = (getattr(limits, limit_kind) if limits else None) or _FALLBACK_LIMITS[limit_kind]
    if error_type == "requests":
        requested, used = 1, limit
    else:
        messages = body.get("messages") if isinstance(body, dict) else None
        requested = 1
        if isinstance(messages, list):
            requested = settings.backend.count_tokens([m for m in messages if isinstance(m, dict)])
        used = max(0, limit - requested + 1)
    message = fault["message"] or wire.rate_limit_message(
        model=model or "unknown",
        org=settings.org_id,
        limit_name=limit_name,
        limit=limit,
        used=used,
        requested=requested,
        wait=go_duration(wait),
        upsell=settings.plan == "free",
    )
    headers = {"x-request-id": req_id}
    key = accepted_key(request, settings.api_keys)
    if key is not None and info is not None and limits is not None:
        headers.update(state.limiter.snapshot(key, info.id, limits).headers())
        exhausted = "x-ratelimit-remaining-" + ("requests" if limit_kind == "rpd" else "tokens")
        if limit_kind != "rpm" and exhausted in headers:
            headers[exhausted] = "0"
    if retry_after is not None or retry_after_ms is None:
        headers["retry-after"] = seconds_header(wait)
    if retry_after_ms is not None:
        headers["retry-after-ms"] = seconds_header(retry_after_ms)
    return error_response(WireError(429, message, error_type, code="rate_limit_exceeded"), headers)


def _status(fault: Fault, req_id: str) -> web.Response:
    status: int = fault["status"]
    headers = {"x-request-id": req_id}
    if fault["headers"]:
        headers.update({str(k): str(v) for k, v in fault["headers"].items()})
    custom = fault["body"]
    if isinstance(custom, str):
        content_type = "text/html" if custom.lstrip().startswith("<") else "text/plain"
        headers.setdefault("content-type", f"{content_type}; charset=utf-8")
        return web.Response(status=status, body=custom.encode(), headers=headers)
    if isinstance(custom, dict):
        return json_response(status, custom, headers)
    code: str | None
    if status == 498:
        message, code = "`flex` tier capacity exceeded. Please try again later.", "capacity_exceeded"
    else:
        try:
            message = HTTPStatus(status).phrase
        except ValueError:
            message = f"Error {status}"
        code = None
    error_type = fault["type"] or ("internal_server_error" if status >= 500 else "invalid_request_error")
    error = WireError(status, fault["message"] or message, error_type, code=fault["code"] or code)
    return error_response(error, headers)
