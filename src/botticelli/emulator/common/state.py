"""``Settings`` and ``State``: what every handler of one emulator reads and shares."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from botticelli.catalog import ModelInfo, PlanLimits
from botticelli.emulator.backend import Backend
from botticelli.emulator.common.faults import FaultQueue
from botticelli.emulator.common.limits import Limits, RateLimiter
from botticelli.emulator.common.stats import RecordedRequest, Recorder

#: Seconds between the phases of a Batch API job when nothing else is configured: fast for tests.
DEFAULT_BATCH_STEP = 0.05


@dataclass
class Settings:
    """Configuration read by every request; ``enforce_limits`` may be flipped at run time."""

    backend: Backend
    api_keys: frozenset[str] | None = None
    plan: str = "free"
    enforce_limits: bool = False
    limit_overrides: dict[str, int | None] = field(default_factory=dict)
    token_delay: float = 0.0
    org_id: str = ""  # named in rate-limit messages; each wire format makes its own kind of id
    batch_step: float = DEFAULT_BATCH_STEP  # seconds between Batch API phases


class State:
    """Everything the handlers share: settings, pending faults, limiter and counters."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.faults = FaultQueue()
        self.limiter = RateLimiter()
        self.recorder = Recorder()
        self.stopping: asyncio.Event | None = None  # set when the server stops; releases `hang`
        self._limits: dict[str, Limits] = {}

    def limits_for(self, info: ModelInfo) -> Limits:
        """The model's limits on the configured plan, with the overrides applied (kept per model)."""
        limits = self._limits.get(info.id)
        if limits is None:
            base = info.limits.get(self.settings.plan) or PlanLimits()
            over = self.settings.limit_overrides
            limits = Limits(
                rpm=over.get("rpm", base.rpm),
                rpd=over.get("rpd", base.rpd),
                tpm=over.get("tpm", base.tpm),
                tpd=over.get("tpd", base.tpd),
            )
            self._limits[info.id] = limits
        return limits

    def record(self, request: web.BaseRequest, body: Any, model: str | None) -> None:
        """Count and log one API request (header names lower-cased)."""
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.recorder.request(
            RecordedRequest(request.method, request.path, headers, body), model, request.transport
        )

    @property
    def is_stopping(self) -> bool:
        return self.stopping is not None and self.stopping.is_set()

    def reset(self) -> None:
        self.faults.clear()
        self.limiter.reset()
        self.recorder.reset()
