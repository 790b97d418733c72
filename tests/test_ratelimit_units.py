"""The limiter without a server: bucket arithmetic on a fake clock, header and duration parsing,
where limits and the plan come from, estimates, plan detection, notices and refusals."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
from pathlib import Path

import pytest

from botticelli import _defaults
from botticelli._headers import GROQ_RATE_LIMITS, parse_duration, parse_rate_limit, parse_retry_after
from botticelli.errors import ConfigurationError, InvalidRequestError, RateLimitError
from botticelli.providers.groq_plans import GROQ_PLANS
from botticelli.ratelimit import (
    RateLimits,
    clear_registry,
    fingerprint,
    limiter_for,
    resolve_limits,
)
from botticelli.ratelimit.buckets import BLOCKED, NONE, OK, REFUSED, LocalState
from botticelli.ratelimit.limiter import CONFIRMATIONS, Limiter
from botticelli.ratelimit.spec import RPD, RPM, TPM, layer_from_mapping, merge

MODEL = "openai/gpt-oss-20b"
MARGIN = 0.2


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def _fresh_registry() -> None:
    clear_registry()


def rpm_only(rpm: float) -> tuple[tuple[float, float, float, float], tuple[float, float, float, float]]:
    limits = RateLimits(rpm=rpm)
    return limits.capacities(), limits.rates()


# ---- bucket arithmetic ------------------------------------------------------------------------


def test_burst_then_paced_fifo() -> None:
    clock = Clock()
    state = LocalState(clock)
    caps, rates = rpm_only(30)  # 0.5 requests per second
    one = (1.0, 1.0, 0.0, 0.0)
    for _ in range(29):  # the bucket starts full, as the server's does
        assert state.reserve(caps, rates, one, MARGIN, 60.0) == (OK, 0.0, NONE, 0.0, None)
    # the last of the burst keeps the margin: the server's bucket may have started a bit later
    assert state.reserve(caps, rates, one, MARGIN, 60.0)[:3] == (OK, pytest.approx(MARGIN), RPM)
    waits = [state.reserve(caps, rates, one, MARGIN, 60.0)[1] for _ in range(3)]
    assert waits == pytest.approx([2.0 + MARGIN, 4.0 + MARGIN, 6.0 + MARGIN])  # queued in order
    clock.now += 6.0  # time passes: the queue drained, the next one waits one interval
    status, wait, kind, _, _ = state.reserve(caps, rates, one, MARGIN, 60.0)
    assert (status, kind) == (OK, RPM) and wait == pytest.approx(2.0 + MARGIN)


def test_refill_is_continuous_and_capped() -> None:
    clock = Clock()
    state = LocalState(clock)
    caps, rates = rpm_only(60)
    for _ in range(60):
        state.reserve(caps, rates, (1.0, 1.0, 0.0, 0.0), MARGIN, 60.0)
    clock.now += 15.0
    levels, blocked = state.peek(caps, rates)
    assert levels[RPM] == pytest.approx(15.0) and blocked == 0.0
    clock.now += 1000.0
    assert state.peek(caps, rates)[0][RPM] == 60.0  # never above the capacity


def test_daily_quota_refused_without_reserving() -> None:
    clock = Clock()
    state = LocalState(clock)
    limits = RateLimits(rpd=2)
    caps, rates = limits.capacities(), limits.rates()
    one = (1.0, 1.0, 0.0, 0.0)
    assert state.reserve(caps, rates, one, MARGIN, 60.0)[0] == OK
    assert state.reserve(caps, rates, one, MARGIN, 60.0)[0] == OK
    status, wait, kind, _, _ = state.reserve(caps, rates, one, MARGIN, 60.0)
    assert (status, kind) == (REFUSED, RPD)
    assert wait == pytest.approx(86400 / 2 + MARGIN)  # one request refills in half a day
    assert state.peek(caps, rates)[0][RPD] == pytest.approx(0.0)  # the refusal took nothing


def test_tokens_reserved_then_settled() -> None:
    clock = Clock()
    state = LocalState(clock)
    limits = RateLimits(tpm=1000)
    caps, rates = limits.capacities(), limits.rates()
    assert state.reserve(caps, rates, (1, 1, 800, 800), MARGIN, 60.0)[0] == OK
    _, wait, kind, _, mark = state.reserve(caps, rates, (1, 1, 400, 400), MARGIN, 60.0)
    assert kind == TPM and wait == pytest.approx(200 / (1000 / 60) + MARGIN)
    assert mark is not None and state.remaining(mark) == pytest.approx(wait)
    state.adjust(caps, rates, (0, 0, 700, 700))  # the first used 100, not 800: give 700 back
    assert state.peek(caps, rates)[0][TPM] == pytest.approx(1000 - 100 - 400)
    assert state.remaining(mark) <= 0  # the queued one may go at once


def test_sync_only_lowers() -> None:
    clock = Clock()
    state = LocalState(clock)
    limits = RateLimits(rpd=1000, tpm=8000)
    caps, rates = limits.capacities(), limits.rates()
    state.sync(caps, rates, [None, 900.0, 9000.0, None])
    levels = state.peek(caps, rates)[0]
    assert levels[RPD] == 900.0 and levels[TPM] == 8000.0


def test_block_stops_the_clock_and_shifts_the_queue() -> None:
    clock = Clock()
    state = LocalState(clock)
    caps, rates = rpm_only(60)
    for _ in range(60):
        state.reserve(caps, rates, (1, 1, 0, 0), 0.0, 60.0)
    state.block(caps, rates, 5.0)
    assert state.shift() == 5.0
    _, wait, _, shift, mark = state.reserve(caps, rates, (1, 1, 0, 0), 0.0, 60.0)
    assert wait == pytest.approx(5.0 + 1.0) and shift == 5.0
    assert mark is not None  # after the block, at the paced rate
    state.block(caps, rates, 2.0)  # inside the current block: nothing changes
    assert state.shift() == 5.0
    clock.now += 1.0
    state.block(caps, rates, 10.0)  # extends the block from 5 s to 11 s after the start
    assert state.shift() == pytest.approx(11.0)
    assert state.remaining(mark) == pytest.approx(5.0 + 1.0 + 6.0 - 1.0)  # shifted by the extension
    assert state.reserve(caps, rates, (0, 0, 0, 0), 0.0, 60.0)[2] in (BLOCKED, RPM)


def test_capacity_change_keeps_what_was_used() -> None:
    clock = Clock()
    state = LocalState(clock)
    small, rates_small = rpm_only(30)
    for _ in range(10):
        state.reserve(small, rates_small, (1, 1, 0, 0), 0.0, 60.0)
    big, rates_big = rpm_only(1000)
    assert state.peek(big, rates_big)[0][RPM] == pytest.approx(990.0)


# ---- header and duration parsing --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2m59.56s", 179.56),
        ("7.66s", 7.66),
        ("6s", 6.0),
        ("1h0m0s", 3600.0),
        ("23m58.56s", 1438.56),
        ("9m38.016s", 578.016),
        ("120ms", 0.12),
        ("500us", 0.0005),
        ("500µs", 0.0005),
        ("15ns", 1.5e-8),
        ("1m", 60.0),
        ("2", 2.0),
        ("1.5", 1.5),
        (".5s", 0.5),
        ("0s", 0.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", [None, "", "  ", "abc", "5x", "1m junk", "s"])
def test_parse_duration_rejects(text: str | None) -> None:
    assert parse_duration(text) is None


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after": "1.57s"}) == pytest.approx(1.57)
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"retry-after": "-3"}) is None
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert parse_retry_after({"retry-after": date}) == pytest.approx(30, abs=2)
    assert parse_retry_after({}) is None


def test_parse_rate_limit_groq_meanings() -> None:
    info = parse_rate_limit(
        {
            "x-ratelimit-limit-requests": "14400",
            "x-ratelimit-remaining-requests": "14370",
            "x-ratelimit-reset-requests": "2m59.56s",
            "x-ratelimit-limit-tokens": "18000",
            "x-ratelimit-remaining-tokens": "17997",
            "x-ratelimit-reset-tokens": "7.66s",
        },
        GROQ_RATE_LIMITS,
    )
    assert info is not None
    assert (info.requests_limit, info.requests_remaining, info.requests_window) == (14400, 14370, "day")
    assert (info.tokens_limit, info.tokens_remaining, info.tokens_window) == (18000, 17997, "minute")
    assert info.requests_reset == pytest.approx(179.56) and info.tokens_reset == pytest.approx(7.66)
    # The documented example is a continuously refilling bucket: 30 used at 14400 per day.
    used = info.requests_limit - info.requests_remaining  # type: ignore[operator]
    assert info.requests_reset == pytest.approx(used / (info.requests_limit / 86400), abs=0.5)  # type: ignore[operator]


# ---- limits: layers, plan, toml, catalog ------------------------------------------------------


def test_layers_first_wins_and_budget() -> None:
    limits, sources = merge(
        [
            layer_from_mapping({"rpm": 10, "budget": {"rpm": 0.5}}, "limits="),
            layer_from_mapping({"rpm": 99, "tpm": 500, "budget": 0.8}, "botticelli.toml"),
        ]
    )
    assert (limits.rpm, limits.tpm) == (10, 500)
    assert sources == {"rpm": "limits=", "tpm": "botticelli.toml"}
    assert limits.budget == (0.5, 0.8, 0.8, 0.8)
    assert limits.capacities()[RPM] == 5.0 and limits.capacities()[TPM] == 400.0


@pytest.mark.parametrize(
    "bad", [{"rpm": 0}, {"rpm": -1}, {"rpx": 5}, {"budget": 1.5}, {"concurrency": 0}, {"window_scale": 0}]
)
def test_bad_limits_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        layer_from_mapping(bad, "limits=")


def test_plan_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    toml = tmp_path / "b.toml"
    toml.write_text('[providers.groq]\nplan = "developer"\n')
    monkeypatch.setenv("BOTTICELLI_CONFIG", str(toml))
    monkeypatch.delenv("BOTTICELLI_GROQ_PLAN", raising=False)
    assert GROQ_PLANS.resolve(None) == ("developer", "botticelli.toml")
    monkeypatch.setenv("BOTTICELLI_GROQ_PLAN", "free")
    assert GROQ_PLANS.resolve(None) == ("free", "BOTTICELLI_GROQ_PLAN")
    assert GROQ_PLANS.resolve("unlimited") == ("unlimited", "plan=")
    monkeypatch.delenv("BOTTICELLI_CONFIG")
    monkeypatch.delenv("BOTTICELLI_GROQ_PLAN")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "none"))
    assert GROQ_PLANS.resolve(None) == ("free", "default")
    with pytest.raises(ConfigurationError, match="unknown plan"):
        GROQ_PLANS.resolve("enterprise")


def test_toml_overrides_catalog(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    toml = tmp_path / "botticelli.toml"
    toml.write_text(
        """
[budget]
rpd_multiplier = 0.5

[providers.groq]
concurrency = 3

[providers.groq.plans.free]
tpd = 150000

[providers.groq.plans.free.models."openai/gpt-oss-20b"]
tpm = 6000

[providers.groq.models."openai/gpt-oss-20b"]
rpm = 20
tpm = 7000
"""
    )
    monkeypatch.chdir(tmp_path)  # ./botticelli.toml is found without BOTTICELLI_CONFIG
    monkeypatch.delenv("BOTTICELLI_CONFIG", raising=False)
    limiter = limiter_for(
        "groq",
        MODEL,
        base_url="http://x",
        api_key="gsk_k",
        plan="free",
        schema=GROQ_RATE_LIMITS,
        plans=GROQ_PLANS,
    )
    assert limiter is not None
    limits = limiter.limits
    assert (limits.rpm, limits.rpd, limits.tpm, limits.tpd) == (20, 1000, 6000, 150000)
    assert limits.concurrency == 3 and limits.budget[RPD] == 0.5
    assert limiter.sources["rpd"] == "free plan" and limiter.sources["tpm"] == "botticelli.toml"
    explicit = limiter_for(
        "groq",
        MODEL,
        base_url="http://x",
        api_key="gsk_k",
        plan="free",
        limits={"tpm": 100},
        schema=GROQ_RATE_LIMITS,
        plans=GROQ_PLANS,
    )
    assert explicit is not None and explicit.limits.tpm == 100 and explicit.sources["tpm"] == "limits="


def test_catalog_defaults_per_plan() -> None:
    free = limiter_for(
        "groq",
        MODEL,
        base_url="http://x",
        api_key="k",
        plan="free",
        schema=GROQ_RATE_LIMITS,
        plans=GROQ_PLANS,
    )
    dev = limiter_for(
        "groq",
        MODEL,
        base_url="http://x",
        api_key="k",
        plan="developer",
        schema=GROQ_RATE_LIMITS,
        plans=GROQ_PLANS,
    )
    assert free is not None and dev is not None
    assert free.limits.values() == (30, 1000, 8000, 200000)
    assert dev.limits.values() == (1000, 500000, 250000, None)


def test_unlimited_means_no_limiter(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (
        limiter_for(
            "groq",
            MODEL,
            base_url="http://x",
            api_key="k",
            plan="unlimited",
            schema=GROQ_RATE_LIMITS,
            plans=GROQ_PLANS,
        )
        is None
    )
    monkeypatch.setenv("BOTTICELLI_GROQ_PLAN", "unlimited")
    assert (
        limiter_for(
            "groq", MODEL, base_url="http://x", api_key="k", schema=GROQ_RATE_LIMITS, plans=GROQ_PLANS
        )
        is None
    )
    # explicit limits still apply on the unlimited plan
    limiter = limiter_for(
        "groq",
        MODEL,
        base_url="http://x",
        api_key="k",
        limits={"rpm": 5},
        schema=GROQ_RATE_LIMITS,
        plans=GROQ_PLANS,
    )
    assert limiter is not None and limiter.limits.values() == (5, None, None, None)


def test_registry_shares_and_never_holds_the_key() -> None:
    key = "gsk_secret_value_123456"
    a = limiter_for(
        "groq",
        MODEL,
        base_url="http://x",
        api_key=key,
        plan="free",
        schema=GROQ_RATE_LIMITS,
        plans=GROQ_PLANS,
    )
    b = limiter_for(
        "groq",
        MODEL,
        base_url="http://x",
        api_key=key,
        plan="free",
        schema=GROQ_RATE_LIMITS,
        plans=GROQ_PLANS,
    )
    c = limiter_for(
        "groq",
        MODEL,
        base_url="http://y",
        api_key=key,
        plan="free",
        schema=GROQ_RATE_LIMITS,
        plans=GROQ_PLANS,
    )
    assert a is b and a is not c
    assert key not in repr(a) and key not in fingerprint("http://x", key)
    assert len(fingerprint("http://x", key)) == 16


# ---- the limiter --------------------------------------------------------------------------------


def make(limits: RateLimits, *, plan: str | None = "free", clock: Clock | None = None) -> Limiter:
    from botticelli import catalog

    info = catalog.lookup(MODEL)
    assert info is not None
    return Limiter(
        provider="groq",
        model=MODEL,
        limits=limits,
        sources=dict.fromkeys(("rpm", "rpd", "tpm", "tpd"), f"{plan} plan"),
        plan=plan,
        resolver=lambda name: resolve_limits("groq", MODEL, name, None, plans=GROQ_PLANS),
        plans=GROQ_PLANS,
        schema=GROQ_RATE_LIMITS,
        max_completion=info.max_completion_tokens,
        clock=clock or time.monotonic,
    )


def test_estimate_refuses_what_never_fits() -> None:
    limiter = make(RateLimits(rpm=30, rpd=1000, tpm=8000, tpd=200000))
    assert limiter.estimate(400, 100) == 200
    with pytest.raises(InvalidRequestError, match="tokens per minute") as caught:
        limiter.estimate(4000, 8000)
    assert caught.value.code == "request_too_large"
    # without max_tokens the guess is capped so the request can still go
    assert limiter.estimate(400, None) == 100 + _defaults.UNSET_MAX_TOKENS_ESTIMATE
    assert limiter.estimate(30000, None) == 8000


async def test_settle_teaches_the_completion_guess() -> None:
    limiter = make(RateLimits(tpm=8000))
    await limiter.settle(1124, 300, completion=200)
    assert limiter.completion_guess == pytest.approx(0.8 * 1024 + 0.2 * 200)
    await limiter.settle(1124, 3000, completion=2900)
    assert limiter.completion_guess == 2900


async def test_headers_reveal_the_developer_plan(caplog: pytest.LogCaptureFixture) -> None:
    limiter = make(RateLimits(rpm=30, rpd=1000, tpm=8000, tpd=200000))
    caplog.set_level(logging.INFO, "botticelli.ratelimit")
    await limiter.observe(
        {
            "x-ratelimit-limit-requests": "500000",
            "x-ratelimit-remaining-requests": "499990",
            "x-ratelimit-limit-tokens": "250000",
            "x-ratelimit-remaining-tokens": "249000",
        }
    )
    assert limiter.plan == "developer"
    assert limiter.limits.rpm == 1000 and limiter.limits.tpm == 250000
    assert "developer plan" in caplog.text
    status = limiter.status()
    by_kind = {s.kind: s for s in status.limits}
    assert by_kind["rpd"].used == pytest.approx(10, abs=0.01)  # synced from remaining-requests
    assert by_kind["tpm"].used == pytest.approx(1000, abs=1)


async def test_headers_lower_a_catalog_limit_once_confirmed() -> None:
    """A limit no plan of the catalog has is adopted only when several responses agree."""
    limiter = make(RateLimits(rpm=30, rpd=1000, tpm=8000, tpd=200000))
    headers = {"x-ratelimit-limit-tokens": "6000", "x-ratelimit-remaining-tokens": "6000"}
    for _ in range(CONFIRMATIONS - 1):
        await limiter.observe(headers)
    assert limiter.limits.tpm == 8000 and limiter.sources["tpm"] == "free plan"
    await limiter.observe(headers)
    assert limiter.plan == "free" and limiter.limits.tpm == 6000
    assert limiter.sources["tpm"] == "server headers"


async def test_wait_notice_once_per_kind(caplog: pytest.LogCaptureFixture) -> None:
    limiter = make(RateLimits(rpm=30, window_scale=0.05))  # 1.5 s window: 0.05 s per request
    limiter.sources["rpm"] = "free plan"
    caplog.set_level(logging.WARNING, "botticelli.ratelimit")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_defaults, "RATE_LIMIT_NOTICE_AFTER", 0.0)
        for _ in range(33):
            await limiter.acquire(0)
    notices = [r.getMessage() for r in caplog.records]
    assert len(notices) == 1
    assert "requests per minute (30, free plan)" in notices[0]
    assert "BOTTICELLI_GROQ_PLAN=developer" in notices[0]


async def test_daily_quota_fails_fast_with_reset_time() -> None:
    limiter = make(RateLimits(rpd=2))
    await limiter.acquire(0)
    await limiter.acquire(0)
    started = time.perf_counter()
    with pytest.raises(RateLimitError) as caught:
        await limiter.acquire(0)
    assert time.perf_counter() - started < 0.1
    error = caught.value
    assert error.daily and error.retry_after is not None and error.retry_after > 3600
    assert "requests per day (RPD)" in str(error) and "fits in" in str(error)


async def test_concurrency_slots_are_handed_over_and_survive_cancellation() -> None:
    limiter = make(RateLimits(concurrency=2), plan=None)
    await limiter.acquire(0)
    await limiter.acquire(0)
    waiter = asyncio.create_task(limiter.acquire(0))
    cancelled = asyncio.create_task(limiter.acquire(0))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    cancelled.cancel()
    limiter.release()
    await asyncio.wait_for(waiter, 1)
    assert limiter.status().in_flight == 2
    limiter.release()
    limiter.release()
    assert limiter.status().in_flight == 0
    with pytest.raises(asyncio.CancelledError):
        await cancelled
