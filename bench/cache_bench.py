"""Cache latency: what a hit costs (SQLite and Redis), and what caching adds to a miss.

    python bench/cache_bench.py                 # about 5 s
    python bench/cache_bench.py --quick         # about 2 s
    python bench/cache_bench.py --markdown
    python bench/cache_bench.py --redis-url redis://127.0.0.1:6379/15   # instead of starting one

Hits are timed through ``CachedDriver.generate`` / ``generate_stream`` (key, lookup, decode,
building the response), each call alone, after a warm-up. The miss overhead is measured against
an inner driver that answers instantly from memory, so the network does not drown it: it is
``CachedDriver`` on always-new requests (key, failed lookup, encode, store) minus the inner
driver alone. A loopback round trip to the Groq emulator (another process) is the yardstick.
Redis rows need ``redis-server`` on PATH (started on a free port, then stopped) or ``--redis-url``
(the database is flushed: give it a scratch one). Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from _harness import api_key, emulator, summary
from botticelli import GenerateRequest, GroqDriver, ResponseStream, StreamChunk
from botticelli.cache import CacheBackend, CachedDriver, RedisCache, SQLiteCache
from botticelli.drivers.base import Driver
from botticelli.types import GenerateResponse, TextOutput, Usage

TARGET_SQLITE_HIT = 0.2e-3  # seconds: the goal for a median SQLite hit
ANSWER = " ".join(["word"] * 120)  # ~120 tokens, 600 characters
STREAM_CHUNKS = 40


class InstantDriver(Driver):
    """Answers from memory: the inner driver for measuring what the cache adds."""

    provider_name = "bench"
    model_name = "instant"
    base_url = "http://127.0.0.1:1/v1"

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        return GenerateResponse(
            outputs=[TextOutput(ANSWER)],
            finish_reason="stop",
            model=self.model_name,
            provider=self.provider_name,
            id="chatcmpl-bench",
            request_id="req_bench",
            usage=Usage(20, 120, 140, 0.001, 0.002, 0.05, 0.053),
        )

    def generate_stream(self, request: GenerateRequest) -> ResponseStream:
        return ResponseStream(self._chunks(), model=self.model_name, provider=self.provider_name)

    async def _chunks(self) -> AsyncIterator[StreamChunk]:
        piece = ANSWER[: len(ANSWER) // STREAM_CHUNKS]
        for _ in range(STREAM_CHUNKS):
            yield StreamChunk(text=piece)
        yield StreamChunk(is_final=True, finish_reason="stop", usage=Usage(20, 120, 140), request_id="req_b")


@dataclass(frozen=True)
class Row:
    label: str
    median: float
    p90: float
    n: int

    @staticmethod
    def of(label: str, samples: list[float]) -> Row:
        s = summary(samples)
        return Row(label, s["median"], s["p90"], len(samples))

    @staticmethod
    def difference(label: str, samples: list[float], baseline: list[float]) -> Row:
        """What ``samples`` add to ``baseline``: the difference of their medians (and p90s)."""
        a, b = summary(samples), summary(baseline)
        return Row(label, a["median"] - b["median"], a["p90"] - b["p90"], len(samples))


def request(n: int = 0) -> GenerateRequest:
    return GenerateRequest.prompt(f"Question number {n}: why is the sky blue?", temperature=0, max_tokens=200)


async def timed(call: Callable[[int], Awaitable[object]], n: int, warmup: int) -> list[float]:
    for i in range(warmup):
        await call(-1 - i)
    gc.collect()
    samples = []
    for i in range(n):
        started = time.perf_counter()
        await call(i)
        samples.append(time.perf_counter() - started)
    return samples


async def drain(stream: ResponseStream) -> None:
    async for _ in stream:
        pass


async def measure_store(label: str, store: CacheBackend, n: int, rows: list[Row]) -> None:
    inner = InstantDriver()
    driver = CachedDriver(inner, store)
    hit, stream_hit = request(), request(10**9)
    await driver.generate(hit)
    await drain(driver.generate_stream(stream_hit))
    if isinstance(store, SQLiteCache):
        rows.append(
            Row.of(
                "request key (canonical JSON + sha256)", await timed(_sync(lambda i: driver.key(hit)), n, 200)
            )
        )
    rows.append(Row.of(f"{label} hit: generate", await timed(lambda i: driver.generate(hit), n, 200)))
    rows.append(
        Row.of(
            f"{label} hit: stream replay ({STREAM_CHUNKS} chunks)",
            await timed(lambda i: drain(driver.generate_stream(stream_hit)), n, 200),
        )
    )
    misses = n // 2
    with_cache = await timed(lambda i: driver.generate(request(i + 1)), misses, 50)
    alone = await timed(lambda i: inner.generate(request(i + 1)), misses, 50)
    rows.append(Row.difference(f"{label} miss: cache work added", with_cache, alone))
    if isinstance(store, SQLiteCache):
        key = driver.key(hit)
        assert key is not None
        rows.append(
            Row.of(f"{label} lookup alone, in the loop", await timed(lambda i: store.get(key), n, 200))
        )
        rows.append(
            Row.of(
                f"{label} lookup alone, via a thread",
                await timed(lambda i: asyncio.to_thread(store._store.get, key), n, 200),
            )
        )
    assert driver.stats.hits >= 2 * n and driver.stats.errors == 0, driver.stats


@contextmanager
def redis_server(url: str | None) -> Iterator[str | None]:
    if url is not None:
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as workdir:
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit("redis-server did not start") from None
                    time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            process.wait(timeout=10)


async def run(n: int, redis_url: str | None, emulator_url: str) -> list[Row]:
    rows: list[Row] = []
    driver = GroqDriver(api_key=api_key(), base_url=emulator_url)
    rows.append(
        Row.of(
            "no cache: emulator round trip (loopback)",
            await timed(lambda i: driver.generate(request(i)), n // 5, 50),
        )
    )
    await driver.aclose()
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteCache(Path(tmp) / "bench.sqlite3")
        await measure_store("SQLite", store, n, rows)
        await store.aclose()
    if redis_url is not None:
        import redis

        redis.Redis.from_url(redis_url).flushdb()
        remote = RedisCache(redis_url)
        await measure_store("Redis", remote, n, rows)
        await remote.aclose()
    return rows


def _sync(fn: Callable[[int], object]) -> Callable[[int], Awaitable[object]]:
    async def call(i: int) -> object:
        return fn(i)

    return call


def render(rows: list[Row], markdown: bool) -> str:
    header = ["", "median", "p90", "n"]
    body = [[r.label, f"{r.median * 1e6:.1f} µs", f"{r.p90 * 1e6:.1f} µs", str(r.n)] for r in rows]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|---|---:|---:|---:|"]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(4)]
    return "\n".join(
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in [header, *body]
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument(
        "--redis-url", help="use this Redis (its database is flushed) instead of starting one"
    )
    args = parser.parse_args()
    n = 1000 if args.quick else 5000
    # The round-trip yardstick measures the wire, not the client-side limiter (the emulator does
    # not enforce limits either): 1000 requests at the free plan's 30 RPM would take half an hour.
    os.environ["BOTTICELLI_GROQ_PLAN"] = "unlimited"
    with redis_server(args.redis_url) as redis_url, emulator() as emu:
        if redis_url is None:
            print("redis-server not found: Redis rows skipped", file=sys.stderr)
        rows = asyncio.run(run(n, redis_url, emu.url))
    print(render(rows, args.markdown))
    sqlite_hit = next(r.median for r in rows if r.label == "SQLite hit: generate")
    verdict = "meets" if sqlite_hit < TARGET_SQLITE_HIT else "MISSES"
    print(f"\nSQLite hit median {sqlite_hit * 1e3:.3f} ms: {verdict} the < 0.2 ms target", file=sys.stderr)
    return 0 if sqlite_hit < TARGET_SQLITE_HIT else 1


if __name__ == "__main__":
    sys.exit(main())
