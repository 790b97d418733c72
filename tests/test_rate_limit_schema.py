"""Each provider's rate-limit headers, read through its ``RateLimitSchema``: any header value is
read without raising and clamped, the windows are the schema's, Anthropic's RFC 3339 resets become
seconds, and the limiter learns from a schema's families by their windows (OpenAI: requests per
minute; Groq: requests per day) or, with ``NO_RATE_LIMITS``, from nothing. Real limiters, real
clocks, a real redis-server; no mocks."""

from __future__ import annotations

import asyncio
import datetime
import math
import time
from collections.abc import Iterator

import httpx2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from botticelli._headers import (
    ANTHROPIC_RATE_LIMITS,
    GROQ_RATE_LIMITS,
    MAX_HEADER_COUNT,
    MAX_HEADER_SECONDS,
    NO_RATE_LIMITS,
    OPENAI_RATE_LIMITS,
    HeaderFamily,
    RateLimitSchema,
    parse_family,
    parse_rate_limit,
    parse_reset,
)
from botticelli.errors import ConfigurationError, RateLimitError
from botticelli.providers.groq_plans import GROQ_PLANS
from botticelli.ratelimit import Limiter, RateLimits, clear_registry, limiter_for
from botticelli.ratelimit.learning import CONFIRMATIONS, header_kinds
from botticelli.ratelimit.spec import RPD, RPM, TPD, TPM

MODEL = "openai/gpt-oss-20b"
SCHEMAS = (GROQ_RATE_LIMITS, OPENAI_RATE_LIMITS, ANTHROPIC_RATE_LIMITS, NO_RATE_LIMITS)
WITH_HEADERS = SCHEMAS[:3]


class Clock:
    """A clock that only moves when told: no refill hides what a header synced."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def _fresh_registry() -> Iterator[None]:
    clear_registry()
    yield
    clear_registry()


def names_of(schema: RateLimitSchema) -> list[str]:
    return [*sorted(schema.names), "retry-after", "retry-after-ms"]


_numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**30), max_value=10**30),
)
values = st.one_of(
    _numbers.map(str),
    st.sampled_from(["", " ", "nan", "-inf", "1e400", "0x10", "1,000", "2m59.56s", "7.66s", "1h", "-3s"]),
    st.sampled_from(
        ["2025-08-21T12:40:59Z", "2025-08-21T12:40:59+02:00", "9999-12-31T23:59:59Z", "0001-01-01"]
    ),
    st.text(max_size=80),
)


def limiter(schema: RateLimitSchema, limits: RateLimits, *, clock: Clock | None = None) -> Limiter:
    """A limiter of a provider without plans (the generic OpenAI-compatible case)."""
    return Limiter(
        provider="vllm",
        model="some-model",
        limits=limits,
        sources=dict.fromkeys(("rpm", "rpd", "tpm", "tpd"), "limits="),
        schema=schema,
        clock=clock or time.monotonic,
    )


def used(limiter: Limiter) -> dict[str, float]:
    return {s.kind: s.used for s in limiter.status().limits}


# ---- every schema --------------------------------------------------------------------------------


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: s.name)
class TestEverySchema:
    @settings(max_examples=150, deadline=None)
    @given(data=st.data())
    def test_any_header_values_never_raise_and_stay_clamped(
        self, schema: RateLimitSchema, data: st.DataObject
    ) -> None:
        names = names_of(schema)
        headers = data.draw(st.dictionaries(st.sampled_from(names), values, max_size=len(names)))
        info = parse_rate_limit(headers, schema)
        if info is None:
            return
        for count in (info.requests_limit, info.requests_remaining, info.tokens_limit, info.tokens_remaining):
            assert count is None or (isinstance(count, int) and 0 <= count <= MAX_HEADER_COUNT)
        for seconds in (info.requests_reset, info.tokens_reset, info.retry_after):
            assert seconds is None or (math.isfinite(seconds) and 0 <= seconds <= MAX_HEADER_SECONDS)
        assert (info.requests_window, info.tokens_window) == (schema.requests_window, schema.tokens_window)

    @settings(max_examples=100, deadline=None)
    @given(data=st.data())
    def test_the_limiter_survives_any_header_values(
        self, schema: RateLimitSchema, data: st.DataObject
    ) -> None:
        names = names_of(schema)
        headers = data.draw(st.dictionaries(st.sampled_from(names), values, max_size=len(names)))
        subject = limiter(schema, RateLimits(rpm=60, rpd=1000, tpm=10_000, tpd=100_000), clock=Clock())
        for _ in range(CONFIRMATIONS):
            asyncio.run(subject.observe(headers))
            if all(v.isascii() for v in headers.values()):  # what an HTTP client would hand over
                asyncio.run(subject.observe(httpx2.Headers(list(headers.items()))))
        for item in subject.status().limits:
            assert 0 <= item.used <= item.limit
            assert item.limit >= 1 and item.limit == int(item.limit)

    def test_windows_follow_the_schema(self, schema: RateLimitSchema) -> None:
        headers = {"retry-after": "3"}
        for family in schema.families():
            headers.update({family.limit: "100", family.remaining: "40"})
        info = parse_rate_limit(headers, schema)
        assert info is not None and info.retry_after == 3.0
        assert info.requests_window == schema.requests_window
        assert info.tokens_window == schema.tokens_window
        if schema.requests is not None:
            assert (info.requests_limit, info.requests_remaining) == (100, 40)

    def test_a_response_without_its_headers_reads_as_none(self, schema: RateLimitSchema) -> None:
        assert parse_rate_limit({"content-type": "application/json"}, schema) is None
        assert parse_rate_limit({}, schema) is None
        only_retry = parse_rate_limit({"retry-after": "2"}, schema)  # retry-after alone still counts
        assert only_retry is not None and only_retry.retry_after == 2.0
        assert only_retry.requests_limit is None and only_retry.tokens_limit is None

    def test_header_names_are_found_whatever_their_case(self, schema: RateLimitSchema) -> None:
        if schema.requests is None:
            pytest.skip("a schema without headers")
        shouted = httpx2.Headers([(schema.requests.limit.upper(), "77"), ("X-Other", "1")])
        assert schema.pick(shouted) == {schema.requests.limit: "77"}
        assert schema.pick({schema.requests.limit.title(): "77"}) == {schema.requests.limit: "77"}


# ---- Groq ------------------------------------------------------------------------------------------


class TestGroq:
    def test_requests_per_day_tokens_per_minute(self) -> None:
        assert (GROQ_RATE_LIMITS.requests_window, GROQ_RATE_LIMITS.tokens_window) == ("day", "minute")
        assert header_kinds(GROQ_RATE_LIMITS) == (RPD, TPM)
        info = parse_rate_limit(
            {
                "x-ratelimit-limit-requests": "14400",
                "x-ratelimit-remaining-requests": "14370",
                "x-ratelimit-reset-requests": "2m59.56s",
            },
            GROQ_RATE_LIMITS,
        )
        assert info is not None and info.requests_window == "day"
        assert info.requests_reset == pytest.approx(179.56)

    async def test_the_limiter_reads_the_requests_header_as_per_day(self) -> None:
        subject = Limiter(
            provider="groq",
            model=MODEL,
            limits=RateLimits(rpm=30, rpd=1000, tpm=8000, tpd=200_000),
            sources=dict.fromkeys(("rpm", "rpd", "tpm", "tpd"), "free plan"),
            plan="free",
            plans=GROQ_PLANS,
            schema=GROQ_RATE_LIMITS,
            clock=Clock(),
        )
        await subject.observe({"x-ratelimit-limit-requests": "1000", "x-ratelimit-remaining-requests": "990"})
        assert used(subject)["rpd"] == pytest.approx(10) and used(subject)["rpm"] == 0


# ---- OpenAI and vLLM -------------------------------------------------------------------------------


class TestOpenAI:
    def test_both_families_per_minute(self) -> None:
        assert header_kinds(OPENAI_RATE_LIMITS) == (RPM, TPM)
        info = parse_rate_limit({"x-ratelimit-limit-requests": "500", "x-ratelimit-reset-requests": "120ms"})
        assert info is not None  # the default schema
        assert (info.requests_window, info.tokens_window) == ("minute", "minute")
        assert info.requests_reset == pytest.approx(0.12)

    async def test_the_limiter_treats_the_requests_header_as_per_minute(self) -> None:
        subject = limiter(OPENAI_RATE_LIMITS, RateLimits(rpm=100, rpd=10_000), clock=Clock())
        headers = {"x-ratelimit-limit-requests": "100", "x-ratelimit-remaining-requests": "25"}
        await subject.observe(headers)
        assert used(subject) == {"rpm": pytest.approx(75), "rpd": 0}
        lower = {"x-ratelimit-limit-requests": "50", "x-ratelimit-remaining-requests": "50"}
        for _ in range(CONFIRMATIONS):
            await subject.observe(lower)
        assert subject.limits.rpm == 50 and subject.limits.rpd == 10_000
        assert subject.sources["rpm"] == "server headers"

    async def test_limiter_for_defaults_to_the_openai_schema(self) -> None:
        subject = limiter_for("vllm", "some-model", base_url="http://x", api_key=None, limits={"rpm": 60})
        assert subject is not None and subject.schema is OPENAI_RATE_LIMITS and subject.plan is None
        await subject.observe({"x-ratelimit-limit-tokens": "9000", "x-ratelimit-remaining-tokens": "1000"})
        assert subject.limits.tpm is None  # no TPM limit to sync; only voted on so far
        for _ in range(CONFIRMATIONS):
            await subject.observe(
                {"x-ratelimit-limit-tokens": "9000", "x-ratelimit-remaining-tokens": "1000"}
            )
        assert subject.limits.tpm == 9000 and subject.limits.tpd is None

    async def test_the_limit_a_429_names_is_learned_from_its_fields(self) -> None:
        """No English is read: the provider's error reading fills limit_kind and limit_value."""
        subject = limiter(OPENAI_RATE_LIMITS, RateLimits(tpm=8000), clock=Clock())
        told = RateLimitError("anything at all", status=429, limit_kind="tpm", limit_value=6000)
        for _ in range(CONFIRMATIONS):
            await subject.rejected(told, 0, 0.0)
        assert subject.limits.tpm == 6000 and subject.rate_limited == CONFIRMATIONS
        english = RateLimitError("on tokens per minute (TPM): Limit 5000", status=429)
        for _ in range(CONFIRMATIONS):
            await subject.rejected(english, 0, 0.0)
        assert subject.limits.tpm == 6000  # the text alone teaches nothing

    async def test_a_daily_429_empties_the_bucket_its_fields_name(self) -> None:
        subject = limiter(OPENAI_RATE_LIMITS, RateLimits(rpd=1000, tpd=100_000), clock=Clock())
        told = RateLimitError("quota", status=429, daily=True, retry_after=600.0, limit_kind="tpd")
        await subject.rejected(told, 0, 600.0)
        assert used(subject)["tpd"] > 100_000 and used(subject)["rpd"] == 0
        with pytest.raises(RateLimitError) as refused:
            await subject.acquire(10)
        assert refused.value.daily and refused.value.limit == "tokens per day (TPD)"


# ---- Anthropic -------------------------------------------------------------------------------------

ANTHROPIC_EXAMPLE = {  # anthropic-wire.md §7, a real response of 2025-08-21
    "anthropic-ratelimit-requests-limit": "1000",
    "anthropic-ratelimit-requests-remaining": "999",
    "anthropic-ratelimit-requests-reset": "2025-08-21T12:40:59Z",
    "anthropic-ratelimit-tokens-limit": "96000",
    "anthropic-ratelimit-tokens-remaining": "96000",
    "anthropic-ratelimit-tokens-reset": "2025-08-21T12:40:59Z",
    "anthropic-ratelimit-input-tokens-limit": "80000",
    "anthropic-ratelimit-input-tokens-remaining": "80000",
    "anthropic-ratelimit-input-tokens-reset": "2025-08-21T12:40:59Z",
    "anthropic-ratelimit-output-tokens-limit": "16000",
    "anthropic-ratelimit-output-tokens-remaining": "16000",
    "anthropic-ratelimit-output-tokens-reset": "2025-08-21T12:41:00Z",
}
SENT_AT = datetime.datetime(2025, 8, 21, 12, 40, 29, tzinfo=datetime.UTC).timestamp()


class TestAnthropic:
    def test_rfc3339_resets_become_seconds_from_now(self) -> None:
        info = parse_rate_limit(ANTHROPIC_EXAMPLE, ANTHROPIC_RATE_LIMITS, now=SENT_AT)
        assert info is not None
        assert (info.requests_limit, info.requests_remaining) == (1000, 999)
        assert (info.tokens_limit, info.tokens_remaining) == (96000, 96000)
        assert info.requests_reset == pytest.approx(30.0) and info.tokens_reset == pytest.approx(30.0)
        assert (info.requests_window, info.tokens_window) == ("minute", "minute")

    def test_the_input_and_output_families(self) -> None:
        schema = ANTHROPIC_RATE_LIMITS
        inputs = parse_family(ANTHROPIC_EXAMPLE, schema.input_tokens, schema.reset, now=SENT_AT)
        outputs = parse_family(ANTHROPIC_EXAMPLE, schema.output_tokens, schema.reset, now=SENT_AT)
        assert inputs is not None and (inputs.limit, inputs.remaining, inputs.reset) == (80000, 80000, 30.0)
        assert outputs is not None and outputs.reset == pytest.approx(31.0)

    @pytest.mark.parametrize(
        ("text", "seconds"),
        [
            ("2025-08-21T12:40:59Z", 30.0),
            ("2025-08-21T14:40:59+02:00", 30.0),  # the same moment in another offset
            ("2025-08-21T12:40:29.5Z", 0.5),
            ("2025-08-21T12:40:00Z", 0.0),  # in the past: already reset
            ("2125-08-21T12:40:59Z", MAX_HEADER_SECONDS),  # absurdly far: capped
        ],
    )
    def test_reset_timestamps(self, text: str, seconds: float) -> None:
        assert parse_reset(text, "rfc3339", now=SENT_AT) == pytest.approx(seconds)

    @settings(max_examples=200, deadline=None)
    @given(moment=st.datetimes(timezones=st.timezones()), now=st.floats(0, 4e9))
    def test_any_timestamp_reads_as_bounded_seconds(self, moment: datetime.datetime, now: float) -> None:
        seconds = parse_reset(moment.isoformat(), "rfc3339", now=now)
        assert seconds is None or 0 <= seconds <= MAX_HEADER_SECONDS

    @pytest.mark.parametrize("text", ["", "soon", "2m59s", "2025-13-01T00:00:00Z", "12:40:59", "1" * 100])
    def test_unreadable_resets_are_none(self, text: str) -> None:
        assert parse_reset(text, "rfc3339", now=SENT_AT) is None

    async def test_the_limiter_syncs_requests_and_tokens_per_minute(self) -> None:
        subject = limiter(ANTHROPIC_RATE_LIMITS, RateLimits(rpm=1000, tpm=96000), clock=Clock())
        await subject.observe(httpx2.Headers(list(ANTHROPIC_EXAMPLE.items())))
        assert used(subject) == {"rpm": pytest.approx(1), "tpm": pytest.approx(0)}
        assert header_kinds(ANTHROPIC_RATE_LIMITS) == (RPM, TPM)


# ---- a provider without rate-limit headers ---------------------------------------------------------


class TestNoRateLimits:
    def test_x_ratelimit_headers_mean_nothing(self) -> None:
        headers = {"x-ratelimit-limit-requests": "10", "x-ratelimit-limit-tokens": "100"}
        assert NO_RATE_LIMITS.empty and header_kinds(NO_RATE_LIMITS) == (None, None)
        assert parse_rate_limit(headers, NO_RATE_LIMITS) is None
        info = parse_rate_limit({**headers, "retry-after": "5"}, NO_RATE_LIMITS)
        assert info is not None and info.retry_after == 5.0 and info.requests_limit is None

    async def test_the_limiter_ignores_every_header(self) -> None:
        subject = limiter(NO_RATE_LIMITS, RateLimits(rpm=100, rpd=1000, tpm=1000, tpd=10_000), clock=Clock())
        headers = {
            "x-ratelimit-limit-requests": "100",
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-limit-tokens": "1000",
            "x-ratelimit-remaining-tokens": "0",
        }
        for _ in range(2 * CONFIRMATIONS):
            await subject.observe(headers)
        assert subject.limits.values() == (100, 1000, 1000, 10_000)
        assert all(v == 0 for v in used(subject).values())

    def test_a_schema_of_its_own(self) -> None:
        """A provider declares its names and windows; nothing else changes."""
        schema = RateLimitSchema(
            "daily-tokens",
            tokens=HeaderFamily.named("X-Quota-{}-Tokens"),
            tokens_window="day",
            reset="seconds",
        )
        assert header_kinds(schema) == (None, TPD) and schema.names == {
            "x-quota-limit-tokens",
            "x-quota-remaining-tokens",
            "x-quota-reset-tokens",
        }
        info = parse_rate_limit({"x-quota-limit-tokens": "5", "x-quota-reset-tokens": "12.5"}, schema)
        assert info is not None and info.tokens_window == "day" and info.tokens_reset == 12.5
        with pytest.raises(ValueError, match="window"):
            RateLimitSchema("bad", tokens_window="hour")  # type: ignore[arg-type]


# ---- Groq's plans ----------------------------------------------------------------------------------


class TestGroqPlans:
    def test_detect_from_the_catalog(self) -> None:
        table = GROQ_PLANS.table(MODEL)
        assert set(table) >= {"free", "developer"}
        assert GROQ_PLANS.detect({RPD: 500_000.0, TPM: 250_000.0}, table, "free") == "developer"
        assert GROQ_PLANS.detect({TPM: 8000.0}, table, "free") == "free"
        assert GROQ_PLANS.detect({TPM: 1234.0}, table, "free") is None
        assert GROQ_PLANS.detect({TPM: 8000.0}, table, "unlimited") is None
        assert GROQ_PLANS.limits("unlimited", MODEL) is None

    def test_resolve_names_the_setting(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv(GROQ_PLANS.env, "gold")
        with pytest.raises(ConfigurationError, match="BOTTICELLI_GROQ_PLAN: unknown plan 'gold'"):
            GROQ_PLANS.resolve(None)
        assert GROQ_PLANS.alternative("free") == "developer" and GROQ_PLANS.alternative("developer") == "free"


# ---- shared through a real Redis ---------------------------------------------------------------------


async def test_a_schema_limiter_shares_what_the_headers_said_through_redis(redis_url: str) -> None:
    options = {"base_url": "http://x", "api_key": "k", "limits": {"rpm": 100}, "redis_url": redis_url}
    first = limiter_for("vllm", "some-model", schema=OPENAI_RATE_LIMITS, **options)  # type: ignore[arg-type]
    assert first is not None and first.shared == "redis"
    await first.observe({"x-ratelimit-limit-requests": "100", "x-ratelimit-remaining-requests": "10"})
    clear_registry()  # another process on the same server and key
    second = limiter_for("vllm", "some-model", schema=OPENAI_RATE_LIMITS, **options)  # type: ignore[arg-type]
    assert second is not None and second is not first
    rpm = next(s for s in (await second.astatus()).limits if s.kind == "rpm")
    assert rpm.used == pytest.approx(90, abs=0.5)
    first.close()
    second.close()
