"""Shared limits through a real redis-server: the Lua script does the in-process arithmetic, and
two OS processes on one quota stay under it together."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator

import pytest

from botticelli import GenerateRequest, GroqDriver, Message, RateLimitError
from botticelli.emulator import Emulator, Fault
from botticelli.ratelimit import RateLimits, clear_registry
from botticelli.ratelimit.buckets import OK, REFUSED
from botticelli.ratelimit.redis_state import RedisState
from botticelli.ratelimit.spec import RPD, RPM, TPM

MODEL = "openai/gpt-oss-20b"
REQUEST = GenerateRequest([Message.user("Say hi")], max_tokens=8)


_open: list[GroqDriver] = []


@pytest.fixture(autouse=True)
async def _fresh_registry() -> AsyncIterator[None]:
    """A fresh registry per test; every driver a test made is closed after it (no socket left)."""
    clear_registry()
    yield
    while _open:
        await _open.pop().aclose()
    clear_registry()


def make_driver(emu: Emulator, key: str, **options: object) -> GroqDriver:
    made = GroqDriver(MODEL, api_key=key, base_url=emu.base_url, **options)  # type: ignore[arg-type]
    _open.append(made)
    return made


async def test_script_matches_the_local_arithmetic(redis_url: str) -> None:
    state = RedisState(redis_url, "botticelli:test:state", ttl=600)
    limits = RateLimits(rpm=30, rpd=2, tpm=1000)
    caps, rates = limits.capacities(), limits.rates()
    first = await state.reserve(caps, rates, (1, 1, 800, 800), 0.2, 60.0)
    assert first[:3] == (OK, 0.0, -1)
    status, wait, kind, _, _ = await state.reserve(caps, rates, (1, 1, 400, 400), 0.2, 60.0)
    assert (status, kind) == (OK, TPM) and wait == pytest.approx(200 / (1000 / 60) + 0.2, abs=0.05)
    await state.adjust(caps, rates, (0, 0, 700, 700))
    levels, blocked = state.peek(caps, rates)
    assert levels[TPM] == pytest.approx(500, abs=2) and levels[RPM] == pytest.approx(28, abs=0.1)
    assert blocked == 0.0
    refused = await state.reserve(caps, rates, (1, 1, 0, 0), 0.2, 60.0)  # rpd=2 is used up
    assert refused[0] == REFUSED and refused[2] == RPD and refused[1] > 3600
    await state.sync(caps, rates, [10.0, None, None, None])
    assert state.peek(caps, rates)[0][RPM] == pytest.approx(10, abs=0.1)
    await state.block(caps, rates, 2.0)
    _, blocked = state.peek(caps, rates)
    assert blocked == pytest.approx(2.0, abs=0.1)
    assert await state.current_shift(caps, rates) == pytest.approx(2.0, abs=0.1)
    no_rpd = RateLimits(rpm=30, tpm=1000)  # the same buckets, without the used-up daily one
    after = await state.reserve(no_rpd.capacities(), no_rpd.rates(), (1, 1, 0, 0), 0.0, 60.0)
    assert after[0] == OK and after[1] == pytest.approx(2.0, abs=0.1) and after[2] == 4  # held by the block
    state.close()


async def test_redis_key_holds_no_api_key(redis_url: str, api_key: str) -> None:
    import redis

    with Emulator() as emu:
        groq = make_driver(emu, api_key, plan="free", redis_url=redis_url)
        await groq.generate(REQUEST)
        status = groq.rate_limit_status()
    assert status is not None and status.shared == "redis"
    keys = [k.decode() for k in redis.Redis.from_url(redis_url).keys("*")]
    assert len(keys) == 1 and keys[0].startswith("botticelli:ratelimit:groq:")
    assert api_key not in keys[0] and MODEL in keys[0]


async def test_retry_after_reaches_other_limiters_through_redis(redis_url: str, api_key: str) -> None:
    """Two drivers with their own (unshared) registries stand for two processes."""
    scale = 0.05
    with Emulator(limits={"rpm": 60}, window_scale=scale) as emu:
        options = {"plan": "unlimited", "limits": {"rpm": 60, "window_scale": scale}, "redis_url": redis_url}
        first = make_driver(emu, api_key, **options)
        clear_registry()
        second = make_driver(emu, api_key, **options)
        assert first.limiter is not second.limiter
        emu.inject(Fault("rate_limit", retry_after=1.0))
        await first.generate(REQUEST)  # 429, waits 1 s, retries
        started = time.perf_counter()
        await second.generate(REQUEST)
        assert emu.stats.rate_limited == 1
    assert time.perf_counter() - started < 0.5  # the block was over by then


async def test_daily_quota_shared(redis_url: str, api_key: str) -> None:
    with Emulator() as emu:
        options = {"plan": "unlimited", "limits": {"rpd": 2}, "redis_url": redis_url}
        first = make_driver(emu, api_key, **options)
        await first.generate(REQUEST)
        await first.generate(REQUEST)
        clear_registry()
        second = make_driver(emu, api_key, **options)
        with pytest.raises(RateLimitError) as caught:
            await second.generate(REQUEST)
        assert caught.value.daily
        assert emu.stats.completions == 2


_WORKER = textwrap.dedent(
    """
    import asyncio, os, sys
    from botticelli import GenerateRequest, GroqDriver, Message

    async def main():
        driver = GroqDriver(
            "openai/gpt-oss-20b",
            api_key=os.environ["WORKER_KEY"],
            base_url=os.environ["WORKER_URL"],
            plan="unlimited",
            limits={"rpm": 40, "window_scale": 0.05},
            redis_url=os.environ["WORKER_REDIS"],
        )
        request = GenerateRequest([Message.user("Say hi")], max_tokens=8)
        sys.stdout.write("ready\\n"); sys.stdout.flush()
        sys.stdin.readline()  # both start together
        await asyncio.gather(*(driver.generate(request) for _ in range(int(os.environ["WORKER_N"]))))
        await driver.aclose()
        print("done")

    asyncio.run(main())
    """
)


def test_two_processes_share_one_limit(redis_url: str, api_key: str) -> None:
    scale, rpm, per_process = 0.05, 40, 50  # a 3 s minute: 40 at once, then 13.3 per second
    with Emulator(
        enforce_limits=True, limits={"rpm": rpm, "tpm": None, "tpd": None}, window_scale=scale
    ) as emu:
        env = {
            **os.environ,
            "WORKER_KEY": api_key,
            "WORKER_URL": emu.base_url,
            "WORKER_REDIS": redis_url,
            "WORKER_N": str(per_process),
        }
        workers = [
            subprocess.Popen(
                [sys.executable, "-c", _WORKER],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for _ in range(2)
        ]
        for worker in workers:
            assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
        started = time.perf_counter()
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        outputs = [worker.communicate(timeout=60) for worker in workers]
        elapsed = time.perf_counter() - started
        stats = emu.stats
    for worker, (out, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err
        assert out.strip() == "done"
    assert stats.rate_limited == 0 and stats.completions == 2 * per_process
    minimum = (2 * per_process - rpm) / (rpm / (60 * scale))  # jointly paced: 4.5 s
    assert elapsed >= minimum * 0.95, elapsed


def test_shared_state_works_from_any_event_loop(redis_url: str) -> None:
    """The blocking API runs drivers on other loops: the state's client belongs to none of them."""
    state = RedisState(redis_url, "botticelli:test:loops", ttl=600)
    limits = RateLimits(rpm=10)
    caps, rates = limits.capacities(), limits.rates()
    for _ in range(2):
        verdict = asyncio.run(state.reserve(caps, rates, (1, 1, 0, 0), 0.0, 60.0))
        assert verdict[0] == OK
    assert state.peek(caps, rates)[0][RPM] == pytest.approx(8, abs=0.1)
    state.close()
