"""AnthropicDriver over real HTTP against ``tests.hostile.HostileServer``: what goes on the wire,
how every answer (plain, streamed, broken, an error) comes back. The emulator and the official SDK
side by side are in ``test_anthropic_emulator_driver.py``."""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from botticelli import (
    AnthropicDriver,
    BotticelliWarning,
    ConfigurationError,
    FinishReason,
    GenerateRequest,
    Input,
    InvalidRequestError,
    Message,
    ModelNotFoundError,
    ModelsError,
    ReasoningOutput,
    ResponseError,
    ResponseFormat,
    Role,
    ServerError,
    Tool,
    ToolCall,
)
from botticelli.config import Timeout

from .hostile import HostileServer, response, streamed

KEY = "sk-ant-api03-TESTKEY-0000000000000000000000"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(16)


def message(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-5-5",
        "content": [{"type": "text", "text": "Hi! How can I help?"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 9, "cache_read_input_tokens": 4},
    }
    body.update(extra)
    return body


def events(*frames: tuple[str, dict[str, Any]]) -> bytes:
    return b"".join(f"event: {name}\ndata: ".encode() + orjson.dumps(data) + b"\n\n" for name, data in frames)


_OPENING = {
    "id": "msg_1",
    "model": "claude-haiku-5-5",
    "content": [],
    "usage": {"input_tokens": 11, "output_tokens": 1},
}
START = ("message_start", {"type": "message_start", "message": _OPENING})
STOP = ("message_stop", {"type": "message_stop"})


def text_block(index: int, *pieces: str) -> list[tuple[str, dict[str, Any]]]:
    opened = {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}
    frames = [("content_block_start", opened)]
    frames += [
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": p}},
        )
        for p in pieces
    ]
    frames.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    return frames


def finish(reason: str, output_tokens: int) -> tuple[str, dict[str, Any]]:
    return (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": reason, "stop_sequence": None},
            "usage": {"output_tokens": output_tokens},
        },
    )


@pytest.fixture(scope="module")
def server() -> Iterator[HostileServer]:
    with HostileServer() as hostile:
        yield hostile


@pytest.fixture(autouse=True)
def _fresh(server: HostileServer) -> None:
    server.requests.clear()
    server.script(lambda r: response(200, message(), {"request-id": "req_011CSLsW7mFqvHHnzrKdKjAE"}))


def make(server: HostileServer, model: str = "claude-haiku-5-5", **options: Any) -> AnthropicDriver:
    options.setdefault("max_retries", 0)
    options.setdefault("timeout", Timeout(read=5, connect=2, total=8, stall=3))
    return AnthropicDriver(model, api_key=KEY, base_url=server.base_url, **options)


def sent(server: HostileServer) -> dict[str, Any]:
    return dict(orjson.loads(server.requests[-1].body))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _generate(driver: AnthropicDriver, request: GenerateRequest) -> Any:
    async with driver:
        return await driver.generate(request)


async def _stream(driver: AnthropicDriver, request: GenerateRequest) -> list[Any]:
    async with driver:
        return [chunk async for chunk in driver.generate_stream(request)]


# ---- the request on the wire --------------------------------------------------------------------


def test_plain_request_headers_and_answer(server: HostileServer) -> None:
    answer = run(
        _generate(make(server), GenerateRequest([Message.system("Be terse."), Message.user("Hello")]))
    )
    request = server.requests[-1]
    assert request.path == "/v1/messages" and request.method == "POST"
    assert request.headers["anthropic-version"] == "2026-10-21"
    assert request.headers["authorization"] == f"Bearer {KEY}" and "x-api-key" not in request.headers
    body = sent(server)
    assert body == {
        "model": "claude-haiku-5-5",
        "max_tokens": 4096,  # required by the API: the default when the request has none
        "messages": [{"role": "user", "content": "Hello"}],
        "system": "Be terse.",
    }
    assert answer.text == "Hi! How can I help?" and answer.finish_reason is FinishReason.STOP
    assert answer.raw_finish_reason == "end_turn" and answer.provider == "anthropic"
    assert answer.request_id == "req_011CSLsW7mFqvHHnzrKdKjAE"
    assert answer.usage.prompt_tokens == 16 and answer.usage.cached_tokens == 4  # input + cache reads
    assert answer.usage.completion_tokens == 9


def test_the_older_version_sends_the_key_as_x_api_key(server: HostileServer) -> None:
    driver = make(server, "claude-sonnet-4-6", version="2023-06-01")
    run(_generate(driver, GenerateRequest.prompt("Hi", temperature=0.5)))
    request = server.requests[-1]
    assert request.headers["anthropic-version"] == "2023-06-01" and request.headers["x-api-key"] == KEY
    assert "authorization" not in request.headers
    assert sent(server)["temperature"] == 0.5  # this version and this model take it


def test_an_auth_token_is_always_a_bearer(server: HostileServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", "oauth-token-123")
    driver = AnthropicDriver(
        "claude-haiku-5-5", base_url=server.base_url, version="2023-06-01", max_retries=0
    )
    run(_generate(driver, GenerateRequest.prompt("Hi")))
    assert server.requests[-1].headers["authorization"] == "Bearer oauth-token-123"


def test_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="2026-10-21"):
        AnthropicDriver("claude-haiku-5-5", api_key=KEY, version="2024-01-01")


def test_a_missing_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir("/")
    with pytest.raises(ConfigurationError, match="ANTHROPIC_API_KEY"):
        AnthropicDriver("claude-haiku-5-5")


def test_tools_images_and_a_tool_loop_turn(server: HostileServer) -> None:
    weather = Tool(
        "get_weather", "Weather in a city", {"type": "object", "properties": {"city": {"type": "string"}}}
    )
    call = ToolCall("toolu_01", "get_weather", '{"city": "Paris"}')
    thought = ReasoningOutput("The user wants weather.", signature="sig-abc")
    request = GenerateRequest(
        [
            Message(Role.USER, (Input.text("What is this, and the weather?"), Input.image(PNG))),
            Message(Role.ASSISTANT, (), tool_calls=(call,), reasoning=(thought,)),
            Message.tool('{"temp": 21}', tool_call_id="toolu_01"),
        ],
        tools=[weather],
        tool_choice="required",
        parallel_tool_calls=False,
        stop=["END"],
        max_tokens=100,
    )
    run(_generate(make(server), request))
    body = sent(server)
    assert body["tools"] == [
        {
            "name": "get_weather",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            "description": "Weather in a city",
        }
    ]
    assert body["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert body["stop_sequences"] == ["END"] and body["max_tokens"] == 100
    user, assistant, result = body["messages"]
    assert user["content"][1]["type"] == "image" and user["content"][1]["source"]["media_type"] == "image/png"
    assert user["content"][1]["source"]["type"] == "base64"
    assert assistant == {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "The user wants weather.", "signature": "sig-abc"},
            {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}},
        ],
    }
    assert result == {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": "toolu_01",
                "content": [{"type": "text", "text": '{"temp": 21}'}],
            }
        ],
    }


def test_parallel_tool_results_share_one_user_turn(server: HostileServer) -> None:
    calls = (ToolCall("a", "f", "{}"), ToolCall("b", "f", "{}"))
    request = GenerateRequest(
        [
            Message.user("Go"),
            Message(Role.ASSISTANT, (), tool_calls=calls),
            Message.tool("1", tool_call_id="a"),
            Message.tool("2", tool_call_id="b"),
        ],
        tools=[Tool("f")],
    )
    run(_generate(make(server), request))
    turns = sent(server)["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert [b["tool_use_id"] for b in turns[2]["content"]] == ["a", "b"]


def test_structured_output_and_reasoning_fields(server: HostileServer) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    request = GenerateRequest.prompt(
        "JSON",
        response_format=ResponseFormat.json_schema(schema),
        reasoning_effort="high",
        include_reasoning=True,
    )
    run(_generate(make(server), request))
    body = sent(server)
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": schema}, "effort": "high"}
    assert body["thinking"] == {"type": "adaptive"}


# ---- parameters the model or the version rejects: dropped with one warning, or refused -----------


def test_sampling_parameters_on_the_current_version_are_dropped_once(server: HostileServer) -> None:
    driver = make(server, "claude-sonnet-4-6")
    request = GenerateRequest.prompt("Hi", temperature=0.3, top_p=0.9, extra={"top_k": 5})

    async def twice() -> list[warnings.WarningMessage]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            async with driver:
                await driver.generate(request)
                await driver.generate(request)
        return [w for w in caught if issubclass(w.category, BotticelliWarning)]

    caught = run(twice())
    body = sent(server)
    assert not {"temperature", "top_p", "top_k"} & set(body)
    assert len(caught) == 3  # one per parameter, not per request
    assert all("2026-10-21 removed it" in str(w.message) for w in caught)


def test_strict_refuses_before_any_request(server: HostileServer) -> None:
    driver = make(server, "claude-sonnet-4-6", strict=True)
    with pytest.raises(InvalidRequestError, match=r"temperature.*strict=True") as info:
        driver.generate_stream(GenerateRequest.prompt("Hi", temperature=0.3))
    assert info.value.code == "unsupported_parameter" and server.requests == []


@pytest.mark.parametrize(
    ("model", "params", "dropped"),
    [
        ("claude-opus-4-8", {"temperature": 0.2}, {"temperature"}),  # deprecated for this model
        ("claude-sonnet-5-5", {"top_p": 0.5}, {"top_p"}),  # every generation-5 model
        ("claude-sonnet-4-6", {"temperature": 0.2, "top_p": 0.5}, {"top_p"}),  # not both
        ("claude-sonnet-4-6", {"temperature": 0.2}, set()),  # one is fine
    ],
)
def test_the_profile_knows_per_model_on_the_older_version(
    server: HostileServer, model: str, params: dict[str, float], dropped: set[str]
) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(_generate(make(server, model, version="2023-06-01"), GenerateRequest.prompt("Hi", **params)))
    body = sent(server)
    assert {k for k in params if k not in body} == dropped
    assert len([w for w in caught if issubclass(w.category, BotticelliWarning)]) == len(dropped)
    if dropped:
        with pytest.raises(InvalidRequestError):
            make(server, model, version="2023-06-01", strict=True).check(
                GenerateRequest.prompt("Hi", **params)
            )


# ---- answers ------------------------------------------------------------------------------------


def test_tool_use_and_thinking_blocks_come_back_typed(server: HostileServer) -> None:
    content = [
        {"type": "thinking", "thinking": "Need weather.", "signature": "sig-1"},
        {"type": "text", "text": "I'll check."},
        {
            "type": "tool_use",
            "id": "toolu_01NR",
            "name": "get_weather",
            "caller": {"type": "direct"},
            "input": {"location": "Paris"},
        },
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}},
    ]
    server.script(lambda r: response(200, message(content=content, stop_reason="tool_use")))
    answer = run(_generate(make(server), GenerateRequest.prompt("Weather?")))
    assert answer.finish_reason is FinishReason.TOOL_CALLS and answer.text == "I'll check."
    assert answer.reasoning == "Need weather."
    assert [o.signature for o in answer.outputs if isinstance(o, ReasoningOutput)] == ["sig-1"]
    (call,) = answer.tool_calls
    assert call.id == "toolu_01NR" and call.args == {"location": "Paris"}


@pytest.mark.parametrize(
    ("raw", "neutral"),
    [
        ("end_turn", FinishReason.STOP),
        ("stop_sequence", FinishReason.STOP),
        ("max_tokens", FinishReason.LENGTH),
        ("model_context_window_exceeded", FinishReason.LENGTH),
        ("tool_use", FinishReason.TOOL_CALLS),
        ("refusal", FinishReason.CONTENT_FILTER),
        ("pause_turn", FinishReason.PAUSED),
        ("something_new", FinishReason.OTHER),
    ],
)
def test_stop_reasons(server: HostileServer, raw: str, neutral: FinishReason) -> None:
    server.script(lambda r: response(200, message(stop_reason=raw)))
    answer = run(_generate(make(server), GenerateRequest.prompt("Hi")))
    assert answer.finish_reason is neutral and answer.raw_finish_reason == raw


def test_a_stream_of_text_thinking_and_a_tool_call(server: HostileServer) -> None:
    frames = [
        START,
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "thinking", "thinking": "", "signature": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "thinking_delta", "thinking": "Hmm."},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "signature_delta", "signature": "sig-9"},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("ping", {"type": "ping"}),
        *text_block(1, "Hel", "lo"),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 2,
                "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}},
            },
        ),
        *[
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 2,
                    "delta": {"type": "input_json_delta", "partial_json": p},
                },
            )
            for p in ["", '{"locati', 'on": "P', "ar", 'is"}']
        ],
        ("content_block_stop", {"type": "content_block_stop", "index": 2}),
        ("some_future_event", {"type": "some_future_event"}),
        finish("tool_use", 30),
        STOP,
    ]
    server.script(lambda r: streamed(events(*frames), {"request-id": "req_s1"}))
    chunks = run(_stream(make(server), GenerateRequest.prompt("Weather?")))
    assert "".join(c.reasoning for c in chunks) == "Hmm." and "".join(c.text for c in chunks) == "Hello"
    final = chunks[-1]
    assert final.is_final and final.finish_reason is FinishReason.TOOL_CALLS
    assert final.reasoning_signature == "sig-9" and final.request_id == "req_s1"
    assert final.usage is not None and final.usage.prompt_tokens == 11 and final.usage.completion_tokens == 30
    (call,) = final.tool_calls
    assert call.id == "toolu_1" and call.args == {"location": "Paris"}
    assert sent(server)["stream"] is True


def test_a_stream_without_message_stop_is_a_response_error(server: HostileServer) -> None:
    server.script(lambda r: streamed(events(START, *text_block(0, "Hi")), {"request-id": "req_cut"}))
    with pytest.raises(ResponseError, match="message_stop") as info:
        run(_stream(make(server), GenerateRequest.prompt("Hi")))
    assert info.value.request_id == "req_cut"


def test_an_error_event_mid_stream_is_typed(server: HostileServer) -> None:
    error = ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    server.script(lambda r: streamed(events(START, *text_block(0, "Hi"), error)))
    with pytest.raises(ServerError, match="Overloaded") as info:
        run(_stream(make(server, max_retries=2), GenerateRequest.prompt("Hi")))
    assert info.value.status == 529 and info.value.code == "overloaded_error"
    assert len(server.requests) == 1  # mid-stream errors are not retried (the SDK does not either)


@pytest.mark.parametrize(
    ("status", "kind", "cls"),
    [
        (400, "invalid_request_error", InvalidRequestError),
        (404, "not_found_error", ModelNotFoundError),
        (529, "overloaded_error", ServerError),
        (500, "api_error", ServerError),
    ],
)
def test_error_bodies(server: HostileServer, status: int, kind: str, cls: type[ModelsError]) -> None:
    text = "model: claude-opus-9" if status == 404 else "Overloaded"
    body = {"type": "error", "error": {"type": kind, "message": text}, "request_id": "req_011CSHoE"}
    server.script(lambda r: response(status, body, {"request-id": "req_011CSHoE"}))
    with pytest.raises(cls) as info:
        run(_generate(make(server), GenerateRequest.prompt("Hi")))
    assert info.value.status == status and info.value.request_id == "req_011CSHoE"
    assert info.value.code == kind and text in info.value.message


def test_529_is_retried_then_answers(server: HostileServer) -> None:
    answers = iter(
        [
            response(529, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
            response(200, message()),
        ]
    )
    server.script(lambda r: next(answers))
    driver = make(server, max_retries=2)
    assert run(_generate(driver, GenerateRequest.prompt("Hi"))).text
    assert len(server.requests) == 2


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
_names = st.sampled_from(
    [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "message_delta",
        "message_stop",
        "error",
        "ping",
        "x",
    ]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames=st.lists(st.tuples(_names, _json), min_size=1, max_size=5))
def test_any_frames_end_in_chunks_or_our_errors(server: HostileServer, frames: list[tuple[str, Any]]) -> None:
    """Whatever JSON arrives under whatever event name: chunks, or one of our typed errors."""
    body = b"".join(f"event: {n}\ndata: ".encode() + orjson.dumps(d) + b"\n\n" for n, d in frames)
    server.script(lambda r: streamed(body))
    with contextlib.suppress(ModelsError):
        run(_stream(make(server), GenerateRequest.prompt("Hi")))
