"""Shared limits when Redis fails: a real redis-server killed and restarted mid-run, a port with
nothing behind it, and a black hole that accepts connections and never answers. Requests go on
with in-process limits after one warning, come back to Redis when it answers again, and no Redis
trouble ever turns an answered request into an error. A malformed URL is a configuration error
naming its setting, credentials hidden; status never blocks an event loop."""

from __future__ import annotations

import asyncio
import logging
import socket
import string
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import botticelli.ratelimit.state as state_module
from botticelli import GenerateRequest, GroqDriver, Message
from botticelli._headers import GROQ_RATE_LIMITS
from botticelli.emulator import Emulator
from botticelli.errors import ConfigurationError, InvalidRequestError, RateLimitError
from botticelli.providers.groq_plans import GROQ_PLANS
from botticelli.ratelimit import clear_registry, limiter_for
from botticelli.ratelimit.redis_state import HARD_TIMEOUT

from .conftest import _free_port
from .redis_process import RedisProcess

MODEL = "openai/gpt-oss-20b"
REQUEST = GenerateRequest([Message.user("Say hi")], max_tokens=8)


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A Redis URL whose server accepts the connection (the kernel's backlog) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"


@pytest.fixture(autouse=True)
def _fresh_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(state_module, "REDIS_RETRY", 0.5)  # reconnect attempts every 0.5 s, not 2 s
    clear_registry()
    yield
    clear_registry()


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "botticelli.ratelimit" and r.levelno >= logging.WARNING
    ]


def redis_keys(url: str) -> list[bytes]:
    import redis

    with redis.Redis.from_url(url) as client:
        return list(client.keys("botticelli:ratelimit:*"))


async def test_redis_killed_mid_run_degrades_then_recovers(
    redis_process: RedisProcess, api_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "botticelli.ratelimit")
    with Emulator() as emu:
        driver = GroqDriver(
            MODEL,
            api_key=api_key,
            base_url=emu.base_url,
            plan="unlimited",
            limits={"rpm": 600, "tpd": 100_000},
            redis_url=redis_process.url,
        )
        try:
            await driver.generate(REQUEST)
            assert driver.limiter is not None and driver.limiter.shared == "redis"
            assert len(redis_keys(redis_process.url)) == 1
            redis_process.kill()
            started = time.perf_counter()
            for _ in range(5):
                await driver.generate(REQUEST)  # answered and billed: never a ConfigurationError
            assert time.perf_counter() - started < 5 * 0.5 + HARD_TIMEOUT
            assert driver.limiter.shared == "in-process"
            status = driver.rate_limit_status()
            assert status is not None and "Redis unreachable" in str(status)
            (warning,) = warnings_of(caplog)
            assert "in-process limits" in warning and redis_process.url.split("/0")[0] in warning
            redis_process.start()  # empty: nothing was saved
            await asyncio.sleep(0.6)
            await driver.generate(REQUEST)
            await driver.generate(REQUEST)
            assert driver.limiter.shared == "redis"
            assert len(redis_keys(redis_process.url)) == 1  # the buckets are shared again
            assert "answers again" in caplog.text
            assert len(warnings_of(caplog)) == 1
        finally:
            await driver.aclose()
        assert emu.stats.completions == 8


async def test_redis_down_from_the_start(api_key: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "botticelli.ratelimit")
    nothing = f"redis://:s3cret-pass@127.0.0.1:{_free_port()}/0"
    with Emulator() as emu:
        driver = GroqDriver(MODEL, api_key=api_key, base_url=emu.base_url, plan="free", redis_url=nothing)
        try:
            started = time.perf_counter()
            for _ in range(3):
                await driver.generate(REQUEST)
            assert time.perf_counter() - started < HARD_TIMEOUT + 2
        finally:
            await driver.aclose()
    (warning,) = warnings_of(caplog)
    assert "s3cret-pass" not in warning and "***@127.0.0.1" in warning


async def test_a_black_holed_redis_cannot_hang_a_call(
    black_hole: str, api_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "botticelli.ratelimit")
    with Emulator() as emu:
        driver = GroqDriver(MODEL, api_key=api_key, base_url=emu.base_url, plan="free", redis_url=black_hole)
        try:
            started = time.perf_counter()
            await driver.generate(REQUEST)
            first = time.perf_counter() - started
            started = time.perf_counter()
            await driver.generate(REQUEST)  # within the retry period: not even tried
            second = time.perf_counter() - started
        finally:
            await driver.aclose()
    assert first < 3 * HARD_TIMEOUT and second < 0.4
    assert len(warnings_of(caplog)) == 1


async def test_after_response_methods_never_raise_when_redis_dies(redis_process: RedisProcess) -> None:
    shared = limiter_for(
        "groq",
        MODEL,
        base_url="http://x",
        api_key="gsk_k",
        plan="free",
        redis_url=redis_process.url,
        schema=GROQ_RATE_LIMITS,
        plans=GROQ_PLANS,
    )
    assert shared is not None
    await shared.acquire(100)
    redis_process.kill()
    headers = {"x-ratelimit-limit-tokens": "8000", "x-ratelimit-remaining-tokens": "100"}
    await shared.observe(headers)
    error = RateLimitError("(TPM): Limit 8000", retry_after=0.5, status=429)
    await shared.rejected(error, 100, 0.5)
    await shared.rejected(InvalidRequestError("too large", status=413), 100, 0.0)
    await shared.refund(100)
    await shared.settle(100, 40, 30)
    shared.release()
    assert (await shared.astatus()).shared == "in-process"
    assert shared.status().shared == "in-process"


# ---- configuration ----------------------------------------------------------------------------------

passwords = st.text(string.ascii_letters + string.digits + "@!$%^*()-_=+~", min_size=10, max_size=24).filter(
    lambda p: any(c.isalpha() for c in p)
)
bad_ports = st.text(string.ascii_letters + "-", min_size=1, max_size=8)


@settings(max_examples=100, deadline=None)
@given(password=passwords, port=bad_ports)
def test_a_malformed_url_is_a_configuration_error_without_credentials(password: str, port: str) -> None:
    url = f"redis://user:{password}@cache.internal:{port}/0"
    with pytest.raises(ConfigurationError) as caught:
        limiter_for(
            "groq",
            MODEL,
            base_url="http://x",
            api_key="k",
            plan="free",
            redis_url=url,
            schema=GROQ_RATE_LIMITS,
            plans=GROQ_PLANS,
        )
    text = str(caught.value)
    assert text.startswith("redis_url=:") and password not in text and "cache.internal" in text


@pytest.mark.parametrize("url", ["redis://host:notaport", "http://x", "redis://[::1", "redis://h:99999/0"])
@pytest.mark.parametrize("where", ["argument", "environment", "toml"])
def test_malformed_urls_name_their_setting(
    url: str, where: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    expected = {"argument": "redis_url=", "environment": "BOTTICELLI_REDIS_URL", "toml": "botticelli.toml"}[
        where
    ]
    options: dict[str, str] = {}
    if where == "argument":
        options["redis_url"] = url
    elif where == "environment":
        monkeypatch.setenv("BOTTICELLI_REDIS_URL", url)
    else:
        toml = tmp_path / "botticelli.toml"
        toml.write_text(f'[ratelimit]\nredis_url = "{url}"\n')
        monkeypatch.setenv("BOTTICELLI_CONFIG", str(toml))
    with pytest.raises(ConfigurationError, match="not a usable Redis URL") as caught:
        limiter_for(
            "groq",
            MODEL,
            base_url="http://x",
            api_key="k",
            plan="free",
            schema=GROQ_RATE_LIMITS,
            plans=GROQ_PLANS,
            **options,
        )
    assert str(caught.value).startswith(expected)


# ---- status ------------------------------------------------------------------------------------------


async def test_status_in_an_event_loop_makes_no_round_trip(black_hole: str) -> None:
    shared = limiter_for(
        "groq",
        MODEL,
        base_url="http://x",
        api_key="k",
        plan="free",
        redis_url=black_hole,
        schema=GROQ_RATE_LIMITS,
        plans=GROQ_PLANS,
    )
    assert shared is not None
    started = time.perf_counter()
    status = shared.status()
    assert time.perf_counter() - started < 0.05
    assert status.shared == "redis" and "await astatus()" in status.note
    fresh = await shared.astatus()  # bounded, then in-process
    assert time.perf_counter() - started < 3 * HARD_TIMEOUT
    assert fresh.shared == "in-process"


async def test_status_in_a_loop_shows_the_last_known_shared_state(redis_url: str) -> None:
    first = limiter_for(
        "groq",
        MODEL,
        base_url="http://x",
        api_key="k",
        plan="free",
        redis_url=redis_url,
        schema=GROQ_RATE_LIMITS,
        plans=GROQ_PLANS,
    )
    assert first is not None
    for _ in range(3):
        await first.acquire(100)
    clear_registry()  # another process on the same quota
    second = limiter_for(
        "groq",
        MODEL,
        base_url="http://x",
        api_key="k",
        plan="free",
        redis_url=redis_url,
        schema=GROQ_RATE_LIMITS,
        plans=GROQ_PLANS,
    )
    assert second is not None and second is not first
    await second.acquire(100)
    rpd = next(s for s in first.status().limits if s.kind == "rpd")
    assert rpd.used == pytest.approx(3, abs=0.01)  # as first saw it last
    rpd = next(s for s in (await first.astatus()).limits if s.kind == "rpd")
    assert rpd.used == pytest.approx(4, abs=0.01)  # read now
    first.close()
    second.close()


def test_status_without_a_loop_closes_its_client(redis_url: str) -> None:
    import redis

    shared = limiter_for(
        "groq",
        MODEL,
        base_url="http://x",
        api_key="k",
        plan="free",
        redis_url=redis_url,
        schema=GROQ_RATE_LIMITS,
        plans=GROQ_PLANS,
    )
    assert shared is not None
    with redis.Redis.from_url(redis_url) as admin:
        before = admin.info("clients")["connected_clients"]
        for _ in range(5):
            assert shared.status().shared == "redis"
        time.sleep(0.1)
        assert admin.info("clients")["connected_clients"] == before
