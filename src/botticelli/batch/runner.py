"""Many requests through one driver, concurrently, each ending in a response or its own error.

A fixed pool of ``concurrency`` worker tasks pulls items from one shared iterator: memory and task
count stay flat however long the batch, and pacing is left to the driver (its rate limiter and
retries), which is the one place that knows the provider's limits.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass

from ..drivers.base import Driver
from ..errors import BotticelliError, RateLimitError
from ..types import GenerateRequest
from .items import BatchItem, BatchResult

__all__ = ["BatchAborted", "BatchProgress", "generate_batch"]


@dataclass(frozen=True, slots=True)
class BatchProgress:
    """A snapshot for progress displays. ``rate_limited`` counts 429s: those the driver's rate
    limiter saw (waited out and retried included) where it counts them, and at least the items
    that ended in a ``RateLimitError``. ``tokens`` sums ``total_tokens`` of the successes."""

    done: int
    total: int
    failed: int
    rate_limited: int
    tokens: int
    elapsed: float

    @property
    def rate(self) -> float:
        """Items finished per second so far."""
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the current rate; ``None`` until there is a rate to go by."""
        rate = self.rate
        return (self.total - self.done) / rate if rate > 0 else None


class BatchAborted(BotticelliError):
    """``stop_on`` judged an item's error fatal to the whole batch (a bad key, an exhausted daily
    quota): the rest is not sent. ``error`` is that error, ``item`` its item, ``results`` the
    results so far in input order (``None`` for items that did not finish)."""

    def __init__(self, item: BatchItem, error: Exception, results: list[BatchResult | None]) -> None:
        super().__init__(str(error))
        self.item = item
        self.error = error
        self.results = results


ProgressCallback = Callable[[BatchProgress], object]
ResultCallback = Callable[[BatchResult], "Awaitable[object] | object"]


async def generate_batch(
    driver: Driver,
    requests: Iterable[GenerateRequest | BatchItem],
    *,
    concurrency: int = 8,
    on_progress: ProgressCallback | None = None,
    on_result: ResultCallback | None = None,
    stop_on: Callable[[BatchItem, Exception], bool] | None = None,
    driver_for: Callable[[BatchItem], Driver] | None = None,
) -> list[BatchResult]:
    """Run every request; return one ``BatchResult`` per request, in input order.

    An item that fails gets its typed error as its result; the others carry on. ``requests`` are
    ``GenerateRequest`` (ids are then their index) or ``BatchItem``. ``on_result`` is called with
    each result as it finishes (awaited if it returns an awaitable; the journal uses it), before
    that worker takes another item, so at most ``concurrency`` items are ever started and not yet
    reported. ``on_progress`` gets a ``BatchProgress`` at the start and after every item.
    ``stop_on(item, error)`` returning true stops the batch with ``BatchAborted``.
    ``driver_for(item)`` picks another driver per item (per-item models); its errors are the
    item's. Cancelling the call cancels the workers and their requests.
    """
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency: must be an integer >= 1, got {concurrency!r}")
    items = [r if isinstance(r, BatchItem) else BatchItem(i, r) for i, r in enumerate(requests)]
    state = _State(driver, len(items), on_progress)
    results: list[BatchResult | None] = [None] * len(items)
    state.report()
    work: Iterator[tuple[int, BatchItem]] = iter(enumerate(items))

    async def worker() -> None:
        for index, item in work:  # one shared iterator: each item goes to exactly one worker
            try:
                target = driver_for(item) if driver_for is not None else driver
                result = BatchResult(item.id, response=await target.generate(item.request))
            except Exception as exc:  # the item's own failure; CancelledError still propagates
                if stop_on is not None and stop_on(item, exc):
                    raise BatchAborted(item, exc, results) from exc
                result = BatchResult(item.id, error=exc)
            results[index] = result
            if on_result is not None:
                outcome = on_result(result)
                if inspect.isawaitable(outcome):
                    await outcome
            state.count(result)

    tasks = [asyncio.ensure_future(worker()) for _ in range(min(concurrency, len(items)))]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return results  # type: ignore[return-value]  # every slot is filled once gather returns


class _State:
    """Counters behind ``BatchProgress``."""

    __slots__ = ("callback", "done", "failed", "limited", "started", "tokens", "total", "watch")

    def __init__(self, driver: Driver, total: int, callback: ProgressCallback | None) -> None:
        self.total = total
        self.callback = callback
        self.done = self.failed = self.limited = self.tokens = 0
        self.started = time.perf_counter()
        self.watch = _RetriedLimits(driver)

    def count(self, result: BatchResult) -> None:
        self.done += 1
        if result.error is not None:
            self.failed += 1
            if isinstance(result.error, RateLimitError):
                self.limited += 1
        elif result.response is not None:
            self.tokens += result.response.usage.total_tokens
        self.report()

    def report(self) -> None:
        if self.callback is None:
            return
        self.callback(
            BatchProgress(
                done=self.done,
                total=self.total,
                failed=self.failed,
                # the limiter's count includes the 429s that ended items, when it has one
                rate_limited=max(self.limited, self.watch.since_start()),
                tokens=self.tokens,
                elapsed=time.perf_counter() - self.started,
            )
        )


class _RetriedLimits:
    """429s the driver's rate limiter saw during this batch, including those it waited out and
    retried (invisible in the results), if the limiter counts them.

    Read by duck typing (``driver.limiter.rate_limited``, an int) so the runner works with any
    driver; without such a counter only the 429s that ended an item are reported."""

    __slots__ = ("_base", "_limiter")

    def __init__(self, driver: Driver) -> None:
        self._limiter = getattr(driver, "limiter", None)
        self._base = self._read()

    def _read(self) -> int:
        value = getattr(self._limiter, "rate_limited", None)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    def since_start(self) -> int:
        return self._read() - self._base
