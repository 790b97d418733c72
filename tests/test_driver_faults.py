"""Every failure a user can hit, over real HTTP against the emulator: one typed error each,
carrying provider, model, status, code and request id, and retried only where it should be."""

from __future__ import annotations

import time

import pytest

from botticelli import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    GenerateRequest,
    GroqDriver,
    InvalidRequestError,
    Message,
    ModelNotFoundError,
    ModelsError,
    RateLimitError,
    ResponseError,
    ServerError,
)
from botticelli.config import Timeout
from botticelli.emulator import Emulator, Fault
from botticelli.errors import ErrorKind

MODEL = "openai/gpt-oss-20b"
REQUEST = GenerateRequest(messages=[Message.user("Hello!")], max_tokens=16)


def groq(emu: Emulator, key: str, **options: object) -> GroqDriver:
    return GroqDriver(MODEL, api_key=key, base_url=emu.base_url, **options)  # type: ignore[arg-type]


def chat_requests(emu: Emulator) -> int:
    return sum(1 for r in emu.requests if r.path.endswith("/chat/completions"))


async def test_bad_key(api_key: str) -> None:
    with Emulator(api_keys={"gsk_the_right_one"}) as emu, pytest.raises(AuthenticationError) as caught:
        await groq(emu, api_key).generate(REQUEST)
    error = caught.value
    assert (error.status, error.code, error.provider, error.model) == (401, "invalid_api_key", "groq", MODEL)
    assert error.kind is ErrorKind.AUTHENTICATION
    assert error.request_id and api_key not in str(error) and api_key not in repr(error)
    assert chat_requests(emu) == 1  # never retried


async def test_unknown_model(emulator: Emulator, api_key: str) -> None:
    driver = GroqDriver("no-such-model", api_key=api_key, base_url=emulator.base_url)
    with pytest.raises(ModelNotFoundError) as caught:
        await driver.generate(REQUEST)
    assert caught.value.status == 404 and caught.value.code == "model_not_found"
    assert "no-such-model" in str(caught.value) and caught.value.replacement is None


@pytest.mark.parametrize(
    ("model", "status", "code", "replacement"),
    [
        ("llama-3.1-8b-instant", 404, "model_not_found", "openai/gpt-oss-20b"),
        ("mixtral-8x7b-32768", 400, "model_decommissioned", "openai/gpt-oss-20b"),
    ],
)
async def test_retired_model_names_the_replacement(
    emulator: Emulator, api_key: str, model: str, status: int, code: str, replacement: str
) -> None:
    with pytest.warns(UserWarning):
        driver = GroqDriver(model, api_key=api_key, base_url=emulator.base_url)
    with pytest.raises(ModelNotFoundError) as caught:
        await driver.generate(REQUEST)
    assert (caught.value.status, caught.value.code, caught.value.replacement) == (status, code, replacement)
    assert replacement in str(caught.value)


async def test_invalid_request_n_above_one(emulator: Emulator, api_key: str) -> None:
    request = GenerateRequest(messages=[Message.user("hi")], extra={"n": 2})
    with pytest.raises(InvalidRequestError) as caught:
        await groq(emulator, api_key).generate(request)
    assert caught.value.status == 400 and chat_requests(emulator) == 1


async def test_context_length_exceeded(emulator: Emulator, api_key: str) -> None:
    request = GenerateRequest(messages=[Message.user("word " * 140_000)], max_tokens=10)
    with pytest.raises(InvalidRequestError) as caught:
        await groq(emulator, api_key).generate(request)
    assert caught.value.code == "context_length_exceeded"


async def test_429_with_retry_after_is_retried_after_the_wait(emulator: Emulator, api_key: str) -> None:
    emulator.inject(Fault("rate_limit", retry_after=0.4, count=1))
    started = time.perf_counter()
    response = await groq(emulator, api_key).generate(REQUEST)
    assert response.text
    assert time.perf_counter() - started >= 0.4  # the server's word, not our back-off
    assert chat_requests(emulator) == 2


async def test_429_retries_exhausted(emulator: Emulator, api_key: str) -> None:
    emulator.inject(Fault("rate_limit", retry_after=0.05, count=10))
    with pytest.raises(RateLimitError) as caught:
        await groq(emulator, api_key, max_retries=2).generate(REQUEST)
    error = caught.value
    assert error.status == 429 and error.code == "rate_limit_exceeded" and error.kind is ErrorKind.RATE_LIMIT
    assert error.retry_after is not None and error.limit
    assert chat_requests(emulator) == 3


async def test_429_longer_than_the_cap_fails_fast(emulator: Emulator, api_key: str) -> None:
    emulator.inject(Fault("rate_limit", retry_after=120, count=5))
    started = time.perf_counter()
    with pytest.raises(RateLimitError) as caught:
        await groq(emulator, api_key, max_retries=5).generate(REQUEST)
    assert time.perf_counter() - started < 2
    assert caught.value.retry_after == 120 and chat_requests(emulator) == 1


async def test_daily_quota_fails_fast(emulator: Emulator, api_key: str) -> None:
    emulator.inject(Fault("rate_limit", daily=True, count=5))
    with pytest.raises(RateLimitError) as caught:
        await groq(emulator, api_key, max_retries=5).generate(REQUEST)
    assert caught.value.daily and chat_requests(emulator) == 1


async def test_retry_after_ms(emulator: Emulator, api_key: str) -> None:
    emulator.inject(Fault("rate_limit", retry_after_ms=150, count=1))
    assert (await groq(emulator, api_key).generate(REQUEST)).text
    assert chat_requests(emulator) == 2


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_retried_then_succeeds(emulator: Emulator, api_key: str, status: int) -> None:
    emulator.inject(Fault("server_error", status=status, count=1))
    assert (await groq(emulator, api_key).generate(REQUEST)).text
    assert chat_requests(emulator) == 2


async def test_5xx_exhausted_and_max_retries_zero(emulator: Emulator, api_key: str) -> None:
    emulator.inject(Fault("server_error", status=503, count=10))
    with pytest.raises(ServerError) as caught:
        await groq(emulator, api_key, max_retries=0).generate(REQUEST)
    assert caught.value.status == 503 and chat_requests(emulator) == 1


@pytest.mark.parametrize(("status", "cls"), [(413, InvalidRequestError), (498, ServerError)])
async def test_not_retried_statuses(
    emulator: Emulator, api_key: str, status: int, cls: type[ModelsError]
) -> None:
    emulator.inject(Fault("status", status=status, count=5))
    with pytest.raises(cls) as caught:
        await groq(emulator, api_key, max_retries=3).generate(REQUEST)
    assert caught.value.status == status and chat_requests(emulator) == 1


@pytest.mark.parametrize("status", [408, 409])
async def test_408_409_retried(emulator: Emulator, api_key: str, status: int) -> None:
    emulator.inject(Fault("status", status=status, count=1))
    assert (await groq(emulator, api_key).generate(REQUEST)).text
    assert chat_requests(emulator) == 2


async def test_dropped_connection_retried_then_raises(emulator: Emulator, api_key: str) -> None:
    emulator.inject(Fault("drop", count=1))
    assert (await groq(emulator, api_key).generate(REQUEST)).text
    emulator.inject(Fault("drop", count=10))
    with pytest.raises(APIConnectionError) as caught:
        await groq(emulator, api_key, max_retries=1).generate(REQUEST)
    assert caught.value.kind is ErrorKind.CONNECTION and caught.value.model == MODEL


async def test_hanging_server_times_out(emulator: Emulator, api_key: str) -> None:
    emulator.inject(Fault("hang", count=10))
    started = time.perf_counter()
    with pytest.raises(APITimeoutError) as caught:
        await groq(emulator, api_key, timeout=Timeout(read=0.3, total=30), max_retries=1).generate(REQUEST)
    assert 0.6 <= time.perf_counter() - started < 5  # two attempts, each the read timeout
    assert caught.value.kind is ErrorKind.TIMEOUT and isinstance(caught.value, APIConnectionError)


async def test_a_number_bounds_the_whole_call_retries_included(emulator: Emulator, api_key: str) -> None:
    emulator.inject(Fault("hang", count=10))
    started = time.perf_counter()
    with pytest.raises(APITimeoutError, match=r"deadline of 0\.5 s"):
        await groq(emulator, api_key, timeout=0.5, max_retries=5).generate(REQUEST)
    assert time.perf_counter() - started < 1.5


async def test_malformed_json(emulator: Emulator, api_key: str) -> None:
    emulator.inject(Fault("malformed", count=1))
    with pytest.raises(ResponseError, match="not valid JSON") as caught:
        await groq(emulator, api_key).generate(REQUEST)
    assert caught.value.status == 200


async def test_html_403(emulator: Emulator, api_key: str) -> None:
    emulator.inject(Fault("html_403", count=1))
    with pytest.raises(AuthenticationError, match="HTML page") as caught:
        await groq(emulator, api_key).generate(REQUEST)
    assert caught.value.status == 403 and "<html" not in str(caught.value).lower()


# ---- streams ----------------------------------------------------------------------------------


async def test_error_in_the_middle_of_a_stream(emulator: Emulator, api_key: str) -> None:
    emulator.inject(Fault("stream_error", after_chunks=2, count=1))
    texts: list[str] = []
    with pytest.raises(InvalidRequestError) as caught:  # Groq's failed generation: the request to change
        async for chunk in groq(emulator, api_key).generate_stream(REQUEST):
            texts.append(chunk.text)
    assert len(texts) == 2 and all(texts)
    assert caught.value.code == "tool_use_failed" and caught.value.request_id
    assert caught.value.failed_generation


async def test_stream_cut_before_done(emulator: Emulator, api_key: str) -> None:
    emulator.inject(Fault("truncate", after_chunks=3, count=1))
    texts: list[str] = []
    with pytest.raises(ResponseError, match=r"\[DONE\]"):
        async for chunk in groq(emulator, api_key).generate_stream(REQUEST):
            texts.append(chunk.text)
    assert len(texts) == 3


async def test_connection_dropped_mid_stream(emulator: Emulator, api_key: str) -> None:
    emulator.inject(Fault("stream_drop", after_chunks=2, count=1))
    with pytest.raises(APIConnectionError, match="during the stream"):
        async for _chunk in groq(emulator, api_key).generate_stream(REQUEST):
            pass


async def test_malformed_stream_frame(emulator: Emulator, api_key: str) -> None:
    emulator.inject(Fault("malformed", count=1))
    with pytest.raises(ResponseError, match="not valid JSON"):
        async for _chunk in groq(emulator, api_key).generate_stream(REQUEST):
            pass


async def test_stream_errors_before_the_first_byte_are_retried(emulator: Emulator, api_key: str) -> None:
    emulator.inject(Fault("server_error", status=500, count=1))
    chunks = [c async for c in groq(emulator, api_key).generate_stream(REQUEST)]
    assert chunks[-1].is_final and chunk_text(chunks)
    assert chat_requests(emulator) == 2


async def test_stream_bad_key_and_stall(api_key: str) -> None:
    with Emulator(api_keys={"gsk_other"}) as emu, pytest.raises(AuthenticationError):
        async for _chunk in groq(emu, api_key).generate_stream(REQUEST):
            pass
    with Emulator() as emu:
        emu.inject(Fault("slow_first_token", delay=2.0, count=5))
        with pytest.raises(APITimeoutError):
            async for _chunk in groq(emu, api_key, timeout=0.3, max_retries=0).generate_stream(REQUEST):
                pass


def chunk_text(chunks: list[object]) -> str:
    return "".join(getattr(c, "text", "") for c in chunks)
