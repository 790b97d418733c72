"""Audio seconds per hour and per day (ASH / ASD) over real HTTP against an emulator that enforces
them: transcriptions queued faster than the hourly limit allows get no 429 (the client waits), the
same run without client limits does get them, a file longer than the whole hourly limit is refused
before sending, a daily quota fails fast, and a failed call gives its seconds back.

Windows are scaled (``window_scale``) on both sides so an hour runs in seconds."""

from __future__ import annotations

import asyncio
import io
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from botticelli import GroqDriver, InvalidRequestError, RateLimitError
from botticelli.emulator import Emulator
from botticelli.errors import ModelsError
from botticelli.ratelimit import Limiter, RateLimits, clear_registry

WHISPER = "whisper-large-v3-turbo"
CHAT = "openai/gpt-oss-20b"
SCALE = 0.001  # an hour of 3.6 s, a day of 86.4 s, a minute of 0.06 s
FREE_ASH = 7200  # audio seconds per hour on the free plan (catalog)

_open: list[GroqDriver] = []


@pytest.fixture(autouse=True)
async def _fresh_registry() -> AsyncIterator[None]:
    clear_registry()
    yield
    while _open:
        await _open.pop().aclose()
    clear_registry()


def driver(emu: Emulator, key: str, model: str = WHISPER, **options: object) -> GroqDriver:
    made = GroqDriver(model, api_key=key, base_url=emu.base_url, **options)  # type: ignore[arg-type]
    _open.append(made)
    return made


def clip(seconds: float, rate: int = 500) -> bytes:
    """A small 8-bit mono WAV of ``seconds`` (a low sample rate keeps long clips small)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(rate)
        out.writeframes(b"\x80" * int(seconds * rate))
    return buffer.getvalue()


def uploads(emu: Emulator) -> int:
    return sum(1 for r in emu.requests if r.path.endswith("/audio/transcriptions"))


def audio_used(limiter: Limiter | None, kind: str = "ash") -> float:
    assert limiter is not None
    (state,) = [s for s in limiter.status().limits if s.kind == kind]
    return state.used


# ---- pacing -----------------------------------------------------------------------------------


async def test_transcriptions_faster_than_ash_wait_instead_of_429(api_key: str) -> None:
    """120 clips of 100 s = 12,000 s queued at once against 7,200 ASH: 72 fit the full bucket,
    the other 48 go at the refill rate (7,200 s per scaled hour = 20 clips a second)."""
    with Emulator(enforce_limits=True, window_scale=SCALE, limits={"rpm": None, "rpd": None}) as emu:
        groq = driver(emu, api_key, plan="free", limits={"window_scale": SCALE})
        audio = clip(100)
        started = time.perf_counter()
        results = await asyncio.gather(*(groq.transcribe(audio) for _ in range(120)))
        elapsed = time.perf_counter() - started
        stats = emu.stats
        assert uploads(emu) == 120
    assert stats.rate_limited == 0 and len(results) == 120 and all(r.text for r in results)
    minimum = (120 - 72) * 100 / (FREE_ASH / (3600 * SCALE))
    assert minimum * 0.9 <= elapsed <= minimum * 2 + 2, elapsed
    used = audio_used(groq.limiter)
    assert FREE_ASH * 0.5 < used <= FREE_ASH  # the queue's seconds, partly refilled since


async def test_without_client_limits_the_same_run_gets_ash_429s(api_key: str) -> None:
    """The control for the test above: the emulator really refuses audio seconds beyond ASH."""
    with Emulator(enforce_limits=True, window_scale=SCALE, limits={"rpm": None, "rpd": None}) as emu:
        groq = driver(emu, api_key, plan="unlimited", max_retries=0)
        assert groq.limiter is None
        audio = clip(100)
        results = await asyncio.gather(*(groq.transcribe(audio) for _ in range(120)), return_exceptions=True)
        assert emu.stats.rate_limited > 0
    refused = [r for r in results if isinstance(r, RateLimitError)]
    assert refused and len(refused) + sum(1 for r in results if not isinstance(r, BaseException)) == 120
    first = refused[0]
    assert "audio seconds per hour (ASH): Limit 7200" in str(first) and first.retry_after is not None


async def test_a_chat_driver_uploads_within_the_speech_models_limits(api_key: str) -> None:
    """``GroqDriver()`` on a chat model: its uploads count against whisper's own RPM (20, below the
    chat model's 30) and ASH, so the emulator enforcing every whisper limit sends no 429."""
    with Emulator(enforce_limits=True, window_scale=SCALE) as emu:
        groq = driver(emu, api_key, CHAT, plan="free", limits={"window_scale": SCALE})
        audio = clip(100)
        results = await asyncio.gather(*(groq.transcribe(audio) for _ in range(100)))
        stats = emu.stats
    assert stats.rate_limited == 0 and len(results) == 100
    assert groq.limiter is not None
    speech = groq.limiter.for_model(WHISPER)
    assert speech is not None and speech is not groq.limiter and speech.plan == "free"
    assert speech.limits.rpm == 20 and speech.limits.ash == FREE_ASH and speech.limits.window_scale == SCALE
    assert audio_used(speech) > 0 and audio_used(speech, "rpd") > 0
    assert groq.limiter.for_model(WHISPER) is speech  # one per key and model, from the registry
    assert audio_used(groq.limiter, "rpd") == 0  # Groq limits per model: the chat model's are untouched


async def test_a_chat_driver_keeps_to_the_speech_models_own_rpm(api_key: str) -> None:
    """Whisper's 20 RPM is below the chat model's 30: without counting uploads against the speech
    model's limiter too, a burst of 30 would earn ten 429s."""
    scale = 0.05  # a minute of 3 s: 20 RPM is a burst of 20, then 6.7 requests a second
    with Emulator(enforce_limits=True, window_scale=scale) as emu:
        groq = driver(emu, api_key, CHAT, plan="free", limits={"window_scale": scale})
        started = time.perf_counter()
        await asyncio.gather(*(groq.transcribe(clip(3)) for _ in range(30)))
        elapsed = time.perf_counter() - started
        assert emu.stats.rate_limited == 0
    assert elapsed >= (30 - 20) / (20 / (60 * scale)) * 0.9, elapsed


# ---- refusals and refunds ---------------------------------------------------------------------


async def test_a_file_longer_than_the_hourly_limit_is_refused_unsent(api_key: str) -> None:
    with Emulator(enforce_limits=True) as emu:
        groq = driver(emu, api_key, plan="free")
        too_long = clip(FREE_ASH + 60, rate=10)  # exact from its header: 7,260 s
        with pytest.raises(InvalidRequestError) as caught:
            await groq.transcribe(too_long)
        assert uploads(emu) == 0
        assert "audio seconds per hour (ASH)" in str(caught.value) and "7,200" in str(caught.value)
        assert audio_used(groq.limiter) == 0
        await groq.transcribe(clip(FREE_ASH - 60, rate=10))  # just under: sent
        assert uploads(emu) == 1


async def test_under_an_assumed_plan_a_long_file_is_the_servers_to_refuse(
    api_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BOTTICELLI_GROQ_PLAN")  # free is only assumed: the org may be on developer
    with Emulator(enforce_limits=True) as emu:
        groq = driver(emu, api_key)
        assert groq.limiter is not None and groq.limiter.plan_assumed
        with pytest.raises(InvalidRequestError) as caught:
            await groq.transcribe(clip(FREE_ASH + 60, rate=10))
        assert uploads(emu) == 1 and caught.value.status == 413  # the emulator refused it


async def test_an_estimate_is_never_refused_and_charges_at_most_the_bucket(api_key: str) -> None:
    with Emulator() as emu:
        groq = driver(emu, api_key, plan="unlimited", limits={"ash": 300})
        ogg = b"OggS" + b"\x00" * 900_000  # 450 s at the 16 kbit/s estimate: above the limit
        await groq.transcribe(ogg, filename="talk.ogg")
        assert uploads(emu) == 1
        assert audio_used(groq.limiter) == pytest.approx(300, abs=1)


async def test_the_daily_quota_fails_fast(api_key: str) -> None:
    with Emulator() as emu:
        groq = driver(emu, api_key, plan="unlimited", limits={"asd": 150})  # explicit limits= only
        assert groq.limiter is not None and groq.limiter.audio_limited and not groq.limiter.rated
        await groq.transcribe(clip(100))
        started = time.perf_counter()
        with pytest.raises(RateLimitError) as caught:
            await groq.transcribe(clip(100))
        assert time.perf_counter() - started < 0.5 and uploads(emu) == 1
    error = caught.value
    assert error.daily and error.limit_kind == "asd" and error.retry_after is not None
    assert error.retry_after > 3600 and "audio seconds per day (ASD)" in str(error)


async def test_a_failed_call_gives_its_seconds_back(api_key: str, tmp_path: Path) -> None:
    with Emulator() as emu:
        groq = driver(emu, api_key, plan="free", max_retries=0)
        with pytest.raises(InvalidRequestError, match="file must be one of"):
            await groq.transcribe(clip(100), filename="notes.txt")  # the server refuses: 400
        assert uploads(emu) == 1 and audio_used(groq.limiter) == pytest.approx(0, abs=0.5)
        await groq.transcribe(clip(100))
        assert audio_used(groq.limiter) == pytest.approx(100, abs=0.5)
        await groq.transcribe(clip(3))  # billed at least 10 s (assumed minimum)
        assert audio_used(groq.limiter) == pytest.approx(110, abs=0.5)


async def test_a_cancelled_wait_gives_its_seconds_back(api_key: str) -> None:
    with Emulator() as emu:
        groq = driver(emu, api_key, plan="unlimited", limits={"ash": 150})
        await groq.transcribe(clip(100))
        waiting = asyncio.ensure_future(groq.transcribe(clip(100)))  # waits ~1,200 s for its seconds
        await asyncio.sleep(0.3)
        assert not waiting.done() and uploads(emu) == 1
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert audio_used(groq.limiter) == pytest.approx(100, abs=0.5)


async def test_a_servers_ash_429_empties_the_budget(api_key: str) -> None:
    """Someone else on the key (no client limits) used the hour up: the server's 429 names ASH,
    and this client's budget learns it is gone instead of asking again."""
    scale = 0.1  # an hour of 6 minutes: 20 s of audio refill per second, slower than the test
    with Emulator(enforce_limits=True, window_scale=scale, limits={"rpm": None, "rpd": None}) as emu:
        other = driver(emu, api_key, plan="unlimited")
        await asyncio.gather(*(other.transcribe(clip(100)) for _ in range(72)))
        groq = driver(emu, api_key, plan="free", limits={"window_scale": scale}, max_retries=0)
        with pytest.raises(RateLimitError, match=r"\(ASH\)"):
            await groq.transcribe(clip(100))
        assert audio_used(groq.limiter) >= FREE_ASH * 0.9


# ---- configuration and the chat path --------------------------------------------------------


def test_limits_toml_and_budget_name_audio_seconds(
    api_key: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    groq = GroqDriver(
        WHISPER, api_key=api_key, base_url="http://127.0.0.1:9", plan="free", limits={"budget": 0.5}
    )
    status = groq.rate_limit_status()
    assert status is not None
    rows = {s.kind: s for s in status.limits}
    assert rows["ash"].limit == FREE_ASH / 2 and rows["ash"].server_limit == FREE_ASH
    assert rows["asd"].server_limit == 28800 and rows["ash"].source == "free plan"
    assert "audio seconds per hour (ASH)" in str(status)
    developer = GroqDriver(WHISPER, api_key=api_key, base_url="http://127.0.0.1:9", plan="developer")
    assert developer.limiter is not None
    assert (developer.limiter.limits.ash, developer.limiter.limits.asd) == (400_000, 4_000_000)
    toml = tmp_path / "botticelli.toml"
    toml.write_text(f'[providers.groq.models."{WHISPER}"]\nash = 600\n')
    monkeypatch.setenv("BOTTICELLI_CONFIG", str(toml))
    configured = GroqDriver(WHISPER, api_key=api_key, base_url="http://127.0.0.1:10", plan="free")
    assert configured.limiter is not None
    assert configured.limiter.limits.ash == 600 and configured.limiter.sources["ash"] == "botticelli.toml"


def test_chat_limiters_have_no_audio_budget(api_key: str) -> None:
    groq = GroqDriver(CHAT, api_key=api_key, base_url="http://127.0.0.1:9", plan="free")
    limiter = groq.limiter
    assert limiter is not None and not limiter.audio_limited
    assert limiter._audio_state is None  # nothing allocated, nothing consulted on the request path
    assert {s.kind for s in limiter.status().limits} == {"rpm", "rpd", "tpm", "tpd"}


async def test_a_daily_audio_429_does_not_empty_the_request_buckets() -> None:
    limiter = Limiter(provider="groq", model=CHAT, limits=RateLimits(rpm=30, rpd=1000), sources={})
    error = RateLimitError(
        "Rate limit reached ... on audio seconds per day (ASD): Limit 28800, Used 28800, Requested 60.",
        retry_after=3000.0,
        daily=True,
        status=429,
    )
    await limiter.rejected(error, 0, 3000.0)
    rpd = next(s for s in limiter.status().limits if s.kind == "rpd")
    assert rpd.used == 0  # a daily token/request 429 would have emptied it
    assert isinstance(error, ModelsError)


async def test_audio_seconds_shared_through_redis(api_key: str, redis_url: str) -> None:
    with Emulator() as emu:
        first = driver(emu, api_key, plan="free", redis_url=redis_url)
        await first.transcribe(clip(100))
        clear_registry()  # a second process: its own limiter on the same Redis hash
        second = driver(emu, api_key, plan="free", redis_url=redis_url)
        assert second.limiter is not first.limiter and second.limiter is not None
        status = await second.limiter.astatus()
        assert status.shared == "redis"
        (ash,) = [s for s in status.limits if s.kind == "ash"]
        assert ash.used == pytest.approx(100, abs=1)
