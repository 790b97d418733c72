"""The official ``groq`` SDK works against the emulator unchanged, errors included."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import groq
import pytest

from botticelli.emulator import Emulator, Fault

MODEL = "openai/gpt-oss-20b"
HELLO: Any = [{"role": "user", "content": "Say hello."}]


def error_field(exc: groq.APIStatusError, name: str) -> Any:
    """A field of the ``error`` object: the SDK keeps the decoded body but exposes no ``code``."""
    assert isinstance(exc.body, dict)
    return exc.body["error"].get(name)


@pytest.fixture
def client(emulator: Emulator, api_key: str) -> Iterator[groq.Groq]:
    with groq.Groq(base_url=emulator.base_url, api_key=api_key, max_retries=0, timeout=5.0) as sdk:
        yield sdk


@pytest.fixture
def aclient(emulator: Emulator, api_key: str) -> groq.AsyncGroq:
    return groq.AsyncGroq(base_url=emulator.base_url, api_key=api_key, max_retries=0, timeout=5.0)


def test_chat(client: groq.Groq) -> None:
    completion = client.chat.completions.create(model=MODEL, messages=HELLO, seed=3, max_completion_tokens=50)
    assert completion.object == "chat.completion"
    assert completion.model == MODEL
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (
        completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    assert completion.x_groq is not None and completion.x_groq.id.startswith("req_01")
    assert completion.system_fingerprint is not None and completion.system_fingerprint.startswith("fp_")


def test_raw_response_headers(client: groq.Groq) -> None:
    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=HELLO)
    completion = raw.parse()
    assert completion.x_groq is not None
    assert raw.headers["x-request-id"] == completion.x_groq.id
    assert raw.headers["x-ratelimit-limit-tokens"] == "8000"


def test_streaming(client: groq.Groq) -> None:
    chunks = list(client.chat.completions.create(model=MODEL, messages=HELLO, stream=True, max_tokens=6))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[0].x_groq is not None and str(chunks[0].x_groq.id).startswith("req_01")
    content = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert len(content.split()) == 6
    final = chunks[-1]
    assert final.choices[0].finish_reason == "length"
    assert final.x_groq is not None and final.x_groq.usage is not None
    assert final.x_groq.usage.completion_tokens == 6


async def test_async_chat_and_stream(aclient: groq.AsyncGroq) -> None:
    async with aclient:
        completion = await aclient.chat.completions.create(model=MODEL, messages=HELLO, seed=9)
        stream = await aclient.chat.completions.create(model=MODEL, messages=HELLO, seed=9, stream=True)
        pieces = [chunk.choices[0].delta.content or "" async for chunk in stream]
    assert "".join(pieces) == completion.choices[0].message.content


def test_models(client: groq.Groq) -> None:
    ids = [model.id for model in client.models.list().data]
    assert MODEL in ids and "llama-3.3-70b-versatile" not in ids
    model = client.models.retrieve("openai/gpt-oss-120b")
    assert (model.id, model.owned_by) == ("openai/gpt-oss-120b", "OpenAI")
    assert model.model_extra is not None and model.model_extra["context_window"] == 131072


def test_authentication_error(emulator: Emulator) -> None:
    with (
        groq.Groq(base_url=emulator.base_url, api_key="not-a-groq-key", max_retries=0) as sdk,
        pytest.raises(groq.AuthenticationError) as info,
    ):
        sdk.chat.completions.create(model=MODEL, messages=HELLO)
    assert info.value.status_code == 401
    assert error_field(info.value, "code") == "invalid_api_key"


def test_not_found_error(client: groq.Groq) -> None:
    with pytest.raises(groq.NotFoundError) as info:
        client.chat.completions.create(model="llama-3.1-405b-reasoning", messages=HELLO)
    assert error_field(info.value, "code") == "model_not_found"


@pytest.mark.parametrize(
    ("kwargs", "code", "param"),
    [
        ({"model": "mixtral-8x7b-32768"}, "model_decommissioned", None),
        ({"n": 2}, None, "n"),
    ],
)
def test_bad_request_error(
    client: groq.Groq, kwargs: dict[str, Any], code: str | None, param: str | None
) -> None:
    with pytest.raises(groq.BadRequestError) as info:
        client.chat.completions.create(**{"model": MODEL, "messages": HELLO, **kwargs})
    assert error_field(info.value, "code") == code
    assert error_field(info.value, "param") == param


def test_rate_limit_error(emulator: Emulator, client: groq.Groq) -> None:
    emulator.inject(Fault("rate_limit", retry_after=7))
    with pytest.raises(groq.RateLimitError) as info:
        client.chat.completions.create(model=MODEL, messages=HELLO)
    assert info.value.response.headers["retry-after"] == "7"
    assert error_field(info.value, "type") == "requests"


def test_sdk_retry_honours_retry_after(emulator: Emulator, api_key: str) -> None:
    emulator.inject(Fault("rate_limit", retry_after=0.05))
    with groq.Groq(base_url=emulator.base_url, api_key=api_key, max_retries=1) as sdk:
        completion = sdk.chat.completions.create(model=MODEL, messages=HELLO)
    assert completion.choices[0].message.content
    assert emulator.stats.by_status == {429: 1, 200: 1}
    assert [r.headers.get("x-stainless-retry-count") for r in emulator.requests] == ["0", "1"]


def test_fault_via_extra_headers(client: groq.Groq) -> None:
    with pytest.raises(groq.RateLimitError):
        client.chat.completions.create(
            model=MODEL, messages=HELLO, extra_headers={"x-emulator-fault": "rate_limit; retry_after=2"}
        )


def test_internal_server_error(emulator: Emulator, client: groq.Groq) -> None:
    emulator.inject(Fault("server_error", status=500))
    with pytest.raises(groq.InternalServerError) as info:
        client.chat.completions.create(model=MODEL, messages=HELLO)
    assert info.value.status_code == 500


def test_connection_error_on_drop(emulator: Emulator, client: groq.Groq) -> None:
    emulator.inject(Fault("drop"))
    with pytest.raises(groq.APIConnectionError) as info:
        client.chat.completions.create(model=MODEL, messages=HELLO)
    assert not isinstance(info.value, groq.APITimeoutError)


def test_timeout_on_hang(emulator: Emulator, api_key: str) -> None:
    emulator.inject(Fault("hang"))
    with groq.Groq(base_url=emulator.base_url, api_key=api_key, max_retries=0, timeout=0.3) as sdk:
        with pytest.raises(groq.APITimeoutError):
            sdk.chat.completions.create(model=MODEL, messages=HELLO)
        assert sdk.chat.completions.create(model=MODEL, messages=HELLO).choices[0].message.content


def test_api_error_on_stream_error_event(emulator: Emulator, client: groq.Groq) -> None:
    emulator.inject(Fault("stream_error", after_chunks=1))
    stream = client.chat.completions.create(model=MODEL, messages=HELLO, stream=True)
    received = []
    with pytest.raises(groq.APIError) as info:
        for chunk in stream:
            received.append(chunk)
    assert not isinstance(info.value, groq.APIStatusError)
    assert len(received) == 2
    assert "Failed to call a function" in info.value.message
    assert isinstance(info.value.body, dict) and info.value.body["code"] == "tool_use_failed"


async def test_async_api_error_on_stream_error_event(emulator: Emulator, aclient: groq.AsyncGroq) -> None:
    emulator.inject(Fault("stream_error", after_chunks=0, message="stream broke"))
    async with aclient:
        stream = await aclient.chat.completions.create(model=MODEL, messages=HELLO, stream=True)
        with pytest.raises(groq.APIError, match="stream broke"):
            async for _ in stream:
                pass


def test_permission_denied_on_html_403(emulator: Emulator, client: groq.Groq) -> None:
    emulator.inject(Fault("html_403"))
    with pytest.raises(groq.PermissionDeniedError) as info:
        client.chat.completions.create(model=MODEL, messages=HELLO)
    assert "Cloudflare" in info.value.response.text
