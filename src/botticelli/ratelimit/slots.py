"""Concurrency: at most ``limit`` requests of one limiter in flight at once, per process, handed
over first come, first served, across event loops (the blocking API runs drivers on several)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque

logger = logging.getLogger("botticelli.ratelimit")


class Slots:
    """Concurrency slots; ``limit`` ``None`` means unlimited (``take`` and ``release`` are no-ops
    then). A slot freed while callers wait passes straight to the first of them."""

    __slots__ = ("_lock", "_waiters", "active", "limit")

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.active = 0
        self._lock = threading.Lock()
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()

    async def take(self) -> None:
        """Wait for a slot. Cancelled while waiting: no slot is held (one handed over meanwhile
        is passed on)."""
        limit = self.limit
        if limit is None:
            return
        with self._lock:
            if self.active < limit and not self._waiters:
                self.active += 1
                return
            loop = asyncio.get_running_loop()
            future: asyncio.Future[None] = loop.create_future()
            self._waiters.append((loop, future))
        try:
            await future
        except asyncio.CancelledError:
            with self._lock:
                handed = future.done() and not future.cancelled()
                if not handed:
                    self._waiters = deque(w for w in self._waiters if w[1] is not future)
            if handed:
                self.release()
            raise

    def release(self) -> None:
        """Free a slot, or hand it to the first waiter whose loop still runs. Never raises."""
        if self.limit is None:
            return
        try:
            with self._lock:
                while self._waiters:
                    loop, future = self._waiters.popleft()
                    if future.done() or loop.is_closed():
                        continue
                    try:
                        loop.call_soon_threadsafe(self._hand_over, future)
                    except RuntimeError:  # the loop closed meanwhile: try the next waiter
                        continue
                    return  # the slot passes to the waiter: ``active`` unchanged
                self.active = max(0, self.active - 1)
        except Exception:
            logger.debug("concurrency slot release failed", exc_info=True)

    def _hand_over(self, future: asyncio.Future[None]) -> None:
        if future.done():  # cancelled meanwhile: pass the slot on
            with self._lock:
                self.active += 1
            self.release()
        else:
            future.set_result(None)
