"""Deadlines of the calls in flight, kept by one timer per event loop.

``asyncio.timeout_at`` arms and cancels a timer per use; with hundreds of calls in flight each
arm is a push into the loop's timer heap, and measured at concurrency 128-512 that cost more
client CPU (~15-20 µs a call) than all of botticelli's own per-call work. Calls almost never
reach their deadline, so one timer per loop, armed at the earliest deadline in flight, does the
same job: entering and leaving a deadline is a dict insert and delete, and the timer fires about
once per timeout period, not once per call.

Semantics match ``asyncio.timeout_at``: at the deadline the task is cancelled; the code that
entered the deadline turns that ``CancelledError`` into its own timeout error, and a cancel
from anyone else stays a cancel.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


class Bound:
    """One call's deadline (loop time), entered by one task."""

    __slots__ = ("cancelling", "deadline", "fired", "task")

    def __init__(self, task: asyncio.Task[object], deadline: float) -> None:
        self.task = task
        self.deadline = deadline
        self.fired = False
        self.cancelling = task.cancelling()


class DeadlineWatch:
    """The deadlines of one loop's calls; ``watch()`` gives the running loop's."""

    __slots__ = ("__weakref__", "_bounds", "_handle", "_loop", "_when")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._bounds: dict[Bound, None] = {}  # an ordered set, by identity
        self._handle: asyncio.TimerHandle | None = None
        self._when = math.inf

    def enter(self, deadline: float) -> Bound:
        """Bound the current task's work until ``deadline``; pair with ``leave``."""
        task = asyncio.current_task(self._loop)
        if task is None:
            raise RuntimeError("a deadline needs a running task")
        bound = Bound(task, deadline)
        self._bounds[bound] = None
        if deadline < self._when:
            self._arm(deadline)
        return bound

    def leave(self, bound: Bound) -> bool:
        """End ``bound`` (again is harmless); ``True`` when its deadline is what cancelled the
        task, so the caller raises its timeout error instead of the ``CancelledError``."""
        self._bounds.pop(bound, None)
        if not bound.fired:
            return False
        bound.fired = False  # a second leave must not uncancel twice
        return bound.task.uncancel() <= bound.cancelling

    def _arm(self, when: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._when = when
        self._handle = self._loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._handle = None
        self._when = math.inf
        now = self._loop.time()
        earliest = math.inf
        for bound in list(self._bounds):
            if bound.deadline <= now:
                del self._bounds[bound]
                bound.fired = True
                bound.task.cancel()
            elif bound.deadline < earliest:
                earliest = bound.deadline
        if earliest < math.inf:
            self._arm(earliest)


_watches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, DeadlineWatch] = weakref.WeakKeyDictionary()


def watch(loop: asyncio.AbstractEventLoop | None = None) -> DeadlineWatch:
    """The running loop's watch (made on first use, gone with the loop); ``loop``: the running
    loop, when the caller has it already."""
    if loop is None:
        loop = asyncio.get_running_loop()
    found = _watches.get(loop)
    if found is None:
        found = _watches[loop] = DeadlineWatch(loop)
    return found


async def within(deadline: float, awaitable: Awaitable[T]) -> T:
    """``await awaitable``, or ``TimeoutError`` once the loop's clock passes ``deadline`` (as
    ``asyncio.timeout_at``, on the loop's one watch)."""
    deadlines = watch()
    bound = deadlines.enter(deadline)
    try:
        return await awaitable
    except asyncio.CancelledError:
        if deadlines.leave(bound):
            raise TimeoutError from None
        raise
    finally:
        deadlines.leave(bound)
