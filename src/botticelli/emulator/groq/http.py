"""Groq's HTTP conventions: bearer keys, and ``WireError`` as an error response."""

from __future__ import annotations

from aiohttp import web

from botticelli.emulator.common.errors import WireError
from botticelli.emulator.common.http import json_response
from botticelli.emulator.groq import wire


def error_response(error: WireError, headers: dict[str, str] | None = None) -> web.Response:
    """``{"error": {"message", "type", "param"?, "code"?}}`` with ``error.status`` and ``headers``."""
    return json_response(error.status, wire.error_body_of(error), headers)


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
