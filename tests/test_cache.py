"""CachedDriver over real HTTP against the emulator, on both stores (a SQLite file and a real
redis-server): hits never reach the emulator, streams replay, errors and sampled requests are
not cached, entries expire, and the API key is in no byte the cache stores."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from botticelli import (
    GenerateRequest,
    GroqDriver,
    InvalidRequestError,
    ResponseError,
    ServerError,
    StreamChunk,
)
from botticelli.cache import CacheBackend, CachedDriver, CachedResponse, CachedStream, RedisCache, SQLiteCache
from botticelli.emulator import Emulator, Fault
from botticelli.types import FinishReason

from .conftest import TEST_KEY

MODEL = "openai/gpt-oss-20b"


@pytest.fixture(params=["sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[CacheBackend]:
    backend: CacheBackend
    if request.param == "sqlite":
        backend = SQLiteCache(tmp_path / "cache.sqlite3")
    else:
        backend = RedisCache(request.getfixturevalue("redis_url"))
    yield backend
    await backend.aclose()


def groq(emulator: Emulator, **options: object) -> GroqDriver:
    return GroqDriver(MODEL, api_key=TEST_KEY, base_url=emulator.base_url, **options)  # type: ignore[arg-type]


@pytest.fixture
async def driver(emulator: Emulator, store: CacheBackend) -> AsyncIterator[CachedDriver]:
    cached = CachedDriver(groq(emulator), store)
    yield cached
    await cached.aclose()


def prompt(text: str = "Why is the sky blue?", **params: object) -> GenerateRequest:
    params.setdefault("temperature", 0)
    params.setdefault("max_tokens", 40)
    return GenerateRequest.prompt(text, **params)  # type: ignore[arg-type]


def seen(emulator: Emulator) -> int:
    """API requests the emulator received, answered or not."""
    return emulator.stats.requests


async def read(stream: object) -> list[StreamChunk]:
    assert isinstance(stream, CachedStream)
    return [chunk async for chunk in stream]


async def stored_bytes(store: CacheBackend, redis_url: str | None) -> bytes:
    """Every byte the store holds: the SQLite file with its WAL and shared memory, or every Redis
    key and value in the database."""
    if isinstance(store, SQLiteCache):
        await store.flush()
        return b"".join(p.read_bytes() for p in store.path.parent.iterdir() if p.is_file())
    import redis

    assert redis_url is not None
    client = redis.Redis.from_url(redis_url)
    try:
        dump = []
        for name in client.keys("*"):
            dump.append(name)
            kind = client.type(name)
            if kind == b"string":
                dump.append(client.get(name) or b"")
            elif kind == b"hash":
                for field, value in client.hgetall(name).items():
                    dump += [field, value]
            else:
                pytest.fail(f"unexpected Redis type {kind!r} at {name!r}")
        return b"\n".join(dump)
    finally:
        client.close()


async def test_miss_then_hit(driver: CachedDriver, emulator: Emulator, store: CacheBackend) -> None:
    first = await driver.generate(prompt())
    assert not isinstance(first, CachedResponse) and not driver.last_hit
    assert seen(emulator) == 1
    second = await driver.generate(prompt())
    assert seen(emulator) == 1  # the emulator never saw it
    assert isinstance(second, CachedResponse) and second.cached and driver.last_hit
    assert second.text == first.text and second.outputs == first.outputs
    assert second.finish_reason == first.finish_reason and second.usage == first.usage
    assert second.request_id == first.request_id and second.id == first.id
    assert second.model == first.model and second.provider == "groq"
    assert second.rate_limit is None and 0 < second.latency < first.latency
    assert isinstance(second.finish_reason, FinishReason) and second.finish_reason is first.finish_reason
    assert second.raw_finish_reason == first.raw_finish_reason is not None
    travel = {"latency", "time_to_first_token", "rate_limit", "cached"}
    fields = [f.name for f in dataclasses.fields(first) if f.name not in travel]
    assert {n: getattr(second, n) for n in fields} == {n: getattr(first, n) for n in fields}
    second.outputs.clear()  # a caller mutating a hit does not change the next one
    assert (await driver.generate(prompt())).text == first.text

    await driver.generate(prompt("Another question"))
    assert seen(emulator) == 2
    stats = await store.stats()
    assert (stats.hits, stats.misses, stats.entries) == (2, 2, 2)
    assert stats.bytes > len(first.text)
    assert (driver.stats.hits, driver.stats.misses, driver.stats.stored) == (2, 2, 2)


async def test_stream_replays_the_same_chunks(driver: CachedDriver, emulator: Emulator) -> None:
    live_stream = driver.generate_stream(prompt())
    live = await read(live_stream)
    assert live_stream.cached is False and emulator.stats.streams == 1 and seen(emulator) == 1
    replay_stream = driver.generate_stream(prompt())
    replay = await read(replay_stream)
    assert seen(emulator) == 1 and replay_stream.cached is True
    assert len(live) > 3
    assert [(c.text, c.reasoning, c.is_final) for c in replay] == [
        (c.text, c.reasoning, c.is_final) for c in live
    ]
    final, live_final = replay[-1], live[-1]
    assert final.is_final and final.usage is not None and final.usage.completion_tokens > 0
    assert final.usage == live_final.usage
    assert final.finish_reason == live_final.finish_reason and final.request_id == live_final.request_id
    assert final.raw_finish_reason == live_final.raw_finish_reason is not None
    assert isinstance(final.finish_reason, FinishReason)
    assert final.latency is not None and final.time_to_first_token is not None
    assert live_final.latency is not None  # (a replay is faster, but that is for bench/, not a test)
    assert live_stream.response is not None and replay_stream.response is not None
    assert replay_stream.response.text == live_stream.response.text
    # a stored stream answers generate() too, and the other way round
    answer = await driver.generate(prompt())
    assert isinstance(answer, CachedResponse) and answer.text == live_stream.response.text
    fresh = await driver.generate(prompt("Generate first"))
    chunks = await read(driver.generate_stream(prompt("Generate first")))
    assert seen(emulator) == 2
    assert "".join(c.text for c in chunks) == fresh.text and chunks[-1].usage == fresh.usage


async def test_abandoned_stream_is_not_stored(driver: CachedDriver, emulator: Emulator) -> None:
    async with driver.generate_stream(prompt()) as stream:
        async for _ in stream:
            break
    await read(driver.generate_stream(prompt()))
    assert seen(emulator) == 2


async def test_errors_are_not_cached(emulator: Emulator, store: CacheBackend) -> None:
    driver = CachedDriver(groq(emulator, max_retries=0), store)
    emulator.inject(Fault("server_error", status=500, count=1))
    with pytest.raises(ServerError):
        await driver.generate(prompt())
    emulator.inject(Fault("stream_error", after_chunks=2, count=1))
    with pytest.raises(InvalidRequestError):  # Groq's tool_use_failed, mid-stream
        await read(driver.generate_stream(prompt()))
    emulator.inject(Fault("truncate", after_chunks=2, count=1))
    with pytest.raises(ResponseError):
        await read(driver.generate_stream(prompt()))
    assert (await store.stats()).entries == 0 and seen(emulator) == 3
    answer = await driver.generate(prompt())  # goes to the emulator, succeeds, is stored
    assert seen(emulator) == 4 and emulator.stats.by_status.get(500) == 1
    assert (await driver.generate(prompt())).text == answer.text
    assert seen(emulator) == 4
    await driver.aclose()


async def test_sampled_requests_bypass_unless_cache_all(emulator: Emulator, store: CacheBackend) -> None:
    driver = CachedDriver(groq(emulator), store)
    sampled = prompt(temperature=0.8)
    await driver.generate(sampled)
    await driver.generate(sampled)
    await read_any(driver.generate_stream(sampled))
    assert seen(emulator) == 3 and driver.stats.bypassed == 3
    assert (await store.stats()).entries == 0
    everything = CachedDriver(groq(emulator), store, cache_all=True)
    await everything.generate(sampled)
    await everything.generate(sampled)
    assert seen(emulator) == 4 and everything.last_hit
    seeded = prompt(temperature=0.8, seed=3)  # a fixed seed counts as deterministic
    await driver.generate(seeded)
    await driver.generate(seeded)
    assert seen(emulator) == 5
    await driver.aclose()
    await everything.aclose()


async def read_any(stream: object) -> list[StreamChunk]:
    return [chunk async for chunk in stream]  # type: ignore[attr-defined]


async def test_ttl_expires(emulator: Emulator, store: CacheBackend) -> None:
    driver = CachedDriver(groq(emulator), store, ttl=0.3)
    await driver.generate(prompt())
    await driver.generate(prompt())
    assert seen(emulator) == 1
    await asyncio.sleep(0.45)
    again = await driver.generate(prompt())
    assert seen(emulator) == 2 and not isinstance(again, CachedResponse)
    await driver.generate(prompt())
    assert seen(emulator) == 2  # stored again with a fresh TTL
    await driver.aclose()


async def test_api_key_is_never_stored(
    driver: CachedDriver, emulator: Emulator, store: CacheBackend, request: pytest.FixtureRequest
) -> None:
    answer = await driver.generate(prompt())
    await read(driver.generate_stream(prompt("A streamed one")))
    await driver.generate(prompt())
    redis_url = request.getfixturevalue("redis_url") if isinstance(store, RedisCache) else None
    dump = await stored_bytes(store, redis_url)
    assert answer.text.encode() in dump  # the dump does show what is stored ...
    assert answer.request_id is not None and answer.request_id.encode() in dump
    assert TEST_KEY.encode() not in dump  # ... and the key is nowhere in it
    assert TEST_KEY[4:].encode() not in dump and TEST_KEY[-12:].encode() not in dump
    assert b"authorization" not in dump.lower() and b"x-ratelimit" not in dump.lower()


async def test_concurrent_identical_requests_share_one_call(driver: CachedDriver, emulator: Emulator) -> None:
    answers = await asyncio.gather(*(driver.generate(prompt()) for _ in range(6)))
    assert seen(emulator) == 1
    assert len({a.text for a in answers}) == 1
    assert driver.stats.misses == 1 and driver.stats.coalesced == 5


async def test_a_broken_store_never_fails_a_request(
    emulator: Emulator, unused_tcp_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    store = RedisCache(f"redis://127.0.0.1:{unused_tcp_port}/0", timeout=1.0)
    driver = CachedDriver(groq(emulator), store)
    with caplog.at_level("DEBUG", logger="botticelli"):
        first = await driver.generate(prompt())
        chunks = await read(driver.generate_stream(prompt()))
    assert first.text and chunks[-1].is_final
    assert seen(emulator) == 2 and driver.stats.errors == 0  # the store absorbed its failures ...
    assert store.errors >= 1  # ... and counted them, with one warning and no traceback
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and warnings[0].exc_info is None
    await driver.aclose()
    await store.aclose()
