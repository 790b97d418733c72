"""Issue 8.2: no batch file ever holds the API key, whatever the server echoes.

The emulator never echoes a key, so these tests run a small hostile OpenAI-compatible server on
127.0.0.1 that puts the caller's key (from ``Authorization``, without its ``Bearer`` prefix, so no
shape-based rule can catch it) into ``x-request-id``, ``x_groq.id``, the answer text, error
messages and codes, batch result lines and file ids. The key is deliberately not ``gsk_``-shaped:
only the registered value (``errors.register_secret``) can hide it.
"""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import orjson
import pytest
from aiohttp import web

from botticelli import GenerateRequest, GroqDriver
from botticelli.batch import BatchItem, Journal, generate_batch
from botticelli.batch.remote import RemoteBatch, run_remote, state_path
from botticelli.errors import redact, register_secret

from .test_batch_cli import BatchRunner, results, write_input

MODEL = "openai/gpt-oss-20b"
FAKE_KEY = "together-FAKE-0123456789abcdef"
#: A Groq-shaped key for CLI runs (the CLI process cannot be told to register a key; its
#: driver's constructor should, see ``test_cli_hides_an_unshaped_key_once_drivers_register_it``).
SHAPED_KEY = "gsk_hostile_0123456789abcdefghij"
PREFIX = "/openai/v1"
FAST = {"poll_interval": 0.01, "max_poll_interval": 0.02}


def leaked(data: bytes | str, key: str = FAKE_KEY) -> bool:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    return key in text or key[-16:] in text


class LoopbackServer:
    """An aiohttp server on 127.0.0.1 in a thread of its own (so a CLI process or sync code can
    call it); subclasses answer in ``handle``."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.port = 0

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class Hostile(LoopbackServer):
    """An OpenAI-compatible server (chat completions, files, batches) that echoes the key.

    Batches complete at once. ``GET /batches`` pages the OpenAI way (``after``, ``limit``,
    ``has_more``, ``last_id``), or answers 404 with ``listing=False``. ``age`` (seconds)
    backdates every batch's ``created_at``; the next ``lose_replies`` creates make their batch
    but answer 502, as a reply lost on the way does."""

    def __init__(self, *, listing: bool = True, age: float = 0.0) -> None:
        super().__init__()
        self.listing = listing
        self.age = age
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.seen: list[tuple[str, str]] = []  # (method, path with query)
        self.keys: set[str] = set()
        self.lose_replies = 0

    def creates(self) -> int:
        return sum(1 for m, p in self.seen if m == "POST" and p == PREFIX + "/batches")

    # -- the API ------------------------------------------------------------------------------

    def _reply(self, status: int, body: Any, key: str) -> web.Response:
        data = body if isinstance(body, bytes) else orjson.dumps(body)
        return web.Response(
            status=status, body=data, headers={"content-type": "application/json", "x-request-id": key}
        )

    async def handle(self, request: web.Request) -> web.StreamResponse:
        key = request.headers.get("authorization", "").removeprefix("Bearer ")
        self.keys.add(key)
        self.seen.append((request.method, request.path_qs))
        path, method = request.path, request.method
        if path == PREFIX + "/chat/completions" and method == "POST":
            body = await request.json()
            prompt = str(body["messages"][-1]["content"])
            if "fail" in prompt:
                error = {"message": f"Invalid API Key: {key}", "type": "invalid_request_error", "code": key}
                return self._reply(400, {"error": error}, key)
            return self._reply(200, completion(key), key)
        if path == PREFIX + "/files" and method == "POST":
            form = await request.post()
            upload = form["file"]
            assert isinstance(upload, web.FileField)
            file_id = f"file-{len(self.files)}-{key}"  # an id with the key in it lands in the state
            self.files[file_id] = upload.file.read()
            return self._reply(200, {"id": file_id, "object": "file", "purpose": "batch"}, key)
        if path.startswith(PREFIX + "/files/") and path.endswith("/content"):
            found = self.files.get(path[len(PREFIX + "/files/") : -len("/content")])
            return self._reply(200 if found is not None else 404, found or {"error": {"message": "no"}}, key)
        if path == PREFIX + "/batches" and method == "POST":
            batch = self._run(await request.json(), key)
            if self.lose_replies > 0:
                self.lose_replies -= 1
                return self._reply(502, {"error": {"message": "upstream went away"}}, key)
            return self._reply(200, batch, key)
        if path == PREFIX + "/batches" and method == "GET":
            if not self.listing:
                return self._reply(404, {"error": {"message": f"Unknown request URL for {key}"}}, key)
            return self._reply(200, self._list(request.query), key)
        if path.startswith(PREFIX + "/batches/") and method == "GET":
            found_batch = self.batches.get(path.rsplit("/", 1)[1])
            if found_batch is None:
                return self._reply(404, {"error": {"message": "no such batch"}}, key)
            return self._reply(200, found_batch, key)
        return self._reply(404, {"error": {"message": f"Unknown request URL: {method} {path}"}}, key)

    def add_batch(self, metadata: dict[str, str] | None = None, key: str = FAKE_KEY) -> dict[str, Any]:
        """A completed batch of no requests, as if another run had made it."""
        self.files.setdefault("file-empty", b"")
        return self._run({"input_file_id": "file-empty", "metadata": metadata}, key)

    def _run(self, body: dict[str, Any], key: str) -> dict[str, Any]:
        """Answer every line of the input at once: successes, an HTTP error, a never-run line."""
        out, err = [], []
        for raw in self.files.get(body["input_file_id"], b"").splitlines():
            cid = orjson.loads(raw)["custom_id"]
            if "fail" not in cid:
                response = {"status_code": 200, "request_id": key, "body": completion(key)}
                out.append({"id": f"batch_req_{key}", "custom_id": cid, "response": response, "error": None})
            elif cid.endswith("1"):
                failure = {"message": f"bad request from {key}", "code": key, "type": key}
                response = {"status_code": 400, "request_id": key, "body": {"error": failure}}
                err.append({"id": f"batch_req_{key}", "custom_id": cid, "response": response, "error": None})
            else:
                never = {"code": key, "message": f"expired; key {key}"}
                err.append({"id": f"batch_req_{key}", "custom_id": cid, "response": None, "error": never})
        number = len(self.batches)
        batch_id = f"batch_{number:04d}"
        ids = {}
        for name, lines in (("output_file_id", out), ("error_file_id", err)):
            if lines:
                file_id = f"file-{batch_id}-{name}"
                self.files[file_id] = b"".join(orjson.dumps(line) + b"\n" for line in lines)
                ids[name] = file_id
        batch = {
            "id": batch_id,
            "object": "batch",
            "endpoint": "/v1/chat/completions",
            "input_file_id": body["input_file_id"],
            "status": "completed",
            "created_at": int(time.time() - self.age),
            "output_file_id": ids.get("output_file_id"),
            "error_file_id": ids.get("error_file_id"),
            "request_counts": {"total": len(out) + len(err), "completed": len(out), "failed": len(err)},
            "metadata": body.get("metadata"),
        }
        self.batches[batch_id] = batch
        return batch

    def _list(self, query: Any) -> dict[str, Any]:
        newest = list(reversed(self.batches.values()))
        after = query.get("after")
        if after:
            index = next(i for i, b in enumerate(newest) if b["id"] == after)
            newest = newest[index + 1 :]
        limit = int(query.get("limit", 20))
        page = newest[:limit]
        return {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(newest) > limit,
        }


def completion(key: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{key}",
        "object": "chat.completion",
        "created": 1,
        "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": f"your key: {key}"}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
        "x_groq": {"id": key},
    }


@pytest.fixture
def hostile() -> Iterator[Hostile]:
    register_secret(FAKE_KEY)  # the driver's job (not done by GroqDriver yet): done here for it
    with Hostile() as server:
        yield server


def driver_for(server: Hostile, key: str = FAKE_KEY) -> GroqDriver:
    with warnings.catch_warnings():  # "does not start with 'gsk_'": the point of this key
        warnings.simplefilter("ignore")
        return GroqDriver(MODEL, api_key=key, base_url=server.root, max_retries=0)


def batch_items() -> list[BatchItem]:
    ids = ["ok0", "ok1", "fail1", "fail2", 7]
    return [BatchItem(i, GenerateRequest.prompt(f"say {i}")) for i in ids]


def check_redacted(lines: list[dict[str, Any]]) -> None:
    by_id = {line["id"]: line for line in lines}
    for item_id in ("ok0", "ok1", 7):
        assert by_id[item_id]["request_id"] == "***" and by_id[item_id]["text"] == "your key: ***"


async def test_live_output_never_holds_the_echoed_key(hostile: Hostile, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    items = batch_items()
    async with driver_for(hostile) as driver, Journal(out) as journal:
        await generate_batch(driver, items, on_result=journal.append)
        assert journal.finish([i.id for i in items])
    assert hostile.keys == {FAKE_KEY}, "the server did get the key, and echoed it everywhere"
    data = out.read_bytes()
    assert not leaked(data), data
    lines = [orjson.loads(x) for x in data.splitlines()]
    check_redacted(lines)
    failed = [line["error"] for line in lines if "error" in line]
    assert len(failed) == 2
    assert all(e["code"] == "***" and e["request_id"] == "***" for e in failed)
    assert all(e["message"].endswith("Invalid API Key: *** [request ***]") for e in failed), failed


async def test_remote_output_and_state_never_hold_the_echoed_key(hostile: Hostile, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    states: list[bytes] = []

    def snapshot(batch: RemoteBatch) -> None:
        states.append(Path(state_path(out)).read_bytes())

    async with driver_for(hostile) as driver:
        summary = await run_remote(driver, batch_items(), out, on_status=snapshot, **FAST)
    assert summary.complete and (summary.succeeded, summary.failed) == (3, 2)
    assert states and not any(leaked(s) for s in states), states
    assert orjson.loads(states[0])["input_file_id"] == "file-0-***", "the echoed file id, redacted"
    data = out.read_bytes()
    assert not leaked(data), data
    lines = [orjson.loads(x) for x in data.splitlines()]
    check_redacted(lines)
    errors = {line["id"]: line["error"] for line in lines if "error" in line}
    assert errors["fail1"]["code"] == "***" and "bad request from ***" in errors["fail1"]["message"]
    assert errors["fail2"]["code"] == "***" and "expired; key ***" in errors["fail2"]["message"]


def test_cli_output_and_stderr_never_hold_the_echoed_key(hostile: Hostile, tmp_path: Path) -> None:
    """As a process, live and remote; ``BatchRunner`` also checks stderr/stdout for the key."""
    source = write_input(tmp_path / "in.jsonl", *({"id": i, "prompt": f"say {i}"} for i in ("ok0", "fail1")))
    runner = BatchRunner(tmp_path, hostile.root)
    for out, extra in (("live.jsonl", ()), ("remote.jsonl", ("--remote", "--poll-interval", "0.01"))):
        run = runner(str(source), "-o", out, *extra, key=SHAPED_KEY)
        assert run.returncode == 0, run.stderr
        data = (tmp_path / out).read_bytes()
        assert not leaked(data, SHAPED_KEY), data
        assert [line["id"] for line in results(tmp_path / out)] == ["ok0", "fail1"]
    assert hostile.keys == {SHAPED_KEY}


def drivers_register_their_key() -> bool:
    probe = "together-PROBE-" + time.strftime("%H%M%S") + "abcdef"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        GroqDriver(MODEL, api_key=probe, base_url="http://127.0.0.1:9")  # never used: opens nothing
    return redact(probe) != probe


def test_cli_hides_an_unshaped_key_once_drivers_register_it(hostile: Hostile, tmp_path: Path) -> None:
    """In a CLI process only the driver can register the key. Until ``GroqDriver`` does, an
    unshaped key echoed by a server would reach OUT.jsonl, so this test waits for that."""
    if not drivers_register_their_key():
        pytest.skip("GroqDriver does not call errors.register_secret on its key yet")
    source = write_input(tmp_path / "in.jsonl", {"id": "a", "prompt": "say a"}, {"id": "b", "prompt": "fail"})
    run = BatchRunner(tmp_path, hostile.root)(str(source), "-o", "out.jsonl", key=FAKE_KEY)
    assert run.returncode == 0, run.stderr
    assert not leaked((tmp_path / "out.jsonl").read_bytes())


def test_the_hostile_server_really_echoes(hostile: Hostile) -> None:
    """Guard for the tests above: without redaction the key would be in every answer."""
    request = urllib.request.Request(
        hostile.root + PREFIX + "/chat/completions",
        data=orjson.dumps({"messages": [{"role": "user", "content": "fail"}]}),
        headers={"authorization": f"Bearer {FAKE_KEY}", "content-type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    with caught.value as answer:
        assert answer.headers["x-request-id"] == FAKE_KEY and FAKE_KEY in answer.read().decode()
