"""The control plane under ``/_emulator/``: drive an emulator that runs in another process.

``POST faults`` queues faults (one object, a list, or ``{"faults": [...]}``), ``GET faults`` lists
the pending ones, ``GET stats`` returns the counters, ``POST reset`` forgets everything and
``GET requests`` returns the request log with the credential headers (``authorization``,
``x-api-key``, ``x-goog-api-key``) redacted.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from botticelli.emulator.common.errors import WireError
from botticelli.emulator.common.faults import Fault
from botticelli.emulator.common.http import json_response
from botticelli.emulator.common.state import State

PREFIX = "/_emulator/"
#: Headers that carry a key: never returned by the request log.
_CREDENTIALS = frozenset({"authorization", "x-api-key", "x-goog-api-key"})


async def handle_control(state: State, request: web.BaseRequest, action: str) -> web.Response | None:
    """The answer to ``/_emulator/{action}``; ``None`` for an unknown action or method.

    Raises ``WireError`` (400) for a fault that cannot be parsed; the wire format renders it.
    """
    method = request.method
    if action == "faults" and method == "POST":
        try:
            data = orjson.loads(await request.read())
            items = data if isinstance(data, list) else data.get("faults", [data])
            faults = [Fault.from_dict(item) for item in items]
        except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError) as exc:
            raise WireError(400, f"invalid fault: {exc}", "invalid_request_error") from None
        for fault in faults:
            state.faults.push(fault)
        return json_response(200, {"queued": len(faults), "pending": state.faults.pending()})
    if action == "faults" and method == "GET":
        return json_response(200, {"pending": state.faults.pending()})
    if action == "stats" and method == "GET":
        return json_response(200, state.recorder.snapshot().to_dict())
    if action == "reset" and method == "POST":
        state.reset()
        return json_response(200, {"reset": True})
    if action == "requests" and method == "GET":
        records = [
            {
                "method": r.method,
                "path": r.path,
                "headers": {k: ("<redacted>" if k in _CREDENTIALS else v) for k, v in r.headers.items()},
                "body": r.body,
            }
            for r in state.recorder.requests()
        ]
        return json_response(200, {"requests": records})
    return None
