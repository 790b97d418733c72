"""What the emulator saw: counters and a log of received requests, for test assertions.

Written from the server's event-loop thread and read from the test's thread, so every access
takes one short lock; snapshots are copies, safe to keep and compare.
"""

from __future__ import annotations

import threading
import weakref
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from typing import Any

#: Oldest requests are forgotten beyond this, so a long benchmark cannot grow memory without bound.
MAX_RECORDED_REQUESTS = 10_000


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as received: header names lower-cased, ``body`` the parsed JSON or ``None``."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass(frozen=True, slots=True)
class EmulatorStats:
    """A snapshot of the counters (see ``Emulator.stats``)."""

    requests: int = 0  # API requests received (control-plane calls excluded)
    by_path: dict[str, int] = field(default_factory=dict)
    by_model: dict[str, int] = field(default_factory=dict)  # chat completions, by requested model
    by_status: dict[int, int] = field(default_factory=dict)  # responses sent, by HTTP status
    faults_fired: dict[str, int] = field(default_factory=dict)  # by fault kind
    rate_limited: int = 0  # 429 responses sent (limiter and faults)
    completions: int = 0  # chat completions served (JSON or streamed)
    streams: int = 0  # of which streamed
    client_disconnects: int = 0  # clients that went away before their response was complete
    connections: int = 0  # distinct TCP connections API requests arrived on (keep-alive reuse shows here)
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def faults_total(self) -> int:
        return sum(self.faults_fired.values())

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["by_status"] = {str(k): v for k, v in self.by_status.items()}
        data["faults_total"] = self.faults_total
        return data


class Recorder:
    """The mutable counters behind ``EmulatorStats`` plus the request log."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: deque[RecordedRequest] = deque(maxlen=MAX_RECORDED_REQUESTS)
        self._reset()

    def _reset(self) -> None:
        self.total = 0
        self.by_path: Counter[str] = Counter()
        self.by_model: Counter[str] = Counter()
        self.by_status: Counter[int] = Counter()
        self.faults: Counter[str] = Counter()
        self.rate_limited = 0
        self.connections = 0
        self._connections: weakref.WeakSet[object] = weakref.WeakSet()
        self.completions = 0
        self.streams = 0
        self.disconnects = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self._requests.clear()

    def request(self, record: RecordedRequest, model: str | None, connection: object = None) -> None:
        with self._lock:
            self.total += 1
            if connection is not None and connection not in self._connections:
                self._connections.add(connection)
                self.connections += 1
            self.by_path[record.path] += 1
            if model is not None:
                self.by_model[model] += 1
            self._requests.append(record)

    def response(self, status: int) -> None:
        with self._lock:
            self.by_status[status] += 1
            if status == 429:
                self.rate_limited += 1

    def fault(self, kind: str) -> None:
        with self._lock:
            self.faults[kind] += 1

    def disconnect(self) -> None:
        with self._lock:
            self.disconnects += 1

    def completion(self, *, stream: bool, prompt_tokens: int, completion_tokens: int) -> None:
        with self._lock:
            self.completions += 1
            self.streams += stream
            self.prompt_tokens += prompt_tokens
            self.completion_tokens += completion_tokens

    def snapshot(self) -> EmulatorStats:
        with self._lock:
            return EmulatorStats(
                requests=self.total,
                by_path=dict(self.by_path),
                by_model=dict(self.by_model),
                by_status=dict(self.by_status),
                faults_fired=dict(self.faults),
                rate_limited=self.rate_limited,
                completions=self.completions,
                streams=self.streams,
                client_disconnects=self.disconnects,
                connections=self.connections,
                prompt_tokens=self.prompt_tokens,
                completion_tokens=self.completion_tokens,
            )

    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def reset(self) -> None:
        with self._lock:
            self._reset()
