"""Anthropic's rate limits: requests, input tokens and output tokens per minute, per key and model.

The API limits RPM, ITPM and OTPM per model with continuously refilling token buckets, estimates
OTPM from ``max_tokens`` when a request starts, and reports each in ``anthropic-ratelimit-*``
headers with RFC 3339 reset times (§7). ``tokens-*`` is the combined input+output view. The
buckets are ``common.limits.TokenBucket``; what differs from Groq's limiter (three kinds, two
token directions, other headers) lives here. With no configured limits the headers carry the
numbers of the recorded real response in §7 (1,000 RPM, 80,000 ITPM, 16,000 OTPM): the reference
reproduces no tier's numbers (NOT FOUND), and a client needs some to parse.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from botticelli.emulator.anthropic.wire import rfc3339
from botticelli.emulator.common.limits import Clock, TokenBucket

KINDS = ("rpm", "itpm", "otpm")
WORDING = {
    "rpm": "requests per minute",
    "itpm": "input tokens per minute",
    "otpm": "output tokens per minute",
}
DEFAULT_LIMITS: dict[str, int | None] = {"rpm": 1_000, "itpm": 80_000, "otpm": 16_000}
WINDOW = 60.0


@dataclass(frozen=True, slots=True)
class AnthropicLimits:
    """Per (key, model) limits; ``None``: unlimited (that header group is left out)."""

    rpm: int | None = DEFAULT_LIMITS["rpm"]
    itpm: int | None = DEFAULT_LIMITS["itpm"]
    otpm: int | None = DEFAULT_LIMITS["otpm"]

    @classmethod
    def from_mapping(cls, values: Mapping[str, int | None]) -> AnthropicLimits:
        unknown = set(values) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown limit(s) {', '.join(sorted(unknown))}; use {', '.join(KINDS)}")
        for name, value in values.items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"limit {name} must be a positive int or None")
        return cls(**{**DEFAULT_LIMITS, **values})

    def get(self, kind: str) -> int | None:
        value: int | None = getattr(self, kind)
        return value


@dataclass(frozen=True, slots=True)
class Quota:
    limit: int
    remaining: int
    reset: float  # seconds until the bucket is full


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The numbers behind the ``anthropic-ratelimit-*`` headers."""

    quotas: dict[str, Quota]

    def headers(self) -> dict[str, str]:
        """In the order of the §7 example: requests, tokens, input-tokens, output-tokens."""
        out: dict[str, str] = {}
        groups: list[tuple[str, Quota]] = []
        if "rpm" in self.quotas:
            groups.append(("requests", self.quotas["rpm"]))
        inp, outp = self.quotas.get("itpm"), self.quotas.get("otpm")
        if inp is not None and outp is not None:
            groups.append(
                (
                    "tokens",
                    Quota(inp.limit + outp.limit, inp.remaining + outp.remaining, min(inp.reset, outp.reset)),
                )
            )
        if inp is not None:
            groups.append(("input-tokens", inp))
        if outp is not None:
            groups.append(("output-tokens", outp))
        for name, quota in groups:
            out[f"anthropic-ratelimit-{name}-limit"] = str(quota.limit)
            out[f"anthropic-ratelimit-{name}-remaining"] = str(max(0, quota.remaining))
            out[f"anthropic-ratelimit-{name}-reset"] = rfc3339(quota.reset)
        return out

    def exhausted(self, kind: str) -> Snapshot:
        """The same numbers with ``kind`` at 0 remaining (what a 429 for it reports)."""
        quotas = dict(self.quotas)
        quota = quotas.get(kind)
        if quota is not None:
            quotas[kind] = Quota(quota.limit, 0, quota.reset)
        return Snapshot(quotas)


@dataclass(frozen=True, slots=True)
class Denial:
    """A 429: ``kind`` would be exceeded; ``wait`` seconds until it fits (a whole window when the
    request can never fit the bucket)."""

    kind: str
    limit: int
    wait: float
    snapshot: Snapshot

    def retry_after(self) -> str:
        """Whole seconds, rounded up, at least 1 (§7: ``retry-after: <seconds>``)."""
        return str(max(1, math.ceil(self.wait - 1e-9)))


class Limiter:
    """The buckets of every (key, model); thread-safe (tests read from another thread)."""

    def __init__(self, clock: Clock = time.monotonic, *, window_scale: float = 1.0) -> None:
        if not window_scale > 0:
            raise ValueError("window_scale must be > 0")
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], tuple[AnthropicLimits, dict[str, TokenBucket]]] = {}
        self.window_scale = window_scale

    def _get(self, key: str, model: str, limits: AnthropicLimits, now: float) -> dict[str, TokenBucket]:
        entry = self._buckets.get((key, model))
        if entry is None or entry[0] != limits:
            buckets = {
                kind: TokenBucket(value, WINDOW * self.window_scale, now)
                for kind in KINDS
                if (value := limits.get(kind)) is not None
            }
            entry = self._buckets[(key, model)] = (limits, buckets)
        for bucket in entry[1].values():
            bucket.refill(now)
        return entry[1]

    def acquire(
        self,
        key: str,
        model: str,
        limits: AnthropicLimits,
        input_tokens: int,
        output_tokens: int,
        *,
        enforce: bool,
    ) -> Denial | Snapshot:
        """Charge one request, its input tokens and ``output_tokens`` (its ``max_tokens``)."""
        amounts = {"rpm": 1, "itpm": input_tokens, "otpm": output_tokens}
        with self._lock:
            buckets = self._get(key, model, limits, self._clock())
            if enforce:
                worst: tuple[float, str] | None = None
                for kind, bucket in buckets.items():
                    amount = amounts[kind]
                    wait = WINDOW * self.window_scale if amount > bucket.capacity else bucket.wait_for(amount)
                    if wait > 0 and (worst is None or wait > worst[0]):
                        worst = (wait, kind)
                if worst is not None:
                    wait, kind = worst
                    snap = _snapshot(buckets).exhausted(kind)
                    return Denial(kind, int(buckets[kind].capacity), wait, snap)
            for kind, bucket in buckets.items():
                bucket.take(amounts[kind])
            return _snapshot(buckets)

    def refund(self, key: str, model: str, output_tokens: int) -> None:
        """Give back output tokens estimated from ``max_tokens`` but not generated."""
        if output_tokens <= 0:
            return
        with self._lock:
            entry = self._buckets.get((key, model))
            bucket = entry[1].get("otpm") if entry is not None else None
            if bucket is not None:
                bucket.refill(self._clock())
                bucket.give_back(output_tokens)

    def snapshot(self, key: str, model: str, limits: AnthropicLimits) -> Snapshot:
        with self._lock:
            return _snapshot(self._get(key, model, limits, self._clock()))

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()


def _snapshot(buckets: dict[str, TokenBucket]) -> Snapshot:
    return Snapshot(
        {
            kind: Quota(int(bucket.capacity), int(bucket.level), bucket.reset_after())
            for kind, bucket in buckets.items()
        }
    )
