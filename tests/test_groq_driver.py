"""GroqDriver over real HTTP against the emulator: the happy path, configuration and streaming."""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path

import pytest

from botticelli import (
    BotticelliWarning,
    ConfigurationError,
    GenerateRequest,
    GroqDriver,
    Input,
    Message,
    OpenAICompatibleDriver,
    Role,
)
from botticelli.emulator import Emulator

MODEL = "openai/gpt-oss-20b"


def hello(**params: object) -> GenerateRequest:
    message = Message.builder().role(Role.USER).content([Input.text("Hello!")]).build()
    return GenerateRequest(messages=[message], **params)  # type: ignore[arg-type]


@pytest.fixture
def driver(emulator: Emulator, api_key: str) -> GroqDriver:
    return GroqDriver(MODEL, api_key=api_key, base_url=emulator.base_url)


async def test_generate_returns_typed_response(driver: GroqDriver, emulator: Emulator) -> None:
    response = await driver.generate(hello(max_tokens=100, temperature=0.7))
    assert response.text and response.outputs and str(response.outputs[0]) == response.text
    assert response.finish_reason in ("stop", "length")
    assert response.model == MODEL and response.provider == "groq"
    assert response.request_id is not None and response.request_id.startswith("req_")
    usage = response.usage
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    for timing in (usage.queue_time, usage.prompt_time, usage.completion_time, usage.total_time):
        assert timing is not None and timing >= 0
    limits = response.rate_limit
    assert limits is not None and limits.requests_limit and limits.tokens_limit
    assert limits.requests_remaining is not None and limits.requests_remaining < limits.requests_limit
    assert limits.tokens_reset is not None and limits.tokens_reset >= 0
    assert 0 < response.latency < 5


async def test_request_on_the_wire(driver: GroqDriver, emulator: Emulator, api_key: str) -> None:
    await driver.generate(
        GenerateRequest(
            messages=[Message.system("Be brief."), Message.user("Hi")],
            max_tokens=20,
            temperature=0.0,
            top_p=0.5,
            stop=["\n\n"],
            seed=42,
        )
    )
    sent = emulator.requests[-1]
    assert sent.path == "/openai/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {api_key}"
    assert sent.body == {
        "model": MODEL,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        "max_completion_tokens": 20,
        "temperature": 0.0,
        "top_p": 0.5,
        "stop": ["\n\n"],
        "seed": 42,
    }


async def test_max_tokens_gives_length(driver: GroqDriver) -> None:
    response = await driver.generate(hello(max_tokens=2))
    assert response.finish_reason == "length"
    assert response.usage.completion_tokens == 2


async def test_stream_token_by_token(driver: GroqDriver) -> None:
    request = hello(max_tokens=30, seed=7)
    chunks = [chunk async for chunk in driver.generate_stream(request)]
    assert len(chunks) >= 3
    *deltas, final = chunks
    assert all(not c.is_final and c.text for c in deltas)
    assert final.is_final and final.text == ""
    assert final.finish_reason in ("stop", "length")
    assert final.usage is not None and final.usage.completion_tokens == len(deltas)
    assert final.request_id is not None and final.request_id.startswith("req_")
    assert final.time_to_first_token is not None and final.latency is not None
    assert 0 < final.time_to_first_token <= final.latency
    assert final.rate_limit is not None
    whole = await driver.generate(request)
    assert "".join(c.text for c in deltas) == whole.text  # same seed, same text


async def test_stream_response_and_collect(driver: GroqDriver) -> None:
    stream = driver.generate_stream(hello(max_tokens=10, seed=1))
    response = await stream.collect()
    assert response.text and response.usage.completion_tokens > 0
    assert (
        stream.time_to_first_token is not None and response.time_to_first_token == stream.time_to_first_token
    )


async def test_breaking_out_of_a_stream_closes_the_response(api_key: str) -> None:
    with Emulator(token_delay=0.02) as emu:
        driver = GroqDriver(MODEL, api_key=api_key, base_url=emu.base_url)
        async with driver.generate_stream(hello(max_tokens=200)) as stream:
            async for _chunk in stream:
                break
        await asyncio.sleep(0.2)
        assert emu.stats.client_disconnects == 1
        async for _chunk in driver.generate_stream(hello(max_tokens=200)):
            break
        await asyncio.sleep(0.2)  # the async generator is finalised on the next loop turns
        assert emu.stats.client_disconnects == 2


async def test_cancelling_the_task_closes_the_response(api_key: str) -> None:
    with Emulator(token_delay=0.02) as emu:
        driver = GroqDriver(MODEL, api_key=api_key, base_url=emu.base_url)
        got_one = asyncio.Event()

        async def consume() -> None:
            async for _chunk in driver.generate_stream(hello(max_tokens=200)):
                got_one.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(got_one.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.2)
        assert emu.stats.client_disconnects == 1


async def test_calls_and_finished_streams_reuse_one_connection(
    driver: GroqDriver, emulator: Emulator
) -> None:
    """Reading the body's end after [DONE] returns the connection to the pool: no new TCP (and,
    against the real API, TLS) handshake per stream."""
    for _ in range(3):
        assert (await driver.generate(hello(max_tokens=4))).text
        chunks = [c async for c in driver.generate_stream(hello(max_tokens=4))]
        assert chunks[-1].is_final
    assert emulator.stats.requests == 6
    assert emulator.stats.connections == 1


async def test_openai_compatible_driver_on_its_own(emulator: Emulator, api_key: str) -> None:
    driver = OpenAICompatibleDriver(MODEL, base_url=emulator.base_url + "/openai/v1", api_key=api_key)
    response = await driver.generate(hello(max_tokens=5))
    assert response.text and response.provider == "openai-compatible"
    assert emulator.requests[-1].body["max_tokens"] == 5  # the generic profile's field
    chunks = [c async for c in driver.generate_stream(hello(max_tokens=5))]
    assert chunks[-1].is_final and "".join(c.text for c in chunks)


def test_blocking_api(emulator: Emulator, api_key: str) -> None:
    with GroqDriver(MODEL, api_key=api_key, base_url=emulator.base_url).blocking() as blocking:
        response = blocking.generate(hello(max_tokens=8))
        assert response.text
        chunks = list(blocking.generate_stream(hello(max_tokens=8)))
        assert chunks[-1].is_final and chunks[-1].usage is not None


async def test_blocking_api_inside_a_running_loop(emulator: Emulator, api_key: str) -> None:
    """Notebooks run a loop already; the blocking API must still work there."""
    driver = GroqDriver(MODEL, api_key=api_key, base_url=emulator.base_url)
    assert (await driver.generate(hello(max_tokens=3))).text  # async use first ...
    assert driver.blocking().generate(hello(max_tokens=3)).text  # ... then blocking, same driver
    assert (await driver.generate(hello(max_tokens=3))).text


# ---- configuration ------------------------------------------------------------------------------


def test_key_from_environment(monkeypatch: pytest.MonkeyPatch, emulator: Emulator) -> None:
    monkeypatch.setenv("GROQ_API_KEY", "gsk_from_env_123456")
    monkeypatch.setenv("GROQ_BASE_URL", emulator.base_url)
    driver = GroqDriver(MODEL)
    assert driver.base_url == emulator.base_url + "/openai/v1"
    driver.blocking().generate(hello(max_tokens=2))
    assert emulator.requests[-1].headers["authorization"] == "Bearer gsk_from_env_123456"


def test_key_from_dotenv_never_overrides_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, emulator: Emulator
) -> None:
    (tmp_path / ".env").write_text("GROQ_API_KEY=gsk_from_dotenv_123456\nGROQ_BASE_URL=http://127.0.0.1:9\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GROQ_BASE_URL", emulator.base_url)
    driver = GroqDriver(MODEL)
    driver.blocking().generate(hello(max_tokens=2))
    assert emulator.requests[-1].headers["authorization"] == "Bearer gsk_from_dotenv_123456"
    monkeypatch.setenv("GROQ_API_KEY", "gsk_from_env_654321")
    GroqDriver(MODEL).blocking().generate(hello(max_tokens=2))
    assert emulator.requests[-1].headers["authorization"] == "Bearer gsk_from_env_654321"


def test_no_key_says_where_to_get_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError) as caught:
        GroqDriver(MODEL)
    text = str(caught.value)
    assert "GROQ_API_KEY" in text and "console.groq.com/keys" in text and ".env" in text


def test_odd_key_warns_but_works(emulator: Emulator) -> None:
    with pytest.warns(BotticelliWarning, match="gsk_"):
        driver = GroqDriver(MODEL, api_key="not-a-groq-key", base_url=emulator.base_url)
    assert driver.model == MODEL


def test_retired_model_warns_with_replacement(emulator: Emulator, api_key: str) -> None:
    with pytest.warns(BotticelliWarning, match=r"openai/gpt-oss-20b"):
        GroqDriver("llama-3.1-8b-instant", api_key=api_key, base_url=emulator.base_url)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        GroqDriver(MODEL, api_key=api_key, base_url=emulator.base_url)  # current models: silent


def test_secrets_stay_out_of_repr(api_key: str) -> None:
    driver = GroqDriver.with_api_key(api_key, MODEL)
    assert api_key not in repr(driver) and api_key not in str(driver.__dict__.get("_api_key"))
    assert driver.base_url == "https://api.groq.com/openai/v1"
    assert "GroqDriver(model='openai/gpt-oss-20b'" in repr(driver)


def test_bad_base_url_is_a_configuration_error(api_key: str) -> None:
    with pytest.raises(ConfigurationError, match="base_url"):
        GroqDriver(MODEL, api_key=api_key, base_url="api.groq.com")


async def test_streaming_a_json_schema_is_refused_before_any_request(
    driver: GroqDriver, emulator: Emulator
) -> None:
    from botticelli import InvalidRequestError, ResponseFormat

    before = len(emulator.requests)
    schema = ResponseFormat.json_schema({"type": "object", "properties": {"a": {"type": "integer"}}})
    with pytest.raises(InvalidRequestError) as info:
        driver.generate_stream(hello(response_format=schema))
    assert info.value.code == "unsupported_parameter" and info.value.provider == "groq"
    assert "generate_json()" in info.value.message and "stream" in info.value.message
    assert len(emulator.requests) == before  # refused here, not by the server
    plain = await driver.generate(hello(response_format=schema, max_tokens=50))  # the alternative works
    assert plain.text.startswith("{")
