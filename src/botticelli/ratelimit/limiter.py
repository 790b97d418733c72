"""``Limiter``: the object the transport consults before every attempt and informs after it.

A request flows through it like this (``Transport.send`` and the driver):

1. ``estimate_request`` (or ``estimate`` from body bytes): prompt tokens by script and a fixed
   cost per image (estimate.py) plus max_tokens. A request above the whole per-minute token
   limit is refused here, before sending, only when that limit is trusted: set by ``limits=`` or
   ``botticelli.toml``, the catalog of a plan that was chosen or confirmed by the headers, or a
   header value confirmed by several responses. Under a merely assumed plan it is sent.
2. ``acquire``: per attempt, a concurrency slot (per process), then a reservation of one request
   and the estimated tokens in every bucket; sleeps until they are covered. A daily quota that
   cannot be met within ``MAX_RETRY_AFTER`` raises ``RateLimitError(daily=True)`` instead.
3. ``observe``: every response's ``x-ratelimit-*`` headers, sanity-checked (below); they correct
   the plan and limits and lower the buckets to what the server says is left.
4. ``rejected``: on a 429 the server's retry-after blocks every caller of this limiter (stopping
   the refill clock); a daily 429 empties the daily bucket so every caller fails fast; a 413
   gives the request count back.
5. ``refund``: after every failed attempt (connection error, timeout, any non-2xx), after
   ``rejected``: the attempt's tokens come back; the server billed none.
6. ``release``: the concurrency slot, when the response is read (streams: when they end).
7. ``settle``: the driver swaps the estimate for the usage the response reports.

Nothing the server says is believed blindly: a header that is not a finite integer >= 1 within
a factor of the catalog's values is ignored (logged at debug); a value that is no known plan's
needs ``CONFIRMATIONS`` identical responses; remaining counts are clamped into [0, limit]; a
reported usage is clamped to [0, estimate + context window] and charges at most one bucket; a
retry-after holds at most ``MAX_RETRY_AFTER`` (a day for a daily quota). So no single response
can make anyone wait longer than the windows allow. Nothing called after a response raises.

With Redis, every call is bounded; when one fails the limiter warns once, goes on with its
in-process buckets and tries Redis again every ``REDIS_RETRY`` seconds.

The limiter knows no wire format: only numbers, header names and typed errors.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from .. import _defaults
from ..errors import InvalidRequestError, ModelsError, RateLimitError, redact
from .buckets import BLOCKED, REFUSED, LocalState, Vector
from .estimate import prompt_tokens
from .spec import DAILY, KINDS, NAMES, RPD, TPD, TPM, WINDOWS, RateLimits
from .status import LimitState, RateLimitStatus, format_seconds

if TYPE_CHECKING:
    from ..catalog import PlanLimits
    from ..types import GenerateRequest
    from .redis_state import RedisState

logger = logging.getLogger("botticelli.ratelimit")

#: Resolves a plan to (limits, source per kind); the limiter calls it again when the headers
#: reveal another plan.
Resolver = Callable[[str | None], tuple[RateLimits, dict[str, str]]]

#: How often an in-process sleeper re-reads its go time (refunds may have moved it earlier).
_RECHECK = 0.1
#: Identical responses needed before a header limit that is no known plan's value is adopted.
CONFIRMATIONS = 3
#: A header limit is plausible within [smallest catalog value x LOW, largest x HIGH] for its kind
#: (any plan of the model); without catalog values within [1, ABSURD].
_LOW, _HIGH, _ABSURD = 0.01, 1000.0, 1e12
#: Seconds between attempts to reach Redis again after a failure.
REDIS_RETRY = 2.0
#: Usage bound when the catalog knows neither context window nor max completion.
_DEFAULT_CONTEXT = 131_072
_SERVER_LIMIT = re.compile(r"\(([RT]P[MD])\): Limit (\d+)")
_HEADER_NAMES = (
    "x-ratelimit-limit-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens",
)
_UNREACHABLE = "Redis unreachable, in-process limits"
#: Where a plan came from when nobody chose it (``resolve_plan``).
ASSUMED = "default"


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
        plan_source: str | None = None,
        resolver: Resolver | None = None,
        plans: Mapping[str, PlanLimits] | None = None,
        header_kinds: tuple[int, int] | None = None,
        max_completion: int | None = None,
        context_window: int | None = None,
        state: RedisState | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.provider = provider
        self.model = model
        self.plan = plan
        #: "plan=", "BOTTICELLI_GROQ_PLAN", "botticelli.toml", "server headers", or "default"
        #: (only assumed); ``None``: given directly, counts as chosen.
        self.plan_source = plan_source
        self._resolver = resolver
        self._plans = dict(plans or {})
        # Which buckets the two header families describe; Groq: requests = per day, tokens =
        # per minute (groq-wire.md §5.1). ``None``: the headers are not trusted for limits.
        self._header_kinds = header_kinds
        self._max_completion = max_completion
        self._context_window = context_window
        self._redis = state
        self._local = LocalState(clock)  # the buckets; with Redis, the fallback while it is down
        self._redis_retry_at: float | None = None  # set while Redis is failing
        self._lock = threading.Lock()
        self._slot_waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()
        self._active = 0
        self._noticed: set[int | str] = set()
        self._seen_headers: tuple[str | None, str | None] = (None, None)
        self._server: dict[int, float] = {}  # limits the server reported and we accepted
        self._votes: dict[int, tuple[float, int]] = {}  # kind -> (unconfirmed value, responses)
        self._header_said: dict[int, float] = {}  # the last header limit per kind
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
            if current is None or _from_catalog(sources.get(name, "")) or server < current:
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
        """ "redis" while the buckets live in Redis, else "in-process" (also while Redis is down)."""
        return "redis" if self._redis is not None and self._redis_retry_at is None else "in-process"

    @property
    def plan_assumed(self) -> bool:
        """The plan is only the default: not chosen anywhere, not confirmed by the server."""
        return self.plan is not None and self.plan_source == ASSUMED

    def plan_hint(self) -> str:
        """How to set the plan, for messages that name an assumed one."""
        env = f"BOTTICELLI_{self.provider.upper()}_PLAN"
        other = "developer" if self.plan != "developer" else "free"
        return (
            f"the {self.plan} plan is only assumed (no plan=, {env} or botticelli.toml): set "
            f"{env}={other} or pass plan={other!r} if your organisation is on the {other} plan"
        )

    def _label(self, kind: int) -> str:
        """Where a limit comes from, as messages and the status table show it."""
        source = self.sources.get(KINDS[kind], "configured")
        if self.plan_assumed and source == f"{self.plan} plan":
            return f"{source}, assumed"
        return source

    def _size_trusted(self) -> bool:
        """Whether the per-minute token limit is sure enough to refuse a request unsent."""
        source = self.sources.get("tpm", "")
        return not (_from_catalog(source) and self.plan_assumed)

    # -- estimates ----------------------------------------------------------------------------

    def estimate(self, body_bytes: int, max_tokens: int | None) -> int:
        """Tokens to reserve from the encoded body's size: bytes / 4 plus ``max_tokens`` (or the
        recent largest completions when unset). Prefer ``estimate_request``: this one counts
        base64 images as text. Raises ``InvalidRequestError`` for a request above the whole
        per-minute token limit, when that limit is trusted."""
        return self._total(max(0, int(body_bytes)) // 4, max_tokens)

    def estimate_request(self, request: GenerateRequest) -> int:
        """Tokens to reserve for ``request``: its prompt by script and input kind
        (``estimate.prompt_tokens``) plus max_tokens or the completion guess; the same refusal."""
        return self._total(prompt_tokens(request), request.max_tokens)

    def _total(self, prompt: int, max_tokens: int | None) -> int:
        tpm = self.limits.tpm
        if max_tokens is None:
            tokens = prompt + int(self.completion_guess)
            if tpm is not None and prompt < tpm:
                tokens = min(tokens, int(tpm))  # unknown length: wait for a full minute at most
        else:
            tokens = prompt + max(0, int(max_tokens))
        if tpm is None or tokens <= tpm:
            return tokens
        if self._size_trusted():
            raise InvalidRequestError(
                f"request too large: about {tokens:,} tokens (prompt estimate {prompt:,} + max_tokens "
                f"{max_tokens or 0:,}), more than the whole {NAMES[TPM]} limit of {tpm:,.0f} "
                f"({self._label(TPM)}); it would be refused with 413 and is not sent. Shorten the "
                "prompt or lower max_tokens.",
                provider=self.provider,
                model=self.model,
                code="request_too_large",
            )
        if "size" not in self._noticed:
            self._noticed.add("size")
            logger.info(
                "%s %s: about %s tokens, more than the %s limit of %s (%s); sent anyway, the server "
                "decides; %s",
                self.provider,
                self.model,
                f"{tokens:,}",
                NAMES[TPM],
                f"{tpm:,.0f}",
                self._label(TPM),
                self.plan_hint(),
            )
        return tokens

    # -- the state: Redis when it answers, else in process --------------------------------------

    def _live_redis(self) -> RedisState | None:
        """Redis when it is in use and not known down; after a failure one caller per
        ``REDIS_RETRY`` seconds tries it again, the others use the in-process buckets."""
        redis = self._redis
        if redis is None:
            return None
        retry_at = self._redis_retry_at
        if retry_at is not None:
            now = time.monotonic()
            if now < retry_at:
                return None
            self._redis_retry_at = now + REDIS_RETRY  # this caller probes; the others stay local
        return redis

    def _redis_failed(self, exc: Exception) -> None:
        first = self._redis_retry_at is None
        self._redis_retry_at = time.monotonic() + REDIS_RETRY
        if first:
            assert self._redis is not None
            logger.warning(
                "shared rate limits: Redis at %s failed (%s); %s %s goes on with in-process limits "
                "(other processes on the key are not counted meanwhile) and tries Redis again "
                "every %g s",
                redact(self._redis.url),
                redact(str(exc) or type(exc).__name__),
                self.provider,
                self.model,
                REDIS_RETRY,
            )

    def _redis_answered(self) -> None:
        if self._redis_retry_at is not None:
            self._redis_retry_at = None
            assert self._redis is not None
            logger.info(
                "shared rate limits: Redis at %s answers again; %s %s shares its limits again",
                redact(self._redis.url),
                self.provider,
                self.model,
            )

    async def _adjust(self, deltas: Vector) -> None:
        redis = self._live_redis()
        if redis is not None:
            from .redis_state import SharedStateError

            try:
                await redis.adjust(self._caps, self._rates, deltas)
            except SharedStateError as exc:
                self._redis_failed(exc)
            else:
                self._redis_answered()
                return
        self._local.adjust(self._caps, self._rates, deltas)

    async def _sync(self, targets: list[float | None], *, round_trip: bool = True) -> None:
        if not round_trip and self._redis is not None and self._redis_retry_at is None:
            return  # Redis in use, and this update is not worth a round trip
        redis = self._live_redis()
        if redis is not None:
            from .redis_state import SharedStateError

            try:
                await redis.sync(self._caps, self._rates, targets)
            except SharedStateError as exc:
                self._redis_failed(exc)
            else:
                self._redis_answered()
                return
        self._local.sync(self._caps, self._rates, targets)

    async def _block(self, seconds: float) -> None:
        redis = self._live_redis()
        if redis is not None:
            from .redis_state import SharedStateError

            try:
                await redis.block(self._caps, self._rates, seconds)
            except SharedStateError as exc:
                self._redis_failed(exc)
            else:
                self._redis_answered()
                return
        self._local.block(self._caps, self._rates, seconds)

    # -- the transport's side ----------------------------------------------------------------

    async def acquire(self, tokens: int) -> None:
        """Wait for a concurrency slot and for the buckets to cover one request of ``tokens``."""
        if self._concurrency is not None:
            await self._take_slot()
        if not self._rated:
            return
        try:
            await self._reserve(_count(tokens))
        except BaseException:
            self.release()
            raise

    async def _reserve(self, tokens: int) -> None:
        amounts: Vector = (1.0, 1.0, float(tokens), float(tokens))
        cap = _defaults.MAX_RETRY_AFTER
        margin = _defaults.RATE_LIMIT_MARGIN
        redis = self._live_redis()
        verdict = None
        if redis is not None:
            from .redis_state import SharedStateError

            try:
                verdict = await redis.reserve(self._caps, self._rates, amounts, margin, cap)
            except SharedStateError as exc:
                self._redis_failed(exc)
            else:
                self._redis_answered()
        if verdict is None:
            redis = None
            verdict = self._local.reserve(self._caps, self._rates, amounts, margin, cap)
        status, wait, kind, shift, mark = verdict
        if status == REFUSED:
            raise self._quota_error(kind, wait)
        if wait <= 0:
            return
        if kind == BLOCKED and wait > cap:
            await self._adjust(amounts)
            raise self._blocked_error(wait)
        if wait >= _defaults.RATE_LIMIT_NOTICE_AFTER and kind not in self._noticed:
            self._notice(kind, wait)
        try:
            if redis is None:  # in process: re-read the go time on a short period
                if mark is None:
                    await asyncio.sleep(wait)
                    return
                while wait > 0:
                    await asyncio.sleep(min(wait, _RECHECK))
                    wait = self._local.remaining(mark)
                return
            from .redis_state import SharedStateError

            while True:  # shared: one round trip per wake, to see a 429 from another process
                await asyncio.sleep(wait)
                try:
                    now_shift = await redis.current_shift(self._caps, self._rates)
                except SharedStateError as exc:
                    self._redis_failed(exc)
                    return
                if now_shift <= shift + 1e-9:
                    return
                # a 429 since we queued: wait with everyone (at most one block's length)
                wait = min(now_shift - shift, cap)
                shift = now_shift
        except asyncio.CancelledError:
            await asyncio.shield(self._adjust(amounts))
            raise

    async def observe(self, headers: Mapping[str, str]) -> None:
        """Learn from a response's ``x-ratelimit-*`` headers (every response, any status).
        Values it cannot read or believe are ignored; it never raises."""
        try:
            await self._observe(headers)
        except Exception:
            logger.debug("%s %s: rate-limit headers ignored", self.provider, self.model, exc_info=True)

    async def _observe(self, headers: Mapping[str, str]) -> None:
        kinds = self._header_kinds
        if kinds is None:
            return
        found = _pick(headers)
        texts = [found.get(name) for name in _HEADER_NAMES]
        if texts[0] is None and texts[1] is None:
            return
        said = (self._header_limit(texts[0], kinds[0]), self._header_limit(texts[1], kinds[1]))
        if (texts[0], texts[1]) != self._seen_headers:
            self._learn(texts[0], texts[1], said)
        if not self._rated:
            return
        targets: list[float | None] = [None, None, None, None]
        low = False
        for limit, remaining_text, kind in ((said[0], texts[2], kinds[0]), (said[1], texts[3], kinds[1])):
            if limit is None:
                continue
            self._header_said[kind] = limit
            if remaining_text is None or self._caps[kind] <= 0:
                continue
            remaining = _number(remaining_text)
            if remaining is None:
                logger.debug("%s: unreadable remaining count %r ignored", self.model, remaining_text)
                continue
            remaining = min(max(remaining, 0.0), limit)
            # The server's count of what is used, against our (possibly budgeted) bucket; never
            # below empty, so no header makes anyone wait longer than one window.
            targets[kind] = max(0.0, self._caps[kind] - (limit - remaining))
            low = low or remaining < limit / 2
        if any(t is not None for t in targets):
            await self._sync(targets, round_trip=low)  # with Redis, a round trip only if it can matter

    def _header_limit(self, text: str | None, kind: int) -> float | None:
        """A header limit as a number, or ``None`` when absent, unreadable or implausible."""
        if text is None:
            return None
        value = _number(text)
        if value is None or not self._plausible(kind, value):
            logger.debug("%s: implausible %s limit %r ignored", self.model, KINDS[kind], text)
            return None
        return value

    def _plausible(self, kind: int, value: float) -> bool:
        if value < 1 or value != math.floor(value):
            return False
        known = self._known(kind)
        if not known:
            return value <= _ABSURD
        return min(known) * _LOW <= value <= max(known) * _HIGH

    def _known(self, kind: int) -> set[float]:
        """The catalog's values for ``kind`` over every plan of the model."""
        name = KINDS[kind]
        return {float(v) for p in self._plans.values() if (v := getattr(p, name)) is not None}

    def _learn(
        self, text_requests: str | None, text_tokens: str | None, said: tuple[float | None, ...]
    ) -> None:
        """New header limits: detect the plan (Groq reports a per-plan TPM), adopt the numbers a
        known plan has or several responses repeat."""
        assert self._header_kinds is not None
        reported = {k: v for v, k in zip(said, self._header_kinds, strict=True) if v is not None}
        settled = True
        plan = self._detect_plan(reported) if reported else None
        if plan is not None:
            self._server.update(reported)
            for kind in reported:  # a response that disagrees starts any count again
                self._votes.pop(kind, None)
            if plan != self.plan and self._resolver is not None:
                logger.info(
                    "%s %s: the server's limits are those of the %s plan, not %s; using them "
                    "(set BOTTICELLI_%s_PLAN=%s to start with them)",
                    self.provider,
                    self.model,
                    plan,
                    f"{self.plan} (assumed)" if self.plan_assumed else self.plan,
                    self.provider.upper(),
                    plan,
                )
                self.plan = plan
                self.plan_source = "server headers"
                limits, sources = self._resolver(plan)
                self._configure(limits, sources)
                self._seen_headers = (text_requests, text_tokens)
                return
            if plan == self.plan and self.plan_assumed:
                self.plan_source = "server headers"  # confirmed: now sure enough to refuse by
        else:
            for kind, value in reported.items():
                settled = self._vote(kind, value) and settled
        self._configure(self.limits, self.sources)
        if settled:  # every readable value adopted: skip these strings from now on
            self._seen_headers = (text_requests, text_tokens)

    def _vote(self, kind: int, value: float) -> bool:
        """One response says ``kind``'s limit is ``value``: adopt it at once when a plan of the
        catalog has it (or it is ours already), else once ``CONFIRMATIONS`` responses in a row
        said the same. Returns whether it is adopted."""
        if self._server.get(kind) == value or value == self.limits.limit(kind) or value in self._known(kind):
            self._server[kind] = value
            self._votes.pop(kind, None)
            return True
        previous, count = self._votes.get(kind, (None, 0))
        count = count + 1 if previous == value else 1
        if count < CONFIRMATIONS:
            self._votes[kind] = (value, count)
            return False
        self._votes.pop(kind, None)
        self._server[kind] = value
        logger.info(
            "%s %s: %s limit %g confirmed by %d responses; using it",
            self.provider,
            self.model,
            NAMES[kind],
            value,
            count,
        )
        return True

    def _detect_plan(self, reported: dict[int, float]) -> str | None:
        """The catalog plan whose values are exactly the reported ones (the current plan first)."""
        if not self._plans or self.plan in (None, "unlimited"):
            return None
        current = self._plans.get(self.plan or "")
        if current is not None and _matches(current, reported):
            return self.plan
        for name, limits in self._plans.items():
            if _matches(limits, reported):
                return name
        return None

    async def rejected(self, error: ModelsError, tokens: int, delay: float) -> None:
        """A 413 or 429 came back for an attempt that reserved ``tokens`` (``refund`` gives the
        tokens back afterwards). Never raises."""
        try:
            await self._rejected(error, _count(tokens), delay)
        except Exception:
            logger.debug("%s %s: rejection not recorded", self.provider, self.model, exc_info=True)

    async def _rejected(self, error: ModelsError, tokens: int, delay: float) -> None:
        if error.status == 429:
            self.rate_limited += 1
        match = _SERVER_LIMIT.search(error.message or "")
        if match:
            kind = KINDS.index(match.group(1).lower())
            value = float(match.group(2))
            # one vote per response: not again when this response's header said the same
            if self._plausible(kind, value) and self._header_said.get(kind) != value:
                self._vote(kind, value)
                self._configure(self.limits, self.sources)
        if not self._rated:
            return
        if error.status == 413:
            await self._adjust((1.0, 1.0, 0.0, 0.0))  # the request count; ``refund``: the tokens
            return
        if not isinstance(error, RateLimitError):
            return
        if error.daily:
            kind = TPD if error.limit and "token" in error.limit.lower() else RPD
            if self._caps[kind] > 0:  # empty: every caller now fails fast with the reset time
                window = WINDOWS[kind] * self.limits.window_scale
                wait = _clamp(error.retry_after, 0.0, window)
                target = -self._rates[kind] * wait
                if kind == TPD:  # the refund that follows must not shorten the server's wait
                    target -= min(float(tokens), self._caps[kind])
                targets: list[float | None] = [None, None, None, None]
                targets[kind] = target
                await self._sync(targets)
            return
        seconds = _clamp(delay, 0.0, _defaults.MAX_RETRY_AFTER)
        if seconds > 0:
            await self._block(seconds)

    async def refund(self, tokens: int) -> None:
        """Give back the token reservation (not the request) of an attempt that failed: a
        connection error, a timeout, any non-2xx. The server billed no tokens for it. The
        transport calls it once per failed attempt, after ``rejected``. Never raises."""
        try:
            amount = float(_count(tokens))
            if amount <= 0 or not self._rated:
                return
            caps = self._caps
            await self._adjust((0.0, 0.0, min(amount, caps[TPM]), min(amount, caps[TPD])))
        except Exception:
            logger.debug("%s %s: refund not recorded", self.provider, self.model, exc_info=True)

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
        """Free a concurrency slot (no-op without a concurrency limit). Never raises."""
        if self._concurrency is None:
            return
        try:
            with self._lock:
                while self._slot_waiters:
                    loop, future = self._slot_waiters.popleft()
                    if future.done() or loop.is_closed():
                        continue
                    try:
                        loop.call_soon_threadsafe(self._hand_over, future)
                    except RuntimeError:  # the loop closed meanwhile: try the next waiter
                        continue
                    return  # the slot passes to the waiter: _active unchanged
                self._active = max(0, self._active - 1)
        except Exception:
            logger.debug("%s %s: release failed", self.provider, self.model, exc_info=True)

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
        request without max_tokens) teaches the next estimate. Implausible numbers are clamped
        (at most the estimate plus the model's context window, never negative). Never raises."""
        try:
            await self._settle(_count(estimated), used, completion)
        except Exception:
            logger.debug("%s %s: usage not settled", self.provider, self.model, exc_info=True)

    async def _settle(self, estimated: int, used: int | None, completion: int | None) -> None:
        bound = float(self._context_window or self._max_completion or _DEFAULT_CONTEXT)
        reported = _number(completion)
        if reported is not None:
            reported = min(max(reported, 0.0), float(self._max_completion or bound))
            guess = max(reported, 0.8 * self.completion_guess + 0.2 * reported)
            if self._max_completion:
                guess = min(guess, float(self._max_completion))
            self.completion_guess = max(guess, 16.0)
        spent = _number(used)
        if spent is None or not self._rated:
            return
        spent = min(max(spent, 0.0), estimated + bound)
        # Per bucket, as ``reserve`` charged it: at most its capacity, so one request's usage,
        # however large, never costs more than one window of waiting.
        deltas = [0.0, 0.0, 0.0, 0.0]
        for kind in (TPM, TPD):
            cap = self._caps[kind]
            if cap > 0:
                deltas[kind] = min(float(estimated), cap) - min(spent, cap)
        if deltas[TPM] or deltas[TPD]:
            await self._adjust((deltas[0], deltas[1], deltas[2], deltas[3]))

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
        if self.plan_assumed and _from_catalog(source):
            hint = "; " + self.plan_hint()
        elif source == "free plan":
            hint = (
                f"; set BOTTICELLI_{self.provider.upper()}_PLAN=developer if your organisation is on "
                "the developer plan"
            )
        elif _from_catalog(source):
            hint = "; pass limits= or edit botticelli.toml to change it"
        logger.warning(
            "waiting %.1f s for %s: %s (%g, %s%s)%s", wait, where, name, limit, self._label(kind), share, hint
        )

    def _quota_error(self, kind: int, wait: float) -> RateLimitError:
        limit = self.limits.limit(kind) or 0.0
        window = WINDOWS[kind] * self.limits.window_scale
        if not math.isfinite(wait):
            wait = 2 * window
        try:
            at = time.strftime("%H:%M:%S", time.localtime(time.time() + wait))
        except (OverflowError, OSError, ValueError):
            at = "later"
        hint = f" ({self.plan_hint()})" if self.plan_assumed and _from_catalog(self._label(kind)) else ""
        return RateLimitError(
            f"the {NAMES[kind]} quota of {limit:,.0f} ({self._label(kind)}) is used up: the next request "
            f"fits in {format_seconds(wait)} (at {at}); not sent. Quotas refill continuously over "
            f"{format_seconds(window)}.{hint}",
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
        """The limits, what is used and when each bucket is full again. Never blocks an event
        loop: with Redis and a loop running in this thread it shows the shared state as the last
        call saw it (``astatus`` reads it fresh); without a loop it reads it with a short-lived
        client and short timeouts."""
        redis = self._redis
        if redis is not None and self._redis_retry_at is None:
            try:
                asyncio.get_running_loop()
            except RuntimeError:  # no loop here: a blocking read is fine
                from .redis_state import SharedStateError

                try:
                    levels, blocked = redis.peek(self._caps, self._rates)
                except SharedStateError as exc:
                    self._redis_failed(exc)
                else:
                    return self._status(levels, blocked, "")
            else:
                known = redis.last_known(self._caps, self._rates)
                if known is not None:
                    levels, blocked, age = known
                    return self._status(levels, blocked, f"shared state as of {format_seconds(age)} ago")
                levels, blocked = self._local.peek(self._caps, self._rates)
                return self._status(levels, blocked, "shared state not read yet; await astatus()")
        levels, blocked = self._local.peek(self._caps, self._rates)
        return self._status(levels, blocked, _UNREACHABLE if redis is not None else "")

    async def astatus(self) -> RateLimitStatus:
        """``status`` for async callers: with Redis, one bounded round trip for fresh numbers."""
        redis = self._live_redis()
        if redis is not None:
            from .redis_state import SharedStateError

            try:
                levels, blocked, _ = await redis.apeek(self._caps, self._rates)
            except SharedStateError as exc:
                self._redis_failed(exc)
            else:
                self._redis_answered()
                return self._status(levels, blocked, "")
        levels, blocked = self._local.peek(self._caps, self._rates)
        return self._status(levels, blocked, _UNREACHABLE if self._redis is not None else "")

    def _status(self, levels: list[float], blocked: float, note: str) -> RateLimitStatus:
        states = []
        for k, name in enumerate(KINDS):
            cap = self._caps[k]
            if cap <= 0:
                continue
            used = max(0.0, cap - levels[k])
            states.append(
                LimitState(
                    kind=name,
                    name=NAMES[k],
                    limit=cap,
                    server_limit=self.limits.limit(k) or cap,
                    used=used,
                    resets_in=used / self._rates[k],
                    source=self._label(k),
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
            blocked_for=max(0.0, blocked),
            window_scale=self.limits.window_scale,
            plan_assumed=self.plan_assumed,
            plan_hint=self.plan_hint() if self.plan_assumed else "",
            note=note,
        )

    def close(self) -> None:
        """Close the Redis client, if any (a later call opens a new one)."""
        if self._redis is not None:
            self._redis.close()

    def __repr__(self) -> str:
        limits = ", ".join(f"{k}={v:g}" for k, v in zip(KINDS, self.limits.values(), strict=True) if v)
        return f"<Limiter {self.provider} {self.model} plan={self.plan} {limits} {self.shared}>"


def _from_catalog(source: str) -> bool:
    """A limit from the catalog's numbers for a plan ("free plan", "developer plan")."""
    return source.endswith(" plan") or source.endswith(" plan, assumed")


def _number(value: object) -> float | None:
    """A finite number from a header string or a count, else ``None``."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value.strip() if isinstance(value, str) else value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _count(value: object) -> int:
    """A token count to spend: a finite number >= 0 (anything else counts as 0)."""
    number = _number(value)
    return int(min(max(number, 0.0), _ABSURD)) if number is not None else 0


def _clamp(value: object, low: float, high: float) -> float:
    number = _number(value)
    return low if number is None else min(max(number, low), high)


def _pick(headers: Mapping[str, str]) -> Mapping[str, str]:
    """The ``x-ratelimit-*`` headers, names in lower case: from an ``httpx2.Headers`` one pass
    over the raw list (each of its lookups scans the whole list), from a mapping its items."""
    raw = getattr(headers, "raw", None)
    if raw is None:
        return {str(k).lower(): str(v) for k, v in headers.items() if str(k)[:12].lower() == "x-ratelimit-"}
    return {
        k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw if k[:12].lower() == b"x-ratelimit-"
    }


def _matches(limits: PlanLimits, reported: dict[int, float]) -> bool:
    values = (limits.rpm, limits.rpd, limits.tpm, limits.tpd)
    return all(values[k] is not None and float(values[k]) == v for k, v in reported.items())  # type: ignore[arg-type]
