"""The Redis store against a real redis-server: key layout, TTL in Redis, counters, clear, and
Redis's own maxmemory eviction as the size bound."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import redis

from botticelli import GenerateRequest, GroqDriver
from botticelli.cache import CachedDriver, CacheError, RedisCache, open_cache
from botticelli.cache.codec import CHECKSUM_BYTES
from botticelli.cache.redis_store import DEFAULT_PREFIX, masked_url
from botticelli.emulator import Emulator

from .conftest import TEST_KEY

MODEL = "openai/gpt-oss-20b"


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    sync = redis.Redis.from_url(redis_url)
    yield sync
    sync.close()


def key(n: int) -> str:
    return f"{n:064x}"


async def test_layout_ttl_and_counters(redis_url: str, client: redis.Redis, emulator: Emulator) -> None:
    store = open_cache(redis_url)
    assert isinstance(store, RedisCache) and DEFAULT_PREFIX == "botticelli:cache:v2:"
    driver = CachedDriver(GroqDriver(MODEL, api_key=TEST_KEY, base_url=emulator.base_url), store, ttl=120)
    request = GenerateRequest.prompt("Hello", temperature=0)
    await driver.generate(request)
    await driver.generate(request)
    entry_key = DEFAULT_PREFIX + str(driver.key(request))
    assert 119_000 < client.pttl(entry_key) <= 120_000
    assert set(client.keys("*")) == {entry_key.encode(), (DEFAULT_PREFIX + "_stats").encode()}
    stats = await store.stats()  # flushes the counts that were riding along
    assert (stats.hits, stats.misses, stats.entries) == (1, 1, 1)
    assert stats.bytes == client.strlen(entry_key) and stats.max_bytes is None
    assert client.hgetall(DEFAULT_PREFIX + "_stats") == {b"hits": b"1", b"misses": b"1"}
    await driver.aclose()
    await store.aclose()


async def test_counts_ride_along_with_lookups(redis_url: str, client: redis.Redis) -> None:
    store = RedisCache(redis_url)
    await store.set(key(1), b"one")
    for _ in range(300):  # more than FLUSH_EVERY: counts reach Redis without stats() or close
        await store.get(key(1))
    sent = client.hgetall(DEFAULT_PREFIX + "_stats")
    assert 256 <= int(sent[b"hits"]) < 300
    await store.aclose()
    assert client.hgetall(DEFAULT_PREFIX + "_stats")[b"hits"] == b"300"


async def test_expired_keys_leave_the_stats(redis_url: str) -> None:
    store = RedisCache(redis_url)
    await store.set(key(1), b"x" * 100, ttl=0.15)
    await store.set(key(2), b"y" * 50)
    assert (await store.stats()).bytes == 150 + 2 * CHECKSUM_BYTES  # each value carries its checksum
    await asyncio.sleep(0.25)
    assert await store.get(key(1)) is None
    stats = await store.stats()
    assert (stats.entries, stats.bytes) == (1, 50 + CHECKSUM_BYTES)
    await store.aclose()


async def test_clear_touches_only_its_prefix(redis_url: str, client: redis.Redis) -> None:
    client.set("someone:else", b"keep me")
    mine, other = RedisCache(redis_url), RedisCache(redis_url, prefix="botticelli:cache:v1:team-b:")
    for n in range(2500):  # more than one SCAN batch
        await mine.set(key(n), b"v")
    await other.set(key(1), b"w")
    assert (await mine.stats()).entries == 2500  # the other prefix is not counted ...
    assert await mine.clear() == 2500
    assert client.get("someone:else") == b"keep me"
    assert await other.get(key(1)) == b"w"  # ... nor cleared
    assert (await mine.stats()).entries == 0
    await mine.aclose()
    await other.aclose()


async def test_maxmemory_is_the_size_bound(redis_url: str, client: redis.Redis) -> None:
    """Documented setup: maxmemory + allkeys-lru. Stats report the bound and Redis keeps to it."""
    used = int(client.info("memory")["used_memory"])
    bound = used + 2 * 1024 * 1024
    saved = client.config_get("maxmemory*")
    client.config_set("maxmemory", bound)
    client.config_set("maxmemory-policy", "allkeys-lru")
    try:
        store = RedisCache(redis_url)
        for n in range(400):  # ~4 MB of values into a 2 MB budget
            await store.set(key(n), bytes([n % 256]) * 10_000)
        stats = await store.stats()
        assert stats.max_bytes == bound
        assert 0 < stats.entries < 400 and stats.bytes < 2 * 1024 * 1024
        assert await store.get(key(399)) is not None  # the last write is there; which older ones
        # went is Redis's call (its LRU clock ticks once a second: here all were equally old)
        await store.aclose()
    finally:
        client.config_set("maxmemory", saved["maxmemory"])
        client.config_set("maxmemory-policy", saved["maxmemory-policy"])


async def test_unreachable_redis_misses_but_stats_say_why(unused_tcp_port: int) -> None:
    """Lookups and stores absorb the failure (a miss, a dropped write); ``stats`` and ``clear``
    report it, without the password."""
    store = RedisCache(f"redis://:hunter2pass@127.0.0.1:{unused_tcp_port}/0", timeout=1.0)
    try:
        assert "hunter2pass" not in store.location and "***" in store.location
        assert await store.get(key(1)) is None
        await store.set(key(1), b"dropped")
        assert store.errors == 1  # the set fell in the backoff after the failed get: skipped
        await asyncio.sleep(0.3)  # past the first backoff: the next call tries Redis again
        with pytest.raises(CacheError) as caught:
            await store.stats()
        assert "hunter2pass" not in str(caught.value) and str(unused_tcp_port) in str(caught.value)
        with pytest.raises(CacheError):
            await store.clear()
    finally:
        await store.aclose()


def test_masked_url() -> None:
    assert masked_url("redis://u:p@h:1/0") == "redis://***@h:1/0"
    assert masked_url("redis://:p@ss@host:6379/0") == "redis://***@host:6379/0"
    assert masked_url("redis://h:1/0?password=pw&db=2") == "redis://h:1/0?password=***&db=2"
    assert masked_url("redis://h:1/0") == "redis://h:1/0"
