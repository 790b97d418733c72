"""Issue 8.5: every way ``botticelli batch`` can fail ends the same way, run as a real process: one
``botticelli: error:`` line on stderr, a non-zero exit, no traceback, no key (``BatchRunner``
checks the last two on every run)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from botticelli import GroqDriver
from botticelli.batch import Journal
from botticelli.batch.remote import GroqBatchClient, state_path
from botticelli.emulator import Emulator

from .conftest import TEST_KEY
from .test_batch_cli import BatchRunner, questions, write_input
from .test_batch_secrets import SHAPED_KEY, Hostile

MODEL = "openai/gpt-oss-20b"
REMOTE = ("--remote", "--no-progress", "--poll-interval", "0.02", "--retries", "0")


@dataclass
class Case:
    """What the run is given: CLI arguments after ``IN -o OUT``, the server, the key."""

    args: tuple[str, ...]
    needle: str
    base_url: str
    key: str = TEST_KEY


Setup = Callable[[Path, Emulator, ExitStack], Case]


def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nobody listens there once the socket is closed


def batch_on(emu: Emulator, lines: bytes) -> str:
    """A batch made on the emulator outside the CLI, finished; its id."""

    async def make() -> str:
        async with GroqDriver(MODEL, api_key=TEST_KEY, base_url=emu.base_url, max_retries=0) as driver:
            client = GroqBatchClient(driver)
            batch = await client.create(await client.upload(lines))
            for _ in range(1000):
                batch = await client.retrieve(batch.id)
                if batch.terminal:
                    break
                await asyncio.sleep(0.01)
            return batch.id

    return asyncio.run(make())


def line(custom_id: str, method: str = "POST") -> bytes:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    record = {"custom_id": custom_id, "method": method, "url": "/v1/chat/completions", "body": body}
    return orjson.dumps(record) + b"\n"


def unreachable(tmp: Path, emu: Emulator, stack: ExitStack) -> Case:
    return Case(REMOTE, "connect", closed_port())


def wrong_key(tmp: Path, emu: Emulator, stack: ExitStack) -> Case:
    strict = stack.enter_context(Emulator(api_keys={TEST_KEY}))
    return Case(REMOTE, "401", strict.base_url, key="gsk_not_the_right_one_0123456789")


def corrupt_state(tmp: Path, emu: Emulator, stack: ExitStack) -> Case:
    Path(state_path(tmp / "out.jsonl")).write_bytes(b"{not json")
    return Case(REMOTE, "cannot read", emu.base_url)


def state_without_an_id(tmp: Path, emu: Emulator, stack: ExitStack) -> Case:
    Path(state_path(tmp / "out.jsonl")).write_bytes(b"{}")
    return Case(REMOTE, "names no batch id", emu.base_url)


def state_cannot_be_written(tmp: Path, emu: Emulator, stack: ExitStack) -> Case:
    Path(state_path(tmp / "out.jsonl") + ".tmp").mkdir()
    return Case(REMOTE, "no batch was created", emu.base_url)


def unknown_batch_id(tmp: Path, emu: Emulator, stack: ExitStack) -> Case:
    return Case((*REMOTE, "--batch-id", "batch_01nosuchbatch"), "404", emu.base_url)


def failed_batch(tmp: Path, emu: Emulator, stack: ExitStack) -> Case:
    batch_id = batch_on(emu, line("q0") + line("q1", method="GET"))
    return Case((*REMOTE, "--batch-id", batch_id), "failed batch", emu.base_url)


def another_inputs_batch(tmp: Path, emu: Emulator, stack: ExitStack) -> Case:
    batch_id = batch_on(emu, line("unrelated"))
    return Case((*REMOTE, "--batch-id", batch_id), "none of the input's ids", emu.base_url)


def no_batch_list_for_an_intent(tmp: Path, emu: Emulator, stack: ExitStack) -> Case:
    server = stack.enter_context(Hostile(listing=False))
    Path(state_path(tmp / "out.jsonl")).write_bytes(orjson.dumps({"batch_id": None, "nonce": "n"}))
    return Case(REMOTE, "--batch-id", server.root, key=SHAPED_KEY)  # its 404 echoes the key


CASES: list[Setup] = [
    unreachable,
    wrong_key,
    corrupt_state,
    state_without_an_id,
    state_cannot_be_written,
    unknown_batch_id,
    failed_batch,
    another_inputs_batch,
    no_batch_list_for_an_intent,
]


@pytest.mark.parametrize("setup", CASES, ids=[c.__name__ for c in CASES])
def test_a_remote_failure_is_one_line(setup: Setup, emulator: Emulator, tmp_path: Path) -> None:
    emulator.batch_step = 0.01
    source = write_input(tmp_path / "in.jsonl", *questions(2))
    with ExitStack() as stack:
        case = setup(tmp_path, emulator, stack)
        run = BatchRunner(tmp_path, case.base_url)(str(source), "-o", "out.jsonl", *case.args, key=case.key)
    assert run.returncode == 1, run.stderr
    assert len(run.stderr_lines) == 1 and run.stderr.startswith("botticelli: error: "), run.stderr
    assert case.needle in run.stderr, run.stderr
    if setup is state_cannot_be_written:
        assert not any(r.method == "POST" and r.path.endswith("/batches") for r in emulator.requests)


@pytest.mark.parametrize("mode", [(), REMOTE], ids=["live", "remote"])
async def test_an_output_in_use_is_one_line(
    mode: tuple[str, ...], emulator: Emulator, tmp_path: Path
) -> None:
    source = write_input(tmp_path / "in.jsonl", *questions(2))
    async with Journal(tmp_path / "out.jsonl"):  # another run holds the journal's lock
        run = await asyncio.to_thread(
            BatchRunner(tmp_path, emulator.base_url), str(source), "-o", "out.jsonl", *mode
        )
    assert run.returncode == 1
    assert len(run.stderr_lines) == 1 and "in use by another batch run" in run.stderr, run.stderr
