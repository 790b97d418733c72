"""Many requests through one driver, concurrently, each ending in a response or its own error.

``iter_batch`` is the engine: a fixed pool of ``concurrency`` worker tasks pulls items lazily from
one shared iterator (a list, or a generator of millions) and hands each result to the caller as
it completes; a worker takes its next item only once the caller has taken its result. So at most
``concurrency`` items are in flight or waiting to be taken, memory and task count stay flat however
long the batch, and a slow consumer slows the batch instead of piling up results. Pacing is left
to the driver (its rate limiter and retries), the one place that knows the provider's limits.
``generate_batch`` is ``iter_batch`` collected into a list in input order.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Iterator, Sequence, Sized
from dataclasses import dataclass

from .. import _defaults
from ..drivers.base import Driver
from ..errors import BotticelliError, RateLimitError
from ..types import GenerateRequest
from .items import BatchItem, BatchResult

__all__ = ["BatchAborted", "BatchProgress", "generate_batch", "iter_batch"]


@dataclass(frozen=True, slots=True)
class BatchProgress:
    """A snapshot for progress displays. ``total``: the number of requests, ``None`` when they
    come from an iterator of unknown length. ``rate_limited`` counts 429s: those the driver's rate
    limiter saw (waited out and retried included) and at least the items that ended in a
    ``RateLimitError``. ``tokens`` sums ``total_tokens`` of the successes."""

    done: int
    total: int | None
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
        """Seconds left at the current rate; ``None`` until there is a rate to go by, or when
        the total is not known."""
        rate = self.rate
        if self.total is None or rate <= 0:
            return None
        return (self.total - self.done) / rate


class BatchAborted(BotticelliError):
    """``stop_on`` judged an item's error fatal to the whole batch (a bad key, an exhausted daily
    quota): the rest is not sent. ``error`` is that error, ``item`` its item; ``results``: from
    ``generate_batch``, the results so far in input order (``None`` for items that did not
    finish); from ``iter_batch``, empty (its results were handed over as they came)."""

    def __init__(self, item: BatchItem, error: Exception, results: list[BatchResult | None]) -> None:
        super().__init__(str(error))
        self.item = item
        self.error = error
        self.results = results


ProgressCallback = Callable[[BatchProgress], object]
ResultCallback = Callable[[BatchResult], "Awaitable[object] | object"]
StopRule = Callable[[BatchItem, Exception], bool]


def _check_concurrency(concurrency: int) -> None:
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency: must be an integer >= 1, got {concurrency!r}")


def iter_batch(
    driver: Driver,
    requests: Iterable[GenerateRequest | BatchItem],
    *,
    concurrency: int = _defaults.BATCH_CONCURRENCY,
    on_progress: ProgressCallback | None = None,
    stop_on: StopRule | None = None,
    driver_for: Callable[[BatchItem], Driver] | None = None,
    total: int | None = None,
) -> AsyncGenerator[BatchResult, None]:
    """``async for result in iter_batch(driver, requests, concurrency=8)``: one ``BatchResult``
    per request, in the order they complete (``result.id`` says which: a ``BatchItem``'s id, or
    the request's index).

    ``requests`` is read lazily, one item per free worker, so it may be a generator of any length;
    at most ``concurrency`` requests are in flight, and a worker takes its next item only once
    the loop has taken its result. An item that fails gets its typed error as its result; the
    others carry on. ``on_progress`` gets a ``BatchProgress`` at the start and after the loop has
    handled each result (``total``: given, else ``len(requests)`` when it has one).
    ``stop_on(item, error)`` returning true stops the batch with ``BatchAborted``, raised from
    the loop. ``driver_for(item)`` picks another driver per item (per-item models); its errors
    are the item's. An error raised by ``requests`` itself ends the batch with that error.

    Leaving the loop (``break``, an exception, cancelling the task) cancels the workers and their
    requests: at once when the task is cancelled while waiting for a result; otherwise as soon as
    the generator is closed: ``async with contextlib.aclosing(iter_batch(...)) as results`` closes
    it deterministically, and a plain ``break`` closes it when the loop lets go of it.
    """
    _check_concurrency(concurrency)
    if total is None and isinstance(requests, Sized):
        total = len(requests)
    return _results(
        _completed(driver, requests, concurrency, stop_on, driver_for, _State(driver, total, on_progress))
    )


async def _results(
    source: AsyncGenerator[tuple[int, BatchResult], None],
) -> AsyncGenerator[BatchResult, None]:
    async with contextlib.aclosing(source):
        async for _index, result in source:
            yield result


class _Handoff:
    """A worker's finished item, waiting for the loop to take it (``taken``), or the error that
    ended a worker, or (neither) the news that a worker ran out of items."""

    __slots__ = ("error", "index", "result", "taken")

    def __init__(
        self,
        index: int = -1,
        result: BatchResult | None = None,
        taken: asyncio.Future[None] | None = None,
        error: BaseException | None = None,
    ) -> None:
        self.index = index
        self.result = result
        self.taken = taken
        self.error = error


def _numbered(requests: Iterable[GenerateRequest | BatchItem]) -> Iterator[tuple[int, BatchItem]]:
    for index, request in enumerate(requests):
        yield index, request if isinstance(request, BatchItem) else BatchItem(index, request)


async def _completed(
    driver: Driver,
    requests: Iterable[GenerateRequest | BatchItem],
    concurrency: int,
    stop_on: StopRule | None,
    driver_for: Callable[[BatchItem], Driver] | None,
    state: _State,
) -> AsyncGenerator[tuple[int, BatchResult], None]:
    """``(input index, result)`` as results complete: the engine of both batch functions."""
    work = _numbered(requests)  # one shared iterator: each item goes to exactly one worker
    handoffs: asyncio.Queue[_Handoff] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    async def worker() -> None:
        try:
            for index, item in work:
                try:
                    target = driver_for(item) if driver_for is not None else driver
                    result = BatchResult(item.id, response=await target.generate(item.request))
                except Exception as exc:  # the item's own failure; CancelledError still propagates
                    if stop_on is not None and stop_on(item, exc):
                        raise BatchAborted(item, exc, []) from exc
                    result = BatchResult(item.id, error=exc)
                taken = loop.create_future()
                handoffs.put_nowait(_Handoff(index, result, taken))
                await taken  # the loop has it: now take another item
        except Exception as exc:  # BatchAborted, or the request iterator's own error
            handoffs.put_nowait(_Handoff(error=exc))
        else:
            handoffs.put_nowait(_Handoff())

    state.report()
    size = state.total
    workers = concurrency if size is None else min(concurrency, size)
    tasks = [asyncio.ensure_future(worker()) for _ in range(workers)]
    try:
        running = len(tasks)
        while running:
            handoff = await handoffs.get()
            if handoff.error is not None:
                raise handoff.error
            if handoff.result is None:
                running -= 1
                continue
            yield handoff.index, handoff.result
            state.count(handoff.result)
            assert handoff.taken is not None
            handoff.taken.set_result(None)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def generate_batch(
    driver: Driver,
    requests: Iterable[GenerateRequest | BatchItem],
    *,
    concurrency: int = _defaults.BATCH_CONCURRENCY,
    on_progress: ProgressCallback | None = None,
    on_result: ResultCallback | None = None,
    stop_on: StopRule | None = None,
    driver_for: Callable[[BatchItem], Driver] | None = None,
) -> list[BatchResult]:
    """Run every request; return one ``BatchResult`` per request, in input order.

    ``iter_batch`` collected: every response is kept, so for very large batches prefer
    ``iter_batch`` and write each result out as it comes. An item that fails gets its typed error
    as its result; the others carry on. ``requests`` are ``GenerateRequest`` (ids are then their
    index) or ``BatchItem``. ``on_result`` is called with each result as it finishes (awaited if
    it returns an awaitable; the journal uses it), before that worker takes another item, so at
    most ``concurrency`` items are ever started and not yet reported. ``on_progress`` gets a
    ``BatchProgress`` at the start and after every item. ``stop_on(item, error)`` returning true
    stops the batch with ``BatchAborted``. ``driver_for(item)`` picks another driver per item
    (per-item models); its errors are the item's. Cancelling the call cancels the workers and
    their requests.
    """
    _check_concurrency(concurrency)
    items = requests if isinstance(requests, Sequence) else list(requests)
    results: list[BatchResult | None] = [None] * len(items)
    state = _State(driver, len(items), on_progress)
    source = _completed(driver, items, concurrency, stop_on, driver_for, state)
    try:
        async with contextlib.aclosing(source):
            async for index, result in source:
                results[index] = result
                if on_result is not None:
                    outcome = on_result(result)
                    if inspect.isawaitable(outcome):
                        await outcome
    except BatchAborted as aborted:
        aborted.results = results
        raise
    return results  # type: ignore[return-value]  # every slot is filled once the loop ends


class _State:
    """Counters behind ``BatchProgress``."""

    __slots__ = ("callback", "done", "failed", "limited", "started", "tokens", "total", "watch")

    def __init__(self, driver: Driver, total: int | None, callback: ProgressCallback | None) -> None:
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
    """429s the driver's rate limiter (``Driver.limiter``, passed through by wrappers such as the
    cache) saw during this batch, including those it waited out and retried, which the results
    never show. A driver without a limiter: only the 429s that ended an item are reported."""

    __slots__ = ("_base", "_limiter")

    def __init__(self, driver: Driver) -> None:
        self._limiter = driver.limiter
        self._base = self._read()

    def _read(self) -> int:
        return self._limiter.rate_limited if self._limiter is not None else 0

    def since_start(self) -> int:
        return self._read() - self._base
