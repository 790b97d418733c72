"""``Limiter``: the object the transport consults before every attempt and informs after it.

A request flows through it like this (``Transport.send`` and the driver):

1. ``estimate``: the driver's token estimate (body bytes / 4 + max_tokens); a request that could
   never fit the per-minute token limit is refused here, before sending.
2. ``acquire``: per attempt, a concurrency slot (per process), then a reservation of one request
   and the estimated tokens in every bucket; sleeps until they are covered. A daily quota that
   cannot be met within ``MAX_RETRY_AFTER`` raises ``RateLimitError(daily=True)`` instead.
3. ``observe``: every response's ``x-ratelimit-*`` headers; they correct the plan and limits
   and lower the buckets to what the server says is left.
4. ``rejected``: on a 429 the server's retry-after blocks every caller of this limiter (stopping
   the refill clock); a daily 429 empties the daily bucket so every caller fails fast; a 413
   gives the reservation back.
5. ``release``: the concurrency slot, when the response is read (streams: when they end).
6. ``settle``: the driver swaps the estimate for the usage the response reports.

The limiter knows no wire format: only numbers, header names and typed errors.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from .. import _defaults
from ..errors import InvalidRequestError, ModelsError, RateLimitError
from .buckets import BLOCKED, REFUSED, LocalState, Vector
from .spec import DAILY, KINDS, NAMES, RPD, TPD, TPM, WINDOWS, RateLimits
from .status import LimitState, RateLimitStatus, format_seconds

if TYPE_CHECKING:
    from ..catalog import PlanLimits
    from .redis_state import RedisState

logger = logging.getLogger("botticelli.ratelimit")

#: Resolves a plan to (limits, source per kind); the limiter calls it again when the headers
#: reveal another plan.
Resolver = Callable[[str | None], tuple[RateLimits, dict[str, str]]]

#: How often an in-process sleeper re-reads its go time (refunds may have moved it earlier).
_RECHECK = 0.1
_SERVER_LIMIT = re.compile(r"\(([RT]P[MD])\): Limit (\d+)")
_HEADER_NAMES = (
    "x-ratelimit-limit-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens",
)


class Limiter:
    """Client-side rate limits of one (provider, organisation, model); see the module docstring.
    Made by ``limiter_for`` (registry.py), shared by every driver on the same key and model."""

    def __init__(
        self,
        *,
        provider: str,
        model: str,
        limits: RateLimits,
        sources: dict[str, str],
        plan: str | None = None,
        resolver: Resolver | None = None,
        plans: Mapping[str, PlanLimits] | None = None,
        header_kinds: tuple[int, int] | None = None,
        max_completion: int | None = None,
        state: RedisState | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.provider = provider
        self.model = model
        self.plan = plan
        self._resolver = resolver
        self._plans = dict(plans or {})
        # Which buckets the two header families describe; Groq: requests = per day, tokens =
        # per minute (groq-wire.md §5.1). ``None``: the headers are not trusted for limits.
        self._header_kinds = header_kinds
        self._max_completion = max_completion
        self._redis = state
        self._local = LocalState(clock) if state is None else None
        self._lock = threading.Lock()
        self._slot_waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()
        self._active = 0
        self._noticed: set[int] = set()
        self._seen_headers: tuple[str | None, str | None] = (None, None)
        self._server: dict[int, float] = {}  # limits the server reported (headers, 429 bodies)
        self.rate_limited = 0  # 429s the server sent despite us (another client on the same quota)
        self.completion_guess = float(_defaults.UNSET_MAX_TOKENS_ESTIMATE)
        if max_completion:
            self.completion_guess = min(self.completion_guess, float(max_completion))
        self._configure(limits, sources)

    # -- configuration ----------------------------------------------------------------------

    def _configure(self, limits: RateLimits, sources: dict[str, str]) -> None:
        values = list(limits.values())
        sources = dict(sources)
        for kind, server in self._server.items():  # what the server said beats catalog guesses
            name = KINDS[kind]
            current = values[kind]
            if current == server:
                continue
            if current is None or sources.get(name, "").endswith(" plan") or server < current:
                values[kind] = server
                sources[name] = "server headers"
        self.limits = limits.with_values(**dict(zip(KINDS, values, strict=True)))
        self.sources = sources
        self._caps: Vector = self.limits.capacities()
        self._rates: Vector = self.limits.rates()
        self._rated = any(c > 0 for c in self._caps)
        self._concurrency = self.limits.concurrency

    @property
    def rated(self) -> bool:
        """Whether any rate (not only concurrency) is limited: then a 429's wait is ours to keep."""
        return self._rated

    @property
    def shared(self) -> str:
        return "in-process" if self._redis is None else "redis"

    # -- estimates ----------------------------------------------------------------------------

    def estimate(self, body_bytes: int, max_tokens: int | None) -> int:
        """Tokens to reserve: the encoded body's bytes / 4 (JSON overhead makes it err high,
        never low, for text) plus ``max_tokens``, or the recent largest completions when unset.
        Raises ``InvalidRequestError`` for a request above the whole per-minute token limit."""
        prompt = body_bytes // 4
        tpm = self.limits.tpm
        if max_tokens is None:
            tokens = prompt + int(self.completion_guess)
            if tpm is not None and prompt < tpm:
                tokens = min(tokens, int(tpm))  # unknown length: wait for a full minute at most
        else:
            tokens = prompt + max_tokens
        if tpm is not None and tokens > tpm:
            raise InvalidRequestError(
                f"request too large: about {tokens:,} tokens (prompt estimate {prompt:,} + max_tokens "
                f"{max_tokens or 0:,}), more than the whole {NAMES[TPM]} limit of {tpm:,.0f} "
                f"({self.sources.get('tpm', 'configured')}); it would be refused with 413 and is "
                "not sent. Shorten the prompt or lower max_tokens.",
                provider=self.provider,
                model=self.model,
                code="request_too_large",
            )
        return tokens

    # -- the transport's side ----------------------------------------------------------------

    async def acquire(self, tokens: int) -> None:
        """Wait for a concurrency slot and for the buckets to cover one request of ``tokens``."""
        if self._concurrency is not None:
            await self._take_slot()
        if not self._rated:
            return
        try:
            await self._reserve(tokens)
        except BaseException:
            self.release()
            raise

    async def _reserve(self, tokens: int) -> None:
        amounts: Vector = (1.0, 1.0, float(tokens), float(tokens))
        cap = _defaults.MAX_RETRY_AFTER
        if self._local is not None:
            status, wait, kind, shift, mark = self._local.reserve(
                self._caps, self._rates, amounts, _defaults.RATE_LIMIT_MARGIN, cap
            )
        else:
            assert self._redis is not None
            status, wait, kind, shift, mark = await self._redis.reserve(
                self._caps, self._rates, amounts, _defaults.RATE_LIMIT_MARGIN, cap
            )
        if status == REFUSED:
            raise self._quota_error(kind, wait)
        if wait <= 0:
            return
        if kind == BLOCKED and wait > cap:
            await self._give_back(amounts)
            raise self._blocked_error(wait)
        if wait >= _defaults.RATE_LIMIT_NOTICE_AFTER and kind not in self._noticed:
            self._notice(kind, wait)
        try:
            if mark is not None:  # in process: re-read the go time on a short period
                local = self._local
                assert local is not None
                while wait > 0:
                    await asyncio.sleep(min(wait, _RECHECK))
                    wait = local.remaining(mark)
                return
            assert self._redis is not None
            while True:  # shared: one round trip per wake, to see a 429 from another process
                await asyncio.sleep(wait)
                now_shift = await self._redis.current_shift(self._caps, self._rates)
                if now_shift <= shift + 1e-9:
                    return
                wait, shift = now_shift - shift, now_shift  # a 429 since we queued: wait with everyone
        except asyncio.CancelledError:
            await asyncio.shield(self._give_back(amounts))
            raise

    async def _give_back(self, amounts: Vector) -> None:
        if self._local is not None:
            self._local.adjust(self._caps, self._rates, amounts)
        else:
            assert self._redis is not None
            await self._redis.adjust(self._caps, self._rates, amounts)

    async def observe(self, headers: Mapping[str, str]) -> None:
        """Learn from a response's ``x-ratelimit-*`` headers (every response, any status)."""
        kinds = self._header_kinds
        if kinds is None:
            return
        found = _pick(headers)
        limit_requests = found.get(_HEADER_NAMES[0])
        limit_tokens = found.get(_HEADER_NAMES[1])
        if limit_requests is None and limit_tokens is None:
            return
        if (limit_requests, limit_tokens) != self._seen_headers:
            self._learn(limit_requests, limit_tokens)
        if not self._rated:
            return
        targets: list[float | None] = [None, None, None, None]
        low = False
        for limit_text, remaining_text, kind in (
            (limit_requests, found.get(_HEADER_NAMES[2]), kinds[0]),
            (limit_tokens, found.get(_HEADER_NAMES[3]), kinds[1]),
        ):
            if limit_text is None or remaining_text is None or self._caps[kind] <= 0:
                continue
            try:
                server_limit, remaining = float(limit_text), float(remaining_text)
            except ValueError:
                continue
            # The server's count of what is used, against our (possibly budgeted) bucket.
            targets[kind] = self._caps[kind] - (server_limit - remaining)
            low = low or remaining < server_limit / 2
        if self._local is not None:
            self._local.sync(self._caps, self._rates, targets)
        elif low:  # a round trip only when it can matter
            assert self._redis is not None
            await self._redis.sync(self._caps, self._rates, targets)

    def _learn(self, limit_requests: str | None, limit_tokens: str | None) -> None:
        """New header limits: detect the plan (Groq reports a per-plan TPM), adopt the numbers."""
        self._seen_headers = (limit_requests, limit_tokens)
        assert self._header_kinds is not None
        reported: dict[int, float] = {}
        for text, kind in zip((limit_requests, limit_tokens), self._header_kinds, strict=True):
            if text is not None:
                try:
                    reported[kind] = float(text)
                except ValueError:
                    continue
        if not reported:
            return
        self._server.update(reported)
        plan = self._detect_plan(reported)
        if plan is not None and plan != self.plan and self._resolver is not None:
            logger.info(
                "%s %s: the server's limits are those of the %s plan, not %s; using them "
                "(set BOTTICELLI_%s_PLAN=%s to start with them)",
                self.provider,
                self.model,
                plan,
                self.plan,
                self.provider.upper(),
                plan,
            )
            self.plan = plan
            limits, sources = self._resolver(plan)
            self._configure(limits, sources)
        else:
            self._configure(self.limits, self.sources)

    def _detect_plan(self, reported: dict[int, float]) -> str | None:
        if not self._plans or self.plan in (None, "unlimited"):
            return None
        current = self._plans.get(self.plan or "")
        if current is not None and _matches(current, reported):
            return None
        for name, limits in self._plans.items():
            if _matches(limits, reported):
                return name
        return None

    async def rejected(self, error: ModelsError, tokens: int, delay: float) -> None:
        """A 413 or 429 came back for an attempt that reserved ``tokens``."""
        if error.status == 429:
            self.rate_limited += 1
        if error.status == 413:
            await self._give_back((1.0, 1.0, float(tokens), float(tokens)))
            return
        if not isinstance(error, RateLimitError) or not self._rated:
            return
        match = _SERVER_LIMIT.search(error.message)
        if match:
            kind = KINDS.index(match.group(1).lower())
            server = float(match.group(2))
            if self._caps[kind] <= 0 or server < (self.limits.limit(kind) or server + 1):
                self._server[kind] = server
                self._configure(self.limits, self.sources)
        if error.daily:
            kind = TPD if error.limit and "token" in error.limit.lower() else RPD
            if self._caps[kind] > 0:  # empty: every caller now fails fast with the reset time
                targets: list[float | None] = [None, None, None, None]
                targets[kind] = -self._rates[kind] * (error.retry_after or 0.0)
                if self._local is not None:
                    self._local.sync(self._caps, self._rates, targets)
                else:
                    assert self._redis is not None
                    await self._redis.sync(self._caps, self._rates, targets)
            return
        if self._local is not None:
            self._local.block(self._caps, self._rates, delay)
        else:
            assert self._redis is not None
            await self._redis.block(self._caps, self._rates, delay)

    # -- concurrency (per process) -----------------------------------------------------------

    async def _take_slot(self) -> None:
        limit = self._concurrency
        assert limit is not None
        with self._lock:
            if self._active < limit and not self._slot_waiters:
                self._active += 1
                return
            loop = asyncio.get_running_loop()
            future: asyncio.Future[None] = loop.create_future()
            self._slot_waiters.append((loop, future))
        try:
            await future
        except asyncio.CancelledError:
            with self._lock:
                handed = future.done() and not future.cancelled()
                if not handed:
                    self._slot_waiters = deque(w for w in self._slot_waiters if w[1] is not future)
            if handed:
                self.release()
            raise

    def release(self) -> None:
        """Free a concurrency slot (no-op without a concurrency limit)."""
        if self._concurrency is None:
            return
        with self._lock:
            while self._slot_waiters:
                loop, future = self._slot_waiters.popleft()
                if future.done() or loop.is_closed():
                    continue
                loop.call_soon_threadsafe(self._hand_over, future)
                return  # the slot passes to the waiter: _active unchanged
            self._active = max(0, self._active - 1)

    def _hand_over(self, future: asyncio.Future[None]) -> None:
        if future.done():  # cancelled meanwhile: pass the slot on
            with self._lock:
                self._active += 1
            self.release()
        else:
            future.set_result(None)

    # -- the driver's side -------------------------------------------------------------------

    async def settle(self, estimated: int, used: int | None, completion: int | None = None) -> None:
        """Replace the estimate by the usage the response reported; ``completion`` (for a
        request without max_tokens) teaches the next estimate."""
        if completion is not None:
            guess = max(float(completion), 0.8 * self.completion_guess + 0.2 * completion)
            if self._max_completion:
                guess = min(guess, float(self._max_completion))
            self.completion_guess = max(guess, 16.0)
        if used is None or not self._rated:
            return
        delta = float(estimated - used)
        if not delta:
            return
        deltas: Vector = (0.0, 0.0, delta, delta)
        if self._local is not None:
            self._local.adjust(self._caps, self._rates, deltas)
        else:
            assert self._redis is not None
            await self._redis.adjust(self._caps, self._rates, deltas)

    # -- telling people ----------------------------------------------------------------------

    def _notice(self, kind: int, wait: float) -> None:
        self._noticed.add(kind)
        where = f"{self.provider} {self.model}"
        if kind == BLOCKED:
            logger.warning(
                "waiting %.1f s for %s: the server answered 429 and asked to retry later; every "
                "caller sharing this limit waits with it",
                wait,
                where,
            )
            return
        name = NAMES[kind].rsplit(" (", 1)[0]
        limit = self.limits.limit(kind) or 0.0
        source = self.sources.get(KINDS[kind], "configured")
        budget = self.limits.budget[kind]
        share = f", {budget:.0%} budget" if budget < 1 else ""
        hint = ""
        if source == "free plan":
            hint = (
                f"; set BOTTICELLI_{self.provider.upper()}_PLAN=developer if your organisation is on "
                "the developer plan"
            )
        elif source.endswith(" plan"):
            hint = "; pass limits= or edit botticelli.toml to change it"
        logger.warning(
            "waiting %.1f s for %s: %s (%g, %s%s)%s", wait, where, name, limit, source, share, hint
        )

    def _quota_error(self, kind: int, wait: float) -> RateLimitError:
        limit = self.limits.limit(kind) or 0.0
        source = self.sources.get(KINDS[kind], "configured")
        at = time.strftime("%H:%M:%S", time.localtime(time.time() + wait))
        return RateLimitError(
            f"the {NAMES[kind]} quota of {limit:,.0f} ({source}) is used up: the next request fits in "
            f"{format_seconds(wait)} (at {at}); not sent. Quotas refill continuously over "
            f"{format_seconds(WINDOWS[kind] * self.limits.window_scale)}.",
            retry_after=wait,
            limit=NAMES[kind],
            daily=DAILY[kind],
            provider=self.provider,
            model=self.model,
            code="rate_limit_exceeded",
        )

    def _blocked_error(self, wait: float) -> RateLimitError:
        return RateLimitError(
            f"the server asked every caller to wait {format_seconds(wait)} (retry-after), longer "
            f"than botticelli waits ({_defaults.MAX_RETRY_AFTER:g} s); not sent.",
            retry_after=wait,
            provider=self.provider,
            model=self.model,
            code="rate_limit_exceeded",
        )

    def status(self) -> RateLimitStatus:
        """The limits, what is used and when each bucket is full again (Redis: one round trip)."""
        if self._local is not None:
            levels, blocked = self._local.peek(self._caps, self._rates)
        else:
            assert self._redis is not None
            levels, blocked = self._redis.peek(self._caps, self._rates)
        states = []
        for k, name in enumerate(KINDS):
            cap = self._caps[k]
            if cap <= 0:
                continue
            used = cap - levels[k]
            states.append(
                LimitState(
                    kind=name,
                    name=NAMES[k],
                    limit=cap,
                    server_limit=self.limits.limit(k) or cap,
                    used=max(0.0, used),
                    resets_in=max(0.0, used) / self._rates[k],
                    source=self.sources.get(name, "configured"),
                )
            )
        return RateLimitStatus(
            provider=self.provider,
            model=self.model,
            plan=self.plan,
            shared=self.shared,
            limits=tuple(states),
            concurrency=self._concurrency,
            in_flight=self._active,
            blocked_for=blocked,
            window_scale=self.limits.window_scale,
        )

    def __repr__(self) -> str:
        limits = ", ".join(f"{k}={v:g}" for k, v in zip(KINDS, self.limits.values(), strict=True) if v)
        return f"<Limiter {self.provider} {self.model} plan={self.plan} {limits} {self.shared}>"


def _pick(headers: Mapping[str, str]) -> Mapping[str, str]:
    """The ``x-ratelimit-*`` headers: from an ``httpx2.Headers`` one pass over the raw list (each
    of its lookups scans the whole list), from a plain dict the dict itself."""
    raw = getattr(headers, "raw", None)
    if raw is None:
        return headers
    return {
        k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw if k[:12].lower() == b"x-ratelimit-"
    }


def _matches(limits: PlanLimits, reported: dict[int, float]) -> bool:
    values = (limits.rpm, limits.rpd, limits.tpm, limits.tpd)
    return all(values[k] is not None and float(values[k]) == v for k, v in reported.items())  # type: ignore[arg-type]
