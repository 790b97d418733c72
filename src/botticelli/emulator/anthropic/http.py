"""Anthropic's HTTP conventions: credentials, ``anthropic-version``, and errors as responses.

Both auth headers work on every version (§1): the 0.x SDK sends ``X-Api-Key`` for an API key and
``Authorization: Bearer`` for an auth token, the 2.x SDK sends both kinds as a bearer token, and
an emulator serving both SDK generations has to accept either. Whether the real API refuses
``x-api-key`` under 2026-10-21 is NOT FOUND; we follow the 2.x SDK, which still lets a caller send
it through ``default_headers``.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from botticelli.emulator.anthropic import wire
from botticelli.emulator.common.errors import WireError
from botticelli.emulator.common.http import json_response

KEY_PREFIX = "sk-ant-"

#: Statuses the SDK never retries and the API marks so: ``x-should-retry: false`` is observed on a
#: 400 (writingmate/chatlabs#35); that the other 4xx carry it too is our reading (NOT FOUND).
_NO_RETRY = frozenset({400, 401, 402, 403, 404, 413, 422})


@dataclass(frozen=True, slots=True)
class Credential:
    """The key a request presented (never logged or echoed) and the header it came in."""

    key: str
    header: str  # "x-api-key" | "authorization"


def presented(request: web.BaseRequest) -> Credential | None:
    """The credential in ``x-api-key`` or ``Authorization: Bearer`` (``x-api-key`` wins, as the
    0.x SDK merges both with the api key last)."""
    key = request.headers.get("x-api-key", "").strip()
    if key:
        return Credential(key, "x-api-key")
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() == "bearer" and token:
        return Credential(token, "authorization")
    return None


def authenticate(request: web.BaseRequest, keys: frozenset[str] | None) -> Credential:
    """The accepted credential; a 401 ``WireError`` otherwise. ``keys`` ``None`` accepts any key
    that looks like an Anthropic one (``sk-ant-…``: API keys and OAuth tokens alike)."""
    credential = presented(request)
    if credential is None:
        raise wire.missing_credentials()
    accepted = credential.key.startswith(KEY_PREFIX) if keys is None else credential.key in keys
    if not accepted:
        raise wire.invalid_credentials(credential.header)
    return credential


def api_version(request: web.BaseRequest) -> str:
    """The ``anthropic-version`` of the request; a 400 ``WireError`` when missing or unknown."""
    value = request.headers.get("anthropic-version")
    if value is None:
        raise wire.missing_version()
    if value not in wire.VERSIONS:
        raise wire.invalid_version(value)
    return value


def base_headers(req_id: str, org_id: str) -> dict[str, str]:
    """What every API response carries (§1: the tidyllm fixture)."""
    return {"request-id": req_id, "anthropic-organization-id": org_id}


def error_response(
    error: WireError, req_id: str, org_id: str, headers: dict[str, str] | None = None
) -> web.Response:
    """``error`` in the envelope of §6.1 with its status, ``request-id`` and ``headers``."""
    all_headers = base_headers(req_id, org_id)
    if error.status in _NO_RETRY:
        all_headers["x-should-retry"] = "false"
    if headers:
        all_headers.update(headers)
    return json_response(error.status, wire.error_body(error, req_id), all_headers)
