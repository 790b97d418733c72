"""The official ``anthropic`` SDK (2.x) works against the Anthropic emulator unchanged, errors included."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import anthropic
import httpx2
import pytest
from pydantic import BaseModel

from botticelli.emulator import Fault
from botticelli.emulator.anthropic import AnthropicEmulator, overloaded

KEY = "sk-ant-api03-test-0123456789"
MODEL = "claude-haiku-4-5"
DATED = "claude-haiku-4-5-20251001"
HELLO: Any = [{"role": "user", "content": "Say hello."}]
WEATHER: Any = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {
            "location": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["location"],
    },
}
ASK_WEATHER: Any = [{"role": "user", "content": "Use the get_weather tool for Paris."}]


@pytest.fixture
def emu() -> Iterator[AnthropicEmulator]:
    with AnthropicEmulator() as emulator:
        yield emulator


@pytest.fixture
def client(emu: AnthropicEmulator) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=emu.base_url, api_key=KEY, max_retries=0, timeout=10.0) as sdk:
        yield sdk


@pytest.fixture
async def aclient(emu: AnthropicEmulator) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(
        base_url=emu.base_url, api_key=KEY, max_retries=0, timeout=10.0
    ) as sdk:
        yield sdk


def text_of(message: anthropic.types.Message) -> str:
    return "".join(block.text for block in message.content if block.type == "text")


# -- messages.create ------------------------------------------------------------------------


def test_create_answers_a_message_in_the_sdk_types(
    client: anthropic.Anthropic, emu: AnthropicEmulator
) -> None:
    message = client.messages.create(model=MODEL, max_tokens=64, messages=HELLO)
    assert message.type == "message" and message.role == "assistant"
    assert message.id.startswith("msg_01") and len(message.id) == 28
    assert message.model == DATED  # the alias resolves to the dated id it names
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert [block.type for block in message.content] == ["text"]
    assert text_of(message)
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert message.usage.service_tier == "standard"
    sent = emu.requests[-1]
    assert sent.headers["anthropic-version"] == "2026-10-21"  # what the 2.x SDK sends (§1)
    assert sent.headers["authorization"] == f"Bearer {KEY}" and "x-api-key" not in sent.headers


def test_a_system_prompt_and_a_conversation_change_the_answer(client: anthropic.Anthropic) -> None:
    plain = client.messages.create(model=MODEL, max_tokens=64, messages=HELLO)
    again = client.messages.create(model=MODEL, max_tokens=64, messages=HELLO)
    system = client.messages.create(model=MODEL, max_tokens=64, system="Be terse.", messages=HELLO)
    blocks = client.messages.create(
        model=MODEL, max_tokens=64, system=[{"type": "text", "text": "Be terse."}], messages=HELLO
    )
    turns = client.messages.create(
        model=MODEL,
        max_tokens=64,
        messages=[
            {"role": "user", "content": "Say hello."},
            {"role": "assistant", "content": plain.content},  # the SDK's blocks, passed back
            {"role": "user", "content": [{"type": "text", "text": "Now say goodbye."}]},
        ],
    )
    assert text_of(plain) == text_of(again)  # deterministic
    assert text_of(system) == text_of(blocks) != text_of(plain)
    assert text_of(turns) != text_of(plain)
    assert turns.usage.input_tokens > plain.usage.input_tokens


def test_max_tokens_and_stop_sequences_set_the_stop_reason(client: anthropic.Anthropic) -> None:
    full = text_of(client.messages.create(model=MODEL, max_tokens=200, messages=HELLO))
    cut = client.messages.create(model=MODEL, max_tokens=3, messages=HELLO)
    assert cut.stop_reason == "max_tokens" and cut.usage.output_tokens == 3
    assert full.startswith(text_of(cut))
    word = full.split()[4]
    stopped = client.messages.create(
        model=MODEL, max_tokens=200, messages=HELLO, stop_sequences=["zzz", word]
    )
    assert stopped.stop_reason == "stop_sequence" and stopped.stop_sequence == word
    assert text_of(stopped) == full[: full.index(word)]


async def test_the_async_client_creates_and_streams(aclient: anthropic.AsyncAnthropic) -> None:
    message = await aclient.messages.create(model=MODEL, max_tokens=64, messages=HELLO)
    async with aclient.messages.stream(model=MODEL, max_tokens=64, messages=HELLO) as stream:
        pieces = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert "".join(pieces) == text_of(message) == text_of(final)
    assert len(pieces) > 1
    assert final.usage.output_tokens == message.usage.output_tokens


# -- messages.stream ------------------------------------------------------------------------


def test_stream_helpers_assemble_the_same_message(client: anthropic.Anthropic) -> None:
    expected = client.messages.create(model=MODEL, max_tokens=64, messages=HELLO)
    with client.messages.stream(model=MODEL, max_tokens=64, messages=HELLO) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(pieces) == text_of(expected) == text_of(final)
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == expected.usage.output_tokens
    assert final.usage.input_tokens == expected.usage.input_tokens


def test_raw_stream_events_come_in_the_documented_order(client: anthropic.Anthropic) -> None:
    events = list(client.messages.create(model=MODEL, max_tokens=16, messages=HELLO, stream=True))
    kinds = [event.type for event in events]
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(kinds[2:-3]) == {"content_block_delta"}  # `ping` is dropped by the SDK
    start = events[0]
    assert start.type == "message_start" and start.message.stop_reason is None
    delta = events[-2]
    assert delta.type == "message_delta" and delta.delta.stop_reason == "max_tokens"
    assert delta.usage.output_tokens == 16


def test_a_streamed_tool_call_is_assembled_from_input_json_deltas(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model=MODEL, max_tokens=256, tools=[WEATHER], messages=ASK_WEATHER) as stream:
        events = list(stream)
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert [block.type for block in final.content] == ["text", "tool_use"]  # auto: a word first
    call = final.content[1]
    assert call.type == "tool_use" and call.name == "get_weather" and call.id.startswith("toolu_01")
    assert isinstance(call.input, dict) and isinstance(call.input["location"], str)
    assert call.input.get("unit") in (None, "celsius", "fahrenheit")
    partial = [e for e in events if e.type == "input_json"]
    assert len(partial) > 1 and partial[-1].snapshot == call.input


def test_the_tool_loop_ends_with_a_text_answer(client: anthropic.Anthropic) -> None:
    first = client.messages.create(model=MODEL, max_tokens=256, tools=[WEATHER], messages=ASK_WEATHER)
    call = next(block for block in first.content if block.type == "tool_use")
    second = client.messages.create(
        model=MODEL,
        max_tokens=256,
        tools=[WEATHER],
        messages=[
            *ASK_WEATHER,
            {"role": "assistant", "content": first.content},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18 C"}]},
        ],
    )
    assert second.stop_reason == "end_turn" and [b.type for b in second.content] == ["text"]


@pytest.mark.parametrize(
    ("tool_choice", "prompt", "expected"),
    [
        ({"type": "auto"}, "Tell me a story.", None),
        ({"type": "none"}, "Use the get_weather tool.", None),
        ({"type": "any"}, "Tell me a story.", "get_weather"),
        ({"type": "tool", "name": "get_time"}, "Use the get_weather tool.", "get_time"),
        ({"type": "auto"}, "What is the get time now?", "get_time"),
    ],
)
def test_tool_choice_decides_whether_and_which_tool_is_called(
    client: anthropic.Anthropic, tool_choice: Any, prompt: str, expected: str | None
) -> None:
    clock: Any = {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}
    message = client.messages.create(
        model=MODEL,
        max_tokens=256,
        tools=[WEATHER, clock],
        tool_choice=tool_choice,
        messages=[{"role": "user", "content": prompt}],
    )
    calls = [block.name for block in message.content if block.type == "tool_use"]
    assert calls == ([expected] if expected else [])
    assert message.stop_reason == ("tool_use" if expected else "end_turn")
    if tool_choice["type"] in ("any", "tool"):  # forced: no words before the call
        assert [block.type for block in message.content] == ["tool_use"]


def test_thinking_comes_first_signed_and_goes_back_in_a_tool_loop(client: anthropic.Anthropic) -> None:
    thinking: Any = {"type": "enabled", "budget_tokens": 1024}
    with client.messages.stream(
        model="claude-sonnet-4-6", max_tokens=2048, thinking=thinking, tools=[WEATHER], messages=ASK_WEATHER
    ) as stream:
        kinds = [event.type for event in stream]
        first = stream.get_final_message()
    assert "thinking" in kinds and "signature" in kinds
    assert [block.type for block in first.content] == ["thinking", "text", "tool_use"]
    block = first.content[0]
    assert block.type == "thinking" and block.thinking and block.signature
    assert (
        first.usage.output_tokens_details is not None
        and first.usage.output_tokens_details.thinking_tokens > 0
    )
    call = first.content[2]
    assert call.type == "tool_use"
    result: Any = {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}],
    }
    follow = client.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=2048,
        thinking=thinking,
        tools=[WEATHER],
        messages=[*ASK_WEATHER, {"role": "assistant", "content": first.content}, result],
    )
    assert follow.stop_reason == "end_turn"
    tampered: Any = [
        {"type": "thinking", "thinking": block.thinking + "!", "signature": block.signature},
        call,
    ]
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=2048,
            thinking=thinking,
            tools=[WEATHER],
            messages=[*ASK_WEATHER, {"role": "assistant", "content": tampered}, result],
        )
    assert info.value.api_message == "messages.1.content.0: Invalid `signature` in `thinking` block"


def test_adaptive_thinking_with_omitted_display_sends_only_the_signature(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model="claude-opus-5",
        max_tokens=512,
        thinking={"type": "adaptive", "display": "omitted"},
        messages=HELLO,
    )
    block = message.content[0]
    assert block.type == "thinking" and block.thinking == "" and block.signature
    low = client.messages.create(
        model="claude-opus-5",
        max_tokens=512,
        thinking={"type": "adaptive"},
        output_config={"effort": "low"},
        messages=HELLO,
    )
    assert [b.type for b in low.content] == ["text"]  # adaptive: no thinking at low effort


class Weather(BaseModel):
    city: str
    celsius: float
    sunny: bool


def test_structured_output_parses_into_the_pydantic_model(client: anthropic.Anthropic) -> None:
    parsed = client.messages.parse(
        model="claude-sonnet-5", max_tokens=256, messages=HELLO, output_format=Weather
    )
    assert isinstance(parsed.parsed_output, Weather)
    with client.messages.stream(
        model="claude-sonnet-5", max_tokens=256, messages=HELLO, output_format=Weather
    ) as stream:
        streamed = stream.get_final_message()
    assert streamed.parsed_output == parsed.parsed_output  # same request, same JSON


def test_count_tokens_matches_the_usage_of_the_message(client: anthropic.Anthropic) -> None:
    counted = client.messages.count_tokens(model=MODEL, messages=HELLO, system="Be terse.", tools=[WEATHER])
    message = client.messages.create(
        model=MODEL, max_tokens=8, messages=HELLO, system="Be terse.", tools=[WEATHER]
    )
    assert counted.input_tokens == message.usage.input_tokens > 0


# -- models ---------------------------------------------------------------------------------


def test_models_list_pages_through_every_listed_model(client: anthropic.Anthropic) -> None:
    ids = [model.id for model in client.models.list(limit=3)]  # the SDK follows `after_id`
    assert len(ids) == len(set(ids)) > 10
    assert DATED in ids and "claude-opus-5" in ids and "claude-opus-4-5-20251101" in ids
    assert "claude-opus-4-1" not in ids  # retired: listed only when asked for
    first = client.models.list(limit=3)
    assert first.has_more and first.first_id == ids[0] and first.last_id == ids[2]
    retired = [model.id for model in client.models.list(lifecycle=["retired"])]
    assert "claude-opus-4-1" in retired and DATED not in retired


def test_models_retrieve_resolves_aliases_and_reports_the_lifecycle(client: anthropic.Anthropic) -> None:
    model = client.models.retrieve("claude-opus-4-5")
    assert model.id == "claude-opus-4-5-20251101" and model.display_name == "Claude Opus 4.5"
    assert model.lifecycle == "deprecated" and model.retires_at is not None
    assert model.retires_at.isoformat().startswith("2027-01-22")
    assert model.capabilities is not None and model.capabilities.thinking.types.enabled.supported
    opus5 = client.models.retrieve("claude-opus-5")
    assert opus5.lifecycle == "active" and opus5.line == "opus" and opus5.retires_at is None
    assert opus5.capabilities is not None and not opus5.capabilities.thinking.types.enabled.supported
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("claude-opus-9")


# -- the older API version ------------------------------------------------------------------


def test_the_2023_06_01_pin_with_x_api_key_and_sampling_parameters(emu: AnthropicEmulator) -> None:
    headers = {"anthropic-version": "2023-06-01", "X-Api-Key": KEY}
    with anthropic.Anthropic(
        base_url=emu.base_url, api_key=None, auth_token=None, default_headers=headers, max_retries=0
    ) as old:
        message = old.messages.create(
            model=MODEL, max_tokens=32, messages=HELLO, extra_body={"temperature": 0.0, "top_k": 5}
        )
        assert message.stop_reason in ("end_turn", "max_tokens")
        sent = emu.requests[-1].headers
        assert sent["anthropic-version"] == "2023-06-01" and sent["x-api-key"] == KEY
        with pytest.raises(anthropic.BadRequestError) as deprecated:
            old.messages.create(
                model="claude-opus-5", max_tokens=32, messages=HELLO, extra_body={"temperature": 0.5}
            )
        assert deprecated.value.api_message == "`temperature` is deprecated for this model."
        with pytest.raises(anthropic.BadRequestError) as mixed:
            old.messages.create(
                model=MODEL, max_tokens=32, messages=HELLO, extra_body={"temperature": 0.5, "top_p": 0.9}
            )
        assert mixed.value.api_message == (
            "`temperature` and `top_p` cannot both be specified for this model. Please use only one."
        )


def test_2026_10_21_refuses_sampling_parameters(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(model=MODEL, max_tokens=32, messages=HELLO, extra_body={"temperature": 1.0})
    assert info.value.api_message == "temperature: Extra inputs are not permitted"


# -- errors ---------------------------------------------------------------------------------


def test_each_error_status_raises_its_sdk_class(client: anthropic.Anthropic, emu: AnthropicEmulator) -> None:
    cases: list[tuple[Fault, type[anthropic.APIStatusError], str]] = [
        (Fault("status", status=400), anthropic.BadRequestError, "invalid_request_error"),
        (Fault("status", status=401), anthropic.AuthenticationError, "authentication_error"),
        (Fault("status", status=403), anthropic.PermissionDeniedError, "permission_error"),
        (Fault("status", status=404), anthropic.NotFoundError, "not_found_error"),
        (Fault("status", status=413), anthropic.ContentTooLargeError, "request_too_large"),
        (Fault("rate_limit"), anthropic.RateLimitError, "rate_limit_error"),
        (Fault("server_error"), anthropic.InternalServerError, "api_error"),
        (overloaded(), anthropic.OverloadedError, "overloaded_error"),
    ]
    for fault, error_class, error_type in cases:
        emu.inject(fault)
        with pytest.raises(error_class) as info:
            client.messages.create(model=MODEL, max_tokens=16, messages=HELLO)
        error = info.value
        assert type(error) is error_class, fault
        assert error.type == error_type
        assert isinstance(error.body, dict) and error.body["type"] == "error"
        assert error.request_id is not None and error.request_id == error.body["request_id"]
        assert error.request_id.startswith("req_011C")


def test_529_is_an_overloaded_error_and_an_internal_server_error(
    client: anthropic.Anthropic, emu: AnthropicEmulator
) -> None:
    emu.inject(overloaded())
    with pytest.raises(anthropic.APIStatusError) as info:
        client.messages.create(model=MODEL, max_tokens=16, messages=HELLO)
    assert isinstance(info.value, anthropic.OverloadedError) and isinstance(
        info.value, anthropic.InternalServerError
    )
    assert info.value.status_code == 529 and info.value.api_message == "Overloaded"


def test_real_validation_errors_raise_bad_request_and_not_found(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as missing:
        client.messages.create(model="claude-opus-9", max_tokens=16, messages=HELLO)
    assert missing.value.api_message == "model: claude-opus-9"
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(model="claude-opus-4-1", max_tokens=16, messages=HELLO)  # retired
    with pytest.raises(anthropic.BadRequestError) as too_many:
        client.messages.create(model=MODEL, max_tokens=10**6, messages=HELLO, timeout=30.0)
    assert too_many.value.api_message == (
        "max_tokens: 1000000 > 64000, which is the maximum allowed number of output tokens for " + DATED
    )
    with pytest.raises(anthropic.BadRequestError) as forced:
        client.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=2048,
            messages=HELLO,
            tools=[WEATHER],
            tool_choice={"type": "any"},
            thinking={"type": "enabled", "budget_tokens": 1024},
        )
    assert forced.value.api_message == "Thinking may not be enabled when tool_choice forces tool use."


def test_bad_credentials_raise_authentication_error(emu: AnthropicEmulator) -> None:
    with (
        anthropic.Anthropic(base_url=emu.base_url, api_key="not-a-key", max_retries=0) as sdk,
        pytest.raises(anthropic.AuthenticationError) as info,
    ):
        sdk.messages.create(model=MODEL, max_tokens=16, messages=HELLO)
    assert info.value.api_message == "Invalid bearer token"
    assert info.value.body == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "Invalid bearer token"},
        "request_id": info.value.request_id,
    }


def test_a_cloudflare_block_page_is_a_permission_denied_error(
    client: anthropic.Anthropic, emu: AnthropicEmulator
) -> None:
    emu.inject(Fault("html_403"))
    with pytest.raises(anthropic.PermissionDeniedError) as info:
        client.messages.create(model=MODEL, max_tokens=16, messages=HELLO)
    assert isinstance(info.value.body, str) and "Cloudflare" in info.value.body


# -- retries ---------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 2])
def test_the_sdk_retries_529_until_it_succeeds(emu: AnthropicEmulator, count: int) -> None:
    emu.inject(overloaded(count))
    with anthropic.Anthropic(base_url=emu.base_url, api_key=KEY, max_retries=2) as sdk:
        message = sdk.messages.create(model=MODEL, max_tokens=16, messages=HELLO)
    assert message.stop_reason is not None
    assert emu.stats.requests == count + 1
    assert emu.stats.by_status == {529: count, 200: 1}
    retries = [r.headers["x-stainless-retry-count"] for r in emu.requests]
    assert retries == [str(n) for n in range(count + 1)]


@pytest.mark.parametrize("count", [1, 2])
async def test_the_async_sdk_retries_429_after_retry_after(emu: AnthropicEmulator, count: int) -> None:
    emu.inject(Fault("rate_limit", retry_after=0.05, count=count))
    async with anthropic.AsyncAnthropic(base_url=emu.base_url, api_key=KEY, max_retries=2) as sdk:
        message = await sdk.messages.create(model=MODEL, max_tokens=16, messages=HELLO)
    assert message.content
    assert emu.stats.requests == count + 1 and emu.stats.rate_limited == count


def test_the_sdk_gives_up_after_max_retries(emu: AnthropicEmulator) -> None:
    emu.inject(Fault("rate_limit", retry_after=0.01, count=None))
    with (
        anthropic.Anthropic(base_url=emu.base_url, api_key=KEY, max_retries=1) as sdk,
        pytest.raises(anthropic.RateLimitError),
    ):
        sdk.messages.create(model=MODEL, max_tokens=16, messages=HELLO)
    assert emu.stats.requests == 2


def test_a_400_is_not_retried(emu: AnthropicEmulator) -> None:
    with (
        anthropic.Anthropic(base_url=emu.base_url, api_key=KEY, max_retries=2) as sdk,
        pytest.raises(anthropic.BadRequestError),
    ):
        sdk.messages.create(model=MODEL, max_tokens=16, messages=[{"role": "user", "content": ""}])
    assert emu.stats.requests == 1


# -- mid-stream faults ----------------------------------------------------------------------


def test_a_mid_stream_error_event_raises_and_is_not_retried(emu: AnthropicEmulator) -> None:
    emu.inject(Fault("stream_error", after_chunks=3))
    with anthropic.Anthropic(base_url=emu.base_url, api_key=KEY, max_retries=2) as sdk:
        pieces: list[str] = []
        with (
            pytest.raises(anthropic.APIStatusError) as info,
            sdk.messages.stream(model=MODEL, max_tokens=64, messages=HELLO) as stream,
        ):
            pieces.extend(stream.text_stream)
    assert len(pieces) == 3  # what came before the error event
    error = info.value
    assert type(error) is anthropic.APIStatusError and error.status_code == 200  # the stream's status (§5)
    assert error.body == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    assert emu.stats.requests == 1


async def test_a_truncated_stream_has_no_stop_reason(
    aclient: anthropic.AsyncAnthropic, emu: AnthropicEmulator
) -> None:
    emu.inject(Fault("truncate", after_chunks=2))
    async with aclient.messages.stream(model=MODEL, max_tokens=64, messages=HELLO) as stream:
        pieces = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert len(pieces) == 2 and final.stop_reason is None


def test_a_dropped_stream_raises_the_transport_error(
    client: anthropic.Anthropic, emu: AnthropicEmulator
) -> None:
    """The SDK does not wrap an error while reading a stream: httpx2's own error reaches the caller."""
    emu.inject(Fault("stream_drop", after_chunks=2))
    pieces: list[str] = []
    with (
        pytest.raises(httpx2.RemoteProtocolError),
        client.messages.stream(model=MODEL, max_tokens=64, messages=HELLO) as stream,
    ):
        pieces.extend(stream.text_stream)
    assert len(pieces) == 2
    assert emu.stats.faults_fired == {"stream_drop": 1} and emu.stats.completions == 0


def test_a_refusal_from_the_generation_failed_fault(
    client: anthropic.Anthropic, emu: AnthropicEmulator
) -> None:
    emu.inject(Fault("generation_failed"))
    message = client.messages.create(model=MODEL, max_tokens=64, messages=HELLO)
    assert message.stop_reason == "refusal" and text_of(message) == ""
    assert message.stop_details is not None and message.stop_details.category == "cyber"
