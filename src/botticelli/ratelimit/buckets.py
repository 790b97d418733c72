"""The limiter's arithmetic, in process: one continuously refilling bucket per limit kind, spent
by *reservation*.

Groq's reset headers fit buckets of ``capacity = limit`` refilling at ``limit / window``
(groq-wire.md §5.1), so the client models the same. A request reserves its amounts at once and
is told how long to wait until every bucket covers it; levels may go negative, which is what
queues later callers behind earlier ones in order (FIFO, one computation per request, no
thundering herd of sleepers re-checking).

Giving tokens back (an estimate above the real usage) moves every queued threshold earlier, so
in-process sleepers wake on a short period and re-read their go time (``remaining``): queued work
profits from settled estimates as the server's own admission does.

A server 429 with ``retry-after`` *stops the clock*: refills are suspended until the block ends
and ``shift`` grows by the block's length, so sleepers holding a reservation wake, see the shift
and wait that much longer, and the whole queue resumes at the allowed rate instead of bursting.

``RedisState`` (redis_state.py) runs the same arithmetic in a Lua script; keep them in step.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from .spec import DAILY

Clock = Callable[[], float]
Vector = tuple[float, float, float, float]

#: ``reserve`` results: (status, wait seconds, binding kind, shift, mark). Status OK: reserved,
#: wait then go; REFUSED: a daily bucket would need longer than allowed, nothing was reserved,
#: and ``wait`` says when it fits. Kind BLOCKED: the wait is a server's retry-after. ``mark``
#: (in-process only) lets ``remaining`` recompute the wait as refunds and blocks arrive.
OK, REFUSED = 0, 1
NONE, BLOCKED = -1, 4
Mark = tuple[float, tuple[float, ...], tuple[float, ...], float]
Verdict = tuple[int, float, int, float, Mark | None]


class LocalState:
    """Bucket levels of one limiter in this process; thread-safe (drivers may run on several
    event loops). Every method takes the current capacities and rates, so a change of limits
    (plan detected from headers) keeps what was used and only moves the ceiling."""

    __slots__ = ("_blocked", "_caps", "_clock", "_credit", "_levels", "_lock", "_rates", "_shift", "_stamps")

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._levels: list[float | None] = [None, None, None, None]
        self._stamps = [0.0, 0.0, 0.0, 0.0]
        self._caps = [0.0, 0.0, 0.0, 0.0]
        self._rates: Vector = (0.0, 0.0, 0.0, 0.0)
        self._credit = [0.0, 0.0, 0.0, 0.0]  # everything ever given back, per kind
        self._blocked = 0.0
        self._shift = 0.0

    def _refill(self, k: int, cap: float, rate: float, now: float) -> float:
        level = self._levels[k]
        if level is None:  # first use: a full bucket, as the server starts
            level = cap
            self._stamps[k] = now
        elif cap != self._caps[k]:  # new ceiling, same amount used
            level = min(cap, level + cap - self._caps[k])
        stamp = self._stamps[k]
        if now > stamp:
            level = min(cap, level + (now - stamp) * rate)
            self._stamps[k] = now
        self._caps[k] = cap
        self._levels[k] = level
        return level

    def reserve(
        self, caps: Vector, rates: Vector, amounts: Vector, margin: float, max_daily_wait: float
    ) -> Verdict:
        """Reserve ``amounts``; see the module docstring for the verdict."""
        with self._lock:
            now = self._clock()
            wait = max(self._blocked - now, 0.0)
            binding = BLOCKED if wait > 0 else NONE
            waits = [0.0, 0.0, 0.0, 0.0]
            for k in range(4):
                cap = caps[k]
                if cap <= 0:
                    continue
                rate = rates[k]
                level = self._refill(k, cap, rate, now)
                amount = min(amounts[k], cap)
                need = (amount - level) / rate + margin
                ahead = self._stamps[k] - now  # > 0 while a block suspends refills
                w = ahead + need if need > 0 else max(ahead, 0.0)
                waits[k] = w
                if w > wait:
                    wait, binding = w, k
            for k in (1, 3):
                if DAILY[k] and caps[k] > 0 and waits[k] > max_daily_wait:
                    return REFUSED, waits[k], k, self._shift, None
            for k in range(4):
                if caps[k] > 0:
                    self._levels[k] -= min(amounts[k], caps[k])  # type: ignore[operator]
            self._rates = rates
            if wait <= 0:
                return OK, 0.0, binding, self._shift, None
            mark = (now, tuple(waits), tuple(self._credit), self._shift)
            return OK, wait, binding, self._shift, mark

    def remaining(self, mark: Mark) -> float:
        """Seconds a reservation made at ``mark`` still waits: its go time per bucket, earlier by
        what was given back since, later by any server block since."""
        with self._lock:
            now = self._clock()
            start, waits, credit, shift = mark
            go = 0.0
            for k in range(4):
                rate = self._rates[k]
                if rate > 0 and waits[k] > 0:
                    go = max(go, start + waits[k] - (self._credit[k] - credit[k]) / rate)
            go += self._shift - shift
            return max(go, self._blocked) - now

    def adjust(self, caps: Vector, rates: Vector, deltas: Vector) -> None:
        """Add ``deltas`` to the levels: positive gives back (estimate above usage, a failed
        attempt), negative charges more (usage above the estimate). A charge can empty a bucket
        but never puts it in debt (only queued reservations do): however wrong a reported usage,
        the next request waits at most one window for it."""
        with self._lock:
            now = self._clock()
            for k in range(4):
                delta = deltas[k]
                if caps[k] > 0 and delta:
                    level = self._refill(k, caps[k], rates[k], now)
                    if delta > 0:
                        self._levels[k] = min(caps[k], level + delta)
                        self._credit[k] += delta
                    else:
                        self._levels[k] = max(level + delta, min(level, 0.0))

    def sync(self, caps: Vector, rates: Vector, targets: Sequence[float | None]) -> None:
        """Lower levels to what the server reports as remaining (another process, another tool
        on the same key); never raise them: our own reservations in flight are not in its count."""
        with self._lock:
            now = self._clock()
            for k in range(4):
                target = targets[k]
                if target is not None and caps[k] > 0:
                    level = self._refill(k, caps[k], rates[k], now)
                    if target < level:
                        self._levels[k] = target

    def block(self, caps: Vector, rates: Vector, seconds: float) -> None:
        """A server said "retry after ``seconds``": stop refills and shift every reservation."""
        with self._lock:
            now = self._clock()
            until = now + seconds
            if until <= self._blocked:
                return
            extension = until - max(self._blocked, now)
            for k in range(4):
                if caps[k] > 0:
                    self._refill(k, caps[k], rates[k], now)
                    self._stamps[k] = max(self._stamps[k], now) + extension
            self._blocked = until
            self._shift += extension

    def shift(self) -> float:
        return self._shift

    def peek(self, caps: Vector, rates: Vector) -> tuple[list[float], float]:
        """Levels now (without charging) and the seconds a server block still lasts."""
        with self._lock:
            now = self._clock()
            levels = [self._refill(k, caps[k], rates[k], now) if caps[k] > 0 else 0.0 for k in range(4)]
            return levels, max(0.0, self._blocked - now)
