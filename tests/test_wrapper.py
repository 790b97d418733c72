"""Wrappers delegate: a ``WrapperDriver`` (the cache's ``CachedDriver`` among them) is its inner
driver in every respect it does not change: provider, model, limiter, rate-limit status, the last
rate-limit snapshot, capabilities, endpoint, closing. Against a real ``GroqDriver`` on the
emulator, so what passes through is what a real driver has."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from botticelli import GenerateRequest, GroqDriver, catalog
from botticelli.batch import BatchProgress, generate_batch, iter_batch
from botticelli.cache import CachedDriver, SQLiteCache
from botticelli.drivers.base import Driver, ResponseStream
from botticelli.drivers.wrapper import WrapperDriver
from botticelli.emulator import Emulator, Fault
from botticelli.ratelimit import clear_registry
from botticelli.ratelimit.limiter import Limiter
from botticelli.types import GenerateResponse, TextOutput

from .conftest import TEST_KEY

MODEL = "openai/gpt-oss-20b"


@pytest.fixture(autouse=True)
async def _fresh_registry() -> AsyncIterator[None]:
    """Limiters are shared per (key, model): each test starts with none."""
    clear_registry()
    yield
    clear_registry()


def limited(emulator: Emulator, **options: object) -> GroqDriver:
    """A Groq driver with a client-side limiter (the suite's default plan limits nothing)."""
    return GroqDriver(
        MODEL,
        api_key=TEST_KEY,
        base_url=emulator.base_url,
        plan="unlimited",
        limits={"rpm": 6000, "concurrency": 4},
        **options,  # type: ignore[arg-type]
    )


def prompt(text: str) -> GenerateRequest:
    return GenerateRequest.prompt(text, temperature=0, max_tokens=12)


async def test_a_cache_reports_the_inner_drivers_limits(emulator: Emulator, tmp_path: Path) -> None:
    store = SQLiteCache(tmp_path / "cache.sqlite3")
    inner = limited(emulator)
    async with CachedDriver(inner, store) as cached:
        assert cached.inner is inner and cached.driver is inner
        assert isinstance(cached.limiter, Limiter) and cached.limiter is inner.limiter
        assert cached.last_rate_limit is None and inner.last_rate_limit is None
        assert (cached.provider_name, cached.model_name, cached.model) == ("groq", MODEL, MODEL)
        assert cached.endpoint == inner.endpoint == inner.base_url
        assert cached.capabilities == inner.capabilities == catalog.capabilities(MODEL, "groq")

        await cached.generate(prompt("Why is the sky blue?"))  # a miss: a real response
        snapshot = inner.last_rate_limit
        assert snapshot is not None and snapshot.requests_limit is not None
        assert cached.last_rate_limit is snapshot
        status, inner_status = cached.rate_limit_status(), inner.rate_limit_status()
        assert status is not None and inner_status is not None
        assert str(status) == str(inner_status) and status.in_flight == 0

        await cached.generate(prompt("Why is the sky blue?"))  # a hit leaves the snapshot alone
        assert cached.last_hit and cached.last_rate_limit is snapshot
        with pytest.raises(AttributeError):
            cached.model_name = "another"  # type: ignore[misc]  # a view of the inner driver's
    # closing the cache closed the inner driver: a new call opens a new pool, none leaked
    await store.aclose()


async def test_the_batch_counts_429s_waited_out_behind_a_cache(emulator: Emulator, tmp_path: Path) -> None:
    """Two 429s the transport retried and the limiter waited out: no item fails, yet the
    progress shows them, read through the cache wrapper from the inner driver's limiter."""
    emulator.inject(Fault("rate_limit", retry_after=0.01, count=2))
    store = SQLiteCache(tmp_path / "cache.sqlite3")
    async with CachedDriver(limited(emulator), store) as cached:
        seen: list[BatchProgress] = []
        results = await generate_batch(
            cached, [prompt(f"question {i}") for i in range(4)], concurrency=1, on_progress=seen.append
        )
        assert all(r.ok for r in results) and emulator.stats.rate_limited == 2
        assert seen[0].rate_limited == 0 and seen[-1].rate_limited == 2

        emulator.inject(Fault("rate_limit", retry_after=0.01, count=1))
        streamed: list[BatchProgress] = []
        fresh = [prompt(f"another {i}") for i in range(3)]
        async for result in iter_batch(cached, fresh, concurrency=1, on_progress=streamed.append):
            assert result.ok
        assert streamed[-1].rate_limited == 1  # this batch's own, not the earlier ones
    await store.aclose()


class _Answering(Driver):
    """A small real driver: answers with the prompt, no network."""

    provider_name = "groq"
    model_name = MODEL

    def __init__(self) -> None:
        self.closed = False

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        return GenerateResponse([TextOutput(request.messages[-1].text)], None, self.model_name)

    def generate_stream(self, request: GenerateRequest) -> ResponseStream:
        raise NotImplementedError

    async def aclose(self) -> None:
        self.closed = True


async def test_wrappers_of_wrappers_delegate_everything() -> None:
    inner = _Answering()
    outer = WrapperDriver(WrapperDriver(inner))
    assert outer.innermost is inner and outer.provider_name == "groq" and outer.model_name == MODEL
    assert outer.limiter is None and outer.rate_limit_status() is None and outer.last_rate_limit is None
    assert outer.endpoint is None
    assert outer.capabilities == catalog.capabilities(MODEL, "groq")
    assert (await outer.generate(prompt("hello"))).text == "hello"
    inner.capabilities = catalog.default_capabilities("openai-compatible")  # a driver may set its own
    assert outer.capabilities is inner.capabilities
    assert repr(outer) == f"WrapperDriver(WrapperDriver({inner!r}))"
    await outer.aclose()
    assert inner.closed
    with pytest.raises(TypeError, match="wraps a Driver"):
        WrapperDriver("groq:" + MODEL)  # type: ignore[arg-type]


def test_every_driver_has_the_documented_defaults(emulator: Emulator) -> None:
    plain = _Answering()
    assert plain.limiter is None and plain.rate_limit_status() is None and plain.last_rate_limit is None
    assert plain.capabilities == catalog.capabilities(MODEL, "groq")
    unlimited = GroqDriver(MODEL, api_key=TEST_KEY, base_url=emulator.base_url)  # the suite's plan
    assert unlimited.limiter is None and unlimited.rate_limit_status() is None
    assert unlimited.endpoint == unlimited.base_url
