"""Fault injection: what can go wrong between a client and Groq, on demand.

A fault is queued with ``Emulator.inject(Fault(...))`` (or ``POST /_emulator/faults``) and fires
on the next ``count`` matching chat-completion requests, before any other check; or it rides on a
single request in the ``x-emulator-fault: kind; key=value`` header. Unknown kinds or parameters are
rejected up front so a typo in a test fails loudly instead of silently injecting nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from botticelli.emulator.common.limits import limit_kind_of

#: kind -> accepted parameters and their defaults (``None``: not set / computed at fire time).
KINDS: dict[str, dict[str, Any]] = {
    # 429 + retry-after; `limit` picks the wording ("tokens per minute (TPM)", ...); `daily` -> RPD/TPD
    "rate_limit": {
        "retry_after": None,
        "retry_after_ms": None,
        "limit": None,
        "daily": False,
        "message": None,
    },
    # 5xx with a Groq-like JSON body
    "server_error": {"status": 500, "message": None},
    # any status; `body` (dict -> JSON, str -> text) replaces the default body
    "status": {"status": None, "body": None, "headers": None, "message": None, "type": None, "code": None},
    "drop": {},  # close the TCP connection without a response
    "hang": {},  # never answer (until the emulator stops or the client gives up)
    # after `after_chunks` content chunks: `event: error` frame (§4.4), then end the stream
    "stream_error": {"after_chunks": 2, "message": None, "type": None, "code": None, "status_code": None},
    "stream_drop": {"after_chunks": 2},  # after `after_chunks` chunks abort the connection
    "truncate": {"after_chunks": 2},  # after `after_chunks` chunks end cleanly without [DONE]
    "malformed": {"after_chunks": 0},  # invalid JSON body (stream: one bad `data:` frame)
    "html_403": {},  # Cloudflare's HTML block page
    "slow_first_token": {"delay": 1.0},  # wait `delay` seconds before the first chunk / the body
    # a valid request whose generation could not become the JSON / tool call asked for: Groq's 400
    # json_validate_failed (response_format) or tool_use_failed (tools), with `failed_generation`
    "generation_failed": {"failed_generation": None},
}

#: Faults that only make sense on a streamed response; non-streaming requests pass them by.
STREAM_ONLY = frozenset({"stream_error", "stream_drop", "truncate"})


class Fault:
    """One fault, e.g. ``Fault("rate_limit", retry_after=1.0, count=2)``.

    ``count`` is how many matching requests it applies to (``None``: every one until reset);
    ``model`` restricts it to requests for that model.
    """

    __slots__ = ("count", "kind", "model", "params")

    def __init__(self, kind: str, count: int | None = 1, *, model: str | None = None, **params: Any) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(KINDS)}")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
            raise ValueError("fault count must be a positive int or None (unlimited)")
        unknown = set(params) - set(KINDS[kind])
        if unknown:
            allowed = ", ".join(KINDS[kind]) or "none"
            raise ValueError(
                f"fault {kind!r} takes no parameter {', '.join(sorted(unknown))} (allowed: {allowed})"
            )
        self.kind = kind
        self.count = count
        self.model = model
        self.params: dict[str, Any] = {**KINDS[kind], **params}
        self._validate()

    def _validate(self) -> None:
        p = self.params
        for name in ("retry_after", "retry_after_ms", "delay"):
            value = p.get(name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0
            ):
                raise ValueError(f"fault parameter {name} must be a number >= 0")
        after = p.get("after_chunks")
        if after is not None and (isinstance(after, bool) or not isinstance(after, int) or after < 0):
            raise ValueError("fault parameter after_chunks must be an int >= 0")
        if self.kind == "rate_limit":
            limit_kind_of(p["limit"])
        if self.kind == "server_error" and p["status"] not in (500, 502, 503, 504):
            raise ValueError("server_error status must be 500, 502, 503 or 504")
        if self.kind == "status":
            status = p["status"]
            if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
                raise ValueError("the 'status' fault needs status=<int between 200 and 599>")

    def __getitem__(self, name: str) -> Any:
        return self.params[name]

    def to_dict(self) -> dict[str, Any]:
        """The fields as accepted by ``POST /_emulator/faults`` (defaults left out)."""
        out: dict[str, Any] = {"kind": self.kind, "count": self.count}
        if self.model is not None:
            out["model"] = self.model
        defaults = KINDS[self.kind]
        out.update({k: v for k, v in self.params.items() if v != defaults[k]})
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fault:
        fields = dict(data)
        kind = fields.pop("kind", None)
        if not isinstance(kind, str):
            raise ValueError("a fault needs a 'kind'")
        count = fields.pop("count", 1)
        model = fields.pop("model", None)
        return cls(kind, count, model=model, **fields)

    @classmethod
    def from_header(cls, value: str) -> Fault:
        """Parse ``x-emulator-fault: rate_limit; retry_after=2; limit=tokens per minute (TPM)``."""
        kind, *pairs = (part.strip() for part in value.split(";"))
        params: dict[str, Any] = {}
        for pair in pairs:
            if not pair:
                continue
            name, sep, raw = pair.partition("=")
            if not sep:
                raise ValueError(f"bad x-emulator-fault parameter {pair!r} (want key=value)")
            params[name.strip()] = _coerce(raw.strip())
        params.pop("count", None)  # a header fault always applies to its own request only
        model = params.pop("model", None)
        return cls(kind, 1, model=model if isinstance(model, str) else None, **params)

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in self.params.items() if v != KINDS[self.kind][k])
        model = f", model={self.model!r}" if self.model else ""
        return f"Fault({self.kind!r}, count={self.count!r}{model}{extra})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Fault):
            return NotImplemented
        return (self.kind, self.count, self.model, self.params) == (
            other.kind,
            other.count,
            other.model,
            other.params,
        )

    __hash__ = None  # type: ignore[assignment]  # mutable-looking value object


def _coerce(text: str) -> Any:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("null", "none"):
        return None
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    return text


class FaultQueue:
    """Pending faults in injection order; thread-safe (tests inject from another thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[list[Any]] = []  # [fault, remaining count or None]

    def push(self, fault: Fault) -> None:
        with self._lock:
            self._entries.append([fault, fault.count])

    def take(self, model: str | None, stream: bool) -> Fault | None:
        """The first pending fault matching this request, with one use consumed."""
        if not self._entries:  # the common case: no lock, no work
            return None
        with self._lock:
            for index, entry in enumerate(self._entries):
                fault: Fault = entry[0]
                if fault.model is not None and fault.model != model:
                    continue
                if fault.kind in STREAM_ONLY and not stream:
                    continue
                if entry[1] is not None:
                    entry[1] -= 1
                    if entry[1] <= 0:
                        del self._entries[index]
                return fault
        return None

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{**fault.to_dict(), "count": remaining} for fault, remaining in self._entries]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
