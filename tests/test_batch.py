"""``generate_batch``, the JSONL reader and the journal, in-process; requests go over real HTTP to
the emulator. The CLI on top of them is tested in ``test_batch_cli.py``."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from botticelli import (
    AuthenticationError,
    GenerateRequest,
    GenerateResponse,
    GroqDriver,
    Input,
    InvalidRequestError,
    Message,
    ModelNotFoundError,
    RateLimitError,
    ServerError,
    TextOutput,
    Usage,
)
from botticelli.batch import (
    BadLine,
    BatchAborted,
    BatchItem,
    BatchProgress,
    BatchResult,
    Journal,
    JournalError,
    generate_batch,
    iter_batch,
    parse_jsonl,
    parse_lines,
)
from botticelli.drivers.base import Driver, ResponseStream
from botticelli.emulator import Emulator, Fault
from botticelli.types import Role

MODEL = "openai/gpt-oss-20b"


def groq(emu: Emulator, key: str, **options: Any) -> GroqDriver:
    return GroqDriver(MODEL, api_key=key, base_url=emu.base_url, **options)


def prompt(i: object, **params: Any) -> GenerateRequest:
    return GenerateRequest.prompt(f"question {i}", temperature=0.0, **params)


def chat_bodies(emu: Emulator) -> list[dict[str, Any]]:
    return [r.body for r in emu.requests if r.path.endswith("/chat/completions")]


# ---- generate_batch -----------------------------------------------------------------------------


async def test_results_come_back_in_input_order(api_key: str) -> None:
    """Later items are made faster than earlier ones, so they finish first; the results must
    still line up with the requests."""
    n = 12
    with Emulator(token_delay=0.005) as emu:
        driver = groq(emu, api_key)
        expected = [(await driver.generate(prompt(i, max_tokens=n - i))).text for i in range(n)]
        finished: list[object] = []
        results = await generate_batch(
            driver,
            [prompt(i, max_tokens=n - i) for i in range(n)],
            concurrency=n,
            on_result=lambda r: finished.append(r.id),
        )
        await driver.aclose()
    assert [r.id for r in results] == list(range(n))  # ids default to the index
    assert [r.response.text for r in results if r.response] == expected
    assert all(r.ok and r.error is None for r in results)
    assert finished != list(range(n))  # they really did finish out of order


async def test_one_failure_does_not_cancel_the_rest(emulator: Emulator, api_key: str) -> None:
    emulator.inject(
        Fault("server_error", status=503),
        Fault("rate_limit", retry_after=0.01),
        Fault("status", status=400, message="bad field", code="invalid_field"),
    )
    unsendable = GenerateRequest((Message(Role.USER, (Input.audio(b"RIFF"),)),))  # fails before sending
    items = [BatchItem(f"q{i}", prompt(i)) for i in range(10)]
    items.insert(4, BatchItem("audio", unsendable))
    snapshots: list[BatchProgress] = []
    async with groq(emulator, api_key, max_retries=0) as driver:
        results = await generate_batch(driver, items, concurrency=3, on_progress=snapshots.append)
    assert [r.id for r in results] == [item.id for item in items]
    assert isinstance(results[4].error, InvalidRequestError) and results[4].response is None
    assert "audio" in str(results[4].error)
    errors = sorted(type(r.error).__name__ for r in results if r.error is not None)
    assert errors == ["InvalidRequestError", "InvalidRequestError", "RateLimitError", "ServerError"]
    assert sum(r.ok for r in results) == 7
    assert emulator.stats.completions == 7 and len(chat_bodies(emulator)) == 10
    # progress: one snapshot at the start, one per item; 429s and tokens add up
    assert [s.done for s in snapshots] == list(range(12))
    last = snapshots[-1]
    assert (last.total, last.failed, last.rate_limited) == (11, 4, 1)
    stats = emulator.stats
    assert last.tokens == stats.prompt_tokens + stats.completion_tokens > 0
    assert last.elapsed > 0 and last.rate > 0 and last.eta == 0


async def test_error_json_carries_the_typed_fields(emulator: Emulator, api_key: str) -> None:
    emulator.inject(Fault("server_error", status=500))
    async with groq(emulator, api_key, max_retries=0) as driver:
        (failed, worked) = await generate_batch(
            driver, [BatchItem("a", prompt(1)), BatchItem("b", prompt(2))], concurrency=1
        )
    assert isinstance(failed.error, ServerError)
    line = failed.to_json()
    assert line["id"] == "a" and set(line) == {"id", "error"}
    error = line["error"]
    assert (
        error["class"] == "ServerError" and error["status"] == 500 and error["request_id"].startswith("req_")
    )
    assert error["message"] == str(failed.error) and "code" in error
    data = worked.to_json()
    assert set(data) == {"id", "text", "finish_reason", "usage", "model", "request_id"}
    assert data["text"] and data["model"] == MODEL and data["request_id"].startswith("req_")
    assert (
        data["usage"]["total_tokens"] == data["usage"]["prompt_tokens"] + data["usage"]["completion_tokens"]
    )
    orjson.dumps(data)  # plain JSON types only


def test_success_json_includes_reasoning_and_tool_calls_when_present() -> None:
    from botticelli import ReasoningOutput, ToolCall, ToolCallOutput

    response = GenerateResponse(
        outputs=[ReasoningOutput("think"), TextOutput("hi"), ToolCallOutput(ToolCall("c1", "f", "{}"))],
        finish_reason="tool_calls",
        model="m",
        usage=Usage(1, 2, 3, queue_time=0.5),
    )
    data = BatchResult(7, response=response).to_json()
    assert data["reasoning"] == "think" and data["text"] == "hi"
    assert data["tool_calls"] == [{"id": "c1", "name": "f", "arguments": "{}"}]
    assert data["usage"] == {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3, "queue_time": 0.5}


class _Counting(Driver):
    """A driver that answers after ``delay`` and records how many calls were in flight at once."""

    provider_name = "test"
    model_name = "counting"

    def __init__(self, delay: float = 0.01) -> None:
        self.delay = delay
        self.active = self.peak = self.calls = self.cancelled = 0

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        self.active += 1
        self.calls += 1
        self.peak = max(self.peak, self.active)
        try:
            await asyncio.sleep(self.delay)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.active -= 1
        return GenerateResponse([TextOutput(request.messages[-1].text)], "stop", self.model_name)

    def generate_stream(self, request: GenerateRequest) -> ResponseStream:
        raise NotImplementedError


async def test_concurrency_bounds_requests_and_tasks() -> None:
    driver = _Counting()
    tasks_before = len(asyncio.all_tasks())
    peak_tasks = 0

    def watch(_: BatchProgress) -> None:
        nonlocal peak_tasks
        peak_tasks = max(peak_tasks, len(asyncio.all_tasks()) - tasks_before)

    results = await generate_batch(driver, [prompt(i) for i in range(200)], concurrency=5, on_progress=watch)
    assert driver.peak == 5 and driver.calls == 200
    assert peak_tasks <= 5  # a pool of workers, not a task per request
    assert [r.response.text for r in results if r.response] == [f"question {i}" for i in range(200)]
    with pytest.raises(ValueError, match="concurrency"):
        await generate_batch(driver, [prompt(0)], concurrency=0)
    assert await generate_batch(driver, []) == []


async def test_cancelling_the_batch_cancels_requests_in_flight(emulator: Emulator, api_key: str) -> None:
    emulator.inject(Fault("hang", count=None))
    async with groq(emulator, api_key) as driver:
        task = asyncio.ensure_future(generate_batch(driver, [prompt(i) for i in range(20)], concurrency=4))
        for _ in range(200):
            if len(chat_bodies(emulator)) == 4:
                break
            await asyncio.sleep(0.01)
        assert len(chat_bodies(emulator)) == 4
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert asyncio.all_tasks() == {asyncio.current_task()}  # no worker left behind
        await asyncio.sleep(0.1)
    assert len(chat_bodies(emulator)) == 4  # nothing was sent after the cancel


async def test_cancelled_workers_see_the_cancel() -> None:
    driver = _Counting(delay=10)
    task = asyncio.ensure_future(generate_batch(driver, [prompt(i) for i in range(10)], concurrency=3))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert driver.cancelled == 3 and driver.active == 0


async def test_stop_on_aborts_the_batch(api_key: str) -> None:
    with Emulator(api_keys={"gsk_the_right_one"}) as emu:
        async with groq(emu, api_key) as driver:
            with pytest.raises(BatchAborted) as caught:
                await generate_batch(
                    driver,
                    [prompt(i) for i in range(50)],
                    concurrency=4,
                    stop_on=lambda item, error: isinstance(error, AuthenticationError),
                )
        sent = len(chat_bodies(emu))
    assert isinstance(caught.value.error, AuthenticationError) and "401" in str(caught.value)
    assert 1 <= sent <= 4  # the in-flight ones at most; nothing after the stop
    assert len(caught.value.results) == 50 and all(r is None for r in caught.value.results)


async def test_driver_for_routes_per_item_models(emulator: Emulator, api_key: str) -> None:
    async with (
        groq(emulator, api_key) as default,
        GroqDriver("no-such-model", api_key=api_key, base_url=emulator.base_url) as other,
    ):
        items = [BatchItem("a", prompt(1)), BatchItem("b", prompt(2), model="no-such-model")]
        results = await generate_batch(
            default, items, driver_for=lambda item: other if item.model else default
        )
    assert results[0].ok and isinstance(results[1].error, ModelNotFoundError)
    assert [b["model"] for b in chat_bodies(emulator)] in ([MODEL, "no-such-model"], ["no-such-model", MODEL])


async def test_rate_limit_result_counts_as_a_429(emulator: Emulator, api_key: str) -> None:
    emulator.inject(Fault("rate_limit", retry_after=0.01, count=2))
    seen: list[BatchProgress] = []
    async with groq(emulator, api_key, max_retries=0) as driver:
        results = await generate_batch(
            driver, [prompt(i) for i in range(4)], concurrency=1, on_progress=seen.append
        )
    assert [type(r.error) for r in results] == [RateLimitError, RateLimitError, type(None), type(None)]
    assert seen[-1].rate_limited >= 2


# ---- parse_jsonl ----------------------------------------------------------------------------------


def lines(*records: Any) -> list[bytes]:
    return [r if isinstance(r, bytes) else orjson.dumps(r) + b"\n" for r in records]


def test_parse_both_forms() -> None:
    items, bad = parse_lines(
        lines(
            {"id": "q1", "prompt": "Hi", "system": "Be brief", "max_tokens": 5, "temperature": 0.2},
            b"\n",
            b"   \n",
            {
                "id": 2,
                "messages": [
                    {"role": "system", "content": "S"},
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "look"},
                            {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                        ],
                    },
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}
                        ],
                    },
                    {"role": "tool", "tool_call_id": "c1", "content": "42"},
                ],
                "max_completion_tokens": 9,
                "stop": "END",
                "seed": 3,
                "top_p": 0.5,
                "response_format": {"type": "json_object"},
                "model": "openai/gpt-oss-120b",
            },
        )
    )
    assert bad == []
    first, second = items
    assert (first.id, first.line, first.model) == ("q1", 1, None)
    assert [(m.role, m.text) for m in first.request.messages] == [
        (Role.SYSTEM, "Be brief"),
        (Role.USER, "Hi"),
    ]
    assert (first.request.max_tokens, first.request.temperature, dict(first.request.extra)) == (5, 0.2, {})
    assert (second.id, second.line, second.model) == (2, 4, "openai/gpt-oss-120b")
    request = second.request
    assert [m.role for m in request.messages] == [Role.SYSTEM, Role.USER, Role.ASSISTANT, Role.TOOL]
    assert [i.kind for i in request.messages[1].content] == ["text", "image"]
    assert request.messages[1].content[1].url == "https://x/y.png"
    assert request.messages[2].tool_calls[0].arguments == '{"a":1}'
    assert request.messages[3].tool_call_id == "c1"
    assert (request.max_tokens, request.stop, request.seed, request.top_p) == (9, ("END",), 3, 0.5)
    assert dict(request.extra) == {"response_format": {"type": "json_object"}}


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (b"{not json\n", "not valid JSON"),
        (b"\xff\xfe{}\n", "not valid UTF-8"),
        ([1, 2], "expected a JSON object, got an array"),
        ({"prompt": "Hi"}, 'missing "id"'),
        ({"id": "", "prompt": "Hi"}, '"id" must be a non-empty string or an integer'),
        ({"id": True, "prompt": "Hi"}, '"id" must be'),
        ({"id": 1.5, "prompt": "Hi"}, '"id" must be'),
        ({"id": "a"}, 'needs exactly one of "prompt"'),
        ({"id": "a", "prompt": "Hi", "messages": []}, 'needs exactly one of "prompt"'),
        ({"id": "a", "prompt": "  "}, '"prompt" must be a non-empty string'),
        ({"id": "a", "prompt": "Hi", "system": 3}, '"system" must be a string'),
        (
            {"id": "a", "messages": [{"role": "user", "content": "x"}], "system": "s"},
            '"system" goes with "prompt"',
        ),
        ({"id": "a", "messages": []}, '"messages" must be a non-empty list'),
        ({"id": "a", "messages": [{"role": "robot", "content": "x"}]}, "messages[0]: role: expected one of"),
        (
            {"id": "a", "messages": [{"role": "user"}]},
            "messages[0]: content: a message needs at least one Input",
        ),
        (
            {"id": "a", "messages": [{"role": "user", "content": 5}]},
            "messages[0]: content: expected a string",
        ),
        ({"id": "a", "messages": [{"role": "tool", "content": "x"}]}, 'needs "tool_call_id"'),
        ({"id": "a", "messages": [{"role": "user", "content": [{"type": "audio"}]}]}, "parts must be"),
        ({"id": "a", "prompt": "Hi", "max_tokens": 0}, "max_tokens: must be an integer >= 1"),
        ({"id": "a", "prompt": "Hi", "max_tokens": 5, "max_completion_tokens": 5}, "not both"),
        ({"id": "a", "prompt": "Hi", "temperature": -1}, "temperature: must be a finite number >= 0"),
        ({"id": "a", "prompt": "Hi", "stop": 5}, "stop: one to four"),
        ({"id": "a", "prompt": "Hi", "stream": True}, 'remove "stream"'),
        ({"id": "a", "prompt": "Hi", "model": ""}, '"model" must be a non-empty string'),
    ],
)
def test_bad_lines_name_the_problem(record: Any, reason: str) -> None:
    items, bad = parse_lines(lines({"id": "ok", "prompt": "fine"}, record, {"id": "ok2", "prompt": "fine"}))
    assert [i.id for i in items] == ["ok", "ok2"]  # the lines around it are read on
    assert len(bad) == 1 and bad[0].line == 2
    assert reason in bad[0].reason, bad[0].reason


def test_duplicate_ids_are_bad_lines_and_the_first_wins(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf"  # a BOM on the first line is tolerated
        + b"".join(lines({"id": "a", "prompt": "1"}, {"id": 1, "prompt": "2"}, {"id": "a", "prompt": "3"}))
        + b'{"id": 1, "prompt": "4"}'  # no final newline
    )
    items, bad = parse_jsonl(path)
    assert [(i.id, i.request.messages[-1].text) for i in items] == [("a", "1"), (1, "2")]
    assert bad == [
        BadLine(3, 'duplicate id "a" (first on line 1)'),
        BadLine(4, "duplicate id 1 (first on line 2)"),
    ]
    assert parse_jsonl(io.BytesIO(path.read_bytes())) == (items, bad)


# ---- the journal ----------------------------------------------------------------------------------


def ok(item_id: Any, text: str = "t") -> BatchResult:
    return BatchResult(item_id, response=GenerateResponse([TextOutput(text)], "stop", "m"))


def failed(item_id: Any) -> BatchResult:
    return BatchResult(item_id, error=ServerError("boom", status=500))


def ids_in(path: Path) -> list[Any]:
    return [orjson.loads(line)["id"] for line in path.read_bytes().splitlines()]


async def test_journal_appends_resumes_and_finishes_in_input_order(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    items = [BatchItem(i, prompt(i)) for i in ("a", "b", "c", "d")]
    async with Journal(out) as journal:
        assert journal.pending(items) == items
        journal.append(ok("c"))
        journal.append(failed("a"))
        assert journal.finish([i.id for i in items]) is False  # incomplete: left as it is
    assert ids_in(out) == ["c", "a"]
    async with Journal(out) as journal:
        assert journal.done == {"c": True, "a": False}
        assert [i.id for i in journal.pending(items)] == ["b", "d"]
        assert [i.id for i in journal.pending(items, retry_errors=True)] == ["a", "b", "d"]
        for item_id in ("d", "a", "b"):
            journal.append(ok(item_id, f"new {item_id}"))
        assert ids_in(out) == ["c", "a", "d", "a", "b"]
        assert journal.finish([i.id for i in items]) is True
    assert ids_in(out) == ["a", "b", "c", "d"]  # input order, one line per id, the last result won
    assert orjson.loads(out.read_bytes().splitlines()[0])["text"] == "new a"
    assert not (tmp_path / "out.jsonl.tmp").exists()


async def test_journal_cuts_off_a_torn_last_line(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    good = orjson.dumps(ok("a").to_json()) + b"\n"
    out.write_bytes(good + b'{"id": "b", "text": "half a li')
    async with Journal(out) as journal:
        assert journal.torn and journal.done == {"a": True}
        assert out.read_bytes() == good
        journal.append(ok("b"))
    assert ids_in(out) == ["a", "b"]


async def test_journal_keeps_a_whole_last_line_without_newline(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(b'{"id": "x", "error": {"class": "E"}}\nnot a result\n{"id": "a", "text": "t"}')
    async with Journal(out) as journal:
        assert not journal.torn and journal.done == {"x": False, "a": True}
        assert journal.bad_lines == [2]
        assert journal.unknown_ids([BatchItem("a", prompt(1))]) == 1
        journal.append(ok("b"))
        assert journal.finish(["a", "b"]) is True
    assert ids_in(out) == ["a", "b", "x"]  # results of other ids are kept, after the input's


async def test_journal_is_fsynced_soon_after_a_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    async with Journal(tmp_path / "out.jsonl", sync_interval=0.01) as journal:
        journal.append(ok("a"))
        journal.append(ok("b"))
        for _ in range(100):
            if synced:
                break
            await asyncio.sleep(0.01)
        assert len(synced) == 1  # two writes, one fsync
    assert len(synced) == 2  # and one more on close


async def test_one_writer_per_journal(tmp_path: Path) -> None:
    if os.name != "posix":
        pytest.skip("the lock is POSIX-only")
    out = tmp_path / "out.jsonl"
    async with Journal(out):
        with pytest.raises(JournalError, match="in use"):
            Journal(out).open()
    again = Journal(out)
    again.open()  # free again once closed
    again.close()
    with pytest.raises(JournalError, match="not a regular file"):
        Journal(tmp_path).open()


async def test_progress_reads_the_limiters_429_count() -> None:
    """429s the driver's limiter waited out never reach the results; its counter shows them.
    (Against a real server and through a cache wrapper: ``test_wrapper.py``.)"""
    from botticelli.ratelimit.limiter import Limiter
    from botticelli.ratelimit.spec import RateLimits

    limiter = Limiter(provider="test", model="counting", limits=RateLimits(rpm=1000), sources={})
    limiter.rate_limited = 5  # from before the batch: not this batch's

    class Limited(_Counting):
        @property
        def limiter(self) -> Limiter:
            return limiter

        async def generate(self, request: GenerateRequest) -> GenerateResponse:
            limiter.rate_limited += 2  # two 429s absorbed per request
            return await super().generate(request)

    seen: list[BatchProgress] = []
    await generate_batch(
        Limited(delay=0), [prompt(i) for i in range(3)], concurrency=1, on_progress=seen.append
    )
    assert [s.rate_limited for s in seen] == [0, 2, 4, 6]
    assert Limited().rate_limit_status() is not None  # a driver with a limiter has a status
    assert _Counting().limiter is None and _Counting().rate_limit_status() is None


async def test_a_journal_that_cannot_write_stops_the_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    driver = _Counting(delay=0.01)
    async with Journal(tmp_path / "out.jsonl") as journal:

        def disk_full(fd: int, data: Any) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(os, "write", disk_full)
        with pytest.raises(JournalError, match="No space left on device"):
            await generate_batch(
                driver, [prompt(i) for i in range(50)], concurrency=4, on_result=journal.append
            )
        monkeypatch.undo()
    assert driver.calls == 4 and driver.active == 0  # no worker took another item


# ---- iter_batch: results as they complete, requests read lazily -----------------------------------


async def test_iter_batch_yields_results_as_they_complete(api_key: str) -> None:
    """Later items are faster, so they come first; the id says which request each answers."""
    n = 8
    with Emulator(token_delay=0.01) as emu:
        async with groq(emu, api_key) as driver:
            requests = [prompt(i, max_tokens=2 * (n - i)) for i in range(n)]
            order = [r.id async for r in iter_batch(driver, requests, concurrency=n)]
    assert sorted(order) == list(range(n))  # type: ignore[type-var]
    assert order != list(range(n))  # completion order, not input order
    assert order[0] == n - 1 and order[-1] == 0


async def test_iter_batch_reads_a_generator_lazily() -> None:
    """10,000 requests from a generator: each worker pulls its next item only once the loop has
    taken its result, so at most ``concurrency`` items are pulled ahead of the results."""
    pulled = 0
    concurrency = 4

    def requests() -> Iterator[GenerateRequest]:
        nonlocal pulled
        for i in range(10_000):
            pulled += 1
            yield prompt(i)

    driver = _Counting(delay=0.001)
    seen: list[BatchProgress] = []
    taken = 0
    ahead = 0
    results = iter_batch(driver, requests(), concurrency=concurrency, on_progress=seen.append)
    async with contextlib.aclosing(results):
        async for result in results:
            taken += 1
            ahead = max(ahead, pulled - taken)
            assert result.ok
            if taken == 50:
                break
    assert 0 < ahead <= concurrency
    assert pulled <= 50 + concurrency  # not 10,000
    assert driver.active == 0 and driver.calls <= 50 + concurrency  # nothing runs on after the loop
    assert seen[0].total is None and seen[0].eta is None and seen[-1].done == 49


async def test_iter_batch_whole_generator_and_sized_totals() -> None:
    driver = _Counting(delay=0)
    ids = [r.id async for r in iter_batch(driver, (prompt(i) for i in range(300)), concurrency=7)]
    assert sorted(ids) == list(range(300)) and driver.peak <= 7  # type: ignore[type-var]
    seen: list[BatchProgress] = []
    async for _ in iter_batch(driver, [prompt(i) for i in range(3)], on_progress=seen.append):
        pass
    assert [s.total for s in seen] == [3, 3, 3, 3] and seen[-1].done == 3
    with pytest.raises(ValueError, match="concurrency"):
        iter_batch(driver, [], concurrency=0)  # checked at the call, not at the first result


async def test_breaking_out_of_iter_batch_cancels_requests_in_flight(api_key: str) -> None:
    """A plain ``break``: the generator is closed as the loop lets go of it, the workers and
    their HTTP requests are cancelled, and nothing more is sent. No connection is left open
    (the suite makes a ResourceWarning an error)."""

    def requests() -> Iterator[GenerateRequest]:
        yield prompt(0, max_tokens=1)  # answers at once; the others take seconds
        for i in range(1, 1_000):
            yield prompt(i, max_tokens=300)

    with Emulator(token_delay=0.01) as emulator:
        await _break_early(emulator, api_key, requests())


async def _break_early(emulator: Emulator, api_key: str, requests: Iterator[GenerateRequest]) -> None:
    async with groq(emulator, api_key) as driver:
        first = None
        async for result in iter_batch(driver, requests, concurrency=4):
            first = result
            break
        assert first is not None and first.ok
        for _ in range(100):
            if asyncio.all_tasks() == {asyncio.current_task()}:
                break
            await asyncio.sleep(0.01)
        assert asyncio.all_tasks() == {asyncio.current_task()}  # no worker left behind
        sent = len(chat_bodies(emulator))
        await asyncio.sleep(0.1)
        assert len(chat_bodies(emulator)) == sent == 4  # nothing was sent after the break
    gc.collect()


async def test_cancelling_iter_batch_cancels_at_once() -> None:
    driver = _Counting(delay=10)

    async def consume() -> None:
        async for _ in iter_batch(driver, (prompt(i) for i in range(100)), concurrency=3):
            pass

    task = asyncio.ensure_future(consume())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert driver.cancelled == 3 and driver.active == 0 and driver.calls == 3


async def test_iter_batch_stop_on_and_a_failing_iterator() -> None:
    class Failing(_Counting):
        async def generate(self, request: GenerateRequest) -> GenerateResponse:
            if request.messages[-1].text == "question 5":
                raise AuthenticationError("bad key", status=401)
            return await super().generate(request)

    driver = Failing(delay=0.001)
    got: list[BatchResult] = []
    with pytest.raises(BatchAborted) as caught:
        async for result in iter_batch(
            driver,
            (prompt(i) for i in range(100)),
            concurrency=2,
            stop_on=lambda item, error: isinstance(error, AuthenticationError),
        ):
            got.append(result)
    assert caught.value.item.id == 5 and caught.value.results == []
    assert 4 <= len(got) <= 6 and driver.calls <= 8 and driver.active == 0

    def broken() -> Iterator[GenerateRequest]:
        yield prompt(0)
        raise OSError("input went away")

    with pytest.raises(OSError, match="input went away"):
        async for _ in iter_batch(_Counting(delay=0), broken()):
            pass
