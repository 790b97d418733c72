"""Where the limiter's buckets live, behind one interface (``State``): in this process
(``InProcessState``, over ``buckets.LocalState``) or in Redis with the in-process buckets as the
fallback while Redis fails (``SharedState``, over ``redis_state.RedisState``). The limiter calls
only ``State``; it never asks which one it has.

Every call takes the limiter's current capacities and rates (``Vector``s, indexed as
``spec.KINDS``), so a change of limits keeps what was used and only moves the ceiling.

Redis degrade: every call to Redis is bounded (redis_state.py); on a failure ``SharedState`` logs
one warning, goes on with its in-process buckets and lets one caller try Redis again every
``REDIS_RETRY`` seconds; when Redis answers it logs that and shares again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from .. import _defaults
from ..errors import redact
from .buckets import LocalState, Mark, Vector
from .status import format_seconds

if TYPE_CHECKING:
    from .redis_state import RedisState

logger = logging.getLogger("botticelli.ratelimit")

#: Seconds between attempts to reach Redis again after a failure.
REDIS_RETRY = _defaults.REDIS_RETRY
#: How often an in-process sleeper re-reads its go time (refunds may have moved it earlier).
RECHECK = 0.1
#: The status note while Redis is down.
UNREACHABLE = "Redis unreachable, in-process limits"

#: Levels per kind, seconds a server block still lasts, and a note on how fresh they are.
Levels = tuple[list[float], float, str]


class Ticket:
    """A reservation: ``status`` (``buckets.OK`` or ``REFUSED``), the seconds to ``wait`` before
    going, the binding ``kind``; ``hold`` sleeps it out as the state it came from knows how."""

    __slots__ = ("kind", "status", "wait")

    def __init__(self, status: int, wait: float, kind: int) -> None:
        self.status, self.wait, self.kind = status, wait, kind

    async def hold(self, cap: float) -> None:
        """Sleep until the reservation may go (``cap``: the longest a server block may add)."""
        await asyncio.sleep(self.wait)


class State(Protocol):
    """The bucket operations a limiter needs; see buckets.py for their arithmetic."""

    @property
    def shared(self) -> str:
        """ "redis" while the buckets live in Redis, else "in-process" (also while it is down)."""
        ...

    async def reserve(
        self, caps: Vector, rates: Vector, amounts: Vector, margin: float, max_daily_wait: float
    ) -> Ticket: ...

    async def adjust(self, caps: Vector, rates: Vector, deltas: Vector) -> None: ...

    async def sync(
        self, caps: Vector, rates: Vector, targets: Sequence[float | None], *, urgent: bool = True
    ) -> None:
        """Lower levels to the server's counts; ``urgent=False``: only if that costs no round trip."""
        ...

    async def block(self, caps: Vector, rates: Vector, seconds: float) -> None: ...

    def peek(self, caps: Vector, rates: Vector) -> Levels:
        """Levels for a status display; never blocks an event loop."""
        ...

    async def apeek(self, caps: Vector, rates: Vector) -> Levels:
        """Levels read now (with Redis: one bounded round trip)."""
        ...

    def close(self) -> None: ...


class _LocalTicket(Ticket):
    __slots__ = ("_local", "_mark")

    def __init__(self, status: int, wait: float, kind: int, local: LocalState, mark: Mark | None) -> None:
        super().__init__(status, wait, kind)
        self._local, self._mark = local, mark

    async def hold(self, cap: float) -> None:
        mark, wait = self._mark, self.wait
        if mark is None:
            await asyncio.sleep(wait)
            return
        while wait > 0:  # refunds move the go time earlier, blocks later: re-read it
            await asyncio.sleep(min(wait, RECHECK))
            wait = self._local.remaining(mark)


class InProcessState:
    """The buckets in this process (``buckets.LocalState``), thread-safe."""

    __slots__ = ("local",)

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.local = LocalState(clock)

    @property
    def shared(self) -> str:
        return "in-process"

    async def reserve(
        self, caps: Vector, rates: Vector, amounts: Vector, margin: float, max_daily_wait: float
    ) -> Ticket:
        status, wait, kind, _, mark = self.local.reserve(caps, rates, amounts, margin, max_daily_wait)
        return _LocalTicket(status, wait, kind, self.local, mark)

    async def adjust(self, caps: Vector, rates: Vector, deltas: Vector) -> None:
        self.local.adjust(caps, rates, deltas)

    async def sync(
        self, caps: Vector, rates: Vector, targets: Sequence[float | None], *, urgent: bool = True
    ) -> None:
        self.local.sync(caps, rates, targets)

    async def block(self, caps: Vector, rates: Vector, seconds: float) -> None:
        self.local.block(caps, rates, seconds)

    def peek(self, caps: Vector, rates: Vector) -> Levels:
        levels, blocked = self.local.peek(caps, rates)
        return levels, blocked, ""

    async def apeek(self, caps: Vector, rates: Vector) -> Levels:
        return self.peek(caps, rates)

    def close(self) -> None:
        pass


class _SharedTicket(Ticket):
    __slots__ = ("_limits", "_owner", "_redis", "_shift")

    def __init__(
        self,
        status: int,
        wait: float,
        kind: int,
        owner: SharedState,
        redis: RedisState,
        shift: float,
        limits: tuple[Vector, Vector],
    ) -> None:
        super().__init__(status, wait, kind)
        self._owner, self._redis, self._shift, self._limits = owner, redis, shift, limits

    async def hold(self, cap: float) -> None:
        from .redis_state import SharedStateError

        wait, shift = self.wait, self._shift
        caps, rates = self._limits
        while True:  # one round trip per wake, to see a 429 another process got meanwhile
            await asyncio.sleep(wait)
            try:
                now_shift = await self._redis.current_shift(caps, rates)
            except SharedStateError as exc:
                self._owner.failed(exc)
                return
            if now_shift <= shift + 1e-9:
                return
            wait = min(now_shift - shift, cap)  # a 429 since we queued: wait with everyone
            shift = now_shift


class SharedState:
    """The buckets in Redis, shared by every process on the quota; the in-process ones (and a
    warning) while Redis fails. ``label`` names the limiter in log lines."""

    __slots__ = ("_fallback", "_redis", "_retry_at", "label")

    def __init__(self, redis: RedisState, label: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._redis = redis
        self._fallback = InProcessState(clock)
        self._retry_at: float | None = None  # set while Redis is failing
        self.label = label

    @property
    def shared(self) -> str:
        return "redis" if self._retry_at is None else "in-process"

    @property
    def url(self) -> str:
        return self._redis.url

    def _live(self) -> RedisState | None:
        """Redis unless known down; after a failure one caller per ``REDIS_RETRY`` seconds tries
        it again, the others use the in-process buckets."""
        retry_at = self._retry_at
        if retry_at is not None:
            now = time.monotonic()
            if now < retry_at:
                return None
            self._retry_at = now + REDIS_RETRY  # this caller probes; the others stay local
        return self._redis

    def failed(self, exc: Exception) -> None:
        first = self._retry_at is None
        self._retry_at = time.monotonic() + REDIS_RETRY
        if first:
            logger.warning(
                "shared rate limits: Redis at %s failed (%s); %s goes on with in-process limits "
                "(other processes on the key are not counted meanwhile) and tries Redis again "
                "every %g s",
                redact(self._redis.url),
                redact(str(exc) or type(exc).__name__),
                self.label,
                REDIS_RETRY,
            )

    def _answered(self) -> None:
        if self._retry_at is not None:
            self._retry_at = None
            logger.info(
                "shared rate limits: Redis at %s answers again; %s shares its limits again",
                redact(self._redis.url),
                self.label,
            )

    async def reserve(
        self, caps: Vector, rates: Vector, amounts: Vector, margin: float, max_daily_wait: float
    ) -> Ticket:
        redis = self._live()
        if redis is not None:
            from .redis_state import SharedStateError

            try:
                status, wait, kind, shift, _ = await redis.reserve(
                    caps, rates, amounts, margin, max_daily_wait
                )
            except SharedStateError as exc:
                self.failed(exc)
            else:
                self._answered()
                return _SharedTicket(status, wait, kind, self, redis, shift, (caps, rates))
        return await self._fallback.reserve(caps, rates, amounts, margin, max_daily_wait)

    async def _on_redis(self, call: Callable[[RedisState], Awaitable[None]]) -> bool:
        """Run ``call`` on Redis unless it is known down; ``False`` when the in-process buckets
        must do it instead (down, or this call failed)."""
        redis = self._live()
        if redis is None:
            return False
        from .redis_state import SharedStateError

        try:
            await call(redis)
        except SharedStateError as exc:
            self.failed(exc)
            return False
        self._answered()
        return True

    async def adjust(self, caps: Vector, rates: Vector, deltas: Vector) -> None:
        if not await self._on_redis(lambda redis: redis.adjust(caps, rates, deltas)):
            await self._fallback.adjust(caps, rates, deltas)

    async def sync(
        self, caps: Vector, rates: Vector, targets: Sequence[float | None], *, urgent: bool = True
    ) -> None:
        if not urgent and self._retry_at is None:
            return  # Redis in use, and this update is not worth a round trip
        if not await self._on_redis(lambda redis: redis.sync(caps, rates, targets)):
            await self._fallback.sync(caps, rates, targets)

    async def block(self, caps: Vector, rates: Vector, seconds: float) -> None:
        if not await self._on_redis(lambda redis: redis.block(caps, rates, seconds)):
            await self._fallback.block(caps, rates, seconds)

    def peek(self, caps: Vector, rates: Vector) -> Levels:
        """Inside an event loop: the shared state as the last call saw it (no round trip);
        outside one: read now with a short-lived client; while Redis is down: in-process."""
        if self._retry_at is None:
            try:
                asyncio.get_running_loop()
            except RuntimeError:  # no loop here: a blocking read is fine
                from .redis_state import SharedStateError

                try:
                    levels, blocked = self._redis.peek(caps, rates)
                except SharedStateError as exc:
                    self.failed(exc)
                else:
                    return levels, blocked, ""
            else:
                known = self._redis.last_known(caps, rates)
                if known is not None:
                    levels, blocked, age = known
                    return levels, blocked, f"shared state as of {format_seconds(age)} ago"
                levels, blocked, _ = self._fallback.peek(caps, rates)
                return levels, blocked, "shared state not read yet; await astatus()"
        levels, blocked, _ = self._fallback.peek(caps, rates)
        return levels, blocked, UNREACHABLE

    async def apeek(self, caps: Vector, rates: Vector) -> Levels:
        redis = self._live()
        if redis is not None:
            from .redis_state import SharedStateError

            try:
                levels, blocked, _ = await redis.apeek(caps, rates)
            except SharedStateError as exc:
                self.failed(exc)
            else:
                self._answered()
                return levels, blocked, ""
        levels, blocked, _ = self._fallback.peek(caps, rates)
        return levels, blocked, UNREACHABLE

    def close(self) -> None:
        self._redis.close()
