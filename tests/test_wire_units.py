"""Pure pieces of the wire layer: header parsing, the retry policy, error mapping, the codec."""

from __future__ import annotations

import orjson
import pytest

from botticelli import GenerateRequest, Input, Message, Role
from botticelli._retry import backoff, retry_delay, should_retry
from botticelli._status import error_from_content
from botticelli.codecs import openai_chat as codec
from botticelli.errors import (
    APITimeoutError,
    AuthenticationError,
    ErrorKind,
    InvalidRequestError,
    ModelNotFoundError,
    RateLimitError,
    ResponseError,
    ServerError,
)
from botticelli.providers.groq import GROQ


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
def test_retried_statuses(status: int) -> None:
    assert should_retry(status, {})


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422, 498])
def test_not_retried_statuses(status: int) -> None:
    assert not should_retry(status, {})


def test_a_provider_can_forbid_retrying_a_status() -> None:
    assert should_retry(529, {})  # Anthropic's overloaded: a 5xx, retried
    assert not should_retry(503, {}, never=frozenset({503}))
    assert not should_retry(498, {}, GROQ.no_retry)


def test_server_hint_wins() -> None:
    assert should_retry(400, {"x-should-retry": "true"})
    assert not should_retry(503, {"x-should-retry": "false"})


def test_backoff_grows_with_jitter_and_cap() -> None:
    for taken, base in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (10, 8.0)]:
        delay = backoff(taken)
        assert base * 0.75 < delay <= base
    assert retry_delay(0, {"retry-after": "3"}) == 3.0
    assert retry_delay(0, {"retry-after": "61"}) <= 0.5  # over the cap: back-off instead


def _error(status: int, body: object, headers: dict[str, str] | None = None, model: str = "m") -> Exception:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return error_from_content(
        status,
        {"x-request-id": "req_01abc", **(headers or {})},
        content,
        codec=codec.GROQ,
        provider=GROQ,
        model=model,
    )


def test_error_mapping_classes_and_context() -> None:
    auth = _error(
        401,
        {"error": {"message": "Invalid API Key", "type": "invalid_request_error", "code": "invalid_api_key"}},
    )
    assert isinstance(auth, AuthenticationError)
    assert (auth.status, auth.code, auth.request_id, auth.provider, auth.kind) == (
        401,
        "invalid_api_key",
        "req_01abc",
        "groq",
        ErrorKind.AUTHENTICATION,
    )
    assert isinstance(_error(500, {"error": {"message": "boom"}}), ServerError)
    assert isinstance(_error(498, {"error": {"message": "flex", "code": "capacity_exceeded"}}), ServerError)
    assert isinstance(_error(408, {"error": {"message": "slow"}}), APITimeoutError)
    assert isinstance(_error(422, {"error": {"message": "bad"}}), InvalidRequestError)
    too_large = _error(
        413, {"error": {"message": "Request too large", "type": "tokens", "code": "rate_limit_exceeded"}}
    )
    assert isinstance(too_large, InvalidRequestError) and "not retried" in too_large.message


def test_rate_limit_error_reads_limit_and_wait() -> None:
    message = (
        "Rate limit reached for model `openai/gpt-oss-20b` in organization `org_01` service tier `on_demand` "
        "on tokens per minute (TPM): Limit 8000, Used 4437, Requested 9854. Please try again in 11.455s."
    )
    error = _error(429, {"error": {"message": message, "type": "tokens", "code": "rate_limit_exceeded"}})
    assert isinstance(error, RateLimitError)
    assert error.retry_after == pytest.approx(11.455)
    assert error.limit == "tokens per minute (TPM)"
    assert not error.daily
    daily = _error(
        429,
        {
            "error": {
                "message": message.replace("per minute (TPM)", "per day (TPD)"),
                "code": "rate_limit_exceeded",
            }
        },
        {"retry-after": "578"},
    )
    assert isinstance(daily, RateLimitError) and daily.daily and daily.retry_after == 578.0


def test_retired_model_error_names_replacement() -> None:
    body = {
        "error": {
            "message": "The model `llama-3.1-8b-instant` does not exist or you do not have access to it.",
            "type": "invalid_request_error",
            "code": "model_not_found",
        }
    }
    error = _error(404, body, model="llama-3.1-8b-instant")
    assert isinstance(error, ModelNotFoundError)
    assert error.replacement == "openai/gpt-oss-20b"
    assert "openai/gpt-oss-20b" in str(error)
    unknown = _error(
        404, body | {"error": {**body["error"], "message": "The model `nope` does not exist"}}, model="nope"
    )
    assert isinstance(unknown, ModelNotFoundError) and unknown.replacement is None


def test_html_403_is_an_authentication_error_with_a_readable_message() -> None:
    page = (
        b"<html><head><title>Attention Required! | Cloudflare</title></head>"
        b"<body>Please enable cookies.</body></html>"
    )
    error = _error(403, page, {"content-type": "text/html; charset=UTF-8"})
    assert isinstance(error, AuthenticationError)
    assert "HTML page" in error.message and "Cloudflare" in error.message and "<" not in error.message


def test_key_never_in_error_text() -> None:
    error = _error(401, {"error": {"message": "Invalid API Key gsk_abcdefghijklmnop1234 used"}})
    assert "gsk_abcdefghijklmnop1234" not in str(error)
    assert "gsk_abcdefghijklmnop1234" not in repr(error)


def test_encode_request_groq_profile() -> None:
    request = GenerateRequest(
        messages=[Message.system("s"), Message.user("u")],
        max_tokens=10,
        temperature=0.0,
        top_p=0.9,
        stop=["x"],
        seed=7,
        extra={"reasoning_effort": "low"},
    )
    body = orjson.loads(codec.GROQ.encode(request, "m", stream=True))
    assert body == {
        "model": "m",
        "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
        "max_completion_tokens": 10,
        "temperature": 0.0,
        "top_p": 0.9,
        "stop": ["x"],
        "seed": 7,
        "stream": True,
        "reasoning_effort": "low",
    }
    generic = orjson.loads(codec.GENERIC.encode(request, "m", stream=False))
    assert generic["max_tokens"] == 10 and "stream" not in generic


def test_encode_images_and_reject_audio() -> None:
    message = (
        Message.builder()
        .role(Role.USER)
        .content([Input.text("what?"), Input.image("https://x/i.png")])
        .build()
    )
    wire = codec.encode_message(message)
    assert wire["content"] == [
        {"type": "text", "text": "what?"},
        {"type": "image_url", "image_url": {"url": "https://x/i.png"}},
    ]
    audio = Message(Role.USER, (Input.audio(b"RIFF"),))
    with pytest.raises(InvalidRequestError, match="audio"):
        codec.encode_message(audio, "groq", "m")


def test_stream_decoder_frames() -> None:
    decoder = codec.GROQ.stream_decoder(provider="groq", model="m", request_id=None, rate_limit=None)
    first = orjson.dumps(
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}], "x_groq": {"id": "req_1"}}
    ).decode()
    assert decoder.feed(first) is None and decoder.request_id == "req_1"
    chunk = decoder.feed(orjson.dumps({"choices": [{"index": 0, "delta": {"content": "Hi"}}]}).decode())
    assert chunk is not None and chunk.text == "Hi"
    usage = {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4, "queue_time": 0.01}
    last = {
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        "x_groq": {"id": "req_1", "usage": usage},
    }
    assert decoder.feed(orjson.dumps(last).decode()) is None
    assert decoder.finish_reason == "stop" and decoder.usage is not None and decoder.usage.total_tokens == 4
    assert decoder.feed("[DONE]") is None and decoder.done
    with pytest.raises(ResponseError, match="not valid JSON"):
        decoder.feed("{nope")
    error = {
        "error": {"message": "Failed to call a function.", "code": "tool_use_failed", "status_code": 400}
    }
    with pytest.raises(InvalidRequestError) as caught:  # Groq's failed generation: change the request
        decoder.feed(orjson.dumps(error).decode(), "error")
    assert caught.value.code == "tool_use_failed" and caught.value.status == 400
    other = {"error": {"message": "overloaded", "code": "server_busy"}}
    with pytest.raises(ResponseError):
        decoder.feed(orjson.dumps(other).decode(), "error")
