"""``GET /v1/models`` and ``GET /v1/models/{id}`` (§2, §8.1).

The list is newest first and paginated with ``limit`` (default 20, 1-1000), ``after_id`` and
``before_id``; the page says ``has_more``, ``first_id`` and ``last_id``. ``lifecycle[]`` (2.x, up
to 3 of active/deprecated/retired) filters it; by default active and deprecated models are
listed. Retrieval accepts ids and aliases and also answers for retired models (they only leave
the default list). A cursor that names no listed model gives an empty page (the real answer is
NOT FOUND).
"""

from __future__ import annotations

from aiohttp import web

from botticelli.emulator.anthropic import errors as e
from botticelli.emulator.anthropic import wire
from botticelli.emulator.anthropic.http import api_version, authenticate, base_headers, error_response
from botticelli.emulator.anthropic.model_catalog import ModelSpec, all_models, lookup
from botticelli.emulator.common.errors import WireError
from botticelli.emulator.common.http import json_response
from botticelli.emulator.common.state import State

LIFECYCLES = ("active", "deprecated", "retired")
DEFAULT_LIMIT = 20
MAX_LIMIT = 1000


def _check(state: State, request: web.BaseRequest) -> None:
    authenticate(request, state.settings.api_keys)
    api_version(request)


def _limit(request: web.BaseRequest) -> int:
    raw = request.query.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    try:
        value = int(raw)
    except ValueError:
        raise e.wrong_type("limit", "integer") from None
    if value < 1:
        raise e.at_least("limit", 1)
    if value > MAX_LIMIT:
        raise e.at_most("limit", MAX_LIMIT)
    return value


def _lifecycles(request: web.BaseRequest) -> tuple[str, ...]:
    values = request.query.getall("lifecycle[]", []) + request.query.getall("lifecycle", [])
    if not values:
        return ("active", "deprecated")
    if len(values) > 3:
        raise wire.invalid(
            "lifecycle: List should have at most 3 items after validation, not " + str(len(values))
        )
    for i, value in enumerate(values):
        if value not in LIFECYCLES:
            raise e.one_of(e.loc("lifecycle", i), LIFECYCLES)
    return tuple(values)


def page(models: list[ModelSpec], *, limit: int, after: str | None, before: str | None) -> dict[str, object]:
    """One page of ``models`` (already filtered and ordered)."""
    ids = [m.id for m in models]
    if after is not None:
        start = ids.index(after) + 1 if after in ids else len(ids)
        chosen = models[start : start + limit]
        has_more = start + limit < len(models)
    elif before is not None:
        end = ids.index(before) if before in ids else 0
        chosen = models[max(0, end - limit) : end]
        has_more = end - limit > 0
    else:
        chosen = models[:limit]
        has_more = limit < len(models)
    return {
        "data": [m.wire() for m in chosen],
        "has_more": has_more,
        "first_id": chosen[0].id if chosen else None,
        "last_id": chosen[-1].id if chosen else None,
    }


def list_models(state: State, request: web.BaseRequest, req_id: str) -> web.Response:
    org = state.settings.org_id
    try:
        _check(state, request)
        limit = _limit(request)
        lifecycles = _lifecycles(request)
    except WireError as error:
        return error_response(error, req_id, org)
    models = [m for m in all_models() if m.lifecycle in lifecycles]
    body = page(
        models, limit=limit, after=request.query.get("after_id"), before=request.query.get("before_id")
    )
    return json_response(200, body, base_headers(req_id, org))


def get_model(state: State, request: web.BaseRequest, model_id: str, req_id: str) -> web.Response:
    org = state.settings.org_id
    try:
        _check(state, request)
        spec = lookup(model_id)
        if spec is None:
            raise wire.model_not_found(model_id)
    except WireError as error:
        return error_response(error, req_id, org)
    return json_response(200, spec.wire(), base_headers(req_id, org))
