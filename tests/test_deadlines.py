"""The one-timer-per-loop deadlines (``botticelli._deadlines``) behave as ``asyncio.timeout_at``:
work past its deadline ends in ``TimeoutError``, work within it is untouched, a cancel from
anyone else stays a cancel, and nothing is left armed or counted afterwards."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from botticelli import _deadlines
from botticelli._deadlines import within


async def test_work_past_its_deadline_times_out() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError):
        await within(started + 0.05, asyncio.sleep(5))
    assert 0.04 <= loop.time() - started < 1.0
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0  # the cancel was taken back


async def test_work_within_its_deadline_returns() -> None:
    loop = asyncio.get_running_loop()
    assert await within(loop.time() + 5, asyncio.sleep(0.01, result="done")) == "done"


async def test_a_cancel_from_outside_stays_a_cancel() -> None:
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(within(loop.time() + 5, asyncio.sleep(5)))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_deadline_that_passed_while_the_work_finished_leaves_no_cancel_behind() -> None:
    """The watch fired, but the work swallowed the cancel and returned: the task must not be
    cancelled later at some unrelated await."""
    loop = asyncio.get_running_loop()

    async def stubborn() -> str:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(5)
        return "kept"

    assert await within(loop.time() + 0.02, stubborn()) == "kept"
    await asyncio.sleep(0.02)  # would raise CancelledError if a cancel were still pending


async def test_nothing_stays_in_the_watch() -> None:
    loop = asyncio.get_running_loop()
    await asyncio.gather(*(within(loop.time() + 5, asyncio.sleep(0.001)) for _ in range(200)))
    with pytest.raises(TimeoutError):
        await within(loop.time() + 0.01, asyncio.sleep(1))
    assert not _deadlines.watch()._bounds


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 40), st.integers(1, 40)), min_size=1, max_size=30))
def test_every_call_ends_by_its_own_deadline(cases: list[tuple[int, int]]) -> None:
    """Many calls in flight with mixed deadlines (ms) and durations (ms): each ends on its own
    terms, the earlier deadlines of others never cut it short, the later ones never let it run."""

    async def main() -> list[str]:
        loop = asyncio.get_running_loop()

        async def one(deadline_ms: int, duration_ms: int) -> str:
            try:
                await within(loop.time() + deadline_ms / 1000, asyncio.sleep(duration_ms / 1000))
            except TimeoutError:
                return "timeout"
            return "done"

        return await asyncio.gather(*(one(d, t) for d, t in cases))

    results = asyncio.run(main())
    for (deadline_ms, duration_ms), result in zip(cases, results, strict=True):
        if duration_ms + 15 < deadline_ms:  # clear of timer slack either way
            assert result == "done"
        elif deadline_ms + 15 < duration_ms:
            assert result == "timeout"
