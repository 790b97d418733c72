"""The emulator's capabilities beyond prose (issue 11): validation as Groq, tool calls,
structured outputs and the audio endpoints.

By class: ``validate_chat`` refusals (hypothesis over the documented enums), the deterministic
schema-valued generator, the tool-call decision, then the same over real HTTP with each failure
body, and the audio endpoints (transcripts, verbose segments and words, a WAV for speech).
"""

from __future__ import annotations

import io
import wave
from typing import Any

import httpx2
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from botticelli.emulator import Emulator, FakeBackend, WireError
from botticelli.emulator.groq import audio, replies
from botticelli.emulator.groq.schema import instance
from botticelli.emulator.groq.validation import (
    REASONING_EFFORTS,
    RESPONSE_FORMATS,
    SERVICE_TIERS,
    TOOL_CHOICES,
    TOOL_TYPES,
    validate_chat,
)

from .conftest import TEST_KEY

BACKEND = FakeBackend()
GPT_OSS = "openai/gpt-oss-20b"
QWEN = "qwen/qwen3.8-27b"
HELLO = [{"role": "user", "content": "Say hello."}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "minLength": 2},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
                "hourly": {"type": "boolean"},
                "threshold": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 3},
                "where": {
                    "type": "object",
                    "properties": {"lat": {"type": "number"}, "lon": {"type": "number"}},
                    "required": ["lat", "lon"],
                    "additionalProperties": False,
                },
            },
            "required": ["city", "unit"],
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]},
    },
}


def body(**fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"model": GPT_OSS, "messages": HELLO}
    data.update(fields)
    return data


def refusal(data: Any) -> WireError:
    with pytest.raises(WireError) as caught:
        validate_chat(data, BACKEND)
    return caught.value


# -- a tiny JSON-schema checker for the subset the generator claims ---------------------------------


def conforms(value: Any, schema: Any, root: Any = None) -> bool:
    root = schema if root is None else root
    if not isinstance(schema, dict):
        return True
    if "$ref" in schema:
        target = root
        for part in schema["$ref"][2:].split("/"):
            target = target[part]
        return conforms(value, target, root)
    if "const" in schema and value != schema["const"]:
        return False
    if "enum" in schema and value not in schema["enum"]:
        return False
    if "anyOf" in schema and not any(conforms(value, s, root) for s in schema["anyOf"]):
        return False
    if "allOf" in schema and not all(conforms(value, s, root) for s in schema["allOf"]):
        return False
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind else []
    checks = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
    }
    if kinds and not any(checks[k](value) for k in kinds):
        return False
    if isinstance(value, str) and not schema.get("minLength", 0) <= len(value) <= schema.get(
        "maxLength", 1 << 30
    ):
        return False
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            return False
        if "maximum" in schema and value > schema["maximum"]:
            return False
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            return False
        if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
            return False
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", 1 << 30):
            return False
        if not all(conforms(v, schema.get("items", {}), root) for v in value):
            return False
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        if any(name not in value for name in schema.get("required", [])):
            return False
        if schema.get("additionalProperties") is False and set(value) - set(properties):
            return False
        if not all(conforms(v, properties[k], root) for k, v in value.items() if k in properties):
            return False
    return True


def _bounded(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    number = st.integers(-50, 50)
    return st.builds(
        lambda low, span, lo_key, hi_key: {
            "type": kind,
            **({lo_key: low} if lo_key else {}),
            **({hi_key: low + span} if hi_key else {}),
        },
        number,
        st.integers(2, 40),
        st.sampled_from([None, "minimum", "exclusiveMinimum"]),
        st.sampled_from([None, "maximum", "exclusiveMaximum"]),
    )


leaf_schemas = st.one_of(
    st.builds(
        lambda low, extra, fmt: {
            "type": "string",
            **({"minLength": low} if low else {}),
            **({"maxLength": low + extra} if extra is not None else {}),
            **({"format": fmt} if fmt else {}),
        },
        st.integers(0, 30),
        st.none() | st.integers(0, 20),
        st.sampled_from([None, "date", "email", "uuid", "date-time"]),
    ),
    _bounded("integer"),
    _bounded("number"),
    st.just({"type": "boolean"}),
    st.just({"type": "null"}),
    st.lists(st.text(max_size=5) | st.integers(-1000, 1000), min_size=1, max_size=4, unique=True).map(
        lambda e: {"enum": e}
    ),
    st.integers(-1000, 1000).map(lambda c: {"const": c}),
)


def _composite(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    objects = st.dictionaries(st.text("abcdefgh_", min_size=1, max_size=6), children, max_size=4).flatmap(
        lambda props: st.builds(
            lambda required, closed: {
                "type": "object",
                "properties": props,
                "required": required,
                **({"additionalProperties": False} if closed else {}),
            },
            st.lists(st.sampled_from(sorted(props)), unique=True) if props else st.just([]),
            st.booleans(),
        )
    )
    arrays = st.builds(
        lambda items, low, extra: {"type": "array", "items": items, "minItems": low, "maxItems": low + extra},
        children,
        st.integers(0, 3),
        st.integers(0, 3),
    )
    nullable = children.map(lambda s: {"anyOf": [s, {"type": "null"}]})
    typelist = st.sampled_from([{"type": ["string", "null"]}, {"type": ["integer", "string"]}])
    return st.one_of(objects, arrays, nullable, typelist)


schemas = st.recursive(leaf_schemas, _composite, max_leaves=12)


class TestSchemaInstances:
    @settings(max_examples=300)
    @given(schema=schemas, seed=st.text(max_size=8))
    def test_the_value_validates_and_is_deterministic(self, schema: dict[str, Any], seed: str) -> None:
        value = instance(schema, seed)
        assert conforms(value, schema), (schema, value)
        assert instance(schema, seed) == value
        orjson.dumps(value)

    def test_refs_into_defs_and_all_of_as_pydantic_writes_them(self) -> None:
        pydantic = pytest.importorskip("pydantic")

        class Address(pydantic.BaseModel):
            street: str
            zip_code: int

        class Person(pydantic.BaseModel):
            name: str
            age: int
            email: str | None
            tags: list[str]
            address: Address
            kind: str = "human"

        schema = Person.model_json_schema()
        assert "$defs" in schema
        Person.model_validate(instance(schema, "x"))

    def test_a_recursive_schema_ends(self) -> None:
        schema = {
            "$defs": {
                "node": {
                    "type": "object",
                    "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
                    "required": ["children"],
                }
            },
            "$ref": "#/$defs/node",
        }
        assert conforms(instance(schema, "tree"), schema)


# -- validation as Groq ---------------------------------------------------------------------------

not_in = st.text(max_size=12) | st.integers() | st.booleans() | st.lists(st.integers(), max_size=2)


class TestValidation:
    @given(value=not_in.filter(lambda v: v not in TOOL_CHOICES))
    def test_tool_choice_outside_its_enum_is_a_400(self, value: Any) -> None:
        error = refusal(body(tools=[WEATHER], tool_choice=value))
        assert (error.status, error.param) == (400, "tool_choice")

    @given(name=st.text(min_size=1, max_size=10).filter(lambda n: n != "get_weather"))
    def test_tool_choice_naming_an_unknown_tool_is_groqs_400(self, name: str) -> None:
        choice = {"type": "function", "function": {"name": name}}
        error = refusal(body(tools=[WEATHER], tool_choice=choice))
        assert error == WireError(400, "requested tool does not exist", "invalid_request_error")

    @given(kind=st.text(max_size=12).filter(lambda k: k not in TOOL_TYPES))
    def test_a_tool_type_outside_its_enum_is_a_400(self, kind: str) -> None:
        error = refusal(body(tools=[{**WEATHER, "type": kind}]))
        assert (error.status, error.param) == (400, "tools")
        assert "value must be one of [function browser_search code_interpreter]" in error.message

    def test_builtin_tools_only_where_the_model_has_them(self) -> None:
        validate_chat(body(tools=[{"type": "browser_search"}]), BACKEND)
        assert refusal(body(model=QWEN, tools=[{"type": "browser_search"}])).param == "tools"

    @given(kind=st.text(max_size=12).filter(lambda k: k not in RESPONSE_FORMATS))
    def test_a_response_format_type_outside_its_enum_is_a_400(self, kind: str) -> None:
        error = refusal(body(response_format={"type": kind}))
        assert (error.status, error.param) == (400, "response_format")

    @given(effort=st.text(max_size=10).filter(lambda e: e not in REASONING_EFFORTS))
    def test_a_reasoning_effort_outside_its_enum_is_a_400(self, effort: str) -> None:
        assert refusal(body(reasoning_effort=effort)).param == "reasoning_effort"

    @pytest.mark.parametrize("effort", ["none", "default"])
    def test_gpt_oss_takes_low_medium_high_only(self, effort: str) -> None:
        error = refusal(body(reasoning_effort=effort))
        assert (error.status, error.param) == (400, "reasoning_effort")
        assert "[low medium high]" in error.message

    @pytest.mark.parametrize("effort", ["low", "medium", "high"])
    def test_gpt_oss_efforts_pass(self, effort: str) -> None:
        validate_chat(body(reasoning_effort=effort), BACKEND)

    @pytest.mark.parametrize("effort", REASONING_EFFORTS)
    def test_qwen_takes_every_effort(self, effort: str) -> None:
        validate_chat(body(model=QWEN, reasoning_effort=effort), BACKEND)

    @given(tier=st.text(max_size=12).filter(lambda t: t not in SERVICE_TIERS))
    def test_a_service_tier_outside_its_enum_is_a_400(self, tier: str) -> None:
        assert refusal(body(service_tier=tier)).param == "service_tier"

    @pytest.mark.parametrize("tier", [*SERVICE_TIERS, None])
    def test_documented_service_tiers_pass(self, tier: str | None) -> None:
        validate_chat(body(service_tier=tier), BACKEND)

    @given(include=st.booleans(), fmt=st.sampled_from(["hidden", "raw", "parsed"]))
    def test_include_reasoning_with_reasoning_format_is_a_400(self, include: bool, fmt: str) -> None:
        error = refusal(body(model=QWEN, include_reasoning=include, reasoning_format=fmt))
        assert (error.status, error.param) == (400, "reasoning_format")
        assert "mutually exclusive" in error.message

    def test_reasoning_format_is_not_for_gpt_oss_and_raw_not_with_json_mode(self) -> None:
        assert refusal(body(reasoning_format="parsed")).param == "reasoning_format"
        validate_chat(body(model=QWEN, reasoning_format="parsed"), BACKEND)
        json_mode = {"type": "json_object"}
        assert refusal(body(model=QWEN, reasoning_format="raw", response_format=json_mode)).status == 400

    @given(value=st.integers(0, 20))
    def test_top_logprobs_is_a_400_even_when_zero(self, value: int) -> None:
        error = refusal(body(top_logprobs=value))
        assert error == WireError(
            400,
            "`top_logprobs` is not supported with this model",
            "invalid_request_error",
            param="top_logprobs",
        )

    def test_json_schema_with_stream_is_a_400(self) -> None:
        fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
        error = refusal(body(response_format=fmt, stream=True))
        assert error == WireError(
            400, "`response_format` does not support streaming", "invalid_request_error"
        )
        assert validate_chat(body(response_format=fmt), BACKEND).response_format == fmt

    def test_json_schema_needs_a_name(self) -> None:
        assert (
            refusal(body(response_format={"type": "json_schema", "json_schema": {}})).param
            == "response_format"
        )

    @given(value=not_in.filter(lambda v: not isinstance(v, bool)))
    def test_parallel_tool_calls_must_be_a_boolean(self, value: Any) -> None:
        assert refusal(body(tools=[WEATHER], parallel_tool_calls=value)).param == "parallel_tool_calls"

    def test_tools_on_a_model_without_tool_use_are_a_400(self) -> None:
        assert refusal(body(model="openai/gpt-oss-safeguard-20b", tools=[WEATHER])).param == "tools"


# -- the tool-call decision -----------------------------------------------------------------------


def calls_for(**fields: Any) -> list[replies.ToolCall]:
    return replies.tool_calls(validate_chat(body(**fields), BACKEND))


class TestToolCalls:
    def test_required_calls_a_tool_with_arguments_valid_for_its_schema(self) -> None:
        (call,) = calls_for(tools=[WEATHER], tool_choice="required")
        assert call.name == "get_weather" and call.id.startswith("call_")
        arguments = orjson.loads(call.arguments)
        assert conforms(arguments, WEATHER["function"]["parameters"])
        assert arguments == orjson.loads(calls_for(tools=[WEATHER], tool_choice="required")[0].arguments)

    def test_auto_calls_only_the_tools_the_prompt_names(self) -> None:
        assert calls_for(tools=[WEATHER, TIME]) == []
        ask = [{"role": "user", "content": "Use get_time please"}]
        assert [c.name for c in calls_for(tools=[WEATHER, TIME], messages=ask)] == ["get_time"]
        both = [{"role": "user", "content": "get weather and get_time"}]
        assert [c.name for c in calls_for(tools=[WEATHER, TIME], messages=both)] == [
            "get_weather",
            "get_time",
        ]
        assert len(calls_for(tools=[WEATHER, TIME], messages=both, parallel_tool_calls=False)) == 1

    def test_a_named_choice_calls_that_tool(self) -> None:
        choice = {"type": "function", "function": {"name": "get_time"}}
        assert [c.name for c in calls_for(tools=[WEATHER, TIME], tool_choice=choice)] == ["get_time"]

    def test_none_and_a_tool_result_answer_with_text(self) -> None:
        assert calls_for(tools=[WEATHER], tool_choice="none") == []
        turn = [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": None, "tool_calls": []},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        ]
        assert calls_for(tools=[WEATHER], tool_choice="required", messages=turn) == []


# -- over HTTP ------------------------------------------------------------------------------------

EMULATOR = Emulator()


@pytest.fixture(scope="module", autouse=True)
def _running_emulator() -> Any:
    with EMULATOR:
        yield


@pytest.fixture
def http() -> Any:
    with httpx2.Client(
        base_url=EMULATOR.openai_base_url, headers={"Authorization": f"Bearer {TEST_KEY}"}, timeout=10
    ) as client:
        yield client


def test_an_unknown_tool_choice_gets_groqs_exact_body(http: Any) -> None:
    choice = {"type": "function", "function": {"name": "nope"}}
    response = http.post("/chat/completions", json=body(tools=[WEATHER], tool_choice=choice))
    assert response.status_code == 400
    assert response.json() == {
        "error": {"message": "requested tool does not exist", "type": "invalid_request_error"}
    }


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"tool_choice": "sometimes", "tools": [WEATHER]}, "tool_choice"),
        ({"tools": [{"type": "web"}]}, "tools"),
        ({"response_format": {"type": "yaml"}}, "response_format"),
        ({"reasoning_effort": "none"}, "reasoning_effort"),
        ({"service_tier": "premium"}, "service_tier"),
        ({"top_logprobs": 0}, "top_logprobs"),
        ({"model": QWEN, "include_reasoning": True, "reasoning_format": "parsed"}, "reasoning_format"),
    ],
)
def test_each_refusal_is_a_400_with_its_param(http: Any, fields: dict[str, Any], param: str) -> None:
    response = http.post("/chat/completions", json=body(**fields))
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param)


def test_a_tool_call_answer_has_groqs_shape(http: Any) -> None:
    answer = http.post("/chat/completions", json=body(tools=[WEATHER], tool_choice="required")).json()
    (choice,) = answer["choices"]
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["content"] is None and list(message) == ["role", "content", "tool_calls"]
    (call,) = message["tool_calls"]
    assert list(call) == ["id", "type", "function"] and call["type"] == "function"
    assert conforms(orjson.loads(call["function"]["arguments"]), WEATHER["function"]["parameters"])
    assert answer["usage"]["completion_tokens"] > 0


def test_streamed_tool_calls_assemble_to_the_plain_answer(http: Any) -> None:
    data = body(tools=[WEATHER, TIME], tool_choice="required", stream=True)
    frames = [
        orjson.loads(line[6:])
        for line in http.post("/chat/completions", json=data).text.split("\n\n")
        if line.startswith("data: {")
    ]
    calls: dict[int, dict[str, Any]] = {}
    for frame in frames[1:-1]:
        for delta in frame["choices"][0]["delta"]["tool_calls"]:
            entry = calls.setdefault(delta["index"], {"arguments": ""})
            if "id" in delta:
                assert delta["id"].startswith("call_") and delta["type"] == "function"
                entry["name"] = delta["function"]["name"]
            entry["arguments"] += delta["function"]["arguments"]
    assert frames[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert [calls[i]["name"] for i in sorted(calls)] == ["get_weather", "get_time"]
    plain = http.post("/chat/completions", json={**data, "stream": False}).json()
    expected = [c["function"]["arguments"] for c in plain["choices"][0]["message"]["tool_calls"]]
    assert [calls[i]["arguments"] for i in sorted(calls)] == expected


@settings(max_examples=25, deadline=None)
@given(schema=schemas.map(lambda s: {"type": "object", "properties": {"answer": s}, "required": ["answer"]}))
def test_json_schema_content_validates_over_http(schema: dict[str, Any]) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}
    with httpx2.Client(
        base_url=EMULATOR.openai_base_url, headers={"Authorization": f"Bearer {TEST_KEY}"}
    ) as http:
        answer = http.post("/chat/completions", json=body(response_format=fmt)).json()
    assert conforms(orjson.loads(answer["choices"][0]["message"]["content"]), schema)


def test_json_object_content_is_an_object(http: Any) -> None:
    answer = http.post("/chat/completions", json=body(response_format={"type": "json_object"})).json()
    assert isinstance(orjson.loads(answer["choices"][0]["message"]["content"]), dict)
    assert answer["choices"][0]["finish_reason"] == "stop"


# -- audio ------------------------------------------------------------------------------------------

SPEECH_MODEL = "canopylabs/orpheus-v1-english"


def a_wav(seconds: float = 2.0) -> bytes:
    return audio.wav(seconds, 16000)


def test_speech_is_a_valid_wav(http: Any) -> None:
    response = http.post(
        "/audio/speech",
        json={"model": SPEECH_MODEL, "voice": "troy", "input": "one two three four", "sample_rate": 24000},
    )
    assert response.status_code == 200 and response.headers["content-type"] == "audio/wav"
    assert response.content[:4] == b"RIFF" and response.content[8:12] == b"WAVE"
    with wave.open(io.BytesIO(response.content)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 24000)
        assert wav.getnframes() > 0


@pytest.mark.parametrize(
    ("fields", "param", "message"),
    [
        (
            {"response_format": "aac"},
            "response_format",
            "response_format must be one of [flac mp3 mulaw ogg wav]",
        ),
        ({"voice": "alloy"}, "voice", "voice must be one of [autumn diana hannah austin daniel troy]"),
        ({"sample_rate": 11025}, "sample_rate", None),
        ({"speed": 9}, "speed", None),
        ({"input": ""}, "input", None),
        ({"model": "whisper-large-v3"}, "model", "The model `whisper-large-v3` does not support speech"),
    ],
)
def test_speech_refusals(http: Any, fields: dict[str, Any], param: str, message: str | None) -> None:
    data = {"model": SPEECH_MODEL, "voice": "troy", "input": "hello", **fields}
    response = http.post("/audio/speech", json=data)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param)
    if message is not None:
        assert error["message"] == message


def test_an_unknown_speech_model_is_a_404(http: Any) -> None:
    response = http.post("/audio/speech", json={"model": "no/such", "voice": "troy", "input": "hi"})
    assert response.status_code == 404 and response.json()["error"]["code"] == "model_not_found"


@pytest.mark.parametrize("path", ["/audio/transcriptions", "/audio/translations"])
def test_transcripts_are_deterministic_and_shaped(http: Any, path: str) -> None:
    files = {"file": ("clip.wav", a_wav(4.0), "audio/wav")}
    first = http.post(path, files=files, data={"model": "whisper-large-v3"}).json()
    again = http.post(path, files=files, data={"model": "whisper-large-v3"}).json()
    assert list(first) == ["text", "x_groq"] and first["text"] == again["text"] and first["text"]
    assert first["x_groq"]["id"].startswith("req_")
    text = http.post(path, files=files, data={"model": "whisper-large-v3", "response_format": "text"})
    assert text.headers["content-type"].startswith("text/plain") and text.text == first["text"]
    verbose = http.post(
        path,
        files=files,
        data={
            "model": "whisper-large-v3",
            "response_format": "verbose_json",
            "timestamp_granularities[]": "word",
        },
    ).json()
    assert verbose["task"] == ("translate" if "transl" in path else "transcribe")
    assert verbose["duration"] == 4.0 and verbose["text"] == first["text"]
    assert " ".join(s["text"].strip() for s in verbose["segments"]) == first["text"]
    assert [w["word"] for w in verbose["words"]] == [w.strip(".,") for w in first["text"].split()]
    assert verbose["segments"][-1]["end"] == pytest.approx(4.0)


@pytest.mark.parametrize(
    ("files", "data", "status", "param"),
    [
        (True, {"model": "openai/gpt-oss-20b"}, 400, "model"),
        (True, {"model": "canopylabs/orpheus-v1-english"}, 400, "model"),
        (True, {"model": "no/such"}, 404, None),
        (False, {"model": "whisper-large-v3"}, 400, "file"),
        (True, {"model": "whisper-large-v3", "response_format": "srt"}, 400, "response_format"),
        (True, {"model": "whisper-large-v3", "temperature": "1.5"}, 400, "temperature"),
        (
            True,
            {"model": "whisper-large-v3", "timestamp_granularities[]": "word"},
            400,
            "timestamp_granularities",
        ),
        (True, {}, 400, "model"),
    ],
)
def test_transcription_refusals(
    http: Any, files: bool, data: dict[str, str], status: int, param: str | None
) -> None:
    upload = (
        {"file": ("clip.wav", a_wav(), "audio/wav")} if files else {"dummy": ("x.txt", b"", "text/plain")}
    )
    response = http.post("/audio/transcriptions", files=upload, data=data)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error.get("param") == param


def test_a_file_of_an_unsupported_type_is_a_400(http: Any) -> None:
    response = http.post(
        "/audio/transcriptions", files={"file": ("notes.txt", b"hello")}, data={"model": "whisper-large-v3"}
    )
    assert response.status_code == 400 and response.json()["error"]["message"].startswith(
        "file must be one of"
    )


def test_audio_needs_a_key() -> None:
    with httpx2.Client(base_url=EMULATOR.openai_base_url) as client:
        response = client.post("/audio/speech", json={"model": SPEECH_MODEL, "voice": "troy", "input": "hi"})
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"


def test_mulaw_speech_is_a_mulaw_wav() -> None:
    data = audio.wav(0.5, 8000, mulaw=True)
    assert data[:4] == b"RIFF" and int.from_bytes(data[20:22], "little") == 7
    assert len(data) == 4 + 4 + 4 + 8 + 18 + 8 + 4000


# -- failed generations (groq-wire.md §4.3): the emulator's 400s, and what the driver makes of them


@pytest.mark.parametrize("offer", ["json_schema", "json_object", "tools"])
def test_a_failed_generation_gets_groqs_body(http: Any, offer: str) -> None:
    from botticelli.emulator import Fault

    fields: dict[str, Any] = {
        "json_schema": {
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": "movie",
                    "schema": {"type": "object", "properties": {"t": {"type": "string"}}},
                },
            }
        },
        "json_object": {"response_format": {"type": "json_object"}},
        "tools": {"tools": [WEATHER], "tool_choice": "required"},
    }[offer]
    EMULATOR.inject(Fault("generation_failed", count=1))
    try:
        refused = http.post("/chat/completions", json=body(**fields))
        assert refused.status_code == 400
        error = refused.json()["error"]
        code = "tool_use_failed" if offer == "tools" else "json_validate_failed"
        assert error["code"] == code and error["type"] == "invalid_request_error"
        assert "See 'failed_generation' for more details." in error["message"]
        generated = error["failed_generation"]
        if offer == "tools":
            assert generated.startswith("<function=get_weather>")
        else:  # JSON cut short: what the model wrote, not valid JSON
            with pytest.raises(orjson.JSONDecodeError):
                orjson.loads(generated)
        assert http.post("/chat/completions", json=body(**fields)).status_code == 200  # count=1: once
    finally:
        EMULATOR.reset()


async def test_generate_json_keeps_the_failed_generation() -> None:
    import dataclasses

    from botticelli import GenerateRequest, GroqDriver, InvalidRequestError
    from botticelli.emulator import Fault

    @dataclasses.dataclass
    class Film:
        title: str

    driver = GroqDriver("openai/gpt-oss-20b", api_key=TEST_KEY, base_url=EMULATOR.base_url, max_retries=2)
    EMULATOR.inject(Fault("generation_failed", failed_generation='{"title": "Du', count=1))
    try:
        with pytest.raises(InvalidRequestError) as caught:
            await driver.generate_json(GenerateRequest.prompt("A film, as JSON"), schema=Film)
        assert caught.value.code == "json_validate_failed"
        assert caught.value.failed_generation == '{"title": "Du'
        assert caught.value.status == 400
    finally:
        EMULATOR.reset()
        await driver.aclose()


# -- reasoning: apart from the answer, plain and streamed, counted in usage -----------------------


@pytest.mark.parametrize(
    ("model", "fields", "shown"),
    [
        (GPT_OSS, {"reasoning_effort": "low"}, "parsed"),  # gpt-oss: parsed, in message.reasoning
        (GPT_OSS, {"include_reasoning": True}, "parsed"),
        (GPT_OSS, {}, None),  # the emulator shows reasoning only when a reasoning field is named
        (GPT_OSS, {"include_reasoning": False}, "hidden"),
        ("qwen/qwen3.8-27b", {"reasoning_format": "parsed"}, "parsed"),
        ("qwen/qwen3.8-27b", {"reasoning_format": "raw"}, "raw"),
        ("qwen/qwen3.8-27b", {"reasoning_format": "hidden"}, "hidden"),
        ("qwen/qwen3.8-27b", {"reasoning_effort": "default"}, "raw"),  # qwen's default: <think>
        ("qwen/qwen3.8-27b", {"reasoning_effort": "none"}, None),
    ],
)
async def test_reasoning_plain_and_streamed(model: str, fields: dict[str, Any], shown: str | None) -> None:
    from botticelli import GenerateRequest, GroqDriver

    request = GenerateRequest.prompt("Why is the sky blue?", max_tokens=40, seed=7, **fields)
    async with GroqDriver(model, api_key=TEST_KEY, base_url=EMULATOR.base_url) as driver:
        plain = await driver.generate(request)
        chunks = [chunk async for chunk in driver.generate_stream(request)]
    streamed_reasoning = "".join(chunk.reasoning for chunk in chunks)
    streamed_text = "".join(chunk.text for chunk in chunks)
    final = chunks[-1].usage
    assert final is not None
    if shown is None:
        assert plain.reasoning == streamed_reasoning == "" and not plain.usage.reasoning_tokens
        assert "<think>" not in plain.text
        return
    assert plain.usage.reasoning_tokens and plain.usage.reasoning_tokens == final.reasoning_tokens
    assert plain.usage.completion_tokens > plain.usage.reasoning_tokens  # reasoning is part of it
    if shown == "parsed":
        assert plain.reasoning and plain.reasoning == streamed_reasoning
        assert plain.reasoning not in plain.text and plain.reasoning not in streamed_text
    elif shown == "raw":
        assert plain.reasoning == streamed_reasoning == ""
        assert plain.text.startswith("<think>\n") and streamed_text.startswith("<think>\n")
        assert "</think>" in plain.text and "</think>" in streamed_text
    else:  # hidden: the model reasoned (and bills it) but shows nothing
        assert plain.reasoning == streamed_reasoning == "" and "<think>" not in plain.text


def test_the_groq_sdk_reads_the_reasoning() -> None:
    import groq

    client = groq.Groq(base_url=EMULATOR.base_url, api_key=TEST_KEY, max_retries=0)
    answer = client.chat.completions.create(
        model=GPT_OSS, messages=HELLO, max_tokens=30, reasoning_effort="medium"
    )
    message = answer.choices[0].message
    assert message.reasoning and message.content and message.reasoning not in message.content
    assert answer.usage is not None and answer.usage.completion_tokens_details is not None
    assert answer.usage.completion_tokens_details.reasoning_tokens
    deltas = [
        chunk.choices[0].delta.reasoning
        for chunk in client.chat.completions.create(
            model=GPT_OSS, messages=HELLO, max_tokens=30, reasoning_effort="medium", stream=True
        )
        if chunk.choices and chunk.choices[0].delta.reasoning
    ]
    assert "".join(deltas) == message.reasoning


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "string", "minLength": 10**12},
        {"type": "array", "items": {"type": "integer"}, "minItems": 10**12},
        {"type": "object", "minProperties": 10**12},
    ],
)
def test_a_huge_minimum_in_a_schema_cannot_exhaust_the_emulator(schema: dict[str, Any]) -> None:
    from botticelli.emulator.groq.schema import MAX_SIZE

    value = instance(schema, "seed")
    assert 0 < len(value) <= MAX_SIZE


# -- built-in tools: the runs come back typed -------------------------------------------------------


async def test_builtin_tools_run_and_come_back_typed() -> None:
    from botticelli import ExecutedTool, GenerateRequest, GroqDriver, Tool

    request = GenerateRequest.prompt(
        "What is the weather in Rome?",
        tools=[Tool.builtin("browser_search"), Tool.builtin("code_interpreter")],
        max_tokens=200,  # past the fake model's longest reply (48 tokens): it ends on its own
    )
    async with GroqDriver(GPT_OSS, api_key=TEST_KEY, base_url=EMULATOR.base_url) as driver:
        answer = await driver.generate(request)
    assert answer.text and answer.finish_reason == "stop"
    search, code = answer.executed_tools
    assert isinstance(search, ExecutedTool) and search.type == "browser_search" and search.index == 0
    assert orjson.loads(search.arguments)["query"] == "what is the weather in rome?"
    assert search.output and "https://example.com/search/" in search.output
    assert code.type == "code_interpreter" and code.output == str(len("what is the weather in rome?"))


def test_the_groq_sdk_reads_executed_tools_plain_and_streamed() -> None:
    import groq

    client = groq.Groq(base_url=EMULATOR.base_url, api_key=TEST_KEY, max_retries=0)
    tools: Any = [{"type": "browser_search"}]
    answer = client.chat.completions.create(model=GPT_OSS, messages=HELLO, tools=tools, max_tokens=20)
    (run,) = answer.choices[0].message.executed_tools or []
    assert run.type == "browser_search" and run.output
    streamed = [
        tool
        for chunk in client.chat.completions.create(
            model=GPT_OSS, messages=HELLO, tools=tools, max_tokens=20, stream=True
        )
        if chunk.choices
        for tool in chunk.choices[0].delta.executed_tools or []
    ]
    assert [t.type for t in streamed] == ["browser_search"] and streamed[0].output == run.output
