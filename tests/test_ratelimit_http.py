"""The limiter over real HTTP against an emulator that enforces Groq-style limits: queued work
runs at the allowed rate with no 429, quotas fail fast, a 429's retry-after holds every caller,
oversized requests are refused before sending, plans are detected from the headers.

Windows are scaled (``window_scale``) on both sides so a per-minute limit runs in seconds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from botticelli import GenerateRequest, GroqDriver, InvalidRequestError, Message, RateLimitError
from botticelli.emulator import Emulator, Fault
from botticelli.ratelimit import clear_registry

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


def chat_requests(emu: Emulator) -> int:
    return sum(1 for r in emu.requests if r.path.endswith("/chat/completions"))


def driver(emu: Emulator, key: str, **options: object) -> GroqDriver:
    made = GroqDriver(MODEL, api_key=key, base_url=emu.base_url, **options)  # type: ignore[arg-type]
    _open.append(made)
    return made


async def test_60_rpm_150_queued_requests_get_no_429(api_key: str) -> None:
    scale = 0.05  # a 3 s "minute": 60 RPM = 20 requests per second
    with Emulator(
        enforce_limits=True, limits={"rpm": 60, "tpm": None, "tpd": None}, window_scale=scale
    ) as emu:
        # One request in flight at a time: every other caller is waiting in the limiter when the
        # 429 arrives (on a loaded machine, concurrent ones could already be on the wire).
        groq = driver(
            emu, api_key, plan="unlimited", limits={"rpm": 60, "concurrency": 1, "window_scale": scale}
        )
        started = time.perf_counter()
        results = await asyncio.gather(*(groq.generate(REQUEST) for _ in range(150)))
        elapsed = time.perf_counter() - started
        stats = emu.stats
    assert stats.rate_limited == 0 and stats.completions == 150 and len(results) == 150
    minimum = (150 - 60) / 20  # a full bucket of 60 at once, then 20 per second
    assert minimum * 0.95 <= elapsed <= minimum * 1.35, elapsed


async def test_without_the_limiter_the_same_load_gets_429s(api_key: str) -> None:
    """The control for the test above: the emulator really refuses what goes too fast."""
    with Emulator(
        enforce_limits=True, limits={"rpm": 60, "tpm": None, "tpd": None}, window_scale=0.05
    ) as emu:
        groq = driver(emu, api_key, plan="unlimited", max_retries=0)
        results = await asyncio.gather(*(groq.generate(REQUEST) for _ in range(90)), return_exceptions=True)
        assert emu.stats.rate_limited > 0
    assert any(isinstance(r, RateLimitError) for r in results)


async def test_tokens_per_minute_paced_and_settled(api_key: str) -> None:
    scale = 0.05
    with Emulator(
        enforce_limits=True, limits={"rpm": None, "tpm": 2000, "tpd": None}, window_scale=scale
    ) as emu:
        groq = driver(emu, api_key, plan="unlimited", limits={"tpm": 2000, "window_scale": scale})
        request = GenerateRequest([Message.user("Write a line")], max_tokens=200)
        results = await asyncio.gather(*(groq.generate(request) for _ in range(30)))
        stats = emu.stats
        status = groq.rate_limit_status()
    assert stats.rate_limited == 0 and len(results) == 30
    assert status is not None
    tpm = next(s for s in status.limits if s.kind == "tpm")
    # settled with real usage: what is left charged is far below 30 x the 200-token estimate
    assert tpm.used < 2000 and tpm.source == "limits="


async def test_daily_quota_fails_fast_with_reset_time(api_key: str) -> None:
    with Emulator() as emu:
        groq = driver(emu, api_key, plan="unlimited", limits={"rpd": 3})
        for _ in range(3):
            await groq.generate(REQUEST)
        started = time.perf_counter()
        with pytest.raises(RateLimitError) as caught:
            await groq.generate(REQUEST)
        assert time.perf_counter() - started < 0.5
        assert chat_requests(emu) == 3  # refused before sending
    error = caught.value
    assert error.daily and error.retry_after is not None and error.retry_after > 3600
    assert "requests per day (RPD)" in str(error) and "fits in" in str(error)


async def test_server_daily_429_fails_fast_for_every_caller(api_key: str) -> None:
    with Emulator() as emu:
        groq = driver(emu, api_key, plan="free")
        emu.inject(Fault("rate_limit", daily=True, limit="TPD", retry_after=600))
        with pytest.raises(RateLimitError) as caught:
            await groq.generate(REQUEST)
        assert caught.value.daily and caught.value.retry_after == 600
        assert chat_requests(emu) == 1  # not retried
        with pytest.raises(RateLimitError) as again:  # the quota is known gone: not even sent
            await groq.generate(REQUEST)
        assert again.value.daily and chat_requests(emu) == 1


async def test_retry_after_holds_every_queued_caller(api_key: str) -> None:
    scale = 0.05
    with Emulator(limits={"rpm": 60}, window_scale=scale) as emu:  # its 429 body says Limit 60
        # One request in flight at a time: every other caller is waiting in the limiter when the
        # 429 arrives (on a loaded machine, concurrent ones could already be on the wire).
        groq = driver(
            emu, api_key, plan="unlimited", limits={"rpm": 60, "concurrency": 1, "window_scale": scale}
        )
        await asyncio.gather(*(groq.generate(REQUEST) for _ in range(60)))  # empty the bucket
        emu.inject(Fault("rate_limit", retry_after=1.0))
        started = time.perf_counter()
        done: list[float] = []

        async def one() -> None:
            await groq.generate(REQUEST)
            done.append(time.perf_counter() - started)

        await asyncio.gather(*(one() for _ in range(8)))
        stats = emu.stats
    # queued 0.05 s apart; the first got the 429 at ~0.25 s: without sharing, the other seven
    # would have finished by ~0.6 s. They all waited out the second with it.
    assert stats.rate_limited == 1
    assert min(done) >= 1.0, sorted(done)
    assert max(done) < 2.5


async def test_429_without_the_limiter_still_retries(api_key: str) -> None:
    with Emulator() as emu:
        groq = driver(emu, api_key, plan="unlimited")
        emu.inject(Fault("rate_limit", retry_after=0.1))
        await groq.generate(REQUEST)
        assert chat_requests(emu) == 2


async def test_request_larger_than_tpm_refused_before_sending(api_key: str) -> None:
    with Emulator() as emu:
        groq = driver(emu, api_key, plan="free")  # 8K TPM for this model
        big = GenerateRequest([Message.user("word " * 2000)], max_tokens=6000)
        with pytest.raises(InvalidRequestError, match="tokens per minute") as caught:
            await groq.generate(big)
        with pytest.raises(InvalidRequestError):
            async for _ in groq.generate_stream(big):
                pass
        assert chat_requests(emu) == 0
    assert caught.value.code == "request_too_large"


async def test_server_413_not_retried_and_given_back(api_key: str) -> None:
    with Emulator(enforce_limits=True, limits={"tpm": 1000}) as emu:
        # the client believes 8K (free plan) until the server says 1000: the server answers 413
        groq = driver(emu, api_key, plan="free", limits={"tpm": 8000})
        big = GenerateRequest([Message.user("word " * 1200)], max_tokens=100)
        with pytest.raises(InvalidRequestError, match="per-minute token budget"):
            await groq.generate(big)
        assert chat_requests(emu) == 1
        status = groq.rate_limit_status()
    assert status is not None
    rpm = next(s for s in status.limits if s.kind == "rpm")
    assert rpm.used == pytest.approx(0, abs=0.1)  # the refused request was given back


async def test_headers_correct_the_plan(api_key: str) -> None:
    with Emulator(plan="developer") as emu:
        groq = driver(emu, api_key, plan="free")
        assert groq.limiter is not None and groq.limiter.limits.tpm == 8000
        await groq.generate(REQUEST)
        status = groq.rate_limit_status()
    assert groq.limiter.plan == "developer"
    assert status is not None and status.plan == "developer"
    limits = {s.kind: s.limit for s in status.limits}
    assert limits == {"rpm": 1000, "rpd": 500000, "tpm": 250000}


async def test_stream_holds_its_slot_until_it_ends(api_key: str) -> None:
    with Emulator() as emu:
        groq = driver(emu, api_key, plan="unlimited", limits={"concurrency": 1})
        stream = groq.generate_stream(REQUEST)
        await stream.__anext__()
        assert groq.rate_limit_status().in_flight == 1  # type: ignore[union-attr]
        blocked = asyncio.create_task(groq.generate(REQUEST))
        await asyncio.sleep(0.1)
        assert not blocked.done()  # the open stream holds the only slot
        await stream.aclose()  # abandoned early: the slot comes back
        await asyncio.wait_for(blocked, 2)
        async for _ in groq.generate_stream(REQUEST):  # a full stream releases it too
            pass
        assert groq.rate_limit_status().in_flight == 0  # type: ignore[union-attr]


async def test_stream_settles_from_final_usage(api_key: str) -> None:
    with Emulator() as emu:
        groq = driver(emu, api_key, plan="unlimited", limits={"tpm": 600})  # refills 10 per second
        chunks = [c async for c in groq.generate_stream(REQUEST)]
        status = groq.rate_limit_status()
    usage = chunks[-1].usage
    assert usage is not None and status is not None
    tpm = next(s for s in status.limits if s.kind == "tpm")
    assert tpm.used == pytest.approx(usage.total_tokens, abs=2)  # the estimate was ~2x that


def test_status_is_printable(api_key: str) -> None:
    with Emulator() as emu:
        groq = driver(emu, api_key, plan="free")
        text = str(groq.rate_limit_status())
    assert "requests per minute (RPM)" in text and "free plan" in text and api_key not in text
    assert driver(emu, api_key, plan="unlimited").rate_limit_status() is None
