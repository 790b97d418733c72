"""``Limiter``: the object the transport consults before every attempt and informs after it.

A request flows through it like this (``Transport.send`` and the driver):

1. ``estimate_request`` (or ``estimate`` from body bytes): prompt tokens by script and a fixed
   cost per image (estimate.py) plus max_tokens. A request above the whole per-minute token
   limit is refused here, before sending, only when that limit is trusted: set by ``limits=`` or
   ``botticelli.toml``, the catalog of a plan that was chosen or confirmed by the headers, or a
   header value confirmed by several responses. Under a merely assumed plan it is sent.
2. ``acquire``: per attempt, a concurrency slot (slots.py, per process), then a reservation of
   one request and the estimated tokens in every bucket (state.py); sleeps until they are
   covered. A daily quota that cannot be met within ``MAX_RETRY_AFTER`` raises
   ``RateLimitError(daily=True)`` instead.
3. ``observe``: every response's rate-limit headers, read through the provider's
   ``RateLimitSchema`` and judged (learning.py); they correct the plan and limits and lower the
   buckets to what the server says is left.
4. ``rejected``: on a 429 the server's retry-after blocks every caller of this limiter (stopping
   the refill clock); a daily 429 empties the daily bucket so every caller fails fast; a 413
   gives the request count back. The limit a 429 names (``RateLimitError.limit_kind`` and
   ``limit_value``, read by the provider) is judged like a header's.
5. ``refund``: after every failed attempt (connection error, timeout, any non-2xx), after
   ``rejected``: the attempt's tokens come back; the server billed none.
6. ``release``: the concurrency slot, when the response is read (streams: when they end).
7. ``settle``: the driver swaps the estimate for the usage the response reports.

Audio seconds (ASH/ASD, speech-to-text models) are a separate budget of the same limiter, off the
request path: ``audio.py`` calls ``reserve_audio`` with an upload's billed seconds before sending
(one request and the seconds, reserved together against the model's RPM, RPD, ASH and ASD; it
waits, or refuses a file longer than the whole hourly limit, or fails fast on a daily quota),
``refund_audio`` when the call fails, and ``audio_rejected`` when the server's 429 names an
audio-seconds limit. A chat driver's uploads are counted by the speech model's limiter
(``for_model``), not by the chat model's.

Nothing the server says is believed blindly (learning.py); a reported usage is clamped to
[0, estimate + context window] and charges at most one bucket; a retry-after holds at most
``MAX_RETRY_AFTER`` (a day for a daily quota). So no single response can make anyone wait longer
than the windows allow. Nothing called after a response raises.

The limiter knows no wire format and no provider: only numbers, the provider's header schema, its
plans (``Plans``) and typed errors.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from .. import _defaults
from .._headers import NO_RATE_LIMITS, RateLimitSchema
from ..errors import InvalidRequestError, ModelsError, RateLimitError
from .buckets import BLOCKED, REFUSED, Vector
from .estimate import prompt_tokens
from .learning import ABSURD, CONFIRMATIONS, Learning
from .plans import ASSUMED, Plans
from .slots import Slots
from .spec import (
    ASD,
    ASH,
    AUDIO_KINDS,
    AUDIO_NAMES,
    AUDIO_WINDOWS,
    DAILY,
    KINDS,
    NAMES,
    RPD,
    RPM,
    TPD,
    TPM,
    WINDOWS,
    RateLimits,
)
from .state import InProcessState, State
from .status import LimitState, RateLimitStatus, format_seconds

if TYPE_CHECKING:
    from ..types import GenerateRequest

__all__ = ["ASSUMED", "CONFIRMATIONS", "Limiter", "Resolver"]

logger = logging.getLogger("botticelli.ratelimit")

#: Resolves a plan to (limits, source per kind); the limiter calls it again when the headers
#: reveal another plan.
Resolver = Callable[[str | None], tuple[RateLimits, dict[str, str]]]

#: Usage bound when the catalog knows neither context window nor max completion.
_DEFAULT_CONTEXT = 131_072


class Limiter:
    """Client-side rate limits of one (provider, organisation, model); see the module docstring.
    Made by ``limiter_for`` (registry.py), shared by every driver on the same key and model.

    ``schema``: which response headers mean what (``NO_RATE_LIMITS``: headers are ignored);
    ``plans``: the provider's plans (``None``: it has none); ``state``: where the buckets live
    (default: in this process, timed by ``clock``); ``audio_state``: where the audio-seconds
    buckets live (default: in this process)."""

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
        plans: Plans | None = None,
        schema: RateLimitSchema = NO_RATE_LIMITS,
        max_completion: int | None = None,
        context_window: int | None = None,
        state: State | None = None,
        audio_state: State | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.provider = provider
        self.model = model
        self.plan = plan
        #: "plan=", the plan's environment variable, "botticelli.toml", "server headers", or
        #: "default" (only assumed); ``None``: given directly, counts as chosen.
        self.plan_source = plan_source
        self.schema = schema
        self._resolver = resolver
        self._plans = plans
        self._max_completion = max_completion
        self._context_window = context_window
        self._state: State = state if state is not None else InProcessState(clock)
        self._audio_state = audio_state
        self._clock = clock
        #: The registry's look-up of another model's limiter on the same key (``for_model``).
        self.siblings: Callable[[str], Limiter | None] | None = None
        self._learning = Learning(
            schema, plans.table(model) if plans is not None else {}, f"{provider} {model}"
        )
        self._slots = Slots(limits.concurrency)
        self._noticed: set[int | str] = set()
        self.rate_limited = 0  # 429s the server sent despite us (another client on the same quota)
        self.completion_guess = float(_defaults.UNSET_MAX_TOKENS_ESTIMATE)
        if max_completion:
            self.completion_guess = min(self.completion_guess, float(max_completion))
        self._configure(limits, sources)

    # -- configuration ----------------------------------------------------------------------

    def _configure(self, limits: RateLimits, sources: dict[str, str]) -> None:
        values = list(limits.values())
        sources = dict(sources)
        for kind, server in self._learning.server.items():  # what the server said beats catalog guesses
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
        self._slots.limit = self.limits.concurrency
        self._audio_caps: Vector = self.limits.audio_capacities()
        self._audio_rates: Vector = self.limits.audio_rates()
        if self._audio_state is None and self.audio_limited:
            self._audio_state = InProcessState(self._clock)

    @property
    def rated(self) -> bool:
        """Whether any rate (not only concurrency) is limited: then a 429's wait is ours to keep."""
        return self._rated

    @property
    def audio_limited(self) -> bool:
        """Whether audio seconds per hour or per day are limited (a speech-to-text model): then
        uploads go through ``reserve_audio``."""
        return self._audio_caps[ASH] > 0 or self._audio_caps[ASD] > 0

    def for_model(self, model: str) -> Limiter | None:
        """The limiter of ``model`` on the same server, key, plan and Redis (this one for its own
        model; ``None`` when nothing limits that model, or this limiter was made by hand)."""
        if model == self.model:
            return self
        return self.siblings(model) if self.siblings is not None else None

    @property
    def shared(self) -> str:
        """ "redis" while the buckets live in Redis, else "in-process" (also while Redis is down)."""
        return self._state.shared

    @property
    def plan_assumed(self) -> bool:
        """The plan is only the default: not chosen anywhere, not confirmed by the server."""
        return self.plan is not None and self.plan_source == ASSUMED

    def plan_hint(self) -> str:
        """How to set the plan, for messages that name an assumed one."""
        if self._plans is None:
            return ""
        env = self._plans.env
        other = self._plans.alternative(self.plan)
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
        if source == "server headers" and not self._learning.known(TPM):
            # Only the server's word, with no catalog to check it against: pace by it, but let
            # the server itself refuse a request it thinks too large (it answers 413 if so).
            return False
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

    # -- the transport's side ----------------------------------------------------------------

    async def acquire(self, tokens: int) -> None:
        """Wait for a concurrency slot and for the buckets to cover one request of ``tokens``."""
        await self._slots.take()
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
        ticket = await self._state.reserve(self._caps, self._rates, amounts, _defaults.RATE_LIMIT_MARGIN, cap)
        if ticket.status == REFUSED:
            raise self._quota_error(ticket.kind, ticket.wait)
        wait, kind = ticket.wait, ticket.kind
        if wait <= 0:
            return
        if kind == BLOCKED and wait > cap:
            await self._state.adjust(self._caps, self._rates, amounts)
            raise self._blocked_error(wait)
        if wait >= _defaults.RATE_LIMIT_NOTICE_AFTER and kind not in self._noticed:
            self._notice(kind, wait)
        try:
            await ticket.hold(cap)
        except asyncio.CancelledError:
            await asyncio.shield(self._state.adjust(self._caps, self._rates, amounts))
            raise

    async def observe(self, headers: Mapping[str, str]) -> None:
        """Learn from a response's rate-limit headers (every response, any status), as the
        provider's schema names them. Values it cannot read or believe are ignored; it never
        raises."""
        try:
            await self._observe(headers)
        except Exception:
            logger.debug("%s %s: rate-limit headers ignored", self.provider, self.model, exc_info=True)

    async def _observe(self, headers: Mapping[str, str]) -> None:
        reported = self._learning.read(headers)
        if reported is None:
            return
        if reported.key != self._learning.seen:
            self._learn(reported.limits, reported.key)
        if not self._rated:
            return
        targets: list[float | None] = [None, None, None, None]
        low = False
        for kind, limit in reported.limits.items():
            self._learning.header_said[kind] = limit
            remaining = reported.remaining.get(kind)
            if remaining is None or self._caps[kind] <= 0:
                continue
            # The server's count of what is used, against our (possibly budgeted) bucket; never
            # below empty, so no header makes anyone wait longer than one window.
            targets[kind] = max(0.0, self._caps[kind] - (limit - remaining))
            low = low or remaining < limit / 2
        if any(t is not None for t in targets):
            # with Redis, a round trip only if it can matter
            await self._state.sync(self._caps, self._rates, targets, urgent=low)

    def _learn(self, reported: dict[int, float], key: tuple[str | None, ...]) -> None:
        """New header limits: detect the plan (the provider's plans say how), adopt the numbers
        a known plan has or several responses repeat."""
        learning = self._learning
        settled = True
        plan = None
        if self._plans is not None and reported:
            plan = self._plans.detect(reported, learning.table, self.plan)
        if plan is not None:
            learning.accept(reported)
            if plan != self.plan and self._resolver is not None:
                assert self._plans is not None
                logger.info(
                    "%s %s: the server's limits are those of the %s plan, not %s; using them "
                    "(set %s=%s to start with them)",
                    self.provider,
                    self.model,
                    plan,
                    f"{self.plan} (assumed)" if self.plan_assumed else self.plan,
                    self._plans.env,
                    plan,
                )
                self.plan = plan
                self.plan_source = "server headers"
                limits, sources = self._resolver(plan)
                self._configure(limits, sources)
                learning.seen = key
                return
            if plan == self.plan and self.plan_assumed:
                self.plan_source = "server headers"  # confirmed: now sure enough to refuse by
        else:
            for kind, value in reported.items():
                settled = learning.vote(kind, value, self.limits.limit(kind)) and settled
        self._configure(self.limits, self.sources)
        if settled:  # every readable value adopted: skip these strings from now on
            learning.seen = key

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
        named = _named_limit(error)
        if named is not None:
            kind, value = named
            # one vote per response: not again when this response's header said the same
            if self._learning.plausible(kind, value) and self._learning.header_said.get(kind) != value:
                self._learning.vote(kind, value, self.limits.limit(kind))
                self._configure(self.limits, self.sources)
        if not self._rated:
            return
        if error.status == 413:
            # the request count; ``refund``: the tokens
            await self._state.adjust(self._caps, self._rates, (1.0, 1.0, 0.0, 0.0))
            return
        if not isinstance(error, RateLimitError):
            return
        if error.daily:
            if _audio_kind(error) is not None:
                return  # audio seconds per day: no request bucket is gone (audio.py tells the budget)
            kind = _daily_kind(error, self._caps)
            if self._caps[kind] > 0:  # empty: every caller now fails fast with the reset time
                window = WINDOWS[kind] * self.limits.window_scale
                wait = _clamp(error.retry_after, 0.0, window)
                target = -self._rates[kind] * wait
                if kind == TPD:  # the refund that follows must not shorten the server's wait
                    target -= min(float(tokens), self._caps[kind])
                targets: list[float | None] = [None, None, None, None]
                targets[kind] = target
                await self._state.sync(self._caps, self._rates, targets)
            return
        seconds = _clamp(delay, 0.0, _defaults.MAX_RETRY_AFTER)
        if seconds > 0:
            await self._state.block(self._caps, self._rates, seconds)

    async def refund(self, tokens: int) -> None:
        """Give back the token reservation (not the request) of an attempt that failed: a
        connection error, a timeout, any non-2xx. The server billed no tokens for it. The
        transport calls it once per failed attempt, after ``rejected``. Never raises."""
        try:
            amount = float(_count(tokens))
            if amount <= 0 or not self._rated:
                return
            caps = self._caps
            await self._state.adjust(
                caps, self._rates, (0.0, 0.0, min(amount, caps[TPM]), min(amount, caps[TPD]))
            )
        except Exception:
            logger.debug("%s %s: refund not recorded", self.provider, self.model, exc_info=True)

    def release(self) -> None:
        """Free a concurrency slot (no-op without a concurrency limit). Never raises."""
        self._slots.release()

    # -- audio seconds (audio.py's side) ---------------------------------------------------------

    async def reserve_audio(self, seconds: float, *, exact: bool) -> float:
        """Wait until the audio budget covers one upload (one request of the model's RPM and RPD
        and ``seconds``, its billed seconds, of ASH and ASD) and reserve it; returns the seconds
        reserved, for ``refund_audio``. ``exact``: the length was
        read from the file's header, so a file longer than the whole hourly (or daily) limit is
        refused with ``InvalidRequestError`` before sending, when that limit is trusted; an
        estimate is never refused, and charges at most one bucket. A daily quota that cannot be
        met within ``MAX_RETRY_AFTER`` raises ``RateLimitError(daily=True)``. The wait is outside
        the driver's ``Timeout.total`` (that bounds the HTTP exchange): uploads queued beyond the
        hourly limit are meant to wait their turn, as long as the queue ahead of them needs."""
        caps = self._audio_caps
        state = self._audio_state
        if state is None or not (caps[ASH] > 0 or caps[ASD] > 0):
            return 0.0
        amount = _seconds(seconds)
        if exact:
            self._check_audio_size(amount)
        amounts: Vector = (1.0, 1.0, amount, amount)
        cap = _defaults.MAX_RETRY_AFTER
        ticket = await state.reserve(caps, self._audio_rates, amounts, _defaults.RATE_LIMIT_MARGIN, cap)
        if ticket.status == REFUSED:
            if ticket.kind == ASD:
                raise self._audio_quota_error(ticket.kind, ticket.wait)
            raise self._quota_error(ticket.kind, ticket.wait)  # requests per day
        if ticket.wait <= 0:
            return amount
        if ticket.wait >= _defaults.RATE_LIMIT_NOTICE_AFTER:
            self._notice_audio(ticket.kind, ticket.wait)
        try:
            await ticket.hold(cap)
        except asyncio.CancelledError:
            await asyncio.shield(self.refund_audio(amount))
            raise
        return amount

    async def refund_audio(self, seconds: float) -> None:
        """Give back an upload's reserved seconds: the call failed, the server billed none.
        Never raises."""
        try:
            amount = _seconds(seconds)
            caps, state = self._audio_caps, self._audio_state
            if amount <= 0 or state is None:
                return
            deltas: Vector = (0.0, 0.0, min(amount, caps[ASH]), min(amount, caps[ASD]))
            await state.adjust(
                caps, self._audio_rates, deltas
            )  # the request stays counted, as the transport's
        except Exception:
            logger.debug("%s %s: audio refund not recorded", self.provider, self.model, exc_info=True)

    async def audio_rejected(self, error: ModelsError) -> None:
        """The server's 429 named an audio-seconds limit (after ``refund_audio``): empty that
        bucket until its retry-after, so every caller here waits (hourly) or fails fast (daily)
        instead of asking again. Other errors are ignored; never raises."""
        try:
            kind = _audio_kind(error)
            state = self._audio_state
            if kind is None or state is None or self._audio_caps[kind] <= 0:
                return
            window = AUDIO_WINDOWS[kind - ASH] * self.limits.window_scale
            wait = _clamp(getattr(error, "retry_after", None), 0.0, window)
            targets: list[float | None] = [None, None, None, None]
            targets[kind] = -self._audio_rates[kind] * wait
            await state.sync(self._audio_caps, self._audio_rates, targets)
        except Exception:
            logger.debug("%s %s: audio 429 not recorded", self.provider, self.model, exc_info=True)

    def _notice_audio(self, kind: int, wait: float) -> None:
        """One warning per kind the first time an upload waits noticeably."""
        if kind in (RPM, RPD):
            if kind not in self._noticed:
                self._notice(kind, wait)
            return
        key = f"audio {kind}"
        if kind not in (ASH, ASD) or key in self._noticed:
            return
        self._noticed.add(key)
        logger.warning(
            "waiting %.1f s for %s %s: %s (%g, %s)",
            wait,
            self.provider,
            self.model,
            AUDIO_NAMES[kind - ASH].rsplit(" (", 1)[0],
            self._audio_limit(kind),
            self._audio_label(kind),
        )

    def _audio_limit(self, kind: int) -> float:
        return (self.limits.ash if kind == ASH else self.limits.asd) or 0.0

    def _audio_label(self, kind: int) -> str:
        source = self.sources.get(AUDIO_KINDS[kind - ASH], "configured")
        if self.plan_assumed and source == f"{self.plan} plan":
            return f"{source}, assumed"
        return source

    def _check_audio_size(self, seconds: float) -> None:
        for kind in (ASH, ASD):
            limit = self._audio_limit(kind)
            if not limit or seconds <= limit:
                continue
            source = self.sources.get(AUDIO_KINDS[kind - ASH], "")
            if _from_catalog(source) and self.plan_assumed:  # only assumed: the server decides
                if "audio size" not in self._noticed:
                    self._noticed.add("audio size")
                    logger.info(
                        "%s %s: %.0f s of audio, more than the %s limit of %s (%s); sent anyway, "
                        "the server decides; %s",
                        self.provider,
                        self.model,
                        seconds,
                        AUDIO_NAMES[kind - ASH],
                        f"{limit:,.0f}",
                        self._audio_label(kind),
                        self.plan_hint(),
                    )
                continue
            raise InvalidRequestError(
                f"audio too long: {seconds:,.0f} s, more than the whole {AUDIO_NAMES[kind - ASH]} limit "
                f"of {limit:,.0f} ({self._audio_label(kind)}); it cannot be transcribed in one request "
                "and is not sent. Split the file.",
                provider=self.provider,
                model=self.model,
                code="request_too_large",
            )

    def _audio_quota_error(self, kind: int, wait: float) -> RateLimitError:
        kind = kind if kind in (ASH, ASD) else ASD
        name = AUDIO_NAMES[kind - ASH]
        window = AUDIO_WINDOWS[kind - ASH] * self.limits.window_scale
        if not math.isfinite(wait):
            wait = 2 * window
        try:
            at = time.strftime("%H:%M:%S", time.localtime(time.time() + wait))
        except (OverflowError, OSError, ValueError):
            at = "later"
        return RateLimitError(
            f"the {name} quota of {self._audio_limit(kind):,.0f} ({self._audio_label(kind)}) is used "
            f"up: this file fits in {format_seconds(wait)} (at {at}); not sent. Quotas refill "
            f"continuously over {format_seconds(window)}.",
            retry_after=wait,
            limit=name,
            daily=kind == ASD,
            limit_kind=AUDIO_KINDS[kind - ASH],
            provider=self.provider,
            model=self.model,
            code="rate_limit_exceeded",
        )

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
            await self._state.adjust(self._caps, self._rates, (deltas[0], deltas[1], deltas[2], deltas[3]))

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
        elif self._plans is not None and source == f"{self._plans.default} plan":
            other = self._plans.alternative(self._plans.default)
            hint = f"; set {self._plans.env}={other} if your organisation is on the {other} plan"
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
        audio = None
        if self._audio_state is not None and self.audio_limited:
            audio = self._audio_state.peek(self._audio_caps, self._audio_rates)[0]
        return self._status(*self._state.peek(self._caps, self._rates), audio=audio)

    async def astatus(self) -> RateLimitStatus:
        """``status`` for async callers: with Redis, one bounded round trip for fresh numbers."""
        audio = None
        if self._audio_state is not None and self.audio_limited:
            audio = (await self._audio_state.apeek(self._audio_caps, self._audio_rates))[0]
        return self._status(*await self._state.apeek(self._caps, self._rates), audio=audio)

    def _status(
        self, levels: list[float], blocked: float, note: str, *, audio: list[float] | None = None
    ) -> RateLimitStatus:
        states = []
        for k, name in enumerate(KINDS):
            cap = self._caps[k]
            if cap <= 0:
                continue
            used = max(0.0, cap - levels[k])
            if audio is not None and k in (RPM, RPD) and self._audio_caps[k] > 0:
                used = max(used, cap - audio[k])  # uploads a chat driver sent count only there
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
        for k in (ASH, ASD):
            cap = self._audio_caps[k]
            if audio is None or cap <= 0:
                continue
            used = max(0.0, cap - audio[k])
            states.append(
                LimitState(
                    kind=AUDIO_KINDS[k - ASH],
                    name=AUDIO_NAMES[k - ASH],
                    limit=cap,
                    server_limit=self._audio_limit(k) or cap,
                    used=used,
                    resets_in=used / self._audio_rates[k],
                    source=self._audio_label(k),
                )
            )
        return RateLimitStatus(
            provider=self.provider,
            model=self.model,
            plan=self.plan,
            shared=self.shared,
            limits=tuple(states),
            concurrency=self._slots.limit,
            in_flight=self._slots.active,
            blocked_for=max(0.0, blocked),
            window_scale=self.limits.window_scale,
            plan_assumed=self.plan_assumed,
            plan_hint=self.plan_hint() if self.plan_assumed else "",
            note=note,
        )

    def close(self) -> None:
        """Close the Redis client, if any (a later call opens a new one)."""
        self._state.close()

    def __repr__(self) -> str:
        values = (*self.limits.values(), self.limits.ash, self.limits.asd)
        limits = ", ".join(f"{k}={v:g}" for k, v in zip(KINDS + AUDIO_KINDS, values, strict=True) if v)
        return f"<Limiter {self.provider} {self.model} plan={self.plan} {limits} {self.shared}>"


def _from_catalog(source: str) -> bool:
    """A limit from the catalog's numbers for a plan ("free plan", "developer plan")."""
    return source.endswith(" plan") or source.endswith(" plan, assumed")


def _named_limit(error: object) -> tuple[int, float] | None:
    """(kind, value) of the limit an error names (``limit_kind``, ``limit_value``, as the
    provider's error reading filled them), or ``None``."""
    name = getattr(error, "limit_kind", None)
    value = _number(getattr(error, "limit_value", None))
    if not isinstance(name, str) or name.lower() not in KINDS or value is None:
        return None
    return KINDS.index(name.lower()), value


def _audio_kind(error: object) -> int | None:
    """ASH or ASD when a 429 names an audio-seconds limit (its ``limit_kind``, else its text:
    Groq's wording is "... on audio seconds per hour (ASH): Limit 7200 ..."), else ``None``."""
    if getattr(error, "status", None) != 429 and not isinstance(error, RateLimitError):
        return None
    name = getattr(error, "limit_kind", None)
    if isinstance(name, str) and name.lower() in AUDIO_KINDS:
        return ASH if name.lower() == "ash" else ASD
    text = str(getattr(error, "message", "") or error)
    if "(ASH)" in text:
        return ASH
    if "(ASD)" in text:
        return ASD
    return None


def _daily_kind(error: RateLimitError, caps: Vector) -> int:
    """The daily bucket a daily 429 empties: the one it names, else requests per day when that
    is limited, else tokens per day."""
    name = error.limit_kind.lower() if isinstance(error.limit_kind, str) else ""
    if name in ("rpd", "tpd"):
        return KINDS.index(name)
    return RPD if caps[RPD] > 0 else TPD


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
    return int(min(max(number, 0.0), ABSURD)) if number is not None else 0


def _seconds(value: object) -> float:
    """Audio seconds to spend: a finite number >= 0, not rounded (anything else counts as 0)."""
    number = _number(value)
    return min(max(number, 0.0), ABSURD) if number is not None else 0.0


def _clamp(value: object, low: float, high: float) -> float:
    number = _number(value)
    return low if number is None else min(max(number, low), high)
