"""The Redis store when Redis misbehaves, against a real redis-server of the test's own: killed
mid-run, black-holed (stopped with SIGSTOP, so connections hang), restarted on the same port.
Requests never fail, a lookup becomes a miss and a write is dropped with one warning, every
call is bounded by the timeout, and caching resumes once Redis is back. Values that do not
verify (foreign bytes, another key's entry, damaged) are misses and are deleted.
"""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from botticelli import GenerateRequest, GroqDriver
from botticelli.cache import CachedDriver, CacheError, RedisCache
from botticelli.cache.codec import CHECKSUM_BYTES
from botticelli.cache.redis_store import DEFAULT_PREFIX
from botticelli.emulator import Emulator

from .conftest import TEST_KEY
from .redis_process import RedisProcess
from .test_cache_integrity import logged

MODEL = "openai/gpt-oss-20b"
TIMEOUT = 0.3  # the store's per-call bound in these tests


def groq(emulator: Emulator) -> GroqDriver:
    return GroqDriver(MODEL, api_key=TEST_KEY, base_url=emulator.base_url)


def prompt(text: str) -> GenerateRequest:
    return GenerateRequest.prompt(text, temperature=0, max_tokens=20)


def warnings_in(records: list[logging.LogRecord]) -> list[str]:
    assert all(r.exc_info is None for r in records)
    return [r.getMessage() for r in records if r.levelno >= logging.WARNING]


async def until_cached(driver: CachedDriver, text: str, deadline: float = 10.0) -> None:
    """Ask until the answer comes from the cache: Redis is back and stores again."""
    limit = time.monotonic() + deadline
    while True:
        await driver.generate(prompt(text))
        if driver.last_hit:
            return
        assert time.monotonic() < limit, "caching did not resume"
        await asyncio.sleep(0.05)


async def test_killed_mid_run_then_back(redis_process: RedisProcess, emulator: Emulator) -> None:
    store = RedisCache(redis_process.url, timeout=TIMEOUT)
    driver = CachedDriver(groq(emulator), store)
    try:
        with logged() as records:
            first = await driver.generate(prompt("Before"))
            assert (await driver.generate(prompt("Before"))).text == first.text and driver.last_hit
            redis_process.kill()
            for n in range(5):  # every request still answered, by the provider
                answer = await driver.generate(prompt("Before"))
                assert answer.text == first.text and not driver.last_hit
                chunks = [c async for c in driver.generate_stream(prompt(f"Streamed {n}"))]
                assert chunks[-1].is_final
            assert emulator.stats.requests == 11
            burst = await asyncio.gather(*(driver.generate(prompt(f"Burst {n}")) for n in range(20)))
            assert all(a.text for a in burst) and emulator.stats.requests == 31
            redis_process.start()  # the same port, empty
            await until_cached(driver, "After")
            assert (await driver.generate(prompt("Before"))).text == first.text
        assert len(warnings_in(records)) == 1
        assert store.errors >= 1 and (await store.stats()).entries >= 1
    finally:
        await driver.aclose()
        await store.aclose()


async def test_black_holed_redis_bounds_every_call(redis_process: RedisProcess, emulator: Emulator) -> None:
    store = RedisCache(redis_process.url, timeout=TIMEOUT)
    driver = CachedDriver(groq(emulator), store)
    try:
        with logged() as records:
            await driver.generate(prompt("Before"))
            redis_process.stop()
            for text in ("Before", "During", "During"):
                started = time.monotonic()
                answer = await driver.generate(prompt(text))
                assert answer.text and time.monotonic() - started < 2 * TIMEOUT + 0.5
            started = time.monotonic()
            assert await store.get("0" * 64) is None
            await store.set("0" * 64, b"dropped")
            assert time.monotonic() - started < 2 * TIMEOUT + 0.2
            await asyncio.sleep(0.3)  # past the backoff, so stats() really asks
            with pytest.raises(CacheError):
                await store.stats()
            redis_process.resume()
            await until_cached(driver, "After")
        assert len(warnings_in(records)) == 1
    finally:
        await driver.aclose()
        await store.aclose()


_phases = st.lists(st.sampled_from(["up", "killed", "stopped"]), min_size=2, max_size=5)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(phases=_phases, prompts=st.lists(st.integers(0, 3), min_size=1, max_size=4))
def test_outages_never_fail_or_mix_up_answers(
    tmp_path_factory: pytest.TempPathFactory, emulator: Emulator, phases: list[str], prompts: list[int]
) -> None:
    """Any sequence of outages: every answer is the provider's answer to that very prompt
    (a reply left over on a timed-out connection must not answer the next lookup), no
    exception, one warning, and caching works after the last phase if Redis is up."""
    server = RedisProcess(tmp_path_factory.mktemp("redis"))
    server.start()
    expected: dict[int, str] = {}

    async def run() -> list[str]:
        store = RedisCache(server.url, timeout=TIMEOUT)
        driver = CachedDriver(groq(emulator), store)
        try:
            with logged() as records:
                for phase in phases:
                    if phase == "up" and server.process is None:
                        server.start()
                    elif phase == "up":
                        server.resume()
                    elif phase == "killed" and server.process is not None:
                        server.resume()
                        server.kill()
                    elif phase == "stopped" and server.process is not None:
                        server.stop()
                    for n in prompts:
                        text = (await driver.generate(prompt(f"Prompt {n}"))).text
                        assert expected.setdefault(n, text) == text
                    await asyncio.sleep(0.3)  # past a backoff, so the next phase really calls
                if server.process is None:
                    server.start()
                else:
                    server.resume()
                await until_cached(driver, "Finally")
            return warnings_in(records)
        finally:
            await driver.aclose()
            await store.aclose()

    try:
        warnings = asyncio.run(run())
    finally:
        server.close()
    assert len(warnings) <= 1 and (len(warnings) == 1) == any(p != "up" for p in phases)


# ---- values that do not verify ------------------------------------------------------------------


def stored(client: redis.Redis, name: str) -> bytes | None:
    return client.get(DEFAULT_PREFIX + name)  # type: ignore[return-value]


@st.composite
def damaged(draw: st.DrawFn, good: bytes) -> bytes:
    kind = draw(st.sampled_from(["random", "flip", "truncate", "extend"]))
    if kind == "random":
        return draw(st.binary(max_size=100))
    if kind == "flip":
        at = draw(st.integers(0, len(good) - 1))
        return good[:at] + bytes([good[at] ^ draw(st.integers(1, 255))]) + good[at + 1 :]
    if kind == "truncate":
        return good[: draw(st.integers(0, len(good) - 1))]
    return good + draw(st.binary(min_size=1, max_size=10))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_value_that_does_not_verify_misses_and_is_deleted(redis_url: str, data: st.DataObject) -> None:
    async def run(client: redis.Redis) -> None:
        store = RedisCache(redis_url)
        try:
            await store.set("a" * 64, b"answer for a")
            await store.set("b" * 64, b"answer for b")
            good = stored(client, "a" * 64)
            assert good is not None and len(good) == CHECKSUM_BYTES + len(b"answer for a")
            # damaged bytes, or another key's entry, intact, under this key
            bad = data.draw(damaged(good)) if data.draw(st.booleans()) else stored(client, "b" * 64) or b""
            client.set(DEFAULT_PREFIX + "a" * 64, bad)
            assert await store.get("a" * 64) is None
            assert stored(client, "a" * 64) is None  # deleted
            assert await store.get("b" * 64) == b"answer for b"
        finally:
            await store.aclose()

    client = redis.Redis.from_url(redis_url)
    try:
        client.flushall()
        asyncio.run(run(client))
    finally:
        client.close()
