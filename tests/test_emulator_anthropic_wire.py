"""The Anthropic emulator over raw HTTP: exact bodies, headers, SSE framing, errors, faults, limits."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx2
import orjson
import pytest

from botticelli.emulator import FAULT_KINDS, Fault
from botticelli.emulator.anthropic import DEFAULT_LIMITS, AnthropicEmulator, AnthropicLimits, overloaded
from botticelli.emulator.anthropic.thinking import sign

KEY = "sk-ant-api03-wire-test"
MODEL = "claude-sonnet-4-6"
HELLO = [{"role": "user", "content": "Say hello."}]
HEADERS = {"x-api-key": KEY, "anthropic-version": "2023-06-01", "content-type": "application/json"}
REQ_ID = re.compile(r"^req_011C[1-9A-HJ-NP-Za-km-z]{20}$")
MSG_ID = re.compile(r"^msg_01[1-9A-HJ-NP-Za-km-z]{22}$")
TOOLU_ID = re.compile(r"^toolu_01[1-9A-HJ-NP-Za-km-z]{22}$")
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TOOL = {
    "name": "get_weather",
    "input_schema": {
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
    },
}


@pytest.fixture
def emu() -> Iterator[AnthropicEmulator]:
    with AnthropicEmulator() as emulator:
        yield emulator


@pytest.fixture
def http(emu: AnthropicEmulator) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=emu.base_url, headers=HEADERS, timeout=10.0) as client:
        yield client


def post(client: httpx2.Client, path: str = "/v1/messages", **body: Any) -> httpx2.Response:
    payload: dict[str, Any] = {"model": MODEL, "max_tokens": 64, "messages": HELLO, **body}
    return client.post(path, content=orjson.dumps(payload))


def frames(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    """(event, data) per frame, checking the framing byte for byte: ``event: X\\ndata: {..}\\n\\n``."""
    assert raw.endswith(b"\n\n")
    out = []
    for chunk in raw[:-2].split(b"\n\n"):
        event_line, data_line = chunk.split(b"\n")
        assert event_line.startswith(b"event: ") and data_line.startswith(b"data: "), chunk
        event, data = event_line[7:].decode(), orjson.loads(data_line[6:])
        assert data["type"] == event  # the JSON repeats the event name (§5)
        out.append((event, data))
    return out


def stream(client: httpx2.Client, **body: Any) -> tuple[httpx2.Response, bytes]:
    payload: dict[str, Any] = {"model": MODEL, "max_tokens": 64, "messages": HELLO, "stream": True, **body}
    with client.stream("POST", "/v1/messages", content=orjson.dumps(payload)) as response:
        return response, response.read()


def error(status: int, error_type: str, message: str, response: httpx2.Response) -> None:
    """``response`` is exactly Anthropic's error envelope (§6.1) with a matching ``request-id``."""
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    req_id = response.headers["request-id"]
    assert REQ_ID.match(req_id)
    assert response.content == orjson.dumps(
        {"type": "error", "error": {"type": error_type, "message": message}, "request_id": req_id}
    )


# -- bodies and headers ----------------------------------------------------------------------


def test_a_message_has_the_documented_shape_and_key_order(http: httpx2.Client) -> None:
    response = post(http)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == [
        "id",
        "type",
        "role",
        "model",
        "content",
        "stop_reason",
        "stop_sequence",
        "stop_details",
        "usage",
    ]
    assert MSG_ID.match(body["id"]) and body["type"] == "message" and body["role"] == "assistant"
    assert body["model"] == MODEL and body["stop_details"] is None
    assert body["content"] == [{"type": "text", "text": body["content"][0]["text"]}]
    usage = body["usage"]
    assert list(usage) == [
        "input_tokens",
        "output_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
        "cache_creation",
        "server_tool_use",
        "service_tier",
        "inference_geo",
    ]
    assert usage["cache_creation"] == {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0}
    assert (usage["service_tier"], usage["inference_geo"], usage["server_tool_use"]) == (
        "standard",
        "not_available",
        None,
    )


def test_every_message_carries_request_id_organization_and_rate_limit_headers(http: httpx2.Client) -> None:
    response = post(http)
    headers = response.headers
    assert REQ_ID.match(headers["request-id"]) and UUID.match(headers["anthropic-organization-id"])
    names = [name for name in headers if name.startswith("anthropic-ratelimit-")]
    assert names == [
        f"anthropic-ratelimit-{group}-{field}"
        for group in ("requests", "tokens", "input-tokens", "output-tokens")
        for field in ("limit", "remaining", "reset")
    ]
    assert headers["anthropic-ratelimit-requests-limit"] == "1000"
    assert headers["anthropic-ratelimit-requests-remaining"] == "999"
    assert headers["anthropic-ratelimit-input-tokens-limit"] == "80000"
    assert headers["anthropic-ratelimit-output-tokens-limit"] == "16000"
    assert headers["anthropic-ratelimit-tokens-limit"] == "96000"
    used = response.json()["usage"]["input_tokens"]
    assert headers["anthropic-ratelimit-input-tokens-remaining"] == str(80000 - used)
    assert headers["anthropic-ratelimit-output-tokens-remaining"] == str(16000 - 64)  # max_tokens, up front
    for name in names:
        if name.endswith("-reset"):
            assert RFC3339.match(headers[name])
            moment = datetime.strptime(headers[name], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            assert 0 <= (moment - datetime.now(UTC)).total_seconds() <= 62


def test_unused_output_tokens_are_given_back() -> None:
    with (
        AnthropicEmulator(window_scale=10_000) as emu,  # a week-long "minute": no refill during the test
        httpx2.Client(base_url=emu.base_url, headers=HEADERS, timeout=5.0) as client,
    ):
        first = post(client, max_tokens=1000)
        generated = first.json()["usage"]["output_tokens"]
        assert first.headers["anthropic-ratelimit-output-tokens-remaining"] == str(16000 - 1000)
        second = post(client, max_tokens=10)
        assert second.headers["anthropic-ratelimit-output-tokens-remaining"] == str(16000 - generated - 10)


def test_a_tool_use_reply_has_caller_and_a_schema_valid_input(http: httpx2.Client) -> None:
    body = post(http, tools=[TOOL], tool_choice={"type": "tool", "name": "get_weather"}).json()
    assert body["stop_reason"] == "tool_use"
    [call] = body["content"]
    assert list(call) == ["type", "id", "name", "caller", "input"]
    assert TOOLU_ID.match(call["id"]) and call["caller"] == {"type": "direct"}
    assert isinstance(call["input"]["location"], str)


# -- SSE -------------------------------------------------------------------------------------


def test_the_stream_is_framed_and_ordered_like_the_recorded_one(http: httpx2.Client) -> None:
    response, raw = stream(http)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert REQ_ID.match(response.headers["request-id"])
    assert b'event: ping\ndata: {"type": "ping"}\n\n' in raw  # byte for byte as recorded
    assert raw.endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
    events = frames(raw)
    names = [name for name, _ in events]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(names[3:-3]) == {"content_block_delta"}
    message = events[0][1]["message"]
    assert message["content"] == [] and message["stop_reason"] is None and message["stop_sequence"] is None
    assert message["usage"]["output_tokens"] == 1
    assert events[1][1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    text = "".join(data["delta"]["text"] for name, data in events if name == "content_block_delta")
    final = events[-2][1]
    assert final["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert list(final["usage"]) == ["output_tokens"]
    plain = post(http).json()
    assert text == plain["content"][0]["text"]
    assert final["usage"]["output_tokens"] == plain["usage"]["output_tokens"]
    assert message["usage"]["input_tokens"] == plain["usage"]["input_tokens"]


def test_a_streamed_tool_call_starts_with_empty_input_and_an_empty_partial(http: httpx2.Client) -> None:
    _, raw = stream(http, tools=[TOOL], messages=[{"role": "user", "content": "call get_weather please"}])
    events = frames(raw)
    starts = [data["content_block"] for name, data in events if name == "content_block_start"]
    assert starts[0] == {"type": "text", "text": ""}
    assert (
        starts[1]["type"] == "tool_use"
        and starts[1]["input"] == {}
        and starts[1]["caller"] == {"type": "direct"}
    )
    partial = [data["delta"] for name, data in events if name == "content_block_delta" and data["index"] == 1]
    assert partial[0] == {"type": "input_json_delta", "partial_json": ""}
    assert all(delta["type"] == "input_json_delta" for delta in partial)
    assert "location" in orjson.loads("".join(delta["partial_json"] for delta in partial))
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_a_streamed_thinking_block_ends_with_its_signature(http: httpx2.Client) -> None:
    _, raw = stream(http, max_tokens=2048, thinking={"type": "enabled", "budget_tokens": 1024})
    events = frames(raw)
    block = [(name, data) for name, data in events if data.get("index") == 0]
    assert block[0][1]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    deltas = [data["delta"] for name, data in block if name == "content_block_delta"]
    assert {d["type"] for d in deltas[:-1]} == {"thinking_delta"}
    assert deltas[-1]["type"] == "signature_delta"  # just before the block's stop (§5)
    assert block[-1][0] == "content_block_stop"
    thought = "".join(d["thinking"] for d in deltas[:-1])
    assert deltas[-1]["signature"] == sign(thought)
    text_start = next(data for name, data in events if name == "content_block_start" and data["index"] == 1)
    assert text_start["content_block"]["type"] == "text"
    assert events[-2][1]["usage"]["output_tokens_details"]["thinking_tokens"] > 0


def test_a_stream_error_fault_sends_an_error_event_and_ends(
    http: httpx2.Client, emu: AnthropicEmulator
) -> None:
    emu.inject(Fault("stream_error", after_chunks=1))
    _, raw = stream(http)
    assert raw.endswith(
        b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    )
    names = [name for name, _ in frames(raw)]
    assert names.count("content_block_delta") == 1 and "message_stop" not in names
    emu.inject(
        Fault("stream_error", after_chunks=0, type="api_error", message="Internal server error", code="x")
    )
    _, raw = stream(http)
    assert frames(raw)[-1][1] == {
        "type": "error",
        "error": {"type": "api_error", "message": "Internal server error", "details": {"error_code": "x"}},
    }


def test_a_truncated_stream_ends_cleanly_without_message_stop(
    http: httpx2.Client, emu: AnthropicEmulator
) -> None:
    emu.inject(Fault("truncate", after_chunks=2))
    _, raw = stream(http)
    names = [name for name, _ in frames(raw)]
    assert names.count("content_block_delta") == 2
    assert "message_delta" not in names and "message_stop" not in names


def test_a_malformed_frame_is_not_json(http: httpx2.Client, emu: AnthropicEmulator) -> None:
    emu.inject(Fault("malformed", after_chunks=1))
    _, raw = stream(http)
    bad = [chunk for chunk in raw.split(b"\n\n") if b'"unterminated' in chunk]
    assert len(bad) == 1
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(bad[0].split(b"\ndata: ", 1)[1])
    emu.inject(Fault("malformed"))
    response = post(http)
    assert response.status_code == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(response.content)


def test_parallel_calls_and_their_opt_out(http: httpx2.Client) -> None:
    clock = {"name": "get_time", "input_schema": {"type": "object"}}
    ask = [{"role": "user", "content": "get_weather and get_time, please"}]
    both = post(http, tools=[TOOL, clock], messages=ask).json()
    assert [b["type"] for b in both["content"]] == ["text", "tool_use", "tool_use"]
    assert both["content"][0]["text"] == "I'll use the get_weather and get_time tools."
    one = post(
        http,
        tools=[TOOL, clock],
        messages=ask,
        tool_choice={"type": "auto", "disable_parallel_tool_use": True},
    ).json()
    assert [b.get("name") for b in one["content"]] == [None, "get_weather"]


def test_server_tools_are_accepted_and_never_called(http: httpx2.Client) -> None:
    search = {"type": "web_search_20260318", "name": "web_search", "max_uses": 2}
    body = post(http, tools=[search], tool_choice={"type": "tool", "name": "web_search"}).json()
    assert body["stop_reason"] == "end_turn" and [b["type"] for b in body["content"]] == ["text"]
    bad = post(http, tools=[{"type": "web_search_1", "name": "w"}])
    assert bad.status_code == 400 and bad.json()["error"]["message"].startswith(
        "tools.0: Input tag 'web_search_1' found using 'type' does not match any of the expected "
        "tags: 'custom', 'web_search_20260318'"
    )


def test_images_documents_and_system_turns_are_accepted_and_counted(http: httpx2.Client) -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    pdf = {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERg=="},
    }
    plain = post(http).json()["usage"]["input_tokens"]
    turns = [
        {"role": "user", "content": [image, pdf, {"type": "text", "text": "Say hello."}]},
        {"role": "system", "content": "Answer in one line."},
    ]
    body = post(http, messages=turns).json()
    assert body["usage"]["input_tokens"] >= plain + 1600 + 1500
    bad = post(
        http, messages=[{"role": "user", "content": [{**image, "source": {**image["source"], "data": "%%"}}]}]
    )
    assert (
        bad.json()["error"]["message"] == "messages.0.content.0.image.source.base64.data: invalid base64 data"
    )


def test_thinking_disabled_and_between_tools_add_no_block(http: httpx2.Client) -> None:
    for config in ({"type": "disabled"}, {"type": "between_tools"}):
        body = post(http, thinking=config).json()
        assert [b["type"] for b in body["content"]] == ["text"], config


def test_max_tokens_zero_generates_nothing(http: httpx2.Client) -> None:
    body = post(http, max_tokens=0).json()
    assert (
        body["content"] == [] and body["stop_reason"] == "max_tokens" and body["usage"]["output_tokens"] == 0
    )


def test_a_prefill_is_continued(http: httpx2.Client) -> None:
    body = post(
        http, messages=[*HELLO, {"role": "assistant", "content": "The answer is"}], tools=[TOOL], max_tokens=8
    ).json()
    assert [b["type"] for b in body["content"]] == ["text"]  # auto tools: a prefill is continued in prose


def test_running_out_of_context_window_is_its_own_stop_reason(http: httpx2.Client) -> None:
    # claude-sonnet-4-6 holds 200,000 tokens; the fake backend counts 4 characters a token.
    long = [{"role": "user", "content": "x" * (4 * (200_000 - 3 - 4 - 5))}]
    body = post(http, messages=long, max_tokens=64).json()
    assert body["usage"]["input_tokens"] == 200_000 - 5
    assert body["stop_reason"] == "model_context_window_exceeded" and body["usage"]["output_tokens"] == 5


def test_token_delay_paces_the_stream() -> None:
    with (
        AnthropicEmulator(token_delay=0.02) as emu,
        httpx2.Client(base_url=emu.base_url, headers=HEADERS, timeout=5.0) as client,
    ):
        started = time.perf_counter()
        _, raw = stream(client, max_tokens=10)
        assert time.perf_counter() - started >= 10 * 0.02
        assert raw.count(b"event: content_block_delta") == 10
        emu.token_delay = 0.0
        started = time.perf_counter()
        stream(client, max_tokens=10)
        assert time.perf_counter() - started < 10 * 0.02
    with pytest.raises(ValueError, match="token_delay"):
        AnthropicEmulator(token_delay=-1)


# -- errors ----------------------------------------------------------------------------------


def test_credentials_and_version_errors_have_the_observed_texts(emu: AnthropicEmulator) -> None:
    url = emu.base_url + "/v1/messages"
    body = orjson.dumps({"model": MODEL, "max_tokens": 8, "messages": HELLO})
    version = {"anthropic-version": "2023-06-01"}
    with httpx2.Client(timeout=5.0) as client:
        error(
            401,
            "authentication_error",
            "x-api-key header is required",
            client.post(url, content=body, headers=version),
        )
        error(
            401,
            "authentication_error",
            "invalid x-api-key",
            client.post(url, content=body, headers={**version, "x-api-key": "sk-wrong"}),
        )
        error(
            401,
            "authentication_error",
            "Invalid bearer token",
            client.post(url, content=body, headers={**version, "authorization": "Bearer nope"}),
        )
        error(
            400,
            "invalid_request_error",
            "anthropic-version: header is required",
            client.post(url, content=body, headers={"x-api-key": KEY}),
        )
        error(
            400,
            "invalid_request_error",
            'anthropic-version: "2023-10-01" is not a valid version',
            client.post(url, content=body, headers={"x-api-key": KEY, "anthropic-version": "2023-10-01"}),
        )
        for auth in ({"x-api-key": KEY}, {"authorization": f"Bearer {KEY}"}):
            for pinned in ("2023-06-01", "2026-10-21"):
                ok = client.post(url, content=body, headers={**auth, "anthropic-version": pinned})
                assert ok.status_code == 200, (auth, pinned)


def test_only_the_configured_keys_are_accepted() -> None:
    with AnthropicEmulator(api_keys=["sk-ant-one"]) as emu, httpx2.Client(base_url=emu.base_url) as client:
        body = orjson.dumps({"model": MODEL, "max_tokens": 8, "messages": HELLO})
        for key, status in (("sk-ant-one", 200), ("sk-ant-two", 401)):
            headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
            assert client.post("/v1/messages", content=body, headers=headers).status_code == status


def test_a_400_says_not_to_retry(http: httpx2.Client) -> None:
    response = post(http, messages=[])
    error(400, "invalid_request_error", "messages: at least one message is required", response)
    assert response.headers["x-should-retry"] == "false"


def test_a_body_that_is_not_json(http: httpx2.Client) -> None:
    response = http.post("/v1/messages", content=b'{"model": ')
    error(
        400,
        "invalid_request_error",
        "The request body is not valid JSON: Expecting value: line 1 column 11 (char 10)",
        response,
    )


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"model": None}, 400, "model: Input should be a valid string"),
        ({"max_tokens": "8"}, 400, "max_tokens: Input should be a valid integer"),
        ({"max_tokens": -1}, 400, "max_tokens: Input should be greater than or equal to 0"),
        ({"model": "claude-opus-9"}, 404, "model: claude-opus-9"),
        ({"model": "claude-3-opus-20240229"}, 404, "model: claude-3-opus-20240229"),
        ({"frequency_penalty": 1}, 400, "frequency_penalty: Extra inputs are not permitted"),
        ({"temperature": 1.5}, 400, "temperature: Input should be less than or equal to 1"),
        ({"top_k": -1}, 400, "top_k: Input should be greater than or equal to 0"),
        ({"stream": "yes"}, 400, "stream: Input should be a valid boolean"),
        ({"messages": "hi"}, 400, "messages: Input should be a valid list"),
        (
            {"messages": [{"role": "bot", "content": "x"}]},
            400,
            "messages.0.role: Input should be 'user', 'assistant' or 'system'",
        ),
        ({"messages": [{"role": "user"}]}, 400, "messages.0.content: Field required"),
        (
            {"messages": [{"role": "user", "content": "x", "name": "a"}]},
            400,
            "messages.0.name: Extra inputs are not permitted",
        ),
        (
            {"messages": [{"role": "user", "content": ""}]},
            400,
            "messages.0: all messages must have non-empty content except for the optional final "
            "assistant message",
        ),
        (
            {"messages": [*HELLO, {"role": "assistant", "content": "Sure. "}]},
            400,
            "messages: final assistant content cannot end with trailing whitespace",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "x", "extra": 1}]}]},
            400,
            "messages.0.content.0.text.extra: Extra inputs are not permitted",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "video"}]}]},
            400,
            "messages.0.content.0: Input tag 'video' found using 'type' does not match any of the "
            "expected tags: 'text', 'image', 'document', 'search_result', 'thinking', "
            "'redacted_thinking', 'tool_use', 'tool_result', 'server_tool_use', "
            "'web_search_tool_result', 'web_fetch_tool_result', "
            "'code_execution_tool_result', 'bash_code_execution_tool_result', "
            "'text_editor_code_execution_tool_result', 'tool_search_tool_result', 'container_upload'",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image",
                                "source": {"type": "base64", "media_type": "image/bmp", "data": "AA=="},
                            }
                        ],
                    }
                ]
            },
            400,
            "messages.0.content.0.image.source.base64.media_type: Input should be 'image/jpeg', 'image/png', "
            "'image/gif' or 'image/webp'",
        ),
        (
            {
                "messages": [
                    *HELLO,
                    {
                        "role": "assistant",
                        "content": [{"type": "tool_use", "id": "toolu_1", "name": "t", "input": {}}],
                    },
                    {"role": "user", "content": "and?"},
                ]
            },
            400,
            "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_1. "
            "Each `tool_use` block must have a corresponding `tool_result` block in the next message.",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_9"}]}]},
            400,
            "messages.0.content.0: unexpected `tool_use_id` found in `tool_result` blocks: toolu_9. Each "
            "`tool_result` block must have a corresponding `tool_use` block in the previous message.",
        ),
        (
            {"system": [{"type": "image"}]},
            400,
            "system.0: Input tag 'image' found using 'type' does not match any of the expected tags: 'text'",
        ),
        ({"tools": [TOOL, TOOL]}, 400, "tools: Tool names must be unique."),
        (
            {"tools": [{"name": "bad name", "input_schema": {"type": "object"}}]},
            400,
            "tools.0.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'",
        ),
        (
            {"tools": [{"name": "t", "input_schema": {"type": "array"}}]},
            400,
            "tools.0.custom.input_schema.type: Input should be 'object'",
        ),
        ({"tools": [{"name": "t"}]}, 400, "tools.0.custom.input_schema: Field required"),
        (
            {"tool_choice": {"type": "required"}},
            400,
            "tool_choice: Input tag 'required' found using 'type' does not match any of the expected "
            "tags: 'auto', 'any', 'tool', 'none'",
        ),
        (
            {"thinking": {"type": "enabled", "budget_tokens": 100}, "max_tokens": 2000},
            400,
            "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
        ),
        (
            {"thinking": {"type": "enabled", "budget_tokens": 2048}, "max_tokens": 2000},
            400,
            "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at "
            "https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size",
        ),
        (
            {"thinking": {"type": "enabled", "budget_tokens": 1024}, "max_tokens": 2000, "temperature": 0.5},
            400,
            "`temperature` may only be set to 1 when thinking is enabled. Please consult our "
            "documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
            "#feature-compatibility",
        ),
        (
            {
                "model": "claude-opus-4-7",
                "thinking": {"type": "enabled", "budget_tokens": 1024},
                "max_tokens": 2000,
            },
            400,
            '"thinking.type.enabled" is not supported for this model. Use "thinking.type.adaptive" and '
            '"output_config.effort" to control thinking behavior.',
        ),
        (
            {"output_config": {"effort": "extreme"}},
            400,
            "output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'",
        ),
        ({"metadata": {"user_id": 5}}, 400, "metadata.user_id: Input should be a valid string"),
        ({"service_tier": "priority"}, 400, "service_tier: Input should be 'auto' or 'standard_only'"),
        ({"stop_sequences": "END"}, 400, "stop_sequences: Input should be a valid list"),
        (
            {"messages": [{"role": "user", "content": "x" * 4_000_000}]},
            400,
            "prompt is too long: 1000007 tokens > 200000 maximum",
        ),
    ],
)
def test_validation_errors_have_anthropics_texts(
    http: httpx2.Client, change: dict[str, Any], status: int, message: str
) -> None:
    error(
        status, "not_found_error" if status == 404 else "invalid_request_error", message, post(http, **change)
    )


def test_missing_required_fields_are_named(http: httpx2.Client) -> None:
    for name in ("model", "max_tokens", "messages"):
        body = {"model": MODEL, "max_tokens": 8, "messages": HELLO}
        del body[name]
        error(
            400,
            "invalid_request_error",
            f"{name}: Field required",
            http.post("/v1/messages", content=orjson.dumps(body)),
        )


def test_version_2026_10_21_refuses_sampling_and_new_block_rules(http: httpx2.Client) -> None:
    new = {**HEADERS, "anthropic-version": "2026-10-21"}
    body = {"model": MODEL, "max_tokens": 8, "messages": HELLO}
    for name in ("temperature", "top_p", "top_k"):
        response = http.post("/v1/messages", content=orjson.dumps({**body, name: 1}), headers=new)
        error(400, "invalid_request_error", f"{name}: Extra inputs are not permitted", response)
        sampling: dict[str, Any] = {name: 1}
        assert post(http, **sampling).status_code == 200  # 2023-06-01 still takes them
    document = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "notes"}}
    turns = [*HELLO, {"role": "assistant", "content": [document]}, {"role": "user", "content": "more"}]
    response = http.post("/v1/messages", content=orjson.dumps({**body, "messages": turns}), headers=new)
    error(
        400,
        "invalid_request_error",
        "messages.1.content.0: `document` blocks are not permitted in `assistant` messages",
        response,
    )
    assert post(http, messages=turns).status_code == 200


def test_a_body_over_32_mb_is_a_413(http: httpx2.Client) -> None:
    response = http.post("/v1/messages", content=b" " * (32 * 1024 * 1024 + 1))
    error(413, "request_too_large", "Request exceeds the maximum allowed number of bytes.", response)


def test_an_unknown_path_is_a_404_in_the_envelope(http: httpx2.Client) -> None:
    error(404, "not_found_error", "Not Found", http.get("/v1/complete"))


# -- faults ----------------------------------------------------------------------------------


def test_fault_bodies_are_anthropics(http: httpx2.Client, emu: AnthropicEmulator) -> None:
    emu.inject(overloaded())
    error(529, "overloaded_error", "Overloaded", post(http))
    emu.inject(Fault("server_error"))
    error(500, "api_error", "Internal server error", post(http))
    emu.inject(Fault("server_error", status=504))
    error(504, "timeout_error", "Request timed out", post(http))
    emu.inject(Fault("status", status=402, message="Your credit balance is too low."))
    error(402, "billing_error", "Your credit balance is too low.", post(http))


def test_a_rate_limit_fault_has_the_message_headers_and_retry_after(
    http: httpx2.Client, emu: AnthropicEmulator
) -> None:
    emu.inject(Fault("rate_limit", retry_after=7, limit="tpm"))
    response = post(http)
    message = (
        f"This request would exceed your organization's rate limit of 80,000 input tokens per minute "
        f"(org: {emu.org_id}, model: {MODEL}). For details, refer to: "
        "https://docs.claude.com/en/api/rate-limits. "
        "You can see the response headers for current usage. Please reduce the prompt length or the maximum "
        "tokens requested, or try again later."
    )
    error(429, "rate_limit_error", message, response)
    assert response.headers["retry-after"] == "7"
    assert response.headers["anthropic-ratelimit-input-tokens-remaining"] == "0"
    assert response.headers["anthropic-ratelimit-requests-remaining"] == "1000"


def test_a_fault_rides_on_one_request_in_a_header(http: httpx2.Client, emu: AnthropicEmulator) -> None:
    response = http.post(
        "/v1/messages",
        content=orjson.dumps({"model": MODEL, "max_tokens": 8, "messages": HELLO}),
        headers={"x-emulator-fault": "status; status=529"},
    )
    error(529, "overloaded_error", "Overloaded", response)
    assert post(http).status_code == 200
    bad = http.post("/v1/messages", content=b"{}", headers={"x-emulator-fault": "nope"})
    assert bad.status_code == 400 and "x-emulator-fault" in bad.json()["error"]["message"]


def test_drop_and_hang_send_nothing(http: httpx2.Client, emu: AnthropicEmulator) -> None:
    emu.inject(Fault("drop"))
    with pytest.raises(httpx2.RemoteProtocolError):
        post(http)
    emu.inject(Fault("hang"))
    with pytest.raises(httpx2.ReadTimeout):
        http.post(
            "/v1/messages",
            content=orjson.dumps({"model": MODEL, "max_tokens": 8, "messages": HELLO}),
            timeout=0.3,
        )


def test_slow_first_token_delays_the_answer(http: httpx2.Client, emu: AnthropicEmulator) -> None:
    emu.inject(Fault("slow_first_token", delay=0.3))
    started = time.perf_counter()
    assert post(http).status_code == 200
    assert time.perf_counter() - started >= 0.3


def test_the_control_plane_queues_faults_and_reports_stats(
    http: httpx2.Client, emu: AnthropicEmulator
) -> None:
    queued = http.post(
        "/_emulator/faults", content=orjson.dumps({"kind": "status", "status": 529, "count": 2})
    )
    assert queued.json() == {"queued": 1, "pending": [{"kind": "status", "count": 2, "status": 529}]}
    assert [post(http).status_code for _ in range(3)] == [529, 529, 200]
    stats = http.get("/_emulator/stats").json()
    assert stats["requests"] == 3 and stats["by_status"] == {"529": 2, "200": 1} and stats["completions"] == 1
    logged = http.get("/_emulator/requests").json()["requests"]
    assert [r["path"] for r in logged] == ["/v1/messages"] * 3 and logged[0]["body"]["model"] == MODEL
    assert http.post("/_emulator/reset").json() == {"reset": True}
    assert emu.stats.requests == 0
    error(
        400,
        "invalid_request_error",
        f"invalid fault: unknown fault kind 'nope'; known: {', '.join(FAULT_KINDS)}",
        http.post("/_emulator/faults", content=b'{"kind": "nope"}'),
    )


# -- rate limits -----------------------------------------------------------------------------


def test_enforced_request_limits_answer_429_until_the_window_refills() -> None:
    with (
        AnthropicEmulator(enforce_limits=True, limits={"rpm": 2}, window_scale=0.02) as emu,
        httpx2.Client(base_url=emu.base_url, headers=HEADERS, timeout=5.0) as client,
    ):
        assert [post(client).status_code for _ in range(2)] == [200, 200]
        denied = post(client)
        assert denied.status_code == 429
        assert denied.json()["error"]["message"].startswith(
            "This request would exceed your organization's rate limit of 2 requests per minute"
        )
        assert denied.headers["anthropic-ratelimit-requests-remaining"] == "0"
        assert denied.headers["retry-after"] == "1"
        time.sleep(0.7)  # a 1.2 s "minute": one request's worth refills in 0.6 s
        assert post(client).status_code == 200


def test_enforced_token_limits_name_the_direction() -> None:
    with (
        AnthropicEmulator(enforce_limits=True, limits={"itpm": 20, "otpm": None}) as emu,
        httpx2.Client(base_url=emu.base_url, headers=HEADERS, timeout=5.0) as client,
    ):
        long = [{"role": "user", "content": "word " * 40}]
        denied = post(client, messages=long)
        assert denied.status_code == 429
        assert "rate limit of 20 input tokens per minute" in denied.json()["error"]["message"]
        assert int(denied.headers["retry-after"]) == 60  # can never fit: a whole window
        assert "anthropic-ratelimit-output-tokens-limit" not in denied.headers  # unlimited
        assert "anthropic-ratelimit-tokens-limit" not in denied.headers
    with (
        AnthropicEmulator(enforce_limits=True, limits={"otpm": 100}) as emu,
        httpx2.Client(base_url=emu.base_url, headers=HEADERS, timeout=5.0) as client,
    ):
        assert post(client, max_tokens=101).status_code == 429  # estimated from max_tokens up front
        assert post(client, max_tokens=100).status_code == 200


def test_limits_are_not_enforced_by_default() -> None:
    with (
        AnthropicEmulator(limits={"rpm": 1}) as emu,
        httpx2.Client(base_url=emu.base_url, headers=HEADERS, timeout=5.0) as client,
    ):
        responses = [post(client) for _ in range(3)]
        assert [r.status_code for r in responses] == [200, 200, 200]
        assert responses[-1].headers["anthropic-ratelimit-requests-remaining"] == "0"


def test_unknown_limits_are_refused() -> None:
    assert AnthropicEmulator(limits={"rpm": 5, "otpm": None}).limits == AnthropicLimits(rpm=5, otpm=None)
    assert AnthropicEmulator().limits == AnthropicLimits(**DEFAULT_LIMITS)
    with pytest.raises(ValueError, match="unknown limit"):
        AnthropicEmulator(limits={"tpd": 5})
    with pytest.raises(ValueError, match="positive int"):
        AnthropicEmulator(limits={"rpm": 0})


# -- count_tokens and models -----------------------------------------------------------------


def test_count_tokens_takes_the_messages_params_without_max_tokens(http: httpx2.Client) -> None:
    body = {"model": MODEL, "messages": HELLO, "system": "Be terse."}
    counted = http.post("/v1/messages/count_tokens", content=orjson.dumps(body))
    assert counted.status_code == 200 and list(counted.json()) == ["input_tokens"]
    created = post(http, system="Be terse.").json()
    assert counted.json()["input_tokens"] == created["usage"]["input_tokens"]
    extra = http.post("/v1/messages/count_tokens", content=orjson.dumps({**body, "max_tokens": 5}))
    error(400, "invalid_request_error", "max_tokens: Extra inputs are not permitted", extra)


def test_models_pagination_fields(http: httpx2.Client) -> None:
    everything = http.get("/v1/models", params={"limit": 1000}).json()
    ids = [m["id"] for m in everything["data"]]
    assert (
        everything["has_more"] is False
        and everything["first_id"] == ids[0]
        and everything["last_id"] == ids[-1]
    )
    first = http.get("/v1/models", params={"limit": 2}).json()
    assert [m["id"] for m in first["data"]] == ids[:2] and first["has_more"] is True
    after = http.get("/v1/models", params={"limit": 2, "after_id": first["last_id"]}).json()
    assert [m["id"] for m in after["data"]] == ids[2:4]
    before = http.get("/v1/models", params={"limit": 2, "before_id": ids[4]}).json()
    assert [m["id"] for m in before["data"]] == ids[2:4]
    assert len(http.get("/v1/models").json()["data"]) == min(20, len(ids))
    model = everything["data"][0]
    assert list(model)[:10] == [
        "type",
        "id",
        "display_name",
        "created_at",
        "max_input_tokens",
        "max_tokens",
        "lifecycle",
        "deprecated_at",
        "retires_at",
        "line",
    ]
    error(
        400,
        "invalid_request_error",
        "limit: Input should be less than or equal to 1000",
        http.get("/v1/models", params={"limit": 1001}),
    )
    retired = http.get(
        "/v1/models", params=[("lifecycle[]", "retired"), ("lifecycle[]", "deprecated")]
    ).json()
    assert {m["lifecycle"] for m in retired["data"]} == {"retired", "deprecated"}


def test_models_need_credentials_and_a_version(emu: AnthropicEmulator) -> None:
    with httpx2.Client(base_url=emu.base_url) as client:
        error(401, "authentication_error", "x-api-key header is required", client.get("/v1/models"))
        response = client.get("/v1/models/claude-opus-5", headers={"x-api-key": KEY})
        error(400, "invalid_request_error", "anthropic-version: header is required", response)
        response = client.get(
            "/v1/models/claude-opus-9", headers={"x-api-key": KEY, "anthropic-version": "2023-06-01"}
        )
        error(404, "not_found_error", "model: claude-opus-9", response)
