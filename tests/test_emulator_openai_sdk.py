"""The official groq and openai SDKs against the emulator over HTTP (issue 11's proof): tool calls
plain and streamed, ``tool_choice`` errors as ``BadRequestError``, openai's ``parse()`` with a
pydantic model, transcription, translation and speech."""

from __future__ import annotations

import io
import json
import wave
from collections.abc import Iterator
from typing import Any

import groq
import pytest
from pydantic import BaseModel

from botticelli.emulator import Emulator
from botticelli.emulator.groq import audio

from .conftest import TEST_KEY

openai = pytest.importorskip("openai")

MODEL = "openai/gpt-oss-20b"
WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
            },
            "required": ["city", "unit", "days"],
            "additionalProperties": False,
        },
    },
}
TIME: Any = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]},
    },
}
ASK: Any = [{"role": "user", "content": "What is the weather in Paris? Use get_weather."}]


class Weather(BaseModel):
    city: str
    unit: str
    days: int


class Step(BaseModel):
    explanation: str
    output: str


class Solution(BaseModel):
    steps: list[Step]
    final_answer: str
    confidence: float | None


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator() as server:
        yield server


@pytest.fixture(params=["groq", "openai"])
def client(request: pytest.FixtureRequest, emu: Emulator) -> Any:
    if request.param == "groq":
        return groq.Groq(base_url=emu.base_url, api_key=TEST_KEY, max_retries=0)
    return openai.OpenAI(base_url=emu.openai_base_url, api_key=TEST_KEY, max_retries=0)


def bad_request(client: Any) -> type[Exception]:
    return groq.BadRequestError if isinstance(client, groq.Groq) else openai.BadRequestError


def test_tool_calls_plain(client: Any) -> None:
    response = client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER, TIME])
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.id.startswith("call_") and call.type == "function" and call.function.name == "get_weather"
    Weather.model_validate_json(call.function.arguments)


def test_tool_calls_streamed(client: Any) -> None:
    # `required` and a prompt that names no tool: every tool is called (parallel_tool_calls default)
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Plan my trip."}],
        tools=[WEATHER, TIME],
        tool_choice="required",
        stream=True,
    )
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in stream:
        choice = chunk.choices[0]
        finish = choice.finish_reason or finish
        for delta in choice.delta.tool_calls or []:
            entry = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            entry["id"] += delta.id or ""
            if delta.function is not None:
                entry["name"] += delta.function.name or ""
                entry["arguments"] += delta.function.arguments or ""
    assert finish == "tool_calls"
    assert [calls[i]["name"] for i in sorted(calls)] == ["get_weather", "get_time"]
    Weather.model_validate_json(calls[0]["arguments"])
    assert "zone" in json.loads(calls[1]["arguments"])
    assert all(c["id"].startswith("call_") for c in calls.values())


def test_the_tool_loop_next_turn_is_text(client: Any) -> None:
    first = client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER], tool_choice="required")
    call = first.choices[0].message.tool_calls[0]
    messages = [
        *ASK,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.function.name, "arguments": call.function.arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"},
    ]
    second = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER])
    assert second.choices[0].finish_reason == "stop" and second.choices[0].message.content


def test_an_unknown_tool_choice_is_a_bad_request(client: Any) -> None:
    with pytest.raises(bad_request(client)) as caught:
        client.chat.completions.create(
            model=MODEL,
            messages=ASK,
            tools=[WEATHER],
            tool_choice={"type": "function", "function": {"name": "get_stock_price"}},
        )
    assert caught.value.status_code == 400  # type: ignore[attr-defined]
    body = caught.value.body  # type: ignore[attr-defined]
    error = body.get("error", body)  # groq keeps the whole body, openai unwraps "error"
    assert error == {"message": "requested tool does not exist", "type": "invalid_request_error"}


def test_reasoning_effort_none_on_gpt_oss_is_a_bad_request(client: Any) -> None:
    with pytest.raises(bad_request(client)):
        client.chat.completions.create(model=MODEL, messages=ASK, reasoning_effort="none")


def test_openai_parse_with_a_pydantic_model(emu: Emulator) -> None:
    client = openai.OpenAI(base_url=emu.openai_base_url, api_key=TEST_KEY, max_retries=0)
    completion = client.chat.completions.parse(
        model=MODEL,
        messages=[{"role": "user", "content": "Solve 8x + 7 = -23"}],
        response_format=Solution,
    )
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, Solution) and parsed.steps
    again = client.chat.completions.parse(
        model=MODEL, messages=[{"role": "user", "content": "Solve 8x + 7 = -23"}], response_format=Solution
    )
    assert again.choices[0].message.parsed == parsed


def test_groq_json_object_mode(emu: Emulator) -> None:
    client = groq.Groq(base_url=emu.base_url, api_key=TEST_KEY)
    response = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "JSON please"}],
        response_format={"type": "json_object"},
    )
    assert isinstance(json.loads(response.choices[0].message.content or ""), dict)


def test_json_schema_with_stream_is_a_bad_request(client: Any) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "w", "schema": Weather.model_json_schema()}}
    with pytest.raises(bad_request(client)):
        client.chat.completions.create(model=MODEL, messages=ASK, response_format=fmt, stream=True)


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")  # openai marks translations
def test_transcription_and_translation(client: Any) -> None:
    clip = audio.wav(3.0, 16000)
    text = client.audio.transcriptions.create(model="whisper-large-v3-turbo", file=("clip.wav", clip)).text
    assert (
        text
        and text == client.audio.transcriptions.create(model="whisper-large-v3", file=("clip.wav", clip)).text
    )
    verbose = client.audio.transcriptions.create(
        model="whisper-large-v3", file=("clip.wav", clip), response_format="verbose_json"
    )
    assert verbose.duration == 3.0 and verbose.segments
    translated = client.audio.translations.create(model="whisper-large-v3", file=("clip.wav", clip))
    assert translated.text
    with pytest.raises(bad_request(client)):
        client.audio.transcriptions.create(model=MODEL, file=("clip.wav", clip))


def test_speech(client: Any) -> None:
    response = client.audio.speech.create(
        model="canopylabs/orpheus-v1-english",
        voice="autumn",
        input="Hello from the emulator.",
        response_format="wav",
    )
    data = response.read()
    with wave.open(io.BytesIO(data)) as wav:
        assert wav.getnchannels() == 1 and wav.getframerate() == 48000 and wav.getnframes() > 0
    with pytest.raises(bad_request(client)):
        client.audio.speech.create(model="canopylabs/orpheus-v1-english", voice="alloy", input="hi")
