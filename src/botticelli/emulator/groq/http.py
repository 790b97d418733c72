"""Groq's HTTP conventions: bearer keys, and ``WireError`` as an error response."""

from __future__ import annotations

from aiohttp import web

from botticelli.emulator.common.errors import WireError
from botticelli.emulator.common.http import json_response
from botticelli.emulator.common.limits import Denial, go_duration
from botticelli.emulator.common.state import Settings
from botticelli.emulator.groq import wire


def error_response(error: WireError, headers: dict[str, str] | None = None) -> web.Response:
    """``{"error": {"message", "type", "param"?, "code"?}}`` with ``error.status`` and ``headers``."""
    return json_response(error.status, wire.error_body_of(error), headers)


def denied(settings: Settings, denial: Denial, model: str, headers: dict[str, str]) -> web.Response:
    """Groq's answer to a request over a limit: 413 when it could never fit, else 429 with
    ``retry-after``; ``headers`` are the endpoint's own (chat adds its rate-limit headers)."""
    if denial.status == 413:
        message = wire.request_too_large_message(
            model=model,
            org=settings.org_id,
            limit_name=denial.limit_name,
            limit=denial.limit,
            requested=denial.requested,
            upsell=settings.plan == "free",
        )
    else:
        headers = {**headers, "retry-after": denial.retry_after()}
        message = wire.rate_limit_message(
            model=model,
            org=settings.org_id,
            limit_name=denial.limit_name,
            limit=denial.limit,
            used=denial.used,
            requested=denial.requested,
            wait=go_duration(denial.wait),
            upsell=settings.plan == "free",
        )
    error = WireError(denial.status, message, denial.error_type, code="rate_limit_exceeded")
    return error_response(error, headers)


def accepted_key(request: web.BaseRequest, keys: frozenset[str] | None) -> str | None:
    """The bearer token if it is accepted (never logged or echoed).

    ``keys`` ``None`` accepts any token that looks like a Groq key (``gsk_…``).
    """
    auth = request.headers.get("Authorization")
    if not auth:
        return None
    scheme, _, token = auth.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    if keys is None:
        return token if token.startswith("gsk_") else None
    return token if token in keys else None
