"""The limiter believes no nonsense: header limits, remaining counts, usage and retry-afters of
any value leave it with plausible limits and waits no longer than its windows; a plan that was
only assumed never refuses a request unsent; failed attempts get their tokens back."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from botticelli import GenerateRequest, GroqDriver, InvalidRequestError, Message, RateLimitError, _defaults
from botticelli._headers import GROQ_RATE_LIMITS
from botticelli.catalog import lookup
from botticelli.emulator import Emulator, Fault
from botticelli.errors import ModelsError
from botticelli.providers.groq_plans import GROQ_PLANS
from botticelli.ratelimit import RateLimits, clear_registry, limiter_for, resolve_limits
from botticelli.ratelimit.limiter import CONFIRMATIONS, Limiter
from botticelli.ratelimit.spec import TPD, WINDOWS

MODEL = "openai/gpt-oss-20b"
FREE = RateLimits(rpm=30, rpd=1000, tpm=8000, tpd=200000)
SMALL = GenerateRequest([Message.user("Say hi")], max_tokens=8)
HEADERS = (
    "x-ratelimit-limit-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens",
)
CATALOG = lookup(MODEL)
assert CATALOG is not None and CATALOG.max_completion_tokens and CATALOG.context_window


class Clock:
    """A clock that only moves when told: no refill hides what was charged or given back."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(
    limits: RateLimits = FREE,
    *,
    plan: str = "free",
    plan_source: str | None = "plan=",
    clock: Clock | None = None,
) -> Limiter:
    assert CATALOG is not None
    return Limiter(
        provider="groq",
        model=MODEL,
        limits=limits,
        sources=dict.fromkeys(("rpm", "rpd", "tpm", "tpd"), f"{plan} plan"),
        plan=plan,
        plan_source=plan_source,
        resolver=lambda name: resolve_limits("groq", MODEL, name, None, plans=GROQ_PLANS),
        plans=GROQ_PLANS,
        schema=GROQ_RATE_LIMITS,
        max_completion=CATALOG.max_completion_tokens,
        context_window=CATALOG.context_window,
        clock=clock or time.monotonic,
    )


def assert_sane(limiter: Limiter) -> None:
    """Limits are the catalog's, and no bucket needs longer than its window to be full again."""
    assert limiter.limits.tpm in (8000, 250000) and limiter.limits.rpd in (1000, 500000)
    status = limiter.status()
    for item in status.limits:
        window = WINDOWS[("rpm", "rpd", "tpm", "tpd").index(item.kind)]
        assert 0 <= item.used <= item.limit
        assert 0 <= item.resets_in <= window + 1e-6
    assert 0 <= status.blocked_for <= _defaults.MAX_RETRY_AFTER
    assert "?" not in str(status)
    assert limiter.estimate_request(SMALL) < 100  # a small request still goes


_junk_numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**30), max_value=10**30),
)
header_values = st.one_of(
    st.none(),
    _junk_numbers.map(str),
    _junk_numbers.map(repr),
    st.sampled_from(["", " ", "nan", "inf", "-inf", "1e400", "-1e400", "0x10", "1,000", "1_000", "8000 "]),
    st.text(max_size=12),
)


@pytest.fixture(autouse=True)
def _fresh_registry() -> Iterator[None]:
    clear_registry()
    yield
    clear_registry()


# ---- headers ------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    values=st.tuples(header_values, header_values, header_values, header_values),
    repeat=st.integers(1, CONFIRMATIONS - 1),
)
def test_no_response_headers_poison_the_limiter(values: tuple[str | None, ...], repeat: int) -> None:
    limiter = make()
    headers = {name: value for name, value in zip(HEADERS, values, strict=True) if value is not None}
    for _ in range(repeat):
        asyncio.run(limiter.observe(headers))
    assert_sane(limiter)


@settings(max_examples=200, deadline=None)
@given(values=st.tuples(header_values, header_values, header_values, header_values))
def test_repeated_headers_adopt_only_plausible_limits(values: tuple[str | None, ...]) -> None:
    """Several identical responses may set a limit no plan has, but only a whole number within
    a factor 100 below / 1000 above the catalog's: never 0, 1.5, -1, inf or nan."""
    limiter = make()
    headers = {name: value for name, value in zip(HEADERS, values, strict=True) if value is not None}
    for _ in range(CONFIRMATIONS):
        asyncio.run(limiter.observe(headers))
    for kind, catalog in (("tpm", (8000, 250000)), ("rpd", (1000, 500000))):
        value = getattr(limiter.limits, kind)
        assert value in catalog or (
            value == int(value) and min(catalog) / 100 <= value <= max(catalog) * 1000
        )
    status = limiter.status()
    for item in status.limits:
        window = WINDOWS[("rpm", "rpd", "tpm", "tpd").index(item.kind)]
        assert 0 <= item.used <= item.limit and 0 <= item.resets_in <= window + 1e-6


@settings(max_examples=50, deadline=None)
@given(text=st.sampled_from(["0", "1", "1.5", "-1", "inf", "nan", "1e400", "-1000000000", "79", "1e15"]))
def test_nonsense_limits_are_never_adopted_however_often_repeated(text: str) -> None:
    limiter = make()
    for _ in range(3 * CONFIRMATIONS):
        asyncio.run(limiter.observe({"x-ratelimit-limit-tokens": text, "x-ratelimit-remaining-tokens": text}))
    assert limiter.limits.tpm == 8000 and limiter.sources["tpm"] == "free plan"
    assert limiter.estimate(400, 100) == 200  # not refused as "too large"


@settings(max_examples=50, deadline=None)
@given(value=st.integers(100, 7999))
def test_an_unknown_plausible_limit_needs_consistent_responses(value: int) -> None:
    limiter = make()
    said = {"x-ratelimit-limit-tokens": str(value), "x-ratelimit-remaining-tokens": str(value)}
    other = {"x-ratelimit-limit-tokens": str(value + 1), "x-ratelimit-remaining-tokens": str(value + 1)}
    for _ in range(CONFIRMATIONS - 1):
        asyncio.run(limiter.observe(said))
    asyncio.run(limiter.observe(other))  # a disagreeing response starts the count again
    for _ in range(CONFIRMATIONS - 1):
        asyncio.run(limiter.observe(said))
    assert limiter.limits.tpm == 8000
    asyncio.run(limiter.observe(said))
    assert limiter.limits.tpm == value and limiter.sources["tpm"] == "server headers"


@settings(max_examples=200, deadline=None)
@given(remaining=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**20), 10**20)))
def test_remaining_is_clamped_into_zero_to_limit(remaining: float) -> None:
    limiter = make()
    asyncio.run(
        limiter.observe({"x-ratelimit-limit-tokens": "8000", "x-ratelimit-remaining-tokens": str(remaining)})
    )
    tpm = next(s for s in limiter.status().limits if s.kind == "tpm")
    if math.isfinite(remaining):
        assert tpm.used == pytest.approx(8000 - min(max(remaining, 0), 8000), abs=1)
    assert tpm.resets_in <= 60 + 1e-6
    assert_sane(limiter)


async def test_unreadable_headers_are_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, "botticelli.ratelimit")
    limiter = make()
    await limiter.observe({"x-ratelimit-limit-tokens": "nan", "x-ratelimit-remaining-tokens": "x"})
    assert any(r.levelno == logging.DEBUG and "nan" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_day_of_negative_remaining_requests_still_formats() -> None:
    """remaining -3.97e16 once overflowed time.localtime; now it reads as "none left"."""
    limiter = make()
    await limiter.observe(
        {"x-ratelimit-limit-requests": "1000", "x-ratelimit-remaining-requests": "-3.97e16"}
    )
    with pytest.raises(RateLimitError) as caught:
        await limiter.acquire(10)
    refill_one = 86400 / 1000
    assert caught.value.daily and caught.value.retry_after == pytest.approx(refill_one + 0.2, abs=0.5)
    assert "fits in 1m27s" in str(caught.value)
    assert "requests per day" in str(limiter.status())


# ---- usage and retry-after ------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    estimated=st.integers(0, 7_000),  # a bigger one waits the margin, and this clock stands still
    used=st.one_of(st.none(), st.integers(-(10**18), 10**18), st.floats(allow_nan=True, allow_infinity=True)),
    completion=st.one_of(st.none(), st.integers(-(10**18), 10**18), st.floats(allow_nan=True)),
)
def test_settle_clamps_any_reported_usage(estimated: int, used: Any, completion: Any) -> None:
    limiter = make(clock=Clock())

    async def run() -> None:
        await limiter.acquire(estimated)
        await limiter.settle(estimated, used, completion)

    asyncio.run(run())
    assert_sane(limiter)
    by_kind = {s.kind: s for s in limiter.status().limits}
    assert by_kind["tpd"].used <= estimated + CATALOG.context_window  # type: ignore[operator]
    assert 16 <= limiter.completion_guess <= CATALOG.max_completion_tokens  # type: ignore[operator]
    unset = GenerateRequest([Message.user("Say hi")])
    assert limiter.estimate_request(unset) <= 8000  # an unset max_tokens never becomes "too large"


@settings(max_examples=100, deadline=None)
@given(
    retry_after=st.one_of(
        st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**12), 10**12)
    ),
    daily=st.booleans(),
    tokens=st.integers(-(10**6), 10**9),
)
def test_any_retry_after_holds_at_most_its_window(retry_after: Any, daily: bool, tokens: int) -> None:
    limiter = make(clock=Clock())
    error = RateLimitError(
        "Rate limit reached",
        retry_after=retry_after,
        daily=daily,
        limit="tokens per day (TPD)",
        limit_kind="tpd",
        status=429,
    )

    async def run() -> None:
        await limiter.rejected(error, tokens, retry_after)
        await limiter.refund(tokens)

    asyncio.run(run())
    status = limiter.status()
    assert 0 <= status.blocked_for <= _defaults.MAX_RETRY_AFTER
    for item in status.limits:
        window = WINDOWS[("rpm", "rpd", "tpm", "tpd").index(item.kind)]
        # a daily 429 empties its bucket until the (clamped) retry-after, then it refills
        assert 0 <= item.resets_in <= (2 if item.kind == "tpd" else 1) * window + 1e-6
    try:  # this clock stands still: a request that has to wait would wait forever
        asyncio.run(asyncio.wait_for(limiter.acquire(10), 0.05))
    except RateLimitError as refused:  # the daily quota: told when, at most a day away
        assert refused.retry_after is not None
        assert refused.retry_after <= WINDOWS[TPD] + 10 / (200000 / 86400) + 1
    except TimeoutError:
        pass


async def test_after_response_methods_never_raise_on_garbage() -> None:
    limiter = make()
    garbage: Any = object()
    await limiter.observe({"x-ratelimit-limit-tokens": garbage, 7: "8"})  # type: ignore[dict-item]
    await limiter.observe(garbage)
    await limiter.rejected(garbage, garbage, garbage)
    await limiter.settle(garbage, garbage, garbage)
    await limiter.refund(garbage)
    limiter.release()
    assert_sane(limiter)


# ---- an assumed plan --------------------------------------------------------------------------------


@pytest.fixture
def no_plan_anywhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No plan= argument, no BOTTICELLI_GROQ_PLAN, no botticelli.toml: the plan is assumed."""
    monkeypatch.delenv("BOTTICELLI_GROQ_PLAN", raising=False)
    monkeypatch.delenv("BOTTICELLI_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


BIG = GenerateRequest([Message.user("word " * 8000)], max_tokens=2000)  # ~12K tokens > free 8K TPM


def test_an_assumed_plan_never_refuses_for_size(
    no_plan_anywhere: None, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO, "botticelli.ratelimit")
    assumed = limiter_for(
        "groq", MODEL, base_url="http://x", api_key="gsk_k", schema=GROQ_RATE_LIMITS, plans=GROQ_PLANS
    )
    assert assumed is not None and assumed.plan == "free" and assumed.plan_assumed
    tokens = assumed.estimate_request(BIG)  # sent: the server answers 413 if it really is too large
    assert tokens > 8000
    assumed.estimate_request(BIG)
    notes = [r.getMessage() for r in caplog.records if "sent anyway" in r.getMessage()]
    assert len(notes) == 1
    assert "only assumed" in notes[0] and "BOTTICELLI_GROQ_PLAN=developer" in notes[0] and "plan=" in notes[0]
    text = str(assumed.status())
    assert "free plan (assumed)" in text and "free plan, assumed" in text
    assert "BOTTICELLI_GROQ_PLAN=developer" in text
    for chosen in ({"plan": "free"}, {}):
        clear_registry()
        if not chosen:
            monkeypatch.setenv("BOTTICELLI_GROQ_PLAN", "free")
        limiter = limiter_for(
            "groq",
            MODEL,
            base_url="http://x",
            api_key="gsk_k",
            schema=GROQ_RATE_LIMITS,
            plans=GROQ_PLANS,
            **chosen,
        )
        assert limiter is not None and not limiter.plan_assumed
        with pytest.raises(InvalidRequestError, match="free plan\\)"):
            limiter.estimate_request(BIG)


async def test_headers_confirming_the_assumed_plan_make_it_trusted(no_plan_anywhere: None) -> None:
    limiter = limiter_for(
        "groq", MODEL, base_url="http://x", api_key="gsk_k", schema=GROQ_RATE_LIMITS, plans=GROQ_PLANS
    )
    assert limiter is not None and limiter.plan_assumed
    await limiter.observe({"x-ratelimit-limit-requests": "1000", "x-ratelimit-limit-tokens": "8000"})
    assert not limiter.plan_assumed and limiter.plan_source == "server headers"
    with pytest.raises(InvalidRequestError):
        limiter.estimate_request(BIG)


async def test_the_wait_notice_says_the_plan_is_assumed(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    limiter = make(RateLimits(rpm=30, window_scale=0.05), plan_source="default")
    caplog.set_level(logging.WARNING, "botticelli.ratelimit")
    monkeypatch.setattr(_defaults, "RATE_LIMIT_NOTICE_AFTER", 0.0)
    for _ in range(31):
        await limiter.acquire(0)
    (notice,) = [r.getMessage() for r in caplog.records]
    assert "(30, free plan, assumed)" in notice
    assert "only assumed" in notice and "BOTTICELLI_GROQ_PLAN=developer" in notice and "plan=" in notice


async def test_a_developer_key_is_not_refused_before_its_plan_shows(
    no_plan_anywhere: None, api_key: str
) -> None:
    """The defect: a developer-plan organisation, no plan set: a 12K-token request was refused
    "(free plan)" without being sent. Now it goes, and the headers reveal the plan."""
    with Emulator(plan="developer") as emu:
        driver = GroqDriver(MODEL, api_key=api_key, base_url=emu.base_url)
        try:
            assert driver.limiter is not None and driver.limiter.plan_assumed
            response = await driver.generate(BIG)
            assert response.text
            assert driver.limiter.plan == "developer" and not driver.limiter.plan_assumed
        finally:
            await driver.aclose()
        clear_registry()  # a fresh process, where nobody has seen the headers yet
        explicit = GroqDriver(MODEL, api_key=api_key, base_url=emu.base_url, plan="free")
        try:
            with pytest.raises(InvalidRequestError, match="too large"):
                await explicit.generate(BIG)
        finally:
            await explicit.aclose()
        sent = sum(1 for r in emu.requests if r.path.endswith("/chat/completions"))
    assert sent == 1


# ---- refunds ------------------------------------------------------------------------------------------

outcomes = st.lists(
    st.tuples(
        st.sampled_from(["ok", "503", "timeout", "413", "429"]), st.integers(1, 3000), st.integers(0, 3000)
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(attempts=outcomes)
def test_only_answered_attempts_keep_their_tokens(attempts: list[tuple[str, int, int]]) -> None:
    """However attempts end, the tokens charged are the real usage of the answered ones, and
    the requests charged are every attempt except 413s (refused before counting)."""
    limits = RateLimits(rpd=10_000, tpd=1_000_000)  # daily only: a minute's refill hides nothing
    limiter = make(limits, clock=Clock())
    expected_tokens = 0
    expected_requests = 0

    async def run() -> None:
        nonlocal expected_tokens, expected_requests
        for outcome, tokens, usage in attempts:
            await limiter.acquire(tokens)
            if outcome == "ok":
                await limiter.settle(tokens, usage)
                expected_tokens += min(usage, tokens + CATALOG.context_window)  # type: ignore[operator]
                expected_requests += 1
                continue
            if outcome in ("413", "429"):
                status = int(outcome)
                error: ModelsError = (
                    RateLimitError("slow down", retry_after=0.0, status=429)
                    if status == 429
                    else InvalidRequestError("Request too large", status=413)
                )
                await limiter.rejected(error, tokens, 0.0)
            await limiter.refund(tokens)
            expected_requests += outcome != "413"

    asyncio.run(run())
    used = {s.kind: s.used for s in limiter.status().limits}
    assert used["tpd"] == pytest.approx(expected_tokens, abs=1e-6)
    assert used["rpd"] == pytest.approx(expected_requests, abs=1e-6)


async def test_a_413_is_given_back_exactly_once() -> None:
    limiter = make(clock=Clock())
    await limiter.acquire(5000)
    await limiter.rejected(InvalidRequestError("Request too large", status=413), 5000, 0.0)
    await limiter.refund(5000)
    assert all(s.used == pytest.approx(0, abs=1e-9) for s in limiter.status().limits)


async def test_a_daily_429_refund_does_not_shorten_the_servers_wait() -> None:
    limiter = make(clock=Clock())
    await limiter.acquire(3000)
    error = RateLimitError(
        "TPD", retry_after=600.0, daily=True, limit="tokens per day (TPD)", limit_kind="tpd", status=429
    )
    await limiter.rejected(error, 3000, 600.0)
    await limiter.refund(3000)
    with pytest.raises(RateLimitError) as caught:
        await limiter.acquire(100)
    rate = 200000 / 86400
    assert caught.value.retry_after == pytest.approx(600 + 100 / rate + 0.2, abs=0.5)


# ---- over HTTP ----------------------------------------------------------------------------------------


def _completion(usage_total: int) -> dict[str, Any]:
    return {
        "id": "chatcmpl-0",
        "object": "chat.completion",
        "created": 1,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "hi"},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": usage_total - 5, "total_tokens": usage_total},
        "x_groq": {"id": "req_01poisoned"},
    }


async def test_a_poisoned_response_does_not_stop_the_next_request(api_key: str) -> None:
    with Emulator() as emu:
        driver = GroqDriver(MODEL, api_key=api_key, base_url=emu.base_url, plan="free")
        try:
            emu.inject(
                Fault(
                    "status",
                    status=200,
                    body=_completion(1_000_000_000),
                    headers={
                        "x-ratelimit-limit-tokens": "0",
                        "x-ratelimit-remaining-tokens": "-1000000000",
                        "x-ratelimit-limit-requests": "1.5",
                        "x-ratelimit-remaining-requests": "-3.97e16",
                    },
                )
            )
            await driver.generate(SMALL)
            started = time.perf_counter()
            await driver.generate(SMALL)
            elapsed = time.perf_counter() - started
            assert driver.limiter is not None
            assert_sane(driver.limiter)
        finally:
            await driver.aclose()
        sent = sum(1 for r in emu.requests if r.path.endswith("/chat/completions"))
    assert sent == 2 and elapsed < 3.0


async def test_three_503s_then_success_charge_one_requests_usage(api_key: str) -> None:
    """Retries used to reserve again and never give back: 2,835 tokens for a 40-token exchange."""
    with Emulator() as emu:
        driver = GroqDriver(
            MODEL,
            api_key=api_key,
            base_url=emu.base_url,
            plan="unlimited",
            limits={"tpd": 100_000},
            max_retries=3,
        )
        try:
            emu.inject(Fault("server_error", count=3, status=503))
            request = GenerateRequest([Message.user("Write a line")], max_tokens=500)
            response = await driver.generate(request)
            status = driver.rate_limit_status()
        finally:
            await driver.aclose()
        assert sum(1 for r in emu.requests if r.path.endswith("/chat/completions")) == 4
    assert response.usage is not None and status is not None
    tpd = next(s for s in status.limits if s.kind == "tpd")
    assert tpd.used == pytest.approx(response.usage.total_tokens, abs=10)  # not 3 x ~500 more
