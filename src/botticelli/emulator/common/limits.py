"""Groq-style rate limits: continuously refilling token buckets per (api key, model).

Groq's ``x-ratelimit-reset-*`` values fit buckets that refill continuously (capacity = limit,
refill = limit / window) rather than fixed windows (groq-wire.md §5.1), so that is what we model.
The clock is injectable so the arithmetic can be unit-tested without sleeping, and
``window_scale`` shrinks every window (0.1: a "minute" of 6 s, a "day" of 2.4 h) so tests and
benchmarks can exercise a per-minute limit in seconds; the client limiter takes the same scale.

Speech-to-text models also have audio seconds per hour and per day (ASH / ASD, groq-wire.md
§5.2): ``Limits.ash`` / ``asd``, charged the upload's billed seconds (``acquire(seconds=...)``).
They are kept apart from ``LIMIT_KINDS`` (the kinds a ``rate_limit`` fault or a limit override
may name) in ``AUDIO_LIMIT_KINDS``. Their 429 wording follows Groq's general shape; the exact text
and error ``type`` for audio are NOT FOUND in the reference ("audio_seconds" is inferred).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]

#: limit name -> (wording in Groq's messages, error ``type``, window in seconds)
LIMIT_KINDS: dict[str, tuple[str, str, float]] = {
    "rpm": ("requests per minute (RPM)", "requests", 60.0),
    "rpd": ("requests per day (RPD)", "requests", 86400.0),
    "tpm": ("tokens per minute (TPM)", "tokens", 60.0),
    "tpd": ("tokens per day (TPD)", "tokens", 86400.0),
}


#: audio limit name -> (wording, error ``type`` (inferred), window in seconds)
AUDIO_LIMIT_KINDS: dict[str, tuple[str, str, float]] = {
    "ash": ("audio seconds per hour (ASH)", "audio_seconds", 3600.0),
    "asd": ("audio seconds per day (ASD)", "audio_seconds", 86400.0),
}
_ALL_KINDS = {**LIMIT_KINDS, **AUDIO_LIMIT_KINDS}


def limit_kind_of(limit: object, *, daily: bool = False) -> str:
    """``"tokens per minute (TPM)"``, ``"TPM"`` or ``"tpm"`` -> ``"tpm"``; ``None`` -> RPM (TPD if daily)."""
    if limit is None:
        return "tpd" if daily else "rpm"
    text = str(limit).strip().lower()
    for kind, (wording, _, _) in LIMIT_KINDS.items():
        if text in (kind, wording.lower()) or f"({kind})" in text:
            return kind
    raise ValueError(f"unknown rate limit {limit!r}; use rpm, rpd, tpm or tpd")


def go_duration(seconds: float, decimals: int = 3) -> str:
    """Format like Go's ``time.Duration.String()`` (``2m59.56s``, ``7.66s``, ``6s``, ``500ms``).

    Rounded *up* to ``decimals`` fractional digits of a second, so a client that waits exactly
    the printed time is never early.
    """
    scale = 10**decimals
    units = max(0, math.ceil(seconds * scale - 1e-6))
    if units == 0:
        return "0s"
    if units < scale:  # below one second Go switches to milliseconds
        millis = units * 1000 / scale
        return f"{_trim(millis)}ms"
    whole, frac = divmod(units, scale)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    sec_text = str(secs)
    if frac:
        sec_text += "." + str(frac).rjust(decimals, "0").rstrip("0")
    out = f"{hours}h" if hours else ""
    if hours or minutes:
        out += f"{minutes}m"
    return f"{out}{sec_text}s"


def _trim(value: float) -> str:
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return text or "0"


@dataclass(frozen=True, slots=True)
class Limits:
    """Limits for one (key, model); ``None`` means unlimited. ``ash``/``asd``: audio seconds per
    hour / day (speech-to-text)."""

    rpm: int | None = None
    rpd: int | None = None
    tpm: int | None = None
    tpd: int | None = None
    ash: int | None = None
    asd: int | None = None


class TokenBucket:
    """A bucket of ``capacity`` that refills at ``capacity / window`` per second."""

    __slots__ = ("capacity", "level", "rate", "stamp")

    def __init__(self, capacity: int, window: float, now: float) -> None:
        self.capacity = float(capacity)
        self.rate = capacity / window
        self.level = float(capacity)
        self.stamp = now

    def refill(self, now: float) -> None:
        if now > self.stamp:
            self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
            self.stamp = now

    def wait_for(self, amount: float) -> float:
        """Seconds until ``amount`` is available (0 when it already is)."""
        missing = amount - self.level
        return missing / self.rate if missing > 0 else 0.0

    def take(self, amount: float) -> None:
        self.level = max(0.0, self.level - amount)

    def give_back(self, amount: float) -> None:
        self.level = min(self.capacity, self.level + amount)

    @property
    def used(self) -> float:
        return self.capacity - self.level

    def reset_after(self) -> float:
        """Seconds until the bucket is full again (what Groq calls the reset time)."""
        return self.used / self.rate


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The numbers behind the ``x-ratelimit-*`` headers (requests = RPD, tokens = TPM, as Groq)."""

    limit_requests: int | None
    remaining_requests: int
    reset_requests: float
    limit_tokens: int | None
    remaining_tokens: int
    reset_tokens: float

    def headers(self) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.limit_requests is not None:
            out["x-ratelimit-limit-requests"] = str(self.limit_requests)
            out["x-ratelimit-remaining-requests"] = str(self.remaining_requests)
            out["x-ratelimit-reset-requests"] = go_duration(self.reset_requests, 2)
        if self.limit_tokens is not None:
            out["x-ratelimit-limit-tokens"] = str(self.limit_tokens)
            out["x-ratelimit-remaining-tokens"] = str(self.remaining_tokens)
            out["x-ratelimit-reset-tokens"] = go_duration(self.reset_tokens, 2)
        return out


@dataclass(frozen=True, slots=True)
class Denial:
    """Why a request was refused: 429 (wait ``wait`` seconds) or 413 (can never fit)."""

    status: int
    limit_kind: str  # "rpm" | "rpd" | "tpm" | "tpd" | "ash" | "asd"
    limit: int
    used: int
    requested: int
    wait: float
    snapshot: Snapshot

    @property
    def limit_name(self) -> str:
        return _ALL_KINDS[self.limit_kind][0]

    @property
    def error_type(self) -> str:
        return _ALL_KINDS[self.limit_kind][1]

    def retry_after(self) -> str:
        """The ``retry-after`` header: whole seconds, rounded up, as Groq sends it."""
        return str(max(1, math.ceil(self.wait - 1e-9)))


class _Buckets:
    __slots__ = ("buckets", "limits")

    def __init__(self, limits: Limits, now: float, window_scale: float = 1.0) -> None:
        self.limits = limits
        self.buckets: dict[str, TokenBucket] = {}
        for kind, (_, _, window) in _ALL_KINDS.items():
            value = getattr(limits, kind)
            if value is not None:
                self.buckets[kind] = TokenBucket(value, window * window_scale, now)


class RateLimiter:
    """Per (api key, model) RPM/RPD/TPM/TPD buckets; thread-safe. ``window_scale`` multiplies
    every window (1.0: real minutes and days)."""

    def __init__(self, clock: Clock = time.monotonic, *, window_scale: float = 1.0) -> None:
        if not window_scale > 0:
            raise ValueError("window_scale must be > 0")
        self._clock = clock
        self._lock = threading.Lock()
        self._state: dict[tuple[str, str], _Buckets] = {}
        self.window_scale = window_scale

    def _get(self, key: str, model: str, limits: Limits, now: float) -> _Buckets:
        state = self._state.get((key, model))
        if state is None or state.limits != limits:
            state = self._state[(key, model)] = _Buckets(limits, now, self.window_scale)
        for bucket in state.buckets.values():
            bucket.refill(now)
        return state

    def acquire(
        self, key: str, model: str, limits: Limits, tokens: int, *, enforce: bool, seconds: float = 0.0
    ) -> Denial | Snapshot:
        """Charge one request, ``tokens`` tokens and ``seconds`` audio seconds; with ``enforce``,
        refuse what does not fit."""
        with self._lock:
            now = self._clock()
            state = self._get(key, model, limits, now)
            amounts = {"rpm": 1, "rpd": 1, "tpm": tokens, "tpd": tokens, "ash": seconds, "asd": seconds}
            if enforce:
                denial = self._check(state, amounts)
                if denial is not None:
                    return denial
            for kind, bucket in state.buckets.items():
                bucket.take(amounts[kind])
            return _snapshot(state)

    @staticmethod
    def _check(state: _Buckets, amounts: dict[str, float]) -> Denial | None:
        worst: tuple[float, str] | None = None
        for kind, bucket in state.buckets.items():
            amount = amounts[kind]
            if amount > bucket.capacity:  # can never fit: Groq answers 413, not 429
                return Denial(
                    413,
                    kind,
                    int(bucket.capacity),
                    round(bucket.used),
                    math.ceil(amount),
                    math.inf,
                    _snapshot(state),
                )
            wait = bucket.wait_for(amount)
            if wait > 0 and (worst is None or wait > worst[0]):
                worst = (wait, kind)
        if worst is None:
            return None
        wait, kind = worst
        bucket = state.buckets[kind]
        return Denial(
            429,
            kind,
            int(bucket.capacity),
            round(bucket.used),
            math.ceil(amounts[kind]),
            wait,
            _snapshot(state),
        )

    def refund(self, key: str, model: str, tokens: int) -> None:
        """Give back tokens charged up front but not used (max tokens requested vs. generated)."""
        if tokens <= 0:
            return
        with self._lock:
            state = self._state.get((key, model))
            if state is None:
                return
            now = self._clock()
            for kind in ("tpm", "tpd"):
                bucket = state.buckets.get(kind)
                if bucket is not None:
                    bucket.refill(now)
                    bucket.give_back(tokens)

    def snapshot(self, key: str, model: str, limits: Limits) -> Snapshot:
        with self._lock:
            return _snapshot(self._get(key, model, limits, self._clock()))

    def reset(self) -> None:
        with self._lock:
            self._state.clear()


def _snapshot(state: _Buckets) -> Snapshot:
    rpd = state.buckets.get("rpd")
    tpm = state.buckets.get("tpm")
    return Snapshot(
        limit_requests=state.limits.rpd,
        remaining_requests=int(rpd.level) if rpd else 0,
        reset_requests=rpd.reset_after() if rpd else 0.0,
        limit_tokens=state.limits.tpm,
        remaining_tokens=int(tpm.level) if tpm else 0,
        reset_tokens=tpm.reset_after() if tpm else 0.0,
    )
