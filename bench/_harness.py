"""Shared pieces of the benchmark scripts: the emulator subprocess, the three clients under test,
child-process environments and small statistics helpers.

The three clients send the same request body (same model, prompt and ``max_completion_tokens``)
to the same emulator, and each one's library is imported only when that client is built, so a
worker process that measures one client never loads the others.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
OUT_DIR = BENCH_DIR / "out"  # git-ignored: byte-code cache for the import runs, profiles

# A fake key: the emulator accepts any key starting with ``gsk_``. Children get it through the
# environment (never on a command line) and nothing prints it.
KEY_ENV = "BOTTICELLI_BENCH_KEY"
BENCH_KEY = "gsk_bench_" + "0123456789abcdef" * 3

MODEL = "openai/gpt-oss-20b"
PROMPT = "Say hello in ten words."
MAX_TOKENS = 10
TEMPERATURE = 0.0  # greedy: the emulator then gives every client the same answer

CLIENTS = ("botticelli", "groq", "httpx2")
LABELS = {"botticelli": "botticelli", "groq": "groq SDK", "httpx2": "raw httpx2"}

_URL_LINE = re.compile(r"listening on (http://(?:127\.0\.0\.1|localhost):\d+)")


def api_key() -> str:
    return os.environ.get(KEY_ENV) or BENCH_KEY


def wire_body(*, stream: bool, model: str = MODEL) -> dict[str, Any]:
    """The body every client sends: what botticelli's Groq profile encodes for the request."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_completion_tokens": MAX_TOKENS,
        "temperature": TEMPERATURE,
    }
    if stream:
        body["stream"] = True
    return body


def check_local(url: str) -> str:
    """Only loopback servers: the benchmark must never send a request anywhere else."""
    if not re.fullmatch(r"http://(127\.0\.0\.1|localhost)(:\d+)?/?", url):
        raise SystemExit(f"refusing a non-loopback server URL: {url!r}")
    return url.rstrip("/")


def child_env(*, bytecode_cache: bool = False) -> dict[str, str]:
    """The environment of every child: no proxies (requests stay on loopback), none of the
    developer's Groq settings, the fake key. With ``bytecode_cache`` the children write and reuse
    ``.pyc`` files under ``bench/out/pycache`` (every library alike), as an installed package
    would, instead of compiling botticelli's sources on each import."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.lower().endswith("_proxy") and not k.startswith(("GROQ_", "BOTTICELLI_"))
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env[KEY_ENV] = BENCH_KEY
    if bytecode_cache:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(OUT_DIR / "pycache")
    return env


def pinned() -> tuple[int, int] | None:
    """(the emulator's CPU, the clients' CPU) where this process may use two or more (Linux):
    the server and the measured client then never share a core nor migrate between the two, the
    largest source of noise in client CPU time on a small machine; ``None`` elsewhere."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    return (cpus[0], cpus[1]) if len(cpus) >= 2 else None


def pin(cpu: int) -> None:
    """Keep the calling process (and the children it starts) on one CPU."""
    os.sched_setaffinity(0, {cpu})


@dataclass
class Emulator:
    url: str
    process: subprocess.Popen[str] | None

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.stdout is not None:
            self.process.stdout.close()
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextmanager
def emulator(
    *,
    token_delay: float = 0.0,
    url: str | None = None,
    timeout: float = 30.0,
    reply_tokens: int | None = None,
    cpu: int | None = None,
    wire: str = "groq",
) -> Iterator[Emulator]:
    """The emulator of ``wire`` in another process on a free loopback port (or an existing
    loopback server at ``url``), stopped on exit; ``cpu``: the one CPU it may run on (``pinned``)."""
    if url is not None:
        yield Emulator(check_local(url), None)
        return
    command = [sys.executable, "-m", "botticelli.emulator", "--wire", wire, "--host", "127.0.0.1"]
    command += ["--port", "0", "--token-delay", repr(token_delay)]
    if reply_tokens is not None:
        command += ["--reply-tokens", str(reply_tokens)]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=child_env(),
        cwd=ROOT,
        preexec_fn=None if cpu is None else (lambda: pin(cpu)),
    )
    emu = Emulator("", process)
    try:
        deadline = time.monotonic() + timeout
        assert process.stdout is not None
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                raise SystemExit(
                    f"the {wire} emulator exited (code {process.wait()}) before printing its URL"
                )
            match = _URL_LINE.search(line)
            if match:
                emu.url = check_local(match.group(1))
                break
        else:
            raise SystemExit(f"the {wire} emulator did not print its URL in time")
        yield emu
    finally:
        emu.stop()


# ---- worker processes: one (client, kind, concurrency) cell each -----------------------------------

RESULT_PREFIX = "BENCH_RESULT "


async def drive(fn: Callable[[], Awaitable[Any]], total: int, concurrency: int) -> list[Any]:
    """``total`` calls of ``fn`` by ``concurrency`` tasks; their results."""
    results: list[Any] = []
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            results.append(await fn())

    await asyncio.gather(*(worker() for _ in range(min(concurrency, total))))
    return results


async def measure(
    fn: Callable[[], Awaitable[Any]], n: int, concurrency: int
) -> tuple[list[Any], dict[str, Any]]:
    """A warm-up (imports, the pool's connections), then ``n`` calls: their results, and the
    process's CPU µs per call and calls per second of wall time."""
    await drive(fn, max(2 * concurrency, n // 10), concurrency)
    gc.collect()
    c0, w0 = time.process_time(), time.perf_counter()
    results = await drive(fn, n, concurrency)
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    return results, {"cpu_us": cpu / n * 1e6, "rps": n / wall}


def report(result: dict[str, Any]) -> None:
    """A worker's result, as the one line ``spawn`` reads."""
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")


def spawn(
    script: str, name: str, url: str, kind: str, n: int, concurrency: int, env: dict[str, str]
) -> dict[str, Any]:
    r"""Run ``script --worker NAME ...`` in a fresh interpreter; the result it ``report``\ s."""
    command = [sys.executable, script, "--worker", name, "--url", url, "--kind", kind]
    command += ["--n", str(n), "--concurrency", str(concurrency)]
    out = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=900)
    lines = [line for line in out.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if out.returncode != 0 or not lines:
        raise SystemExit(f"{name} {kind} c={concurrency} worker failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1][len(RESULT_PREFIX) :])
    return result


# ---- clients ------------------------------------------------------------------------------------


class BenchClient(Protocol):
    async def call(self) -> str:
        """One non-streaming completion; the text."""
        ...

    async def stream(self) -> tuple[float, float, str]:
        """One streamed completion, timed from just before the library call: (seconds to the first
        non-empty content delta, seconds to the end of the stream, the text)."""
        ...

    async def aclose(self) -> None: ...


class BotticelliClient:
    """``GroqDriver.generate`` / ``generate_stream``; a ``GenerateRequest`` is built per call, as a
    caller with a new prompt each time would."""

    def __init__(self, url: str, model: str = MODEL) -> None:
        from botticelli import GenerateRequest, GroqDriver, Message

        self._request_type = GenerateRequest
        self._message = Message
        # The emulator here enforces no limits: measure the client, not client-side limiting.
        self._driver = GroqDriver(model, api_key=api_key(), base_url=url, plan="unlimited")

    async def call(self) -> str:
        request = self._request_type(
            (self._message.user(PROMPT),), max_tokens=MAX_TOKENS, temperature=TEMPERATURE
        )
        response = await self._driver.generate(request)
        return response.text

    async def stream(self) -> tuple[float, float, str]:
        started = time.perf_counter()
        request = self._request_type(
            (self._message.user(PROMPT),), max_tokens=MAX_TOKENS, temperature=TEMPERATURE
        )
        first = 0.0
        parts = []
        async for chunk in self._driver.generate_stream(request):
            if chunk.text:
                if not first:
                    first = time.perf_counter()
                parts.append(chunk.text)
        end = time.perf_counter()
        return first - started, end - started, "".join(parts)

    async def aclose(self) -> None:
        await self._driver.aclose()


class GroqSDKClient:
    """The official SDK: ``AsyncGroq(...).chat.completions.create``, with and without ``stream``."""

    def __init__(self, url: str, model: str = MODEL) -> None:
        import groq

        self._model = model
        self._client = groq.AsyncGroq(api_key=api_key(), base_url=url, max_retries=2)

    async def call(self) -> str:
        completion = await self._client.chat.completions.create(
            model=self._model,
            messages=[{"role": "user", "content": PROMPT}],
            max_completion_tokens=MAX_TOKENS,
            temperature=TEMPERATURE,
        )
        return completion.choices[0].message.content or ""

    async def stream(self) -> tuple[float, float, str]:
        started = time.perf_counter()
        first = 0.0
        parts = []
        stream = await self._client.chat.completions.create(
            model=self._model,
            messages=[{"role": "user", "content": PROMPT}],
            max_completion_tokens=MAX_TOKENS,
            temperature=TEMPERATURE,
            stream=True,
        )
        async for chunk in stream:
            if chunk.choices:
                text = chunk.choices[0].delta.content
                if text:
                    if not first:
                        first = time.perf_counter()
                    parts.append(text)
        end = time.perf_counter()
        return first - started, end - started, "".join(parts)

    async def aclose(self) -> None:
        await self._client.close()


class RawHttpx2Client:
    """The floor: one ``httpx2.AsyncClient`` posting prebuilt JSON bytes, ``response.json()``; for
    streams ``aiter_lines()``, each frame parsed with ``json.loads`` until ``data: [DONE]``, then the
    body read to its end so the connection is reused (as the groq SDK does)."""

    def __init__(self, url: str, model: str = MODEL) -> None:
        import httpx2

        self._json = json
        self._url = url + "/openai/v1/chat/completions"
        self._body = json.dumps(wire_body(stream=False, model=model)).encode()
        self._stream_body = json.dumps(wire_body(stream=True, model=model)).encode()
        self._client = httpx2.AsyncClient(
            headers={"authorization": f"Bearer {api_key()}", "content-type": "application/json"},
            timeout=60.0,
        )

    async def call(self) -> str:
        response = await self._client.post(self._url, content=self._body)
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}")
        data = response.json()
        return str(data["choices"][0]["message"]["content"] or "")

    async def stream(self) -> tuple[float, float, str]:
        started = time.perf_counter()
        first = 0.0
        parts = []
        loads = self._json.loads
        done = False
        async with self._client.stream("POST", self._url, content=self._stream_body) as response:
            if response.status_code != 200:
                raise RuntimeError(f"HTTP {response.status_code}")
            # Read to the end of the body (the terminating chunk follows [DONE] at once): leaving
            # the loop early would make httpx2 close the connection instead of pooling it.
            async for line in response.aiter_lines():
                if done or not line.startswith("data: "):
                    continue
                data = line[6:]
                if data == "[DONE]":
                    done = True
                    continue
                choices = loads(data).get("choices")
                if choices:
                    text = choices[0]["delta"].get("content")
                    if text:
                        if not first:
                            first = time.perf_counter()
                        parts.append(text)
        end = time.perf_counter()
        return first - started, end - started, "".join(parts)

    async def aclose(self) -> None:
        await self._client.aclose()


def make_client(name: str, url: str, model: str = MODEL) -> BenchClient:
    if name == "botticelli":
        return BotticelliClient(url, model)
    if name == "groq":
        return GroqSDKClient(url, model)
    if name == "httpx2":
        return RawHttpx2Client(url, model)
    raise ValueError(f"unknown client {name!r}; expected one of {CLIENTS}")


# ---- statistics ----------------------------------------------------------------------------------


def quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile (``q`` in [0, 1]); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summary(values: Sequence[float]) -> dict[str, float]:
    """Median, p10, p90, interquartile range and count."""
    return {
        "median": statistics.median(values) if values else float("nan"),
        "p10": quantile(values, 0.10),
        "p25": quantile(values, 0.25),
        "p75": quantile(values, 0.75),
        "p90": quantile(values, 0.90),
        "n": float(len(values)),
    }


def rotated(items: Sequence[str], shift: int) -> list[str]:
    """``items`` rotated by ``shift``: rounds alternate which client runs first."""
    shift %= len(items)
    return [*items[shift:], *items[:shift]]
