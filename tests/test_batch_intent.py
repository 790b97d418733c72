"""Issue 8.3: a run killed between creating a remote batch and saving its id must not make the
rerun create (and pay for) a second batch. The state file records a nonce before the create
call, the nonce rides in the batch's metadata, and a rerun finds the batch by it.

The crash is real: ``botticelli batch --remote`` runs as a process behind a small proxy that
forwards everything to the emulator and SIGKILLs the process while a create call is in flight
(after the emulator made the batch, or before the call reaches it)."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from botticelli import GenerateRequest, GroqDriver
from botticelli.batch import BatchItem
from botticelli.batch.remote import NONCE_KEY, GroqBatchClient, build_jsonl, run_remote, state_path
from botticelli.emulator import Emulator
from botticelli.errors import ConfigurationError, InvalidRequestError, ServerError

from .conftest import TEST_KEY
from .test_batch_cli import BatchRunner, questions, results, write_input
from .test_batch_secrets import FAST, Hostile, LoopbackServer, driver_for

MODEL = "openai/gpt-oss-20b"
BATCHES = "/openai/v1/batches"


class KillingProxy(LoopbackServer):
    """Forwards to ``upstream``; on the first create call it SIGKILLs ``proc``: after the
    upstream answered (``before=False``: the batch exists, its id never arrives) or before
    forwarding (``before=True``: the batch was never made)."""

    def __init__(self, upstream: str, *, before: bool) -> None:
        super().__init__()
        self.upstream = upstream
        self.before = before
        self.proc: subprocess.Popen[bytes] | None = None
        self._session: aiohttp.ClientSession | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        create = request.method == "POST" and request.path == BATCHES
        if create and self.before:
            self._kill()
            return web.Response(status=502)
        if self._session is None:
            self._session = aiohttp.ClientSession()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with self._session.request(
            request.method, self.upstream + request.path_qs, data=body, headers=headers
        ) as answer:
            content = await answer.read()
            kept = {k: v for k, v in answer.headers.items() if k.lower() in ("content-type", "x-request-id")}
        if create:
            self._kill()
        return web.Response(status=answer.status, body=content, headers=kept)

    def _kill(self) -> None:
        deadline = time.monotonic() + 10
        while self.proc is None and time.monotonic() < deadline:  # Popen returns before it is set
            time.sleep(0.01)
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)  # dead before any answer could reach it

    async def _stop(self) -> None:
        if self._session is not None:
            await self._session.close()
        await super()._stop()


def creates(emu: Emulator) -> int:
    return sum(1 for r in emu.requests if r.method == "POST" and r.path == BATCHES)


def state_of(out: Path) -> dict[str, Any]:
    state: dict[str, Any] = orjson.loads(Path(state_path(out)).read_bytes())
    return state


def write_intent(out: Path, **fields: Any) -> None:
    """A state file as a run killed inside the create call leaves it: a nonce, no batch id."""
    Path(state_path(out)).write_bytes(orjson.dumps({"batch_id": None, **fields}))


def has_state(out: Path) -> bool:
    return Path(state_path(out)).exists()


def emulator_batches(emu: Emulator) -> list[dict[str, Any]]:
    import urllib.request

    request = urllib.request.Request(emu.base_url + BATCHES, headers={"authorization": f"Bearer {TEST_KEY}"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        found: list[dict[str, Any]] = orjson.loads(answer.read())["data"]
    return found


def crash_during_create(tmp_path: Path, emu: Emulator, *, before: bool) -> Path:
    """Start ``botticelli batch --remote`` through a ``KillingProxy``; return OUT once killed."""
    source = write_input(tmp_path / "in.jsonl", *questions(4))
    out = tmp_path / "out.jsonl"
    with KillingProxy(emu.base_url, before=before) as proxy:
        runner = BatchRunner(tmp_path, proxy.root)
        proc = subprocess.Popen(
            runner.command(str(source), "-o", str(out), "--remote", "--poll-interval", "0.02"),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=runner.env(),
            cwd=tmp_path,
        )
        try:
            proxy.proc = proc
            proc.wait(30)
        finally:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    return out


@pytest.mark.parametrize("before", [False, True], ids=["killed-after-create", "killed-before-create"])
def test_a_rerun_after_a_kill_during_create_makes_exactly_one_batch(tmp_path: Path, before: bool) -> None:
    with Emulator() as emu:
        emu.batch_step = 0.02
        out = crash_during_create(tmp_path, emu, before=before)
        state = state_of(out)
        assert state["batch_id"] is None and state["nonce"], "killed inside the window: only the intent"
        assert creates(emu) == (0 if before else 1)
        if not before:
            (made,) = emulator_batches(emu)
            assert made["metadata"][NONCE_KEY] == state["nonce"], "the emulator stored the nonce"

        run = BatchRunner(tmp_path, emu.base_url)(str(out.with_name("in.jsonl")), "-o", str(out), "--remote")
        assert run.returncode == 0, run.stderr
        assert creates(emu) == 1, "one batch, paid once"
        assert any(r.method == "GET" and r.path == BATCHES for r in emu.requests), "found by listing"
        (only,) = emulator_batches(emu)
        assert only["metadata"][NONCE_KEY] == state["nonce"]
    lines = results(out)
    assert [line["id"] for line in lines] == [f"q{i}" for i in range(4)] and all("text" in x for x in lines)
    assert not has_state(out)


def items(count: int) -> list[BatchItem]:
    return [BatchItem(f"q{i}", GenerateRequest.prompt(f"question q{i}")) for i in range(count)]


async def test_a_lost_create_reply_is_found_on_a_later_page(tmp_path: Path) -> None:
    """The OpenAI-style list (``has_more``/``last_id``, ``?after=``): the batch sits on page 2."""
    out = tmp_path / "out.jsonl"
    with Hostile() as server:
        server.lose_replies = 1
        async with driver_for(server) as driver:
            with pytest.raises(ServerError):
                await run_remote(driver, items(3), out, **FAST)
            nonce = state_of(out)["nonce"]
            for _ in range(25):  # other runs' batches, newer than ours
                server.add_batch({NONCE_KEY: "someone-else"})
            summary = await run_remote(driver, items(3), out, **FAST)
        assert summary.resumed and summary.batch_id == "batch_0000" and summary.complete
        assert server.creates() == 1
        assert ("GET", BATCHES + "?after=batch_0006") in server.seen, server.seen
    assert server.batches["batch_0000"]["metadata"] == {NONCE_KEY: nonce}
    assert [line["id"] for line in results(out)] == ["q0", "q1", "q2"]


async def test_groq_paging_finds_the_batch_on_a_later_page(tmp_path: Path) -> None:
    """The emulator pages as Groq does (``?cursor=``, ``paging.next_cursor``)."""
    out = tmp_path / "out.jsonl"
    with Emulator() as emu:
        emu.batch_step = 0.01
        async with GroqDriver(MODEL, api_key=TEST_KEY, base_url=emu.base_url, max_retries=0) as driver:
            client = GroqBatchClient(driver)
            file_id = await client.upload(build_jsonl(items(2), MODEL))
            ours = await client.create(file_id, metadata={NONCE_KEY: "n-ours", "team": "x"})
            for _ in range(25):
                await client.create(file_id, metadata={NONCE_KEY: "n-other"})
            assert ours.raw["metadata"] == {NONCE_KEY: "n-ours", "team": "x"}
            write_intent(out, nonce="n-ours")
            found = await client.find_batch(NONCE_KEY, "n-ours")
            assert found is not None and found.id == ours.id
            summary = await run_remote(driver, items(2), out, **FAST)
            assert summary.resumed and summary.batch_id == ours.id and summary.complete
            assert creates(emu) == 26
            assert await client.find_batch(NONCE_KEY, "n-none") is None
    assert [line["id"] for line in results(out)] == ["q0", "q1"]


async def test_no_match_creates_one_batch_with_the_recorded_nonce(tmp_path: Path) -> None:
    """Batches older than the intent (by more than the clock slack) end the search early."""
    out = tmp_path / "out.jsonl"
    with Hostile(age=2 * 86400) as server:
        for _ in range(30):
            server.add_batch()
        write_intent(out, nonce="n-1", intent_at=int(time.time()))
        async with driver_for(server) as driver:
            summary = await run_remote(driver, items(2), out, **FAST)
        assert summary.complete and not summary.resumed
        assert server.creates() == 1 and server.batches[summary.batch_id or ""]["metadata"] == {
            NONCE_KEY: "n-1"
        }
        assert [seen for seen in server.seen if seen[0] == "GET" and seen[1].startswith(BATCHES + "?")] == []
        assert sum(1 for seen in server.seen if seen == ("GET", BATCHES)) == 1, "one page was enough"


async def test_a_refused_create_forgets_the_intent(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with Emulator() as emu:
        async with GroqDriver(MODEL, api_key=TEST_KEY, base_url=emu.base_url, max_retries=0) as driver:
            too_many = {f"k{i}": "v" for i in range(16)}  # 16 + the nonce: over the limit of 16
            with pytest.raises(InvalidRequestError, match="metadata"):
                await run_remote(driver, items(1), out, metadata=too_many, **FAST)
            assert not has_state(out), "a 4xx means no batch: nothing to look for"
            summary = await run_remote(driver, items(1), out, metadata={"k": "v"}, **FAST)
            assert summary.complete and creates(emu) == 2


async def test_an_intent_without_a_batch_list_asks_for_the_id(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with Hostile(listing=False) as server:
        write_intent(out, nonce="n-1")
        async with driver_for(server) as driver:
            with pytest.raises(ConfigurationError, match="--batch-id") as caught:
                await run_remote(driver, items(1), out, **FAST)
        assert server.creates() == 0
    assert state_path(out) in str(caught.value)
