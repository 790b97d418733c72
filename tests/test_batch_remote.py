"""Groq's Batch API: the ``botticelli.batch.remote`` client and the emulator's ``/files`` and
``/batches``, over real HTTP (no mocks), plus the official ``groq`` SDK against the emulator."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, TypedDict

import groq
import orjson
import pytest

from botticelli.batch import BatchItem
from botticelli.batch.remote import (
    BatchFailedError,
    BatchItemError,
    GroqBatchClient,
    RemoteBatch,
    build_jsonl,
    parse_result_lines,
    run_remote,
    state_path,
)
from botticelli.codecs.openai_chat import GROQ
from botticelli.drivers.groq import GroqDriver
from botticelli.emulator import Emulator
from botticelli.errors import (
    AuthenticationError,
    ConfigurationError,
    InvalidRequestError,
    ModelNotFoundError,
    ResponseError,
)
from botticelli.types import GenerateRequest, Input, Message, Role

MODEL = "openai/gpt-oss-20b"
STEP = 0.1  # emulator seconds per batch phase: every status shows up, a batch takes ~0.4 s


class Polling(TypedDict):
    poll_interval: float
    max_poll_interval: float


FAST: Polling = {"poll_interval": 0.01, "max_poll_interval": 0.02}
FILES = "/openai/v1/files"
BATCHES = "/openai/v1/batches"


def paced(emu: Emulator, step: float = STEP) -> Emulator:
    emu.batch_step = step
    return emu


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator() as server:
        yield paced(server)


@pytest.fixture
async def driver(emu: Emulator, api_key: str) -> AsyncIterator[GroqDriver]:
    d = GroqDriver(MODEL, api_key=api_key, base_url=emu.base_url, max_retries=0)
    yield d
    await d.aclose()


def items(count: int, *, prefix: str = "q") -> list[BatchItem]:
    """Distinct prompts with fixed seeds, so a live call gives the same text as the batch line."""
    return [
        BatchItem(
            f"{prefix}{i}" if i % 2 else i,  # str and int ids both round-trip
            GenerateRequest.prompt(f"Question number {i}?", max_tokens=6, seed=i),
        )
        for i in range(count)
    ]


def read_out(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def read_out_or_none(path: Path) -> list[dict[str, Any]] | None:
    return read_out(path) if path.exists() else None


def remembered(out: Path) -> str | None:
    """The batch id in ``OUT.jsonl.batch``, or ``None`` when there is no such file."""
    path = Path(state_path(out))
    if not path.exists():
        return None
    batch_id: str = orjson.loads(path.read_bytes())["batch_id"]
    return batch_id


def posts(emu: Emulator, path: str) -> int:
    return sum(1 for r in emu.requests if r.method == "POST" and r.path == path)


async def wait_terminal(client: GroqBatchClient, batch_id: str) -> RemoteBatch:
    deadline = time.monotonic() + 10
    while True:
        batch = await client.retrieve(batch_id)
        if batch.terminal or time.monotonic() > deadline:
            return batch
        await asyncio.sleep(0.02)


class StopPolling(Exception):
    """Raised from ``on_status`` to leave ``run_remote`` once the batch exists (a killed run)."""


async def stop_after_create(batch: RemoteBatch) -> None:
    raise StopPolling(batch.id)


# ---- the whole cycle ---------------------------------------------------------------------------


async def test_full_cycle_maps_every_result_to_its_id(
    emu: Emulator, driver: GroqDriver, tmp_path: Path
) -> None:
    batch_items = items(8)
    out = tmp_path / "out.jsonl"
    seen: list[RemoteBatch] = []

    summary = await run_remote(driver, batch_items, out, on_status=seen.append, **FAST)

    statuses = [b.status for b in seen]
    assert statuses[0] == "validating"
    order = ["validating", "in_progress", "finalizing", "completed"]
    assert [s for s in order if s in statuses] == order, statuses
    assert statuses == sorted(statuses, key=order.index), "statuses only move forward"
    assert summary.status == "completed" and summary.batch_id == seen[0].id
    assert (summary.sent, summary.succeeded, summary.failed, summary.missing) == (8, 8, 0, 0)
    assert summary.complete and not summary.resumed
    final = summary.batch
    assert final is not None and (final.total, final.completed, final.failed) == (8, 8, 0)
    assert final.output_file_id and final.output_file_id.startswith("file_01")
    assert final.error_file_id is None
    for stamp in ("created_at", "in_progress_at", "finalizing_at", "completed_at", "expires_at"):
        assert isinstance(final.raw[stamp], int), stamp
    assert final.raw["expires_at"] - final.raw["created_at"] == 24 * 3600

    lines = read_out(out)
    assert [line["id"] for line in lines] == [item.id for item in batch_items], "input order, ids as given"
    for item, line in zip(batch_items, lines, strict=True):
        live = await driver.generate(item.request)  # same prompt and seed: the same text
        assert line["text"] == live.text, f"result of {item.id!r} belongs to another request"
        assert line["usage"]["completion_tokens"] == 6 and line["finish_reason"] == "length"
        assert line["request_id"].startswith("req_01")
    assert remembered(out) is None, "the state file goes once the results are in"
    assert posts(emu, FILES) == 1 and posts(emu, BATCHES) == 1


async def test_a_failing_line_gets_its_own_error(emu: Emulator, driver: GroqDriver, tmp_path: Path) -> None:
    retired = BatchItem("old", GenerateRequest.prompt("Hi", extra={"model": "llama-3.1-70b-versatile"}))
    gone = BatchItem("gone", GenerateRequest.prompt("Hi"), model="llama-3.3-70b-versatile")
    audio = BatchItem("audio", GenerateRequest((Message(Role.USER, (Input.audio(b"RIFF"),)),)))
    other = BatchItem("offline", GenerateRequest.prompt("Hi"), model="local:smollm2")
    batch_items = [*items(3), retired, gone, audio, other]
    out = tmp_path / "out.jsonl"

    summary = await run_remote(driver, batch_items, out, **FAST)

    assert summary.status == "completed" and summary.complete
    assert (summary.sent, summary.succeeded, summary.failed) == (5, 3, 4)
    by_id = {line["id"]: line for line in read_out(out)}
    assert set(by_id) == {item.id for item in batch_items}
    old = by_id["old"]["error"]
    assert (old["class"], old["status"], old["code"]) == ("ModelNotFoundError", 400, "model_decommissioned")
    assert old["request_id"].startswith("req_01")
    assert "openai/gpt-oss-120b" in old["message"], "the retirement notice names the replacement"
    assert (by_id["gone"]["error"]["status"], by_id["gone"]["error"]["code"]) == (404, "model_not_found")
    assert by_id["audio"]["error"]["class"] == "InvalidRequestError", "refused before upload"
    assert by_id["offline"]["error"]["class"] == "ConfigurationError"
    assert all("text" in by_id[item.id] for item in batch_items[:3])

    client = GroqBatchClient(driver)
    assert summary.batch is not None and summary.batch.error_file_id
    error_lines = [orjson.loads(x) for x in (await client.download(summary.batch.error_file_id)).splitlines()]
    assert {line["custom_id"] for line in error_lines} == {"old", "gone"}
    assert all(
        line["response"]["status_code"] in (400, 404) and line["error"] is None for line in error_lines
    )


async def test_resume_by_batch_id_and_by_state_file(
    emu: Emulator, driver: GroqDriver, tmp_path: Path
) -> None:
    batch_items = items(4)
    out = tmp_path / "out.jsonl"
    with pytest.raises(StopPolling) as stopped:
        await run_remote(driver, batch_items, out, on_status=stop_after_create, **FAST)
    batch_id = str(stopped.value)
    assert remembered(out) == batch_id
    assert read_out_or_none(out) is None, "a run that wrote nothing leaves no empty output behind"

    # 1. explicit id, after the state file is lost: no new upload, no new batch
    os.remove(state_path(out))
    with pytest.raises(StopPolling):
        await run_remote(driver, batch_items, out, batch_id=batch_id, on_status=stop_after_create, **FAST)
    assert remembered(out) == batch_id, "remembered again"

    # 2. the same command again: the state file leads back to the same batch
    summary = await run_remote(driver, batch_items, out, **FAST)
    assert summary.resumed and summary.batch_id == batch_id and summary.status == "completed"
    assert [line["id"] for line in read_out(out)] == [item.id for item in batch_items]
    assert all("text" in line for line in read_out(out))
    assert remembered(out) is None

    # 3. once more: everything has a result, so nothing is sent at all
    again = await run_remote(driver, batch_items, out, **FAST)
    assert (again.batch_id, again.sent, again.earlier, again.complete) == (None, 0, 4, True)
    assert posts(emu, FILES) == 1 and posts(emu, BATCHES) == 1, "one upload and one batch, ever"


async def test_only_items_without_a_result_are_sent(driver: GroqDriver, tmp_path: Path) -> None:
    batch_items = items(4)
    out = tmp_path / "out.jsonl"
    await run_remote(driver, batch_items[:2], out, **FAST)
    summary = await run_remote(driver, batch_items, out, **FAST)
    assert (summary.earlier, summary.sent, summary.succeeded) == (2, 2, 2)
    assert [line["id"] for line in read_out(out)] == [item.id for item in batch_items]


async def test_a_driver_without_the_batch_api_is_refused(tmp_path: Path) -> None:
    from botticelli.drivers.local import LocalDriver

    with pytest.raises(ConfigurationError, match="needs a Groq driver"):
        # an unstarted instance: the check comes before any use, and no model gets loaded
        await run_remote(LocalDriver.__new__(LocalDriver), items(1), tmp_path / "out.jsonl")  # type: ignore[arg-type]
    assert read_out_or_none(tmp_path / "out.jsonl") is None


async def test_resuming_another_inputs_batch_is_refused(driver: GroqDriver, tmp_path: Path) -> None:
    with pytest.raises(StopPolling) as stopped:
        await run_remote(
            driver, items(2, prefix="a"), tmp_path / "a.jsonl", on_status=stop_after_create, **FAST
        )
    other = [BatchItem("unrelated", GenerateRequest.prompt("Hi"))]
    with pytest.raises(ConfigurationError, match="none of the input's ids"):
        await run_remote(driver, other, tmp_path / "b.jsonl", batch_id=str(stopped.value), **FAST)


async def test_cancel_keeps_partial_output_and_reports_the_rest(
    emu: Emulator, driver: GroqDriver, tmp_path: Path
) -> None:
    paced(emu, 0.3)  # 20 lines spread over ~0.3 s: time to cancel in the middle
    batch_items = items(20)
    client = GroqBatchClient(driver)
    seen: list[str] = []

    async def cancel_midway(batch: RemoteBatch) -> None:
        seen.append(batch.status)
        if batch.status == "in_progress" and batch.completed >= 2 and "cancelling" not in seen:
            cancelled = await client.cancel(batch.id)
            assert cancelled.status == "cancelling" and cancelled.raw["cancelling_at"]
            seen.append("cancelling")

    summary = await run_remote(driver, batch_items, tmp_path / "out.jsonl", on_status=cancel_midway, **FAST)

    assert summary.status == "cancelled" and seen[-1] == "cancelled"
    assert summary.succeeded >= 2 and summary.missing >= 1, summary
    assert summary.succeeded + summary.missing == 20 and summary.failed == summary.missing
    lines = read_out(tmp_path / "out.jsonl")
    assert len(lines) == 20
    missing = [line for line in lines if "error" in line]
    assert len(missing) == summary.missing
    assert {(m["error"]["class"], m["error"]["code"]) for m in missing} == {("BatchItemError", "no_result")}
    with pytest.raises(InvalidRequestError, match="already cancelled"):
        await client.cancel(summary.batch_id or "")


async def test_bad_key_is_an_authentication_error(api_key: str, tmp_path: Path) -> None:
    wrong = "gsk_wrong_key_0123456789abcdef"
    with Emulator(api_keys=[api_key]) as server:
        d = GroqDriver(MODEL, api_key=wrong, base_url=server.base_url, max_retries=0)
        try:
            with pytest.raises(AuthenticationError) as caught:
                await run_remote(d, items(2), tmp_path / "out.jsonl", **FAST)
            assert caught.value.status == 401 and caught.value.code == "invalid_api_key"
            assert wrong not in str(caught.value) and wrong not in repr(caught.value)
            with pytest.raises(AuthenticationError):
                await GroqBatchClient(d).retrieve("batch_01whatever")
        finally:
            await d.aclose()
    assert read_out_or_none(tmp_path / "out.jsonl") is None and remembered(tmp_path / "out.jsonl") is None


async def test_failed_batch_raises_with_groq_errors(driver: GroqDriver, tmp_path: Path) -> None:
    client = GroqBatchClient(driver)
    good = build_jsonl(items(1), MODEL)
    bad = orjson.dumps({"custom_id": "x", "method": "GET", "url": "/v1/chat/completions", "body": {}})
    file_id = await client.upload(good + bad + b"\n")
    batch = await client.create(file_id)
    failed = await wait_terminal(client, batch.id)
    assert failed.status == "failed" and failed.raw["failed_at"] and failed.output_file_id is None
    assert [(e["code"], e["line"], e["param"]) for e in failed.errors] == [("invalid_method", 2, "method")]

    with pytest.raises(BatchFailedError, match=r"line 2: invalid_method: Invalid value: 'GET'") as caught:
        await run_remote(driver, items(1), tmp_path / "out.jsonl", batch_id=batch.id, **FAST)
    assert caught.value.errors[0]["line"] == 2


# ---- the pieces ----------------------------------------------------------------------------------


def test_build_jsonl_lines() -> None:
    batch_items = [*items(2), BatchItem("b", GenerateRequest.prompt("Hi"), model="groq:qwen/qwen3-32b")]
    lines = [orjson.loads(x) for x in build_jsonl(batch_items, MODEL).splitlines()]
    assert [line["custom_id"] for line in lines] == ["0", "q1", "b"]
    assert all(line["method"] == "POST" and line["url"] == "/v1/chat/completions" for line in lines)
    assert lines[0]["body"] == GROQ.body(batch_items[0].request, MODEL, stream=False)
    assert lines[0]["body"]["max_completion_tokens"] == 6 and "stream" not in lines[0]["body"]
    assert lines[2]["body"]["model"] == "qwen/qwen3-32b"
    with pytest.raises(ConfigurationError, match="custom_id '7'"):
        build_jsonl(
            [BatchItem(7, GenerateRequest.prompt("a")), BatchItem("7", GenerateRequest.prompt("b"))], MODEL
        )
    with pytest.raises(ConfigurationError, match="local:smollm2"):
        build_jsonl([BatchItem("x", GenerateRequest.prompt("a"), model="local:smollm2")], MODEL)


def test_result_lines_in_every_known_shape() -> None:
    completion = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
    records: list[Any] = [
        {
            "id": "b1",
            "custom_id": "ok",
            "response": {"status_code": 200, "request_id": "req_1", "body": completion},
        },
        {
            "custom_id": "limited",
            "response": {
                "status_code": 429,
                "request_id": "req_2",
                "body": {"error": {"message": "slow down"}},
            },
        },
        {"custom_id": "expired", "response": None, "error": {"code": "batch_expired", "message": "too late"}},
        {"custom_id": "model", "response": None, "error": {"code": "model_not_found", "message": "no such"}},
        {"custom_id": "empty", "response": None, "error": None},
        {"custom_id": "nochoice", "response": {"status_code": 200, "body": {"id": "x"}}},
        {"custom_id": "nostatus", "response": {"body": completion}},
        {"no": "custom_id"},
    ]
    data = b"".join(orjson.dumps(r) + b"\n" for r in records) + b"not json\n\n"
    results, unreadable = parse_result_lines(data, provider="groq", model_for=lambda cid: MODEL)
    assert unreadable == 2
    ok = results["ok"]
    assert not isinstance(ok, Exception) and ok.text == "Hi" and ok.request_id == "req_1"
    assert ok.usage.total_tokens == 4
    limited = results["limited"]
    assert isinstance(limited, Exception) and type(limited).__name__ == "RateLimitError"
    assert (limited.status, limited.request_id) == (429, "req_2")
    expired = results["expired"]
    assert isinstance(expired, BatchItemError) and expired.code == "batch_expired" and expired.status is None
    assert isinstance(results["model"], ModelNotFoundError)
    assert isinstance(results["empty"], BatchItemError)
    assert isinstance(results["nochoice"], ResponseError)
    assert isinstance(results["nostatus"], ResponseError)


def test_batch_object_errors_in_both_shapes() -> None:
    error = {"code": "invalid_method", "message": "Invalid value: 'GET'.", "param": "method", "line": 4}
    as_list = RemoteBatch.from_json({"id": "batch_1", "status": "failed", "errors": [error]})
    as_object = RemoteBatch.from_json({"id": "batch_1", "status": "failed", "errors": {"data": [error]}})
    assert as_list.errors == as_object.errors == (error,)
    assert as_list.terminal and as_list.errors_text() == "line 4: invalid_method: Invalid value: 'GET'."
    with pytest.raises(ResponseError):
        RemoteBatch.from_json({"object": "batch"})


# ---- the emulator's endpoints --------------------------------------------------------------------


async def test_files_endpoints(driver: GroqDriver) -> None:
    client = GroqBatchClient(driver)
    data = build_jsonl(items(3), MODEL)
    file_id = await client.upload(data, filename="mine.jsonl")
    assert file_id.startswith("file_01")
    info = await client.file_info(file_id)
    assert info == {
        "id": file_id,
        "object": "file",
        "bytes": len(data),
        "created_at": info["created_at"],
        "filename": "mine.jsonl",
        "purpose": "batch",
    }
    assert file_id in [f["id"] for f in await client.list_files()]
    assert await client.download(file_id) == data
    assert await client.delete_file(file_id) is True
    assert file_id not in [f["id"] for f in await client.list_files()]
    for call in (client.file_info, client.download, client.delete_file):
        with pytest.raises(InvalidRequestError) as caught:
            await call(file_id)
        assert caught.value.status == 404


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("batch.txt", b'{"a": 1}\n', "Must be .jsonl"),
        ("batch.jsonl", b'{"a": 1}\n{"a": \n', "line 2 is not valid JSON"),
        ("batch.jsonl", b"[1]\n", "line 1 is not a JSON object"),
        ("batch.jsonl", b"\n\n", "empty"),
        ("batch.jsonl", b"{}\n" * 50_001, "at most 50,000"),
    ],
)
async def test_upload_checks(driver: GroqDriver, name: str, content: bytes, problem: str) -> None:
    with pytest.raises(InvalidRequestError, match=problem) as caught:
        await GroqBatchClient(driver).upload(content, filename=name)
    assert caught.value.status == 400


async def test_create_checks(driver: GroqDriver) -> None:
    client = GroqBatchClient(driver)
    file_id = await client.upload(build_jsonl(items(1), MODEL))
    for window in ("1h", "23h", "8d", "soon"):
        with pytest.raises(InvalidRequestError, match="completion_window"):
            await client.create(file_id, completion_window=window)
    week = await client.create(file_id, completion_window="7d", metadata={"job": "nightly"})
    assert week.raw["expires_at"] - week.raw["created_at"] == 7 * 86400
    assert week.raw["metadata"] == {"job": "nightly"}
    with pytest.raises(InvalidRequestError, match="file_nope"):
        await client.create("file_nope")
    body = {"input_file_id": file_id, "endpoint": "/v1/embeddings", "completion_window": "24h"}
    with pytest.raises(InvalidRequestError, match="endpoint"):
        await client._json("POST", "/batches", body)
    with pytest.raises(InvalidRequestError) as caught:
        await client.retrieve("batch_nope")
    assert caught.value.status == 404


async def test_list_batches_pages_and_filters(driver: GroqDriver) -> None:
    client = GroqBatchClient(driver)
    file_id = await client.upload(build_jsonl(items(1), MODEL))
    created = [(await client.create(file_id)).id for _ in range(3)]
    first = await client._json("GET", "/batches?limit=2")
    assert [b["id"] for b in first["data"]] == created[::-1][:2], "newest first"
    rest = await client._json("GET", f"/batches?limit=2&cursor={first['paging']['next_cursor']}")
    assert [b["id"] for b in rest["data"]] == [created[0]] and rest["paging"]["next_cursor"] is None
    picked = await client._json("GET", f"/batches?id={created[0]}&id={created[2]}")
    assert {b["id"] for b in picked["data"]} == {created[0], created[2]}


# ---- the official SDK ------------------------------------------------------------------------------


def test_groq_sdk_batch_cycle(emu: Emulator, api_key: str) -> None:
    lines = build_jsonl(items(3), MODEL)
    with groq.Groq(base_url=emu.base_url, api_key=api_key, max_retries=0, timeout=5.0) as sdk:
        uploaded = sdk.files.create(file=("requests.jsonl", lines), purpose="batch")
        assert uploaded.id and uploaded.id.startswith("file_01") and uploaded.bytes == len(lines)
        assert uploaded.purpose == "batch" and uploaded.filename == "requests.jsonl"
        created = sdk.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        assert created.status == "validating" and created.id.startswith("batch_01")
        batch: Any = created
        deadline = time.monotonic() + 10
        while batch.status != "completed" and time.monotonic() < deadline:
            time.sleep(0.02)
            batch = sdk.batches.retrieve(created.id)
        assert batch.status == "completed" and batch.request_counts is not None
        assert (batch.request_counts.total, batch.request_counts.completed) == (3, 3)
        assert batch.output_file_id is not None
        output = [orjson.loads(x) for x in sdk.files.content(batch.output_file_id).read().splitlines()]
        assert sorted(line["custom_id"] for line in output) == ["0", "2", "q1"]
        assert all(line["id"].startswith("batch_req_") for line in output)
        assert all(line["response"]["body"]["object"] == "chat.completion" for line in output)
        output_info = sdk.files.info(batch.output_file_id)
        assert output_info.purpose == "batch_output"
        assert {f.id for f in sdk.files.list().data} == {uploaded.id, batch.output_file_id}
        assert created.id in [b.id for b in sdk.batches.list().data]

        second = sdk.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="48h"
        )
        assert sdk.batches.cancel(second.id).status == "cancelling"
        assert sdk.files.delete(uploaded.id).deleted is True
        with pytest.raises(groq.NotFoundError):
            sdk.files.info(uploaded.id)
    with groq.Groq(base_url=emu.base_url, api_key="not-a-groq-key", max_retries=0) as bad:
        with pytest.raises(groq.AuthenticationError):
            bad.files.list()
        with pytest.raises(groq.AuthenticationError):
            bad.batches.retrieve(created.id)
