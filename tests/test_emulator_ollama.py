"""The official ``ollama`` SDK against the Ollama emulator over real HTTP: chat plain and streamed,
tools, structured output with pydantic, thinking, generate, embed, list/show/ps, and the SDK's
errors (``ResponseError`` for a status and for an error line in the middle of a stream)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import ollama
import pytest
from pydantic import BaseModel

from botticelli.emulator import Fault
from botticelli.emulator.ollama import OllamaEmulator, OllamaModel

HELLO: Any = [{"role": "user", "content": "Say hello."}]


def get_weather(city: str, unit: str = "celsius") -> str:
    """Get the current weather in a city.

    Args:
      city: The city, e.g. Tokyo
      unit: celsius or fahrenheit

    Returns:
      str: the weather
    """
    return f"sunny in {city}"


WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "The city"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}


class Country(BaseModel):
    name: str
    capital: str
    population: int
    languages: list[str]


@pytest.fixture
def emu() -> Iterator[OllamaEmulator]:
    with OllamaEmulator() as server:
        yield server


@pytest.fixture
def client(emu: OllamaEmulator) -> Iterator[ollama.Client]:
    with ollama.Client(host=emu.base_url, timeout=10) as sdk:
        yield sdk


def assert_metrics(response: ollama.ChatResponse | ollama.GenerateResponse) -> None:
    assert response.done is True
    for name in ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration"):
        value = getattr(response, name)
        assert isinstance(value, int) and value > 0, name
    assert response.prompt_eval_count and response.prompt_eval_count > 0
    assert response.eval_count and response.eval_count > 0
    assert response.total_duration is not None and response.load_duration is not None
    assert response.prompt_eval_duration is not None and response.eval_duration is not None
    parts = response.load_duration + response.prompt_eval_duration + response.eval_duration
    assert response.total_duration >= parts


# -- chat ------------------------------------------------------------------------------------------


def test_chat(client: ollama.Client) -> None:
    response = client.chat(model="llama3.2", messages=HELLO)
    assert response.model == "llama3.2"  # echoed as asked, not canonicalized
    assert response.done_reason == "stop"
    assert response.message.role == "assistant"
    assert response.message.content and response.message.content.strip()
    assert response.message.thinking is None and response.message.tool_calls is None
    assert response.created_at is not None
    assert datetime.fromisoformat(response.created_at[:26] + "+00:00").year >= 2026
    assert_metrics(response)


def test_stream_has_many_chunks_and_a_final_done_chunk_with_counts(client: ollama.Client) -> None:
    chunks = list(client.chat(model="llama3.2", messages=HELLO, stream=True, options={"seed": 7}))
    assert len(chunks) > 5
    *deltas, final = chunks
    assert all(chunk.done is False and chunk.done_reason is None for chunk in deltas)
    assert all(chunk.eval_count is None for chunk in deltas)
    assert final.done is True and final.done_reason == "stop"
    assert final.message.content == ""
    assert final.eval_count == len(deltas)  # one token per line
    assert_metrics(final)
    whole = client.chat(model="llama3.2", messages=HELLO, options={"seed": 7})
    assert "".join(chunk.message.content or "" for chunk in deltas) == whole.message.content


async def test_async_client_chat_and_stream(emu: OllamaEmulator) -> None:
    async with ollama.AsyncClient(host=emu.base_url, timeout=10) as client:
        response = await client.chat(model="qwen3:latest", messages=HELLO, think=False)
        assert response.message.content and response.message.thinking is None
        stream = await client.chat(model="qwen3", messages=HELLO, stream=True, think=False)
        chunks = [chunk async for chunk in stream]
        assert chunks[-1].done and chunks[-1].eval_count == len(chunks) - 1
        assert emu.stats.streams == 1 and emu.stats.completions == 2


def test_same_seed_same_text_and_temperature_zero_is_greedy(client: ollama.Client) -> None:
    first = client.chat(model="llama3.2", messages=HELLO, options={"seed": 3, "temperature": 0.9})
    again = client.chat(model="llama3.2", messages=HELLO, options={"seed": 3, "temperature": 0.9})
    assert first.message.content == again.message.content
    greedy = {client.chat(model="llama3.2", messages=HELLO, options={"temperature": 0}).message.content}
    greedy.add(client.chat(model="llama3.2", messages=HELLO, options={"temperature": 0}).message.content)
    assert len(greedy) == 1


def test_num_predict_cuts_the_answer_with_done_reason_length(client: ollama.Client) -> None:
    response = client.chat(model="llama3.2", messages=HELLO, options={"num_predict": 3})
    assert response.done_reason == "length"
    assert response.eval_count == 3
    streamed = list(client.chat(model="llama3.2", messages=HELLO, stream=True, options={"num_predict": 4}))
    assert len(streamed) == 5 and streamed[-1].done_reason == "length"


def test_stop_sequences_end_the_answer_before_them(client: ollama.Client) -> None:
    options: dict[str, Any] = {"temperature": 0}
    full = client.chat(model="llama3.2", messages=HELLO, options=options).message.content
    assert full is not None
    words = full.split()
    stop = " " + words[len(words) // 2]
    expected = full[: full.index(stop)]
    response = client.chat(model="llama3.2", messages=HELLO, options={**options, "stop": [stop]})
    assert response.message.content == expected
    assert response.done_reason == "stop"
    streamed = client.chat(model="llama3.2", messages=HELLO, stream=True, options={**options, "stop": [stop]})
    assert "".join(chunk.message.content or "" for chunk in streamed) == expected


# -- tools -------------------------------------------------------------------------------------------


def test_tool_call_from_a_python_function(client: ollama.Client) -> None:
    messages: list[Any] = [{"role": "user", "content": "What is the weather in Tokyo? Use get_weather."}]
    response = client.chat(model="llama3.2", messages=messages, tools=[get_weather])
    assert response.done_reason == "stop"  # Ollama has no tool_calls reason
    assert response.message.content == ""
    calls = response.message.tool_calls
    assert calls is not None and len(calls) == 1
    call = calls[0].function
    assert call.name == "get_weather"
    assert isinstance(call.arguments, dict) and isinstance(call.arguments["city"], str)
    # the loop's next turn: the tool result gets a text answer
    messages += [
        response.message,
        {"role": "tool", "content": get_weather(**call.arguments), "tool_name": call.name},
    ]
    final = client.chat(model="llama3.2", messages=messages, tools=[get_weather])
    assert final.message.tool_calls is None and final.message.content


def test_tool_call_arguments_follow_the_schema(client: ollama.Client) -> None:
    messages: Any = [{"role": "user", "content": "get weather for Paris please"}]
    response = client.chat(model="qwen3", messages=messages, tools=[WEATHER_TOOL], think=False)
    assert response.message.tool_calls is not None
    arguments = response.message.tool_calls[0].function.arguments
    assert isinstance(arguments["city"], str)
    assert arguments.get("unit", "celsius") in ("celsius", "fahrenheit")


def test_no_tool_named_means_prose(client: ollama.Client) -> None:
    response = client.chat(model="llama3.2", messages=HELLO, tools=[WEATHER_TOOL])
    assert response.message.tool_calls is None and response.message.content


def test_streamed_tool_call_arrives_whole_before_the_done_line(client: ollama.Client) -> None:
    messages: Any = [{"role": "user", "content": "call get_weather for Oslo"}]
    chunks = list(client.chat(model="llama3.2", messages=messages, tools=[WEATHER_TOOL], stream=True))
    assert len(chunks) == 2
    call_chunk, final = chunks
    assert call_chunk.done is False and call_chunk.message.content == ""
    assert call_chunk.message.tool_calls is not None
    assert call_chunk.message.tool_calls[0].function.name == "get_weather"
    assert final.done is True and final.done_reason == "stop" and final.message.tool_calls is None


def test_tools_on_a_model_without_tool_support(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as info:
        client.chat(model="gemma3", messages=HELLO, tools=[WEATHER_TOOL])
    assert info.value.status_code == 400
    assert info.value.error == "registry.ollama.ai/library/gemma3:latest does not support tools"


# -- structured output -------------------------------------------------------------------------------


def test_format_with_a_pydantic_schema(client: ollama.Client) -> None:
    response = client.chat(
        model="llama3.2",
        messages=[{"role": "user", "content": "Tell me about Canada."}],
        format=Country.model_json_schema(),
    )
    country = Country.model_validate_json(response.message.content or "")
    assert country.name and isinstance(country.population, int)
    assert response.done_reason == "stop"


def test_format_json(client: ollama.Client) -> None:
    response = client.chat(model="llama3.2", messages=HELLO, format="json")
    assert isinstance(json.loads(response.message.content or ""), dict)


def test_streamed_format_joins_into_valid_json(client: ollama.Client) -> None:
    chunks = list(
        client.chat(model="llama3.2", messages=HELLO, format=Country.model_json_schema(), stream=True)
    )
    Country.model_validate_json("".join(chunk.message.content or "" for chunk in chunks))


# -- thinking --------------------------------------------------------------------------------------


def test_think_true_on_a_thinking_model(client: ollama.Client) -> None:
    response = client.chat(
        model="qwen3", messages=[{"role": "user", "content": "Why is the sky blue?"}], think=True
    )
    assert response.message.thinking and "sky" in response.message.thinking
    assert response.message.content


def test_streamed_thinking_comes_before_the_content(client: ollama.Client) -> None:
    chunks = list(client.chat(model="qwen3", messages=HELLO, think="high", stream=True))
    kinds = ["thinking" if c.message.thinking else "content" for c in chunks[:-1]]
    assert kinds[0] == "thinking" and kinds[-1] == "content"
    assert kinds == sorted(kinds, key=lambda k: k == "content")  # no thinking after content
    assert all(c.message.content == "" for c in chunks[:-1] if c.message.thinking)


def test_a_thinking_model_thinks_unless_told_not_to(client: ollama.Client) -> None:
    assert client.chat(model="qwen3", messages=HELLO).message.thinking
    assert client.chat(model="qwen3", messages=HELLO, think=False).message.thinking is None


def test_think_on_a_model_that_cannot(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as info:
        client.chat(model="llama3.2", messages=HELLO, think=True)
    assert (info.value.status_code, info.value.error) == (400, '"llama3.2" does not support thinking')
    assert client.chat(model="llama3.2", messages=HELLO, think=False).message.content


def test_thinking_counts_against_num_predict(client: ollama.Client) -> None:
    response = client.chat(model="qwen3", messages=HELLO, options={"num_predict": 5})
    assert response.done_reason == "length" and response.eval_count == 5
    assert response.message.thinking and response.message.content == ""


# -- images ----------------------------------------------------------------------------------------


def test_images_need_a_vision_model(client: ollama.Client) -> None:
    image = b"\x89PNG\r\n\x1a\n fake image bytes"
    messages: Any = [{"role": "user", "content": "What is in this picture?", "images": [image]}]
    assert client.chat(model="gemma3", messages=messages).message.content
    with pytest.raises(ollama.ResponseError) as info:
        client.chat(model="llama3.2", messages=messages)
    assert info.value.status_code == 500
    assert info.value.error == "this model is missing data required for image input"


# -- errors ----------------------------------------------------------------------------------------


def test_unknown_model_is_a_404_response_error(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as info:
        client.chat(model="llama9", messages=HELLO)
    assert info.value.status_code == 404
    assert info.value.error == "model 'llama9' not found"
    assert str(info.value) == "model 'llama9' not found (status code: 404)"


def test_unknown_model_when_streaming_too(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as info:
        list(client.chat(model="nope:7b", messages=HELLO, stream=True))
    assert (info.value.status_code, info.value.error) == (404, "model 'nope:7b' not found")


def test_an_error_line_mid_stream_raises_after_the_chunks_before_it(
    emu: OllamaEmulator, client: ollama.Client
) -> None:
    emu.inject(Fault("stream_error", after_chunks=3))
    received: list[str] = []
    with pytest.raises(ollama.ResponseError) as info:
        for chunk in client.chat(model="llama3.2", messages=HELLO, stream=True):
            received.append(chunk.message.content or "")
    assert len(received) == 3
    assert info.value.status_code == -1  # the SDK's status for an in-stream error
    assert info.value.error == "an error was encountered while running the model"
    assert emu.stats.faults_fired == {"stream_error": 1}


@pytest.mark.parametrize(
    ("status", "text"),
    [
        (500, "llama runner process has terminated: exit status 2"),
        (503, "server busy, please try again.  maximum pending requests exceeded"),
    ],
)
def test_server_errors(emu: OllamaEmulator, client: ollama.Client, status: int, text: str) -> None:
    emu.inject(Fault("server_error", status=status))
    with pytest.raises(ollama.ResponseError) as info:
        client.chat(model="llama3.2", messages=HELLO)
    assert (info.value.status_code, info.value.error) == (status, text)
    assert client.chat(model="llama3.2", messages=HELLO).done  # one fault, one request


def test_a_dropped_connection_surfaces_as_an_httpx_error(emu: OllamaEmulator, client: ollama.Client) -> None:
    emu.inject(Fault("drop"))
    with pytest.raises(httpx.RemoteProtocolError):
        client.chat(model="llama3.2", messages=HELLO)


def test_a_stream_cut_mid_way(emu: OllamaEmulator, client: ollama.Client) -> None:
    emu.inject(Fault("stream_drop", after_chunks=2))
    with pytest.raises(httpx.RemoteProtocolError):
        list(client.chat(model="llama3.2", messages=HELLO, stream=True))


# -- generate and embed ----------------------------------------------------------------------------


def test_generate(client: ollama.Client) -> None:
    response = client.generate(model="llama3.2", prompt="Why is the sky blue?")
    assert response.response and response.done_reason == "stop"
    assert response.context and all(isinstance(t, int) for t in response.context)
    assert_metrics(response)
    chunks = list(client.generate(model="llama3.2", prompt="Why?", stream=True))
    assert chunks[-1].done and chunks[-1].eval_count == len(chunks) - 1
    thinking = client.generate(model="qwen3", prompt="Why?", think=True)
    assert thinking.thinking and thinking.response


def test_embed(client: ollama.Client) -> None:
    response = client.embed(model="nomic-embed-text", input=["first text", "second"])
    assert len(response.embeddings) == 2
    assert all(len(vector) == 768 for vector in response.embeddings)
    assert all(math.isclose(sum(v * v for v in vector), 1.0, rel_tol=1e-4) for vector in response.embeddings)
    again = client.embed(model="nomic-embed-text", input="first text")
    assert list(again.embeddings[0]) == list(response.embeddings[0])
    short = client.embed(model="nomic-embed-text", input="x", dimensions=8)
    assert len(short.embeddings[0]) == 8


# -- models ----------------------------------------------------------------------------------------


def test_list(client: ollama.Client) -> None:
    models = {m.model: m for m in client.list().models}
    assert set(models) == {"llama3.2:latest", "qwen3:latest", "gemma3:latest", "nomic-embed-text:latest"}
    llama = models["llama3.2:latest"]
    assert llama.digest == "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72"
    assert llama.size == 2019393189 and llama.modified_at is not None
    assert llama.details is not None
    assert (llama.details.format, llama.details.family, llama.details.parameter_size) == (
        "gguf",
        "llama",
        "3.2B",
    )
    assert llama.details.quantization_level == "Q4_K_M" and llama.details.families == ["llama"]


def test_show(client: ollama.Client) -> None:
    shown = client.show("qwen3")
    assert shown.capabilities == ["completion", "tools", "thinking"]
    assert shown.details is not None and shown.details.family == "qwen3"
    assert shown.modelinfo is not None and shown.modelinfo["qwen3.context_length"] == 40960
    assert (
        shown.parameters is not None and 'stop                           "<|im_start|>"' in shown.parameters
    )
    assert shown.template and "<|im_start|>" in shown.template
    assert shown.modelfile and shown.modelfile.startswith('# Modelfile generated by "ollama show"')
    with pytest.raises(ollama.ResponseError) as info:
        client.show("llama9")
    assert (info.value.status_code, info.value.error) == (404, "model 'llama9' not found")


def test_ps_lists_the_models_a_request_loaded(emu: OllamaEmulator, client: ollama.Client) -> None:
    assert client.ps().models == []
    client.chat(model="gemma3", messages=HELLO)
    client.chat(model="llama3.2", messages=HELLO, keep_alive=0)  # unloaded when done
    loaded = client.ps().models
    assert [m.model for m in loaded] == ["gemma3:latest"]
    assert loaded[0].expires_at is not None and loaded[0].context_length == 4096
    assert emu.loaded_models == ["gemma3:latest"]
    emu.reset()
    assert client.ps().models == []


def test_custom_models(emu: OllamaEmulator) -> None:
    vision = OllamaModel.generic("my-vision:1b", ("completion", "vision"), family="mllama")
    with (
        OllamaEmulator(models=["qwen3:8b", vision]) as custom,
        ollama.Client(host=custom.base_url, timeout=10) as client,
    ):
        assert [m.model for m in client.list().models] == ["qwen3:8b", "my-vision:1b"]
        assert client.show("my-vision:1b").capabilities == ["completion", "vision"]
        assert client.show("qwen3:8b").capabilities == ["completion", "tools", "thinking"]
        with pytest.raises(ollama.ResponseError) as info:
            client.chat(model="llama3.2", messages=HELLO)
        assert info.value.status_code == 404
