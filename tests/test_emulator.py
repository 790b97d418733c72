"""The Groq emulator over real HTTP: wire shapes, validation, faults, rate limits, control plane, CLI."""

from __future__ import annotations

import itertools
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx2
import orjson
import pytest

from botticelli.emulator import Emulator, FakeBackend, Fault, Limits, RateLimiter, go_duration
from botticelli.emulator.backend import Finish, Generation, StopScanner
from botticelli.emulator.common.limits import Denial, Snapshot

CHAT = "/openai/v1/chat/completions"
MODEL = "openai/gpt-oss-20b"
HELLO = [{"role": "user", "content": "Say hello."}]
REQ_ID = re.compile(r"^req_01[0-9a-hjkmnp-tv-z]{24}$")
GO_DURATION = re.compile(r"^(\d+h)?(\d+m)?\d+(\.\d+)?(s|ms)$")


@pytest.fixture
def http(emulator: Emulator, api_key: str) -> Iterator[httpx2.Client]:
    with httpx2.Client(
        base_url=emulator.base_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=5.0
    ) as client:
        yield client


def chat(client: httpx2.Client, timeout: float = 5.0, **body: Any) -> httpx2.Response:
    payload: dict[str, Any] = {"model": MODEL, "messages": HELLO, **body}
    return client.post(CHAT, json=payload, timeout=timeout)


def sse_frames(response: httpx2.Response) -> list[tuple[str | None, str]]:
    """(event, data) per SSE frame, checking the blank-line framing on the way."""
    frames: list[tuple[str | None, str]] = []
    event: str | None = None
    data: str | None = None
    for line in response.iter_lines():
        if line == "":
            assert data is not None, "blank line without a data field"
            frames.append((event, data))
            event = data = None
        elif line.startswith("event: "):
            event = line[7:]
        else:
            assert line.startswith("data: "), line
            data = line[6:]
    assert data is None, "last frame not terminated by a blank line"
    return frames


def stream_frames(client: httpx2.Client, **body: Any) -> list[tuple[str | None, str]]:
    payload: dict[str, Any] = {"model": MODEL, "messages": HELLO, "stream": True, **body}
    with client.stream("POST", CHAT, json=payload) as response:
        assert response.status_code == 200
        return sse_frames(response)


# -- shapes ---------------------------------------------------------------------------------------


def test_completion_body_and_headers_have_groq_shape(http: httpx2.Client) -> None:
    response = chat(http, seed=1234)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == [
        "id",
        "object",
        "created",
        "model",
        "choices",
        "usage",
        "usage_breakdown",
        "system_fingerprint",
        "x_groq",
        "service_tier",
    ]
    assert body["id"].startswith("chatcmpl-")
    assert uuid.UUID(body["id"][9:]).version == 4
    assert body["object"] == "chat.completion"
    assert abs(body["created"] - time.time()) < 5
    assert body["model"] == MODEL
    (choice,) = body["choices"]
    assert list(choice) == ["index", "message", "logprobs", "finish_reason"]
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"].strip()
    assert choice["logprobs"] is None
    assert choice["finish_reason"] == "stop"
    usage = body["usage"]
    assert list(usage) == [
        "queue_time",
        "prompt_tokens",
        "prompt_time",
        "completion_tokens",
        "completion_time",
        "total_tokens",
        "total_time",
    ]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["completion_tokens"] == len(choice["message"]["content"].split())
    assert body["usage_breakdown"] is None
    assert re.fullmatch(r"fp_[0-9a-f]{10}", body["system_fingerprint"])
    assert REQ_ID.match(body["x_groq"]["id"])
    assert body["x_groq"]["seed"] == 1234
    assert body["service_tier"] == "on_demand"

    headers = response.headers
    assert headers["x-request-id"] == body["x_groq"]["id"]
    assert headers["x-ratelimit-limit-requests"] == "1000"  # free plan RPD of gpt-oss-20b
    assert headers["x-ratelimit-limit-tokens"] == "8000"  # free plan TPM
    assert headers["x-ratelimit-remaining-requests"] == "999"
    assert int(headers["x-ratelimit-remaining-tokens"]) < 8000
    assert GO_DURATION.match(headers["x-ratelimit-reset-requests"])
    assert GO_DURATION.match(headers["x-ratelimit-reset-tokens"])
    assert "retry-after" not in headers


def test_stream_framing_matches_groq(http: httpx2.Client) -> None:
    frames = stream_frames(http, seed=7)
    assert all(event is None for event, _ in frames)
    assert frames[-1][1] == "[DONE]"
    chunks = [orjson.loads(data) for _, data in frames[:-1]]
    first, *middle, final = chunks
    ids = {c["id"] for c in chunks}
    assert len(ids) == 1 and ids.pop().startswith("chatcmpl-")
    for chunk in chunks:
        assert chunk["object"] == "chat.completion.chunk"
        assert list(chunk)[:5] == ["id", "object", "created", "model", "system_fingerprint"]
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert first["choices"][0]["finish_reason"] is None
    assert REQ_ID.match(first["x_groq"]["id"]) and first["x_groq"]["seed"] == 7
    assert middle and all(list(c["choices"][0]["delta"]) == ["content"] for c in middle)
    assert all("x_groq" not in c and "usage" not in c for c in middle)
    assert final["choices"][0]["delta"] == {}
    assert final["choices"][0]["finish_reason"] == "stop"
    assert final["x_groq"]["id"] == first["x_groq"]["id"]
    assert final["x_groq"]["usage"] == final["usage"]
    assert final["usage"]["completion_tokens"] == len(middle)
    streamed = "".join(c["choices"][0]["delta"]["content"] for c in middle)
    assert streamed == chat(http, seed=7).json()["choices"][0]["message"]["content"]


def test_stream_frames_are_flushed_token_by_token(api_key: str) -> None:
    with (
        Emulator(token_delay=0.05) as emu,
        httpx2.Client(base_url=emu.base_url, headers={"Authorization": f"Bearer {api_key}"}) as client,
    ):
        payload = {"model": MODEL, "messages": HELLO, "stream": True, "max_tokens": 4}
        arrivals: list[float] = []
        with client.stream("POST", CHAT, json=payload) as response:
            for line in response.iter_lines():
                if line.startswith("data: "):
                    arrivals.append(time.perf_counter())
    assert len(arrivals) == 1 + 4 + 1 + 1  # role, 4 tokens, final, [DONE]
    gaps = [b - a for a, b in itertools.pairwise(arrivals[:5])]
    assert min(gaps) > 0.03, gaps  # each token arrived on its own, not buffered to the end


def test_token_delay_slows_non_streaming_replies_too(api_key: str) -> None:
    with (
        Emulator(token_delay=0.02) as emu,
        httpx2.Client(base_url=emu.base_url, headers={"Authorization": f"Bearer {api_key}"}) as client,
    ):
        started = time.perf_counter()
        assert chat(client, max_tokens=5).status_code == 200
        assert time.perf_counter() - started >= 0.1


def test_seed_makes_output_deterministic(http: httpx2.Client) -> None:
    def text(**kw: Any) -> str:
        return str(chat(http, **kw).json()["choices"][0]["message"]["content"])

    assert text(seed=42) == text(seed=42)
    assert text(seed=42) != text(seed=43)
    unseeded = [chat(http).json() for _ in range(3)]
    assert all(isinstance(b["x_groq"]["seed"], int) for b in unseeded)
    assert len({b["choices"][0]["message"]["content"] for b in unseeded}) > 1
    echoed = unseeded[0]["x_groq"]["seed"]  # the seed Groq reports reproduces the reply
    assert text(seed=echoed) == unseeded[0]["choices"][0]["message"]["content"]
    assert text(temperature=0, seed=1) == text(temperature=0, seed=2)  # greedy ignores the seed


@pytest.mark.parametrize("field", ["max_completion_tokens", "max_tokens"])
def test_max_tokens_cuts_with_finish_reason_length(http: httpx2.Client, field: str) -> None:
    body = chat(http, **{field: 3}).json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 3
    assert len(body["choices"][0]["message"]["content"].split()) == 3


def test_stop_sequence_stops_generation(http: httpx2.Client) -> None:
    full = chat(http, seed=5).json()["choices"][0]["message"]["content"]
    words = full.split(" ")
    stop = " " + words[4]
    expected = full[: full.index(stop)]
    body = chat(http, seed=5, stop=[stop, "zzz-never"]).json()
    assert body["choices"][0]["message"]["content"] == expected
    assert body["choices"][0]["finish_reason"] == "stop"
    frames = stream_frames(http, seed=5, stop=stop)
    chunks = [orjson.loads(d) for _, d in frames[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == expected
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_stop_scanner_holds_back_partial_matches() -> None:
    scanner = StopScanner(["END"])
    assert scanner.feed("abc E") == ("abc ", False)
    assert scanner.feed("N") == ("", False)
    assert scanner.feed("Dx") == ("", True)
    scanner = StopScanner(["xyz"])
    assert scanner.feed("ax") == ("a", False)
    assert scanner.feed("b") == ("xb", False)
    assert scanner.flush() == ""
    assert scanner.feed("end x") == ("end ", False)
    assert scanner.flush() == "x"  # a reply that ends on a stop prefix keeps it


async def test_generation_keeps_text_held_back_for_a_stop_that_never_came() -> None:
    class Pieces:
        def count_tokens(self, messages: Any) -> int:
            return 1

        async def stream(self, messages: Any, **kw: Any) -> Any:
            for piece in ("one", " tw", "o E"):
                yield piece

    generation = Generation(
        Pieces(), HELLO, max_tokens=10, temperature=1, top_p=1, seed=0, stop=("two!", "END")
    )
    assert "".join([p async for p in generation.pieces()]) == "one two E"
    assert (generation.completion_tokens, generation.finish_reason) == (3, "stop")


async def test_backend_can_state_its_finish_reason() -> None:
    class TwoWords:
        def count_tokens(self, messages: Any) -> int:
            return 1

        async def stream(self, messages: Any, **kw: Any) -> Any:
            yield "one"
            yield " two"
            yield Finish("length")

    generation = Generation(TwoWords(), HELLO, max_tokens=10, temperature=1, top_p=1, seed=0, stop=())
    assert [p async for p in generation.pieces()] == ["one", " two"]
    assert (generation.completion_tokens, generation.finish_reason) == (2, "length")


def test_fake_backend_counts_prompt_tokens_by_chars() -> None:
    backend = FakeBackend()
    assert backend.count_tokens([{"role": "user", "content": "x" * 40}]) == 3 + 4 + 10
    assert backend.count_tokens([{"role": "user", "content": [{"type": "text", "text": "abcd"}]}]) == 8


def test_custom_backend_is_used(api_key: str) -> None:
    class Echo:
        def count_tokens(self, messages: Any) -> int:
            return 11

        async def stream(self, messages: Any, **kw: Any) -> Any:
            for word in messages[-1]["content"].split():
                yield word + " "

    with (
        Emulator(backend=Echo()) as emu,
        httpx2.Client(base_url=emu.base_url, headers={"Authorization": f"Bearer {api_key}"}) as client,
    ):
        body = chat(client).json()
    assert body["choices"][0]["message"]["content"] == "Say hello. "
    assert body["usage"]["prompt_tokens"] == 11


# -- validation -----------------------------------------------------------------------------------


def error_of(response: httpx2.Response) -> dict[str, Any]:
    body = response.json()
    assert list(body) == ["error"]
    error: dict[str, Any] = body["error"]
    return error


def test_unknown_model_is_404_model_not_found(http: httpx2.Client) -> None:
    response = chat(http, model="llama-3.1-405b-reasoning")
    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "message": "The model `llama-3.1-405b-reasoning` does not exist or you do not have access to it.",
            "type": "invalid_request_error",
            "code": "model_not_found",
        }
    }


def test_decommissioned_model_is_400(http: httpx2.Client) -> None:
    response = chat(http, model="llama-3.1-70b-versatile")
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "message": "The model `llama-3.1-70b-versatile` has been decommissioned and is no longer "
            "supported. Please refer to https://console.groq.com/docs/deprecations for a recommendation on "
            "which model to use instead.",
            "type": "invalid_request_error",
            "code": "model_decommissioned",
        }
    }


def test_model_retired_for_free_keys_is_404(http: httpx2.Client) -> None:
    response = chat(http, model="llama-3.3-70b-versatile")
    assert response.status_code == 404
    assert error_of(response)["code"] == "model_not_found"


@pytest.mark.parametrize(
    ("body", "param", "message"),
    [
        ({"n": 2}, "n", "'n' : number must be at most 1"),
        ({"messages": []}, "messages", "'messages' : minimum number of items is 1"),
        (
            {"messages": [{"role": "user", "content": "hi", "name": "bob"}]},
            "messages",
            "'name' is unsupported",
        ),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages", "role"),
        ({"temperature": 2.5}, "temperature", "'temperature' : number must be at most 2"),
        ({"temperature": -0.1}, "temperature", "'temperature' : number must be at least 0"),
        ({"top_p": 1.5}, "top_p", "'top_p' : number must be at most 1"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "maximum number of items is 4"),
        ({"max_tokens": 0}, "max_tokens", "at least 1"),
        ({"logprobs": True}, "logprobs", "not supported"),
        ({"model": None}, "model", "'model'"),
    ],
)
def test_invalid_parameters_are_400(
    http: httpx2.Client, body: dict[str, Any], param: str, message: str
) -> None:
    response = chat(http, **body)
    assert response.status_code == 400
    error = error_of(response)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert message in error["message"]


def test_max_completion_tokens_above_model_limit(http: httpx2.Client) -> None:
    response = chat(http, model="qwen/qwen3.8-27b", max_completion_tokens=16385)
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "message": "`max_completion_tokens` must be less than or equal to `16384`, the maximum value for "
            "`max_completion_tokens` is less than the `context_window` for this model",
            "type": "invalid_request_error",
            "param": "max_completion_tokens",
        }
    }
    assert chat(http, model="qwen/qwen3.8-27b", max_completion_tokens=16384).status_code == 200


def test_context_window_exceeded(http: httpx2.Client) -> None:
    model = "meta-llama/llama-prompt-guard-2-22m"  # context window 512
    long_prompt = [{"role": "user", "content": "word " * 400}]  # ~500 tokens at chars/4
    response = chat(http, model=model, messages=long_prompt, max_tokens=100)
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "message": "Please reduce the length of the messages or completion.",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "context_length_exceeded",
        }
    }
    assert chat(http, model=model, messages=long_prompt, max_tokens=5).status_code == 200


def test_malformed_json_body_is_400(http: httpx2.Client) -> None:
    response = http.post(
        CHAT, content=b'{"model": "x", "messages": [', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert error_of(response)["type"] == "invalid_request_error"


@pytest.mark.parametrize("authorization", [None, "Bearer sk-not-groq", "Basic gsk_abc", "Bearer"])
def test_bad_or_missing_key_is_401(emulator: Emulator, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = httpx2.post(
        emulator.base_url + CHAT, json={"model": MODEL, "messages": HELLO}, headers=headers
    )
    assert response.status_code == 401
    assert response.json() == {
        "error": {"message": "Invalid API Key", "type": "invalid_request_error", "code": "invalid_api_key"}
    }
    assert httpx2.get(emulator.base_url + "/openai/v1/models", headers=headers).status_code == 401


def test_explicit_api_keys_are_the_only_ones_accepted() -> None:
    with Emulator(api_keys={"gsk_good"}) as emu:
        url = emu.base_url + CHAT
        payload = {"model": MODEL, "messages": HELLO}
        assert httpx2.post(url, json=payload, headers={"Authorization": "Bearer gsk_good"}).status_code == 200
        assert (
            httpx2.post(url, json=payload, headers={"Authorization": "Bearer gsk_other"}).status_code == 401
        )


def test_unknown_url_is_404(http: httpx2.Client) -> None:
    response = http.post("/openai/v1/embeddings/nope", json={})
    assert response.status_code == 404
    assert error_of(response)["code"] == "unknown_url"


# -- models ---------------------------------------------------------------------------------------


def test_models_list_has_live_models_only(http: httpx2.Client) -> None:
    body = http.get("/openai/v1/models").json()
    assert body["object"] == "list"
    ids = {m["id"] for m in body["data"]}
    assert {"openai/gpt-oss-20b", "openai/gpt-oss-120b", "qwen/qwen3.8-27b"} <= ids
    assert "llama-3.3-70b-versatile" not in ids and "mixtral-8x7b-32768" not in ids
    for model in body["data"]:
        assert list(model) == [
            "id",
            "object",
            "created",
            "owned_by",
            "active",
            "context_window",
            "public_apps",
            "max_completion_tokens",
        ]


def test_model_retrieve_with_slash_in_id(http: httpx2.Client) -> None:
    response = http.get("/openai/v1/models/openai/gpt-oss-120b")
    assert response.status_code == 200
    assert response.json() == {
        "id": "openai/gpt-oss-120b",
        "object": "model",
        "created": 1754408224,
        "owned_by": "OpenAI",
        "active": True,
        "context_window": 131072,
        "public_apps": None,
        "max_completion_tokens": 65536,
    }
    assert http.get("/openai/v1/models/openai%2Fgpt-oss-120b").status_code == 200
    assert http.get("/openai/v1/models/gemma2-9b-it").status_code == 404


# -- faults ---------------------------------------------------------------------------------------


def test_rate_limit_fault_fires_count_times(emulator: Emulator, http: httpx2.Client) -> None:
    emulator.inject(Fault("rate_limit", retry_after=1.0, count=2))
    first, second, third = (chat(http) for _ in range(3))
    for response in (first, second):
        assert response.status_code == 429
        assert response.headers["retry-after"] == "1"
        assert REQ_ID.match(response.headers["x-request-id"])
        error = error_of(response)
        assert (error["type"], error["code"]) == ("requests", "rate_limit_exceeded")
        assert re.fullmatch(
            rf"Rate limit reached for model `{MODEL}` in organization `org_01\w{{24}}` "
            r"service tier `on_demand` on requests per minute \(RPM\): Limit 30, Used 30, Requested 1\. "
            r"Please try again in 1s\. "
            r"Need more tokens\? Upgrade to Dev Tier today at https://console\.groq\.com/settings/billing",
            error["message"],
        )
    assert third.status_code == 200
    stats = emulator.stats
    assert stats.faults_fired == {"rate_limit": 2}
    assert stats.rate_limited == 2
    assert stats.by_status == {429: 2, 200: 1}


def test_rate_limit_fault_variants(emulator: Emulator, http: httpx2.Client) -> None:
    emulator.inject(Fault("rate_limit", retry_after_ms=250))
    response = chat(http)
    assert response.headers["retry-after-ms"] == "250"
    assert "retry-after" not in response.headers
    assert "Please try again in 250ms." in error_of(response)["message"]

    emulator.inject(Fault("rate_limit", daily=True))
    error = error_of(chat(http))
    assert error["type"] == "tokens"
    assert "on tokens per day (TPD): Limit 200000" in error["message"]
    assert "Please try again in 9m38.016s." in error["message"]

    emulator.inject(Fault("rate_limit", limit="tokens per minute (TPM)", retry_after=2.5))
    response = chat(http)
    assert response.headers["retry-after"] == "2.5"
    assert response.headers["x-ratelimit-remaining-tokens"] == "0"
    assert "on tokens per minute (TPM): Limit 8000" in error_of(response)["message"]


def test_fault_restricted_to_a_model(emulator: Emulator, http: httpx2.Client) -> None:
    emulator.inject(Fault("server_error", model="qwen/qwen3.8-27b"))
    assert chat(http).status_code == 200
    assert len(emulator.pending_faults) == 1
    assert chat(http, model="qwen/qwen3.8-27b").status_code == 500
    assert emulator.pending_faults == []


def test_unlimited_fault_until_reset(emulator: Emulator, http: httpx2.Client) -> None:
    emulator.inject(Fault("server_error", count=None, status=502))
    assert [chat(http).status_code for _ in range(3)] == [502, 502, 502]
    emulator.reset()
    assert chat(http).status_code == 200


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_error_fault(emulator: Emulator, http: httpx2.Client, status: int) -> None:
    emulator.inject(Fault("server_error", status=status))
    response = chat(http)
    assert response.status_code == status
    assert error_of(response)["type"] == "internal_server_error"


def test_status_fault_defaults_and_custom_body(emulator: Emulator, http: httpx2.Client) -> None:
    emulator.inject(Fault("status", status=498))
    response = chat(http)
    assert response.status_code == 498
    error = error_of(response)
    assert error["code"] == "capacity_exceeded" and "`flex` tier capacity exceeded" in error["message"]

    emulator.inject(Fault("status", status=422, body={"error": {"message": "nope", "type": "x"}}))
    response = chat(http)
    assert (response.status_code, response.json()) == (422, {"error": {"message": "nope", "type": "x"}})

    emulator.inject(Fault("status", status=409, headers={"x-should-retry": "false"}, code="conflict"))
    response = chat(http)
    assert response.status_code == 409
    assert response.headers["x-should-retry"] == "false"
    assert error_of(response) == {"message": "Conflict", "type": "invalid_request_error", "code": "conflict"}


def test_drop_closes_the_connection_without_response(emulator: Emulator, http: httpx2.Client) -> None:
    emulator.inject(Fault("drop"))
    with pytest.raises((httpx2.RemoteProtocolError, httpx2.ReadError)):
        chat(http)
    assert chat(http).status_code == 200  # the server is fine afterwards
    assert 200 in emulator.stats.by_status and sum(emulator.stats.by_status.values()) == 1


def test_hang_never_answers_but_blocks_nothing(api_key: str) -> None:
    emu = Emulator().start()
    url = emu.base_url + CHAT
    payload = {"model": MODEL, "messages": HELLO}
    headers = {"Authorization": f"Bearer {api_key}"}
    outcome: list[BaseException] = []

    def wait_for_the_hung_request() -> None:
        try:
            httpx2.post(url, json=payload, headers=headers, timeout=10)
        except httpx2.HTTPError as exc:
            outcome.append(exc)

    hung = threading.Thread(target=wait_for_the_hung_request)
    try:
        emu.inject(Fault("hang", count=2))
        with pytest.raises(httpx2.ReadTimeout):
            httpx2.post(url, json=payload, headers=headers, timeout=0.3)
        hung.start()
        time.sleep(0.1)
        assert httpx2.post(url, json=payload, headers=headers, timeout=2).status_code == 200
        assert hung.is_alive()  # still waiting for an answer that never comes
    finally:
        started = time.perf_counter()
        emu.stop()
        stop_time = time.perf_counter() - started
    hung.join(timeout=5)
    assert not hung.is_alive()
    assert len(outcome) == 1  # stopping the server released it without a response
    assert stop_time < 2.0


def test_stream_error_fault_sends_error_event(emulator: Emulator, http: httpx2.Client) -> None:
    emulator.inject(Fault("stream_error", after_chunks=2))
    frames = stream_frames(http)
    assert [event for event, _ in frames] == [None, None, None, "error"]  # role + 2 content chunks
    assert orjson.loads(frames[-1][1]) == {
        "error": {
            "message": "Failed to call a function. Please adjust your prompt. "
            "See 'failed_generation' for more details.",
            "type": "invalid_request_error",
            "code": "tool_use_failed",
            "failed_generation": "Tool use failed: JSON does not match the expected schema for tool calls",
            "status_code": 400,
        }
    }
    emulator.inject(
        Fault("stream_error", after_chunks=0, message="boom", status_code=500, type="server_error")
    )
    frames = stream_frames(http)
    assert orjson.loads(frames[-1][1]) == {
        "error": {"message": "boom", "type": "server_error", "code": "tool_use_failed", "status_code": 500}
    }


def test_stream_only_faults_wait_for_a_stream(emulator: Emulator, http: httpx2.Client) -> None:
    emulator.inject(Fault("truncate"))
    assert chat(http).status_code == 200
    assert emulator.pending_faults == [{"kind": "truncate", "count": 1}]
    assert stream_frames(http)[-1][1] != "[DONE]"


def test_stream_drop_aborts_mid_stream(emulator: Emulator, http: httpx2.Client) -> None:
    emulator.inject(Fault("stream_drop", after_chunks=3))
    received: list[str] = []
    payload = {"model": MODEL, "messages": HELLO, "stream": True}
    with (
        pytest.raises((httpx2.RemoteProtocolError, httpx2.ReadError)),
        http.stream("POST", CHAT, json=payload) as response,
    ):
        received.extend(line for line in response.iter_lines() if line.startswith("data: "))
    assert len(received) == 4  # role chunk + 3 content chunks, then the connection died


def test_truncate_ends_cleanly_without_done(emulator: Emulator, http: httpx2.Client) -> None:
    emulator.inject(Fault("truncate", after_chunks=2))
    frames = stream_frames(http)
    chunks = [orjson.loads(d) for _, d in frames]
    assert len(chunks) == 3
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks)


def test_malformed_fault(emulator: Emulator, http: httpx2.Client) -> None:
    emulator.inject(Fault("malformed"))
    response = chat(http)
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()

    emulator.inject(Fault("malformed", after_chunks=1))
    frames = stream_frames(http)
    bad = []
    for _, data in frames[:-1]:
        try:
            orjson.loads(data)
        except orjson.JSONDecodeError:
            bad.append(data)
    assert len(bad) == 1
    assert frames[-1][1] == "[DONE]"


def test_html_403_fault(emulator: Emulator, http: httpx2.Client) -> None:
    emulator.inject(Fault("html_403"))
    response = chat(http)
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert "Cloudflare" in response.text and "<html" in response.text


def test_slow_first_token(emulator: Emulator, http: httpx2.Client) -> None:
    emulator.inject(Fault("slow_first_token", delay=0.3), Fault("slow_first_token", delay=0.3))
    started = time.perf_counter()
    assert chat(http).status_code == 200
    assert time.perf_counter() - started >= 0.3
    payload = {"model": MODEL, "messages": HELLO, "stream": True}
    started = time.perf_counter()
    with http.stream("POST", CHAT, json=payload) as response:
        headers_after = time.perf_counter() - started
        first = next(line for line in response.iter_lines() if line.startswith("data: "))
        first_after = time.perf_counter() - started
    assert "assistant" in first
    assert headers_after < 0.25 <= 0.3 <= first_after


def test_fault_in_request_header(emulator: Emulator, http: httpx2.Client) -> None:
    payload = {"model": MODEL, "messages": HELLO}
    response = http.post(CHAT, json=payload, headers={"x-emulator-fault": "rate_limit; retry_after=2"})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "2"
    response = http.post(
        CHAT, json=payload, headers={"x-emulator-fault": "rate_limit; limit=tokens per day (TPD); daily=true"}
    )
    assert "tokens per day (TPD)" in error_of(response)["message"]
    assert (
        http.post(CHAT, json=payload, headers={"x-emulator-fault": "status; status=408"}).status_code == 408
    )
    assert http.post(CHAT, json=payload, headers={"x-emulator-fault": "no_such_fault"}).status_code == 400
    assert chat(http).status_code == 200
    assert emulator.stats.faults_fired == {"rate_limit": 2, "status": 1}


def test_fault_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault("rate_limits")
    with pytest.raises(ValueError, match="retry_afer"):
        Fault("rate_limit", retry_afer=1)
    with pytest.raises(ValueError, match="count"):
        Fault("drop", count=0)
    with pytest.raises(ValueError, match="status"):
        Fault("status")
    with pytest.raises(ValueError, match="unknown rate limit"):
        Fault("rate_limit", limit="bananas per hour")
    fault = Fault.from_header("stream_error; after_chunks=3; message='a b'")
    assert fault == Fault("stream_error", after_chunks=3, message="a b")
    assert Fault.from_dict(fault.to_dict()) == fault


# -- rate limits ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "decimals", "text"),
    [
        (179.56, 2, "2m59.56s"),
        (7.66, 2, "7.66s"),
        (6, 2, "6s"),
        (578.016, 3, "9m38.016s"),
        (1438.56, 2, "23m58.56s"),
        (11.455, 3, "11.455s"),
        (1.5, 3, "1.5s"),
        (120, 3, "2m0s"),
        (3600, 3, "1h0m0s"),
        (0.5, 3, "500ms"),
        (0.0123, 2, "20ms"),  # rounded up, never early
        (0, 3, "0s"),
        (7.6600001, 2, "7.67s"),
    ],
)
def test_go_duration(seconds: float, decimals: int, text: str) -> None:
    assert go_duration(seconds, decimals) == text


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_limiter_matches_groq_documented_reset_example() -> None:
    # [RL]: RPD limit 14400, remaining 14370, reset-requests 2m59.56s -> 30 used, 1 request / 6 s
    clock = FakeClock()
    limiter = RateLimiter(clock)
    limits = Limits(rpd=14400, tpm=18000)
    for _ in range(30):
        snapshot = limiter.acquire("k", "m", limits, 0, enforce=True)
    clock.now += 0.44
    snapshot = limiter.snapshot("k", "m", limits)
    headers = snapshot.headers()
    assert headers["x-ratelimit-limit-requests"] == "14400"
    assert headers["x-ratelimit-remaining-requests"] == "14370"
    assert headers["x-ratelimit-reset-requests"] == "2m59.56s"
    assert headers["x-ratelimit-limit-tokens"] == "18000"
    assert headers["x-ratelimit-reset-tokens"] == "0s"


def test_limiter_refills_continuously_and_denies_with_wait() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock)
    limits = Limits(rpm=2, tpm=6000)
    assert isinstance(limiter.acquire("k", "m", limits, 2500, enforce=True), Snapshot)
    assert isinstance(limiter.acquire("k", "m", limits, 2500, enforce=True), Snapshot)
    denial = limiter.acquire("k", "m", limits, 2000, enforce=True)
    assert isinstance(denial, Denial)
    # RPM needs 1 request at 1/30 s -> 30 s; TPM needs 1000 more tokens at 100/s -> 10 s: the longer wins
    assert (denial.status, denial.limit_kind, denial.limit, denial.used, denial.requested) == (
        429,
        "rpm",
        2,
        2,
        1,
    )
    assert denial.wait == pytest.approx(30.0)
    assert denial.retry_after() == "30"
    assert denial.error_type == "requests" and denial.limit_name == "requests per minute (RPM)"
    clock.now += 29.9
    assert isinstance(limiter.acquire("k", "m", limits, 2000, enforce=True), Denial)
    clock.now += 0.1
    snapshot = limiter.acquire("k", "m", limits, 2000, enforce=True)
    assert isinstance(snapshot, Snapshot)
    # 5000 used, 3000 refilled over 30 s, 2000 taken: 4000 used -> 40 s to refill at 100 tokens/s
    assert snapshot.remaining_tokens == 2000
    assert snapshot.reset_tokens == pytest.approx(40.0)
    assert isinstance(limiter.acquire("other-key", "m", limits, 10, enforce=True), Snapshot)


def test_limiter_tpm_denial_and_refund() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock)
    limits = Limits(tpm=6000, tpd=100000)
    limiter.acquire("k", "m", limits, 5000, enforce=True)
    denial = limiter.acquire("k", "m", limits, 2000, enforce=True)
    assert isinstance(denial, Denial)
    assert (denial.limit_kind, denial.used, denial.requested) == ("tpm", 5000, 2000)
    assert denial.wait == pytest.approx(10.0)
    limiter.refund("k", "m", 4000)
    assert isinstance(limiter.acquire("k", "m", limits, 2000, enforce=True), Snapshot)


def test_limiter_413_when_request_exceeds_capacity() -> None:
    limiter = RateLimiter(FakeClock())
    denial = limiter.acquire("k", "m", Limits(tpm=6000), 12328, enforce=True)
    assert isinstance(denial, Denial)
    assert (denial.status, denial.limit_kind, denial.limit, denial.requested) == (413, "tpm", 6000, 12328)


def test_limiter_without_enforcement_only_reports() -> None:
    limiter = RateLimiter(FakeClock())
    limits = Limits(rpm=1, rpd=5, tpm=100)
    results = [limiter.acquire("k", "m", limits, 500, enforce=False) for _ in range(10)]
    snapshot = results[-1]
    assert all(isinstance(r, Snapshot) for r in results) and isinstance(snapshot, Snapshot)
    assert (snapshot.remaining_requests, snapshot.remaining_tokens) == (0, 0)
    assert snapshot.reset_requests == pytest.approx(86400.0)
    assert snapshot.reset_tokens == pytest.approx(60.0)


def test_enforced_rpm_gives_429_with_groq_body(api_key: str) -> None:
    with (
        Emulator(enforce_limits=True, limits={"rpm": 2}) as emu,
        httpx2.Client(base_url=emu.base_url, headers={"Authorization": f"Bearer {api_key}"}) as client,
    ):
        assert [chat(client).status_code for _ in range(2)] == [200, 200]
        response = chat(client)
        assert response.status_code == 429
        assert response.headers["retry-after"] == "30"
        assert response.headers["x-ratelimit-remaining-requests"] == "998"
        error = error_of(response)
        assert (error["type"], error["code"]) == ("requests", "rate_limit_exceeded")
        assert re.fullmatch(
            rf"Rate limit reached for model `{MODEL}` in organization `{emu.org_id}` "
            r"service tier `on_demand` on requests per minute \(RPM\): Limit 2, Used 2, Requested 1\. "
            r"Please try again in (29\.9\d\d|30)s\. Need more tokens\? .*",
            error["message"],
        )
        other = httpx2.post(
            emu.base_url + CHAT,
            json={"model": MODEL, "messages": HELLO},
            headers={"Authorization": "Bearer gsk_someone_else"},
        )
        assert other.status_code == 200  # buckets are per key
        assert chat(client, model="qwen/qwen3.8-27b").status_code == 200  # ... and per model
        emu.enforce_limits = False
        assert chat(client).status_code == 200
        assert emu.stats.rate_limited == 1


def test_enforced_tpm_request_too_large_is_413(api_key: str) -> None:
    with (
        Emulator(enforce_limits=True, limits={"tpm": 100}) as emu,
        httpx2.Client(base_url=emu.base_url, headers={"Authorization": f"Bearer {api_key}"}) as client,
    ):
        response = chat(client, max_tokens=200)
        assert response.status_code == 413
        assert "retry-after" not in response.headers
        error = error_of(response)
        assert (error["type"], error["code"]) == ("tokens", "rate_limit_exceeded")
        assert error["message"].startswith(
            f"Request too large for model `{MODEL}` in organization `{emu.org_id}` service tier `on_demand` "
            "on tokens per minute (TPM): Limit 100, Requested 2"
        )
        assert "please reduce your message size and try again" in error["message"]
        assert chat(client, max_tokens=50).status_code == 200


def test_tokens_are_charged_up_front_then_corrected(api_key: str) -> None:
    with (
        Emulator(enforce_limits=True, limits={"tpm": 1000}) as emu,
        httpx2.Client(base_url=emu.base_url, headers={"Authorization": f"Bearer {api_key}"}) as client,
    ):
        first = chat(client, max_tokens=900)
        assert first.status_code == 200
        assert int(first.headers["x-ratelimit-remaining-tokens"]) < 100  # prompt + 900 reserved
        second = chat(client, max_tokens=500)  # fits only because unused tokens were given back
        assert second.status_code == 200, second.text


def test_developer_plan_limits() -> None:
    with Emulator(plan="developer") as emu:
        response = httpx2.post(
            emu.base_url + CHAT,
            json={"model": MODEL, "messages": HELLO},
            headers={"Authorization": "Bearer gsk_x"},
        )
        assert response.headers["x-ratelimit-limit-requests"] == "500000"
        assert response.headers["x-ratelimit-limit-tokens"] == "250000"
    with pytest.raises(ValueError, match="plan"):
        Emulator(plan="enterprise")
    with pytest.raises(ValueError, match="limit"):
        Emulator(limits={"rph": 5})


# -- control plane and inspection -----------------------------------------------------------------


def test_control_plane(emulator: Emulator, http: httpx2.Client) -> None:
    base = emulator.base_url + "/_emulator"
    queued = httpx2.post(base + "/faults", json={"kind": "rate_limit", "retry_after": 3, "count": 2})
    assert queued.status_code == 200
    assert queued.json()["queued"] == 1
    assert httpx2.get(base + "/faults").json()["pending"] == [
        {"kind": "rate_limit", "count": 2, "retry_after": 3}
    ]
    response = chat(http)
    assert (response.status_code, response.headers["retry-after"]) == (429, "3")
    stats = httpx2.get(base + "/stats").json()
    assert stats["requests"] == 1
    assert stats["by_model"] == {MODEL: 1}
    assert stats["by_status"] == {"429": 1}
    assert stats["faults_fired"] == {"rate_limit": 1}
    assert stats["rate_limited"] == 1
    assert stats["faults_total"] == 1
    recorded = httpx2.get(base + "/requests").json()["requests"]
    assert recorded[0]["headers"]["authorization"] == "<redacted>"
    assert recorded[0]["body"]["model"] == MODEL
    assert httpx2.post(base + "/faults", json=[{"kind": "drop"}, {"kind": "hang"}]).json()["queued"] == 2
    bad = httpx2.post(base + "/faults", json={"kind": "meteor_strike"})
    assert bad.status_code == 400 and "meteor_strike" in bad.json()["error"]["message"]
    assert httpx2.post(base + "/reset").json() == {"reset": True}
    assert httpx2.get(base + "/faults").json()["pending"] == []
    assert httpx2.get(base + "/stats").json()["requests"] == 0
    assert chat(http).status_code == 200


def test_requests_and_stats_are_recorded(emulator: Emulator, http: httpx2.Client, api_key: str) -> None:
    chat(http, seed=1)
    chat(http, stream=True)
    http.get("/openai/v1/models")
    requests = emulator.requests
    assert [(r.method, r.path) for r in requests] == [
        ("POST", CHAT),
        ("POST", CHAT),
        ("GET", "/openai/v1/models"),
    ]
    assert requests[0].body == {"model": MODEL, "messages": HELLO, "seed": 1}
    assert requests[0].headers["authorization"] == f"Bearer {api_key}"
    stats = emulator.stats
    assert (stats.requests, stats.completions, stats.streams) == (3, 2, 1)
    assert stats.by_path == {CHAT: 2, "/openai/v1/models": 1}
    assert stats.prompt_tokens > 0 and stats.completion_tokens > 0
    emulator.reset()
    assert emulator.requests == [] and emulator.stats.requests == 0


def test_lifecycle() -> None:
    emu = Emulator()
    with pytest.raises(RuntimeError):
        _ = emu.base_url
    emu.start()
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", emu.base_url)
        with pytest.raises(RuntimeError):
            emu.start()
    finally:
        emu.stop()
    emu.stop()  # idempotent


async def test_async_context_manager_serves_in_the_running_loop(api_key: str) -> None:
    async with (
        Emulator() as emu,
        httpx2.AsyncClient(base_url=emu.base_url, headers={"Authorization": f"Bearer {api_key}"}) as client,
    ):
        response = await client.post(CHAT, json={"model": MODEL, "messages": HELLO})
        assert response.status_code == 200


# -- command line ---------------------------------------------------------------------------------


def run_cli(*args: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "botticelli.emulator", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.fullmatch(r"botticelli emulator listening on (http://127\.0\.0\.1:\d+)\n", line)
    assert match, (line, process.stderr.read() if process.poll() is not None and process.stderr else "")
    return process, match.group(1)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_cli_serves_until_signalled(sig: signal.Signals) -> None:
    process, url = run_cli("--enforce-limits", "--rpm", "1", "--api-key", "gsk_cli", "--token-delay", "0")
    try:
        headers = {"Authorization": "Bearer gsk_cli"}
        payload = {"model": MODEL, "messages": HELLO}
        assert httpx2.post(url + CHAT, json=payload, headers=headers, timeout=5).status_code == 200
        assert httpx2.post(url + CHAT, json=payload, headers=headers, timeout=5).status_code == 429
        assert (
            httpx2.post(url + CHAT, json=payload, headers={"Authorization": "Bearer gsk_x"}).status_code
            == 401
        )
    finally:
        process.send_signal(sig)
        stdout, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert stdout == ""  # exactly one line was printed, and it was read above
    assert "gsk_cli" not in stderr


def test_cli_rejects_unknown_backend() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "botticelli.emulator", "--backend", "nope"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 2
    assert "unknown emulator backend 'nope'" in result.stderr


def test_client_disconnects_are_counted(api_key: str) -> None:
    with (
        Emulator(token_delay=0.02) as emu,
        httpx2.Client(base_url=emu.base_url, headers={"Authorization": f"Bearer {api_key}"}) as client,
    ):
        payload = {"model": MODEL, "messages": HELLO, "stream": True, "max_tokens": 100}
        with client.stream("POST", CHAT, json=payload) as response:
            next(response.iter_lines())
        emu.inject(Fault("hang"))
        with pytest.raises(httpx2.ReadTimeout):
            chat(client, timeout=0.2)
        deadline = time.monotonic() + 2
        while emu.stats.client_disconnects < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert emu.stats.client_disconnects == 2
        assert emu.stats.completions == 0
