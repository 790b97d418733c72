"""OllamaDriver over real HTTP: against the Ollama emulator (``botticelli.emulator.ollama``) for
what a real server answers, and ``tests.hostile.HostileServer`` for what no good server sends
(cut streams, error lines, wrong-shaped JSON)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import socket
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from botticelli import (
    APIConnectionError,
    AuthenticationError,
    ConfigurationError,
    FinishReason,
    GenerateRequest,
    Input,
    InvalidRequestError,
    Message,
    ModelNotFoundError,
    ModelsError,
    ResponseError,
    ResponseFormat,
    Role,
    ServerError,
    Tool,
    ToolCall,
    run_tools,
)
from botticelli.codecs.ollama_chat import OLLAMA_CHAT, OllamaChat, OllamaStreamDecoder
from botticelli.drivers.ollama import OllamaDriver, OllamaModelDetails
from botticelli.emulator.common.faults import Fault
from botticelli.emulator.ollama import OllamaEmulator
from botticelli.providers.ollama import parse_host

from .hostile import CLOSE, HostileServer, response, streamed

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
WEATHER = Tool(
    "get_weather",
    "The weather in a city now.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


@pytest.fixture
def emu() -> Iterator[OllamaEmulator]:
    with OllamaEmulator() as server:
        yield server


@pytest.fixture(scope="module")
def server() -> Iterator[HostileServer]:
    with HostileServer() as hostile:
        yield hostile


@pytest.fixture(autouse=True)
def _no_ollama_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    monkeypatch.delenv("OLLAMA_API_KEY", raising=False)


def driver_for(
    where: OllamaEmulator | HostileServer, model: str = "llama3.2", **options: Any
) -> OllamaDriver:
    options.setdefault("max_retries", 0)
    return OllamaDriver(model, base_url=where.base_url, **options)


def wire(emu: OllamaEmulator) -> dict[str, Any]:
    """The body of the last request the emulator received."""
    body = emu.requests[-1].body
    assert isinstance(body, dict)
    return body


async def collect(driver: OllamaDriver, request: GenerateRequest) -> tuple[list[str], Any]:
    """The text of each delta chunk, and the stream's whole response."""
    stream = driver.generate_stream(request)
    texts = []
    async for chunk in stream:
        if not chunk.is_final:
            texts.append(chunk.text)
    return texts, stream.response


def ndjson(*lines: object) -> bytes:
    return b"".join((line if isinstance(line, bytes) else orjson.dumps(line)) + b"\n" for line in lines)


def line(content: str = "", *, thinking: str = "", **extra: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if thinking:
        message["thinking"] = thinking
    return {
        "model": "llama3.2",
        "created_at": "2026-12-01T10:00:00Z",
        "message": message,
        "done": False,
        **extra,
    }


DONE = {
    "model": "llama3.2",
    "created_at": "2026-12-01T10:00:01Z",
    "message": {"role": "assistant", "content": ""},
    "done": True,
    "done_reason": "stop",
    "total_duration": 4883583458,
    "load_duration": 1334875,
    "prompt_eval_count": 26,
    "prompt_eval_duration": 342546000,
    "eval_count": 282,
    "eval_duration": 4535599000,
}


def ndjson_stream(body: bytes) -> list[bytes | float]:
    return streamed(body, content_type="application/x-ndjson")


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---- generate ------------------------------------------------------------------------------


async def test_generate_sends_stream_false_and_reads_usage(emu: OllamaEmulator) -> None:
    async with driver_for(emu) as driver:
        result = await driver.generate(GenerateRequest.prompt("Say hello"))
    assert result.text
    assert result.finish_reason is FinishReason.STOP and result.raw_finish_reason == "stop"
    assert result.provider == "ollama" and result.model.startswith("llama3.2")
    usage = result.usage
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    # durations arrive in nanoseconds and are kept in seconds
    assert usage.total_time is not None and 0 < usage.total_time < 60
    assert usage.prompt_time is not None and usage.completion_time is not None
    request = emu.requests[-1]
    assert request.method == "POST" and request.path == "/api/chat"
    body = wire(emu)
    assert body["stream"] is False  # the server streams unless told not to
    assert body["messages"] == [{"role": "user", "content": "Say hello"}]
    assert "authorization" not in request.headers


async def test_multi_turn_with_a_system_prompt(emu: OllamaEmulator) -> None:
    messages = (
        Message.system("Be terse."),
        Message.user("What is the capital of France?"),
        Message.assistant("Paris."),
        Message.user("And of Italy?"),
    )
    async with driver_for(emu) as driver:
        result = await driver.generate(GenerateRequest(messages))
    assert result.text
    assert [(m["role"], m["content"]) for m in wire(emu)["messages"]] == [
        ("system", "Be terse."),
        ("user", "What is the capital of France?"),
        ("assistant", "Paris."),
        ("user", "And of Italy?"),
    ]


async def test_options_and_extra_are_merged_into_options(emu: OllamaEmulator) -> None:
    request = GenerateRequest.prompt(
        "Hi",
        temperature=0.2,
        top_p=0.9,
        seed=7,
        stop=["</s>"],
        max_tokens=32,
        extra={"options": {"num_ctx": 8192, "temperature": 0.3}, "top_k": 20, "keep_alive": "10m"},
    )
    async with driver_for(emu, keep_alive="1m") as driver:
        result = await driver.generate(request)
    assert result.usage.completion_tokens <= 32
    body = wire(emu)
    assert body["options"] == {
        "temperature": 0.3,  # extra's options win, key by key
        "top_p": 0.9,
        "seed": 7,
        "stop": ["</s>"],
        "num_predict": 32,
        "num_ctx": 8192,
        "top_k": 20,  # an option name at extra's top level goes into options
    }
    assert body["keep_alive"] == "10m" and "top_k" not in body


async def test_driver_keep_alive_is_sent(emu: OllamaEmulator) -> None:
    async with driver_for(emu, keep_alive=0) as driver:
        await driver.generate(GenerateRequest.prompt("Hi"))
    assert wire(emu)["keep_alive"] == 0
    with pytest.raises(ConfigurationError, match="keep_alive"):
        OllamaDriver("llama3.2", keep_alive=True)  # type: ignore[arg-type]


async def test_max_tokens_cuts_the_answer(emu: OllamaEmulator) -> None:
    async with driver_for(emu) as driver:
        result = await driver.generate(GenerateRequest.prompt("Tell me a long story", max_tokens=3))
    assert result.finish_reason is FinishReason.LENGTH and result.raw_finish_reason == "length"
    assert result.usage.completion_tokens == 3


# ---- streaming -----------------------------------------------------------------------------


async def test_stream_many_chunks_then_usage_and_finish(emu: OllamaEmulator) -> None:
    async with driver_for(emu) as driver:
        stream = driver.generate_stream(GenerateRequest.prompt("Tell me about the sea"))
        chunks = [chunk async for chunk in stream]
    deltas, final = chunks[:-1], chunks[-1]
    assert len(deltas) > 5 and all(not c.is_final and c.text for c in deltas)
    assert final.is_final and final.finish_reason is FinishReason.STOP
    assert final.usage is not None and final.usage.completion_tokens > 0
    assert final.usage.total_time is not None
    assert stream.response is not None
    assert stream.response.text == "".join(c.text for c in deltas)
    assert stream.response.usage == final.usage
    assert wire(emu)["stream"] is True
    assert emu.stats.streams == 1


async def test_leaving_a_stream_early_closes_the_connection() -> None:
    with OllamaEmulator(token_delay=0.02) as emu:
        async with driver_for(emu) as driver:
            async for chunk in driver.generate_stream(GenerateRequest.prompt("Tell me a long story")):
                assert chunk.text
                break
            for _ in range(100):
                if emu.stats.client_disconnects:
                    break
                await asyncio.sleep(0.02)
        assert emu.stats.client_disconnects == 1
        assert emu.stats.completions == 0


async def test_leaving_a_hostile_stream_early_releases_it(server: HostileServer) -> None:
    lines = [ndjson(line(f"w{i} ")) for i in range(50)]
    parts: list[bytes | float] = [ndjson_stream(b"")[0]]
    for piece in lines:
        parts += [f"{len(piece):x}\r\n".encode() + piece + b"\r\n", 0.02]
    server.script(lambda r: parts)
    async with driver_for(server) as driver:
        async for _chunk in driver.generate_stream(GenerateRequest.prompt("Hi")):
            assert server.open_connections >= 1
            break
        for _ in range(100):
            if server.open_connections == 0:
                break
            await asyncio.sleep(0.02)
    assert server.open_connections == 0


async def test_stream_reads_thinking_and_the_done_line(server: HostileServer) -> None:
    body = ndjson(line(thinking="Hmm, "), line(thinking="sky."), line("It is "), line("blue."), DONE)
    server.script(lambda r: ndjson_stream(body))
    async with driver_for(server, "qwen3") as driver:  # llama3.2's profile: no thinking
        texts, result = await collect(driver, GenerateRequest.prompt("Why?", include_reasoning=True))
    assert texts == ["", "", "It is ", "blue."]
    assert result.reasoning == "Hmm, sky." and result.text == "It is blue."
    usage = result.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (26, 282, 308)
    assert usage.total_time == pytest.approx(4.883583458)
    assert usage.prompt_time == pytest.approx(0.342546)
    assert usage.completion_time == pytest.approx(4.535599)
    assert orjson.loads(server.requests[-1].body)["think"] is True


# ---- tools ---------------------------------------------------------------------------------


async def test_a_tool_call_comes_back_with_arguments_as_a_dict(emu: OllamaEmulator) -> None:
    async with driver_for(emu) as driver:
        result = await driver.generate(GenerateRequest.prompt("Use get_weather for Paris", tools=[WEATHER]))
    assert result.finish_reason is FinishReason.TOOL_CALLS and result.raw_finish_reason == "stop"
    (call,) = result.tool_calls
    assert call.name == "get_weather" and call.id.startswith("call_")
    assert isinstance(call.args, dict) and isinstance(call.args["city"], str)
    assert wire(emu)["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": dict(WEATHER.parameters),
                "description": "The weather in a city now.",
            },
        }
    ]


async def test_a_streamed_tool_call_arrives_in_the_final_chunk(emu: OllamaEmulator) -> None:
    async with driver_for(emu) as driver:
        stream = driver.generate_stream(GenerateRequest.prompt("call get_weather please", tools=[WEATHER]))
        chunks = [c async for c in stream]
    final = chunks[-1]
    assert final.finish_reason is FinishReason.TOOL_CALLS
    (call,) = final.tool_calls
    assert call.name == "get_weather" and "city" in call.args
    assert stream.response is not None and stream.response.tool_calls == [call]


async def test_tool_calls_without_ids_get_stable_ones(server: HostileServer) -> None:
    calls = [
        {"function": {"name": "a", "arguments": {"x": 1}}},
        {"function": {"name": "b", "arguments": {}}},
    ]
    body = {**DONE, "message": {"role": "assistant", "content": "", "tool_calls": calls}}
    server.script(lambda r: response(200, body))
    async with driver_for(server) as driver:
        result = await driver.generate(GenerateRequest.prompt("Hi"))
    assert [(c.id, c.name, c.args) for c in result.tool_calls] == [
        ("call_0", "a", {"x": 1}),
        ("call_1", "b", {}),
    ]
    assert result.finish_reason is FinishReason.TOOL_CALLS


async def test_run_tools_loop(emu: OllamaEmulator) -> None:
    seen: list[str] = []

    def get_weather(city: str) -> str:
        """The weather in a city now."""
        seen.append(city)
        return f"Sunny in {city}"

    async with driver_for(emu) as driver:
        run = await run_tools(
            driver, GenerateRequest.prompt("What does get_weather say for Rome?"), tools=[get_weather]
        )
    assert run.complete and run.turns == 2 and run.text
    assert len(seen) == 1
    sent = wire(emu)["messages"]
    assistant, tool = sent[-2], sent[-1]
    (call,) = assistant["tool_calls"]
    assert call["function"]["name"] == "get_weather"
    assert isinstance(call["function"]["arguments"], dict)  # an object, never JSON text
    assert tool["role"] == "tool" and tool["tool_name"] == "get_weather"
    assert tool["content"] == f"Sunny in {seen[0]}" and tool["tool_call_id"] == call["id"]


async def test_tool_choice_is_approximated_by_the_tools_sent(emu: OllamaEmulator) -> None:
    other = Tool("get_time", "The time now.")
    async with driver_for(emu) as driver:
        await driver.generate(GenerateRequest.prompt("get_weather?", tools=[WEATHER], tool_choice="none"))
        assert "tools" not in wire(emu)
        named = GenerateRequest.prompt("get_weather or get_time?", tools=[WEATHER, other], tool_choice=other)
        result = await driver.generate(named)
        assert [t["function"]["name"] for t in wire(emu)["tools"]] == ["get_time"]
        assert [c.name for c in result.tool_calls] == ["get_time"]
        required = GenerateRequest.prompt("Use get_weather.", tools=[WEATHER, other], tool_choice="required")
        result = await driver.generate(required)
        assert len(wire(emu)["tools"]) == 2 and result.finish_reason is FinishReason.TOOL_CALLS
    assert "tool_choice" not in wire(emu)


def test_assistant_arguments_that_are_not_an_object_are_refused() -> None:
    bad = Message(Role.ASSISTANT, (), tool_calls=(ToolCall("c1", "f", "[1, 2]"),))
    request = GenerateRequest((Message.user("Hi"), bad, Message.tool("x", tool_call_id="c1")))
    with pytest.raises(InvalidRequestError, match="not a JSON object"):
        OLLAMA_CHAT.encode(request, "m", stream=False)


# ---- structured output and thinking --------------------------------------------------------


@dataclasses.dataclass
class City:
    name: str
    population: int


async def test_generate_json_with_a_dataclass(emu: OllamaEmulator) -> None:
    async with driver_for(emu) as driver:
        city = await driver.generate_json(GenerateRequest.prompt("A city, as JSON"), schema=City)
    assert isinstance(city, City) and isinstance(city.population, int)
    fmt = wire(emu)["format"]
    assert fmt["type"] == "object" and set(fmt["properties"]) == {"name", "population"}


async def test_json_object_is_format_json(emu: OllamaEmulator) -> None:
    async with driver_for(emu) as driver:
        result = await driver.generate(GenerateRequest.prompt("JSON", response_format=ResponseFormat.json()))
    assert isinstance(orjson.loads(result.text), dict)
    assert wire(emu)["format"] == "json"


async def test_think_gives_reasoning(emu: OllamaEmulator) -> None:
    async with driver_for(emu, "qwen3") as driver:
        result = await driver.generate(GenerateRequest.prompt("Why is the sky blue?", include_reasoning=True))
        assert result.reasoning and result.text
        assert wire(emu)["think"] is True
        _, streamed_result = await collect(driver, GenerateRequest.prompt("Why?", reasoning_effort="high"))
        assert streamed_result.reasoning and wire(emu)["think"] == "high"
        off = await driver.generate(GenerateRequest.prompt("Why?", include_reasoning=False))
        assert not off.reasoning and wire(emu)["think"] is False


def test_think_levels_are_checked_before_sending() -> None:
    with pytest.raises(InvalidRequestError, match="think takes"):
        OLLAMA_CHAT.encode(GenerateRequest.prompt("Hi", reasoning_effort="extreme"), "m", stream=False)
    with pytest.raises(InvalidRequestError, match="one switch"):
        OLLAMA_CHAT.encode(
            GenerateRequest.prompt("Hi", reasoning_effort="low", include_reasoning=False), "m", stream=False
        )
    with pytest.raises(InvalidRequestError, match="Groq"):
        OLLAMA_CHAT.encode(GenerateRequest.prompt("Hi", reasoning_format="parsed"), "m", stream=False)


async def test_thinking_on_a_model_without_it_is_invalid(emu: OllamaEmulator) -> None:
    async with driver_for(emu, "gemma3") as driver:
        with pytest.raises(InvalidRequestError, match="does not support thinking"):
            await driver.generate(GenerateRequest.prompt("Hi", include_reasoning=True))


# ---- images --------------------------------------------------------------------------------


async def test_images_go_as_bare_base64(emu: OllamaEmulator) -> None:
    encoded = base64.b64encode(PNG).decode()
    message = Message(
        Role.USER,
        (Input.text("What is this?"), Input.image(PNG), Input.image(f"data:image/png;base64,{encoded}")),
    )
    async with driver_for(emu, "gemma3") as driver:
        result = await driver.generate(GenerateRequest((message,)))
    assert result.text
    (sent,) = wire(emu)["messages"]
    assert sent == {"role": "user", "content": "What is this?", "images": [encoded, encoded]}


async def test_image_urls_are_refused_before_sending(emu: OllamaEmulator) -> None:
    message = Message(Role.USER, (Input.text("What is this?"), Input.image("https://example.com/cat.png")))
    async with driver_for(emu, "gemma3") as driver:
        with pytest.raises(InvalidRequestError, match="base64") as caught:
            await driver.generate(GenerateRequest((message,)))
    assert caught.value.code == "unsupported_input"
    assert emu.requests == []


# ---- errors --------------------------------------------------------------------------------


async def test_an_unknown_model_says_ollama_pull(emu: OllamaEmulator) -> None:
    async with driver_for(emu, "llama9") as driver:
        with pytest.raises(ModelNotFoundError, match="ollama pull llama9") as caught:
            await driver.generate(GenerateRequest.prompt("Hi"))
        assert caught.value.status == 404
        with pytest.raises(ModelNotFoundError, match="ollama pull llama9"):
            await collect(driver, GenerateRequest.prompt("Hi"))
        with pytest.raises(ModelNotFoundError, match="ollama pull llama9"):
            await driver.show()


async def test_the_scheduling_form_of_not_found_says_ollama_pull(server: HostileServer) -> None:
    server.script(lambda r: response(404, {"error": 'model "qwen3:8b" not found, try pulling it first'}))
    async with driver_for(server) as driver:
        with pytest.raises(ModelNotFoundError, match=r"ollama pull qwen3:8b"):
            await driver.generate(GenerateRequest.prompt("Hi"))


async def test_connection_refused_says_ollama_serve() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    async with OllamaDriver("llama3.2", base_url=url, max_retries=0) as driver:
        with pytest.raises(APIConnectionError, match="ollama serve") as caught:
            await driver.generate(GenerateRequest.prompt("Hi"))
        assert url in str(caught.value)
        with pytest.raises(APIConnectionError, match="ollama serve"):
            await collect(driver, GenerateRequest.prompt("Hi"))
        with pytest.raises(APIConnectionError, match="ollama serve"):
            await driver.list_models()


async def test_a_connection_lost_mid_stream_does_not_say_ollama_serve(emu: OllamaEmulator) -> None:
    emu.inject(Fault("stream_drop", after_chunks=2))
    async with driver_for(emu) as driver:
        with pytest.raises(APIConnectionError) as caught:
            await collect(driver, GenerateRequest.prompt("Tell me a story"))
    assert "ollama serve" not in str(caught.value)


async def test_a_mid_stream_error_line_is_a_typed_error(emu: OllamaEmulator) -> None:
    emu.inject(Fault("stream_error", after_chunks=2))
    async with driver_for(emu) as driver:
        with pytest.raises(ResponseError, match="error was encountered while running the model"):
            await collect(driver, GenerateRequest.prompt("Tell me a story"))


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ({"error": "an error was encountered while running the model"}, ResponseError),
        ({"error": "server busy, please try again.  maximum pending requests exceeded"}, ServerError),
        ({"error": '"gemma3:1b" does not support thinking'}, InvalidRequestError),
        ({"error": "model 'x' not found"}, ModelNotFoundError),
        ({"error": "unauthorized", "status": 401}, AuthenticationError),
        ({"error": "boom", "status": 500}, ServerError),
    ],
)
async def test_error_lines_get_the_class_they_imply(
    server: HostileServer, error: dict[str, Any], expected: type[ModelsError]
) -> None:
    server.script(lambda r: ndjson_stream(ndjson(line("Hello"), error)))
    async with driver_for(server) as driver:
        with pytest.raises(expected, match="the stream failed"):
            await collect(driver, GenerateRequest.prompt("Hi"))


async def test_a_stream_cut_before_done_is_a_response_error(emu: OllamaEmulator) -> None:
    emu.inject(Fault("truncate", after_chunks=3))
    async with driver_for(emu) as driver:
        with pytest.raises(ResponseError, match='ended before a "done": true line'):
            await collect(driver, GenerateRequest.prompt("Tell me a story"))


async def test_a_hostile_stream_cut_before_done(server: HostileServer) -> None:
    server.script(lambda r: ndjson_stream(ndjson(line("Hel"), line("lo"))))
    async with driver_for(server) as driver:
        with pytest.raises(ResponseError, match="may be incomplete"):
            await collect(driver, GenerateRequest.prompt("Hi"))
    # a last line without its newline still counts
    server.script(lambda r: ndjson_stream(ndjson(line("Hi")) + orjson.dumps(DONE)))
    async with driver_for(server) as driver:
        _, result = await collect(driver, GenerateRequest.prompt("Hi"))
    assert result.text == "Hi" and result.finish_reason is FinishReason.STOP


async def test_a_malformed_line_is_a_response_error(emu: OllamaEmulator) -> None:
    emu.inject(Fault("malformed", after_chunks=1))
    async with driver_for(emu) as driver:
        with pytest.raises(ResponseError, match="not valid JSON"):
            await collect(driver, GenerateRequest.prompt("Hi"))


async def test_error_statuses(emu: OllamaEmulator) -> None:
    async with driver_for(emu, "gemma3") as driver:
        with pytest.raises(InvalidRequestError, match="does not support tools"):
            await driver.generate(GenerateRequest.prompt("Hi", tools=[WEATHER]))
    emu.inject(Fault("server_error", status=500))
    async with driver_for(emu) as driver:
        with pytest.raises(ServerError, match="runner"):
            await driver.generate(GenerateRequest.prompt("Hi"))


async def test_a_200_error_body_and_a_cloud_401(server: HostileServer) -> None:
    server.script(lambda r: response(200, {"error": "something broke"}))
    async with driver_for(server) as driver:
        with pytest.raises(ModelsError, match="something broke"):
            await driver.generate(GenerateRequest.prompt("Hi"))
    server.script(
        lambda r: response(401, {"error": "unauthorized", "signin_url": "https://ollama.com/connect?name=x"})
    )
    async with driver_for(server, "gpt-oss:120b-cloud") as driver:
        with pytest.raises(AuthenticationError, match="ollama signin"):
            await driver.generate(GenerateRequest.prompt("Hi"))


async def test_a_non_ollama_path_says_so(server: HostileServer) -> None:
    server.script(lambda r: response(404, "404 page not found", content_type="text/plain"))
    async with driver_for(server) as driver:
        with pytest.raises(InvalidRequestError, match="is this an Ollama server"):
            await driver.generate(GenerateRequest.prompt("Hi"))


@pytest.mark.parametrize(
    "body",
    [
        [1, 2],
        {"message": "text"},
        {"message": {"content": 5}},
        {"message": {"content": "", "tool_calls": {"a": 1}}},
        {"message": {"content": "", "tool_calls": [{"function": {"name": "f", "arguments": [1]}}]}},
        {"message": {"content": "", "tool_calls": [{"function": {"arguments": {}}}]}},
        {"message": {"content": "x"}, "done": False},
    ],
)
async def test_wrong_shaped_bodies_are_response_errors(server: HostileServer, body: Any) -> None:
    server.script(lambda r: response(200, body))
    async with driver_for(server) as driver:
        with pytest.raises(ResponseError, match="wrong shape"):
            await driver.generate(GenerateRequest.prompt("Hi"))


def test_done_reasons() -> None:
    def decode(**fields: Any) -> Any:
        return OLLAMA_CHAT.decode({**DONE, **fields}, {}, provider="ollama", model="m")

    assert decode(done_reason="length").finish_reason is FinishReason.LENGTH
    loaded = decode(done_reason="load")
    assert loaded.finish_reason is FinishReason.STOP and loaded.raw_finish_reason == "load"
    assert decode(done_reason="").finish_reason is None
    assert decode(done_reason="novel").finish_reason is FinishReason.OTHER
    cached = decode(prompt_eval_count=None, eval_count="7")  # counts absent when zero; coerced
    assert (cached.usage.prompt_tokens, cached.usage.completion_tokens) == (0, 7)


# ---- wrong-shaped lines, at random ----------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats() | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)
_keys = st.sampled_from(["message", "done", "done_reason", "error", "status", "eval_count", "content", "x"])
_function = st.fixed_dictionaries(
    {},
    optional={
        "name": st.text(min_size=1, max_size=5) | _json,
        "arguments": st.dictionaries(st.text(max_size=4), _json, max_size=3) | _json,
    },
)
_call = st.fixed_dictionaries({"function": _function | _json}, optional={"id": st.text(max_size=5) | _json})
_message = st.fixed_dictionaries(
    {},
    optional={
        "role": st.just("assistant") | _json,
        "content": st.text(max_size=5) | _json,
        "thinking": st.text(max_size=5) | _json,
        "tool_calls": st.lists(_call, max_size=2) | _json,
    },
)
#: Mostly lines shaped like Ollama's, each field now and then of any JSON type; else anything.
_plausible = st.fixed_dictionaries(
    {"message": _message | _json},
    optional={
        "done": st.booleans() | _json,
        "done_reason": st.sampled_from(["stop", "length", "load", ""]) | _json,
        "eval_count": st.integers(0, 10**6) | _json,
        "total_duration": st.integers(0, 10**12) | _json,
        "error": st.text(max_size=8) | _json,
        "status": st.integers(100, 600) | _json,
    },
)
_line = _plausible | _json | st.dictionaries(_keys, _json | _message, max_size=5)


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(_line, min_size=1, max_size=6))
def test_random_lines_decode_or_raise_our_errors(lines: list[Any]) -> None:
    decoder = OllamaStreamDecoder(provider="ollama", model="m", request_id=None, rate_limit=None)
    try:
        for item in lines:
            chunk = decoder.feed(orjson.dumps(item).decode())
            assert chunk is None or isinstance(chunk.text, str)
            if decoder.done:
                final = decoder.final()
                assert final.is_final and all(isinstance(c.arguments, str) for c in final.tool_calls)
                break
    except ModelsError:
        pass


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _stream_through(server: HostileServer) -> None:
    async with driver_for(server) as driver:
        await collect(driver, GenerateRequest.prompt("Hi"))


async def _generate_through(server: HostileServer) -> None:
    async with driver_for(server) as driver:
        await driver.generate(GenerateRequest.prompt("Hi"))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(_line, min_size=1, max_size=5), done=st.booleans())
def test_random_lines_over_http_end_in_our_errors(
    server: HostileServer, lines: list[Any], done: bool
) -> None:
    body = ndjson(*lines, *([DONE] if done else []))
    server.script(lambda r: ndjson_stream(body))
    with contextlib.suppress(ModelsError):
        run(_stream_through(server))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_line)
def test_random_bodies_over_http_end_in_our_errors(server: HostileServer, body: Any) -> None:
    server.script(lambda r: response(200, body))
    with contextlib.suppress(ModelsError):
        run(_generate_through(server))


async def test_garbage_and_a_closed_connection(server: HostileServer) -> None:
    server.script(lambda r: ndjson_stream(b"\x00\xff not json\n"))
    async with driver_for(server) as driver:
        with pytest.raises(ResponseError):
            await collect(driver, GenerateRequest.prompt("Hi"))
    server.script(lambda r: [ndjson_stream(b"")[0], CLOSE])
    async with driver_for(server) as driver:
        with pytest.raises(ModelsError):
            await collect(driver, GenerateRequest.prompt("Hi"))


# ---- where the server is -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("127.0.0.1", "http://127.0.0.1:11434"),
        ("1.2.3.4:56789", "http://1.2.3.4:56789"),
        (":56789", "http://127.0.0.1:56789"),
        ("0.0.0.0", "http://127.0.0.1:11434"),
        ("0.0.0.0:8080", "http://127.0.0.1:8080"),
        ("[::]", "http://[::1]:11434"),
        ("http://example.com", "http://example.com"),
        ("https://example.com", "https://example.com"),
        ("https://example.com:8443/x", "https://example.com:8443/x"),
        ("example.com/path/", "http://example.com:11434/path"),
        ("[::1]:56789", "http://[::1]:56789"),
        ("  localhost:11434\n", "http://localhost:11434"),
        ("http://user:pw@box:8080/p", "http://user:pw@box:8080/p"),
        ("http://0.0.0.0:8080/", "http://127.0.0.1:8080/"),
    ],
)
def test_parse_host(given: str, expected: str) -> None:
    assert parse_host(given) == expected


@pytest.mark.parametrize(
    "form", ["{port}", "127.0.0.1:{port}", "0.0.0.0:{port}", "http://127.0.0.1:{port}/api/"]
)
async def test_ollama_host_forms(emu: OllamaEmulator, monkeypatch: pytest.MonkeyPatch, form: str) -> None:
    if form == "{port}":
        form = ":{port}"
    monkeypatch.setenv("OLLAMA_HOST", form.format(port=emu.port))
    async with OllamaDriver("llama3.2", max_retries=0) as driver:
        assert driver.root_url == f"http://127.0.0.1:{emu.port}"
        assert driver.base_url == f"http://127.0.0.1:{emu.port}/api"
        assert (await driver.generate(GenerateRequest.prompt("Hi"))).text


def test_base_url_wins_over_ollama_host_and_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert OllamaDriver("m").root_url == "http://localhost:11434"
    monkeypatch.setenv("OLLAMA_HOST", "otherhost")
    assert OllamaDriver("m").root_url == "http://otherhost:11434"
    assert OllamaDriver("m", base_url="http://box:1234").root_url == "http://box:1234"
    monkeypatch.setenv("OLLAMA_HOST", "ftp://nope")
    with pytest.raises(ConfigurationError, match="base_url"):
        OllamaDriver("m")


def test_an_api_key_is_sent_only_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "authorization" not in OllamaChat().auth_headers(None)
    monkeypatch.setenv("OLLAMA_API_KEY", "cloud-key-0123456789")
    driver = OllamaDriver("gpt-oss:120b", base_url="https://ollama.com")
    assert driver.root_url == "https://ollama.com" and driver._api_key is not None


# ---- model endpoints -----------------------------------------------------------------------


async def test_list_models_and_show(emu: OllamaEmulator) -> None:
    async with driver_for(emu, "qwen3") as driver:
        models = await driver.list_models()
        details = await driver.show()
        other = await driver.show("llama3.2")
    names = [m.id for m in models]
    assert "llama3.2:latest" in names and "qwen3:latest" in names
    llama = models[names.index("llama3.2:latest")]
    assert llama.size == 2019393189 and llama.owned_by == "library" and llama.created
    assert isinstance(details, OllamaModelDetails)
    assert details.model == "qwen3" and details.supports("thinking") and details.supports("tools")
    assert details.context_length == 40960 and details.family == "qwen3"
    assert details.parameters and details.template
    assert other.supports("tools") and not other.supports("thinking")
    assert [r.path for r in emu.requests] == ["/api/tags", "/api/show", "/api/show"]
    assert emu.requests[-1].body == {"model": "llama3.2"}


async def test_a_listing_of_the_wrong_shape(server: HostileServer) -> None:
    server.script(lambda r: response(200, {"models": "none"}))
    async with driver_for(server) as driver:
        with pytest.raises(ResponseError, match="no models array"):
            await driver.list_models()
    server.script(lambda r: response(200, {"models": [1, {"name": 5}, {"model": "a/b:1", "size": "12"}]}))
    async with driver_for(server) as driver:
        (only,) = await driver.list_models()
    assert (only.id, only.owned_by, only.size) == ("a/b:1", "a", 12)
