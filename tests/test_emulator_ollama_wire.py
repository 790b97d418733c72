"""The Ollama emulator's bytes over raw HTTP: body shapes and key order, NDJSON framing, content
types, error bodies and statuses, load/unload, ``/api/ps``, faults and the control plane."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx2
import jsonschema
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from botticelli.emulator import Fault
from botticelli.emulator.ollama import OllamaEmulator

HELLO = [{"role": "user", "content": "Say hello."}]
JSON = "application/json; charset=utf-8"
NDJSON = "application/x-ndjson"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")
METRICS = [
    "total_duration",
    "load_duration",
    "prompt_eval_count",
    "prompt_eval_duration",
    "eval_count",
    "eval_duration",
]


@pytest.fixture
def emu() -> Iterator[OllamaEmulator]:
    with OllamaEmulator() as server:
        yield server


@pytest.fixture
def http(emu: OllamaEmulator) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=emu.base_url, timeout=10) as client:
        yield client


def chat(http: httpx2.Client, headers: dict[str, str] | None = None, **body: Any) -> httpx2.Response:
    payload: dict[str, Any] = {"model": "llama3.2", "messages": HELLO, **body}
    return http.post("/api/chat", content=orjson.dumps(payload), headers=headers)


def ndjson(response: httpx2.Response) -> list[dict[str, Any]]:
    """The lines of a stream, checking the framing: every line ``\\n``-terminated JSON, no SSE."""
    raw = response.read()
    assert raw.endswith(b"\n"), raw[-40:]
    lines = raw.split(b"\n")[:-1]
    assert all(line and not line.startswith(b"data:") for line in lines)
    return [orjson.loads(line) for line in lines]


def stream(
    http: httpx2.Client, path: str = "/api/chat", **body: Any
) -> tuple[httpx2.Response, list[dict[str, Any]]]:
    payload: dict[str, Any] = {"model": "llama3.2", **body}
    if path == "/api/chat":
        payload.setdefault("messages", HELLO)
    with http.stream("POST", path, content=orjson.dumps(payload)) as response:
        return response, ndjson(response)


# -- shapes --------------------------------------------------------------------------------------


def test_the_json_answer_has_ollamas_keys_in_go_order(http: httpx2.Client) -> None:
    response = chat(http, stream=False)
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON
    body = response.json()
    assert list(body) == ["model", "created_at", "message", "done", "done_reason", *METRICS]
    assert body["model"] == "llama3.2" and body["done"] is True and body["done_reason"] == "stop"
    assert TIMESTAMP.match(body["created_at"])
    assert list(body["message"]) == ["role", "content"] and body["message"]["role"] == "assistant"
    assert all(isinstance(body[name], int) and body[name] > 0 for name in METRICS)


def test_streaming_is_the_default_and_is_ndjson(http: httpx2.Client) -> None:
    response, lines = stream(http)
    assert response.status_code == 200
    assert response.headers["content-type"] == NDJSON
    assert "content-length" not in response.headers
    *deltas, final = lines
    assert len(deltas) > 3
    for line in deltas:
        assert list(line) == ["model", "created_at", "message", "done"]
        assert line["done"] is False and TIMESTAMP.match(line["created_at"])
        assert list(line["message"]) == ["role", "content"] and line["message"]["content"]
    assert list(final) == ["model", "created_at", "message", "done", "done_reason", *METRICS]
    assert final["message"] == {"role": "assistant", "content": ""}
    assert final["eval_count"] == len(deltas)


def test_thinking_lines_carry_empty_content(http: httpx2.Client) -> None:
    _, lines = stream(http, model="qwen3", think=True)
    thinking = [line for line in lines if "thinking" in line["message"]]
    assert thinking and all(line["message"]["content"] == "" for line in thinking)
    assert list(thinking[0]["message"]) == ["role", "content", "thinking"]
    whole = chat(http, model="qwen3", think=True, stream=False).json()
    assert list(whole["message"]) == ["role", "content", "thinking"]


def test_tool_calls_on_the_wire(http: httpx2.Client) -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "lookup",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
        },
    }
    body = chat(
        http, stream=False, tools=[tool], messages=[{"role": "user", "content": "Use lookup."}]
    ).json()
    assert body["done_reason"] == "stop"
    assert body["message"]["content"] == ""
    [call] = body["message"]["tool_calls"]
    assert re.fullmatch(r"call_[a-z0-9]{8}", call["id"])
    assert call["function"]["index"] == 0 and call["function"]["name"] == "lookup"
    assert isinstance(call["function"]["arguments"], dict) and isinstance(
        call["function"]["arguments"]["q"], str
    )


def test_generate_shapes(http: httpx2.Client) -> None:
    response = http.post("/api/generate", json={"model": "llama3.2", "prompt": "Hi", "stream": False})
    body = response.json()
    assert list(body) == ["model", "created_at", "response", "done", "done_reason", "context", *METRICS]
    assert len(body["context"]) == body["prompt_eval_count"] + body["eval_count"]
    raw = http.post("/api/generate", json={"model": "llama3.2", "prompt": "Hi", "raw": True, "stream": False})
    assert "context" not in raw.json()
    _, lines = stream(http, "/api/generate", prompt="Hi")
    assert all(list(line) == ["model", "created_at", "response", "done"] for line in lines[:-1])
    assert lines[-1]["done"] and "context" in lines[-1]


def test_go_escapes_html_characters(http: httpx2.Client) -> None:
    raw = http.post("/api/show", json={"model": "llama3.2"}).content
    assert b"\\u003c|eot_id|\\u003e" in raw and b"<" not in raw
    error = chat(http, model="qwen3", think="<x>").content
    assert error == (
        b'{"error":"invalid think value: \\"\\u003cx\\u003e\\" '
        b'(must be \\"high\\", \\"medium\\", \\"low\\", \\"max\\", true, or false)"}'
    )


# -- load, unload, keep_alive, ps ----------------------------------------------------------------


def test_no_messages_loads_the_model(http: httpx2.Client, emu: OllamaEmulator) -> None:
    response = http.post("/api/chat", json={"model": "gemma3"})  # streams by default, yet one object
    assert response.headers["content-type"] == JSON
    body = response.json()
    assert list(body) == ["model", "created_at", "message", "done", "done_reason"]
    assert body["message"] == {"role": "assistant", "content": ""} and body["done_reason"] == "load"
    assert emu.loaded_models == ["gemma3:latest"]
    unloaded = http.post("/api/chat", json={"model": "gemma3", "messages": [], "keep_alive": 0}).json()
    assert unloaded["done_reason"] == "unload" and emu.loaded_models == []
    generated = http.post("/api/generate", json={"model": "llama3.2"}).json()
    assert list(generated) == ["model", "created_at", "response", "done", "done_reason"]
    assert generated["done_reason"] == "load"


@pytest.mark.parametrize(
    ("keep_alive", "seconds"), [("10m", 600), (30, 30), ("1h30m", 5400), (None, 300), ("1.5s", 1.5)]
)
def test_keep_alive_sets_expires_at(http: httpx2.Client, keep_alive: Any, seconds: float) -> None:
    body: dict[str, Any] = {"model": "llama3.2", "messages": HELLO, "stream": False}
    if keep_alive is not None:
        body["keep_alive"] = keep_alive
    before = time.time()
    assert http.post("/api/chat", json=body).status_code == 200
    [entry] = http.get("/api/ps").json()["models"]
    assert list(entry) == [
        "name",
        "model",
        "size",
        "digest",
        "details",
        "expires_at",
        "size_vram",
        "context_length",
    ]
    expires = _epoch(entry["expires_at"])
    assert before + seconds - 1 <= expires <= time.time() + seconds + 1


def test_negative_keep_alive_is_forever(http: httpx2.Client) -> None:
    http.post("/api/chat", json={"model": "llama3.2", "keep_alive": -1})
    [entry] = http.get("/api/ps").json()["models"]
    assert entry["expires_at"].startswith("23")  # now + MaxInt64 ns: the 24th century


def _epoch(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp[:26].rstrip("Z") + "+00:00").timestamp()


# -- errors ----------------------------------------------------------------------------------------

ERRORS: list[tuple[bytes, int, str]] = [
    (b"", 400, "missing request body"),
    (b"   \n", 400, "missing request body"),
    (b"{", 400, "unexpected EOF"),
    (b"nope", 400, "invalid character 'o' in literal null (expecting 'u')"),
    (b"{'model': 1}", 400, "invalid character '\\'' looking for beginning of object key string"),
    (b"[1]", 400, "json: cannot unmarshal array into Go value of type api.ChatRequest"),
    (b"null", 400, "model is required"),
    (b"{}", 400, "model is required"),
    (
        b'{"model": 5}',
        400,
        "json: cannot unmarshal number into Go struct field ChatRequest.model of type string",
    ),
    (b'{"model": "bad name!"}', 400, "invalid model name"),
    (b'{"model": "llama9"}', 404, "model 'llama9' not found"),
    (b'{"model": "llama3.2", "top_logprobs": 21}', 400, "top_logprobs must be between 0 and 20"),
    (
        b'{"model": "llama3.2", "messages": [{"role": "user", "content": [{"type": "text"}]}]}',
        400,
        "json: cannot unmarshal array into Go struct field ChatRequest.messages.content of type string",
    ),
    (
        b'{"model":"llama3.2","messages":[{"role":"assistant","tool_calls":[{"function":{"name":"f","arguments":"{}"}}]}]}',
        400,
        "json: cannot unmarshal string into Go struct field "
        "ChatRequest.messages.tool_calls.function.arguments of type api.ToolCallFunctionArguments",
    ),
    (
        b'{"model": "llama3.2", "stream": "yes"}',
        400,
        "json: cannot unmarshal string into Go struct field ChatRequest.stream of type bool",
    ),
    (b'{"model": "llama3.2", "think": 1}', 400, "think must be a boolean or string"),
    (b'{"model": "llama3.2", "keep_alive": true}', 400, "unsupported duration type: 'bool'"),
    (b'{"model": "llama3.2", "keep_alive": "5"}', 400, 'time: missing unit in duration "5"'),
    (b'{"model": "llama3.2", "messages": [], "think": true}', 400, '"llama3.2" does not support thinking'),
    (
        b'{"model": "qwen3", "messages": [], "think": "extreme"}',
        400,
        'invalid think value: "extreme" (must be "high", "medium", "low", "max", true, or false)',
    ),
    (b'{"model": "nomic-embed-text", "messages": []}', 400, '"nomic-embed-text" does not support chat'),
    (
        b'{"model": "llama3.2", "options": {"num_predict": "ten"}}',
        500,
        'option "num_predict" must be of type integer',
    ),
    (b'{"model": "llama3.2", "options": {"stop": "x"}}', 500, 'option "stop" must be of type array'),
    (b'{"model": "llama3.2", "options": {"stop": [1]}}', 500, 'option "stop" must be of an array of strings'),
    (
        b'{"model": "llama3.2", "messages": [{"role": "user", "content": "x", "images": ["abc"]}]}',
        400,
        "illegal base64 data at input byte 0",
    ),
    (b'{"model": "LLAMA3.2", "TOP_LOGPROBS": 99}', 400, "top_logprobs must be between 0 and 20"),
]


@pytest.mark.parametrize(("body", "status", "message"), ERRORS)
def test_error_bodies(http: httpx2.Client, body: bytes, status: int, message: str) -> None:
    response = http.post("/api/chat", content=body)
    assert response.status_code == status
    assert response.headers["content-type"] == JSON
    assert response.json() == {"error": message}


def test_an_image_that_is_not_base64(http: httpx2.Client) -> None:
    body = {"model": "gemma3", "messages": [{"role": "user", "content": "x", "images": ["QUJD!"]}]}
    assert http.post("/api/chat", json=body).json() == {"error": "illegal base64 data at input byte 4"}


def test_a_runner_error_on_a_streamed_request_is_plain_json(http: httpx2.Client) -> None:
    body = {"model": "llama3.2", "messages": HELLO, "format": "xml"}
    response = http.post("/api/chat", json=body)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"  # set before the stream started
    assert response.json() == {"error": 'invalid format: expected "json" or a valid JSON schema'}
    whole = http.post("/api/chat", json={**body, "stream": False})
    assert whole.headers["content-type"] == JSON and whole.status_code == 400


def test_generate_errors(http: httpx2.Client) -> None:
    def post(**body: Any) -> tuple[int, Any]:
        response = http.post("/api/generate", json=body)
        return response.status_code, response.json()

    assert post() == (404, {"error": "model '' not found"})
    assert post(model="llama3.2", prompt="x", raw=True, system="s") == (
        400,
        {"error": "raw mode does not support template, system, or context"},
    )
    assert post(model="llama3.2", prompt="x", suffix="y") == (
        400,
        {"error": "registry.ollama.ai/library/llama3.2:latest does not support insert"},
    )
    assert post(model="nomic-embed-text", prompt="x") == (
        400,
        {"error": '"nomic-embed-text" does not support generate'},
    )
    assert post(model="llama3.2", prompt=5) == (
        400,
        {"error": "json: cannot unmarshal number into Go struct field GenerateRequest.prompt of type string"},
    )


def test_other_endpoints(http: httpx2.Client) -> None:
    root = http.get("/")
    assert (root.status_code, root.text, root.headers["content-type"]) == (
        200,
        "Ollama is running",
        "text/plain; charset=utf-8",
    )
    head = http.head("/")
    assert head.status_code == 200 and head.content == b""
    assert http.get("/api/version").json() == {"version": "0.32.15"}
    missing = http.get("/api/nope")
    assert (missing.status_code, missing.text, missing.headers["content-type"]) == (
        404,
        "404 page not found",
        "text/plain",
    )
    wrong = http.get("/api/chat")
    assert (wrong.status_code, wrong.text) == (405, "405 method not allowed")
    assert http.post("/api/show", json={}).json() == {"error": "model is required"}
    assert http.post("/api/show", json={"name": "llama3.2"}).status_code == 200  # the deprecated field
    assert http.post("/api/embeddings", json={"model": "x1", "prompt": "a"}).json() == {
        "error": 'model "x1" not found, try pulling it first'
    }
    assert http.post("/api/embed", json={"model": "llama3.2", "input": [1]}).json() == {
        "error": "invalid input type"
    }
    assert http.post("/api/embed", json={"model": "llama3.2", "input": []}).json() == {
        "model": "llama3.2",
        "embeddings": [],
    }


def test_tags_body(http: httpx2.Client) -> None:
    models = http.get("/api/tags").json()["models"]
    assert [m["name"] for m in models] == [
        "llama3.2:latest",
        "qwen3:latest",
        "gemma3:latest",
        "nomic-embed-text:latest",
    ]
    first = models[0]
    assert list(first) == ["name", "model", "modified_at", "size", "digest", "details"]
    assert list(first["details"]) == [
        "parent_model",
        "format",
        "family",
        "families",
        "parameter_size",
        "quantization_level",
    ]
    assert TIMESTAMP.match(first["modified_at"])


def test_show_body(http: httpx2.Client) -> None:
    body = http.post("/api/show", json={"model": "registry.ollama.ai/library/Llama3.2:latest"}).json()
    assert list(body) == [
        "license",
        "modelfile",
        "parameters",
        "template",
        "details",
        "model_info",
        "capabilities",
        "modified_at",
    ]
    assert list(body["model_info"]) == sorted(body["model_info"])  # a Go map: sorted keys
    assert body["model_info"]["general.architecture"] == "llama"
    assert body["parameters"].splitlines()[0] == 'stop                           "<|start_header_id|>"'


# -- faults ----------------------------------------------------------------------------------------


def test_truncate_ends_the_stream_without_the_done_line(emu: OllamaEmulator, http: httpx2.Client) -> None:
    emu.inject(Fault("truncate", after_chunks=2))
    _, lines = stream(http)
    assert len(lines) == 2 and not any(line["done"] for line in lines)


def test_stream_error_line(emu: OllamaEmulator, http: httpx2.Client) -> None:
    emu.inject(Fault("stream_error", after_chunks=1, message="boom", status_code=500))
    response, lines = stream(http)
    assert response.status_code == 200
    assert lines[-1] == {"error": "boom", "status": 500} and len(lines) == 2


def test_malformed_stream_line(emu: OllamaEmulator, http: httpx2.Client) -> None:
    emu.inject(Fault("malformed", after_chunks=1))
    with http.stream("POST", "/api/chat", json={"model": "llama3.2", "messages": HELLO}) as response:
        lines = response.read().split(b"\n")
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(lines[1])
    assert orjson.loads(lines[-2])["done"] is True


def test_malformed_json_body(emu: OllamaEmulator, http: httpx2.Client) -> None:
    emu.inject(Fault("malformed"))
    response = chat(http, stream=False)
    assert response.status_code == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(response.content)


def test_rate_limit_status_and_html_403_faults(emu: OllamaEmulator, http: httpx2.Client) -> None:
    emu.inject(
        Fault("rate_limit", retry_after=2), Fault("status", status=418, body="teapot"), Fault("html_403")
    )
    limited = chat(http)
    assert limited.status_code == 429 and limited.headers["retry-after"] == "2"
    assert set(limited.json()) == {"error"}
    teapot = chat(http)
    assert (teapot.status_code, teapot.text) == (418, "teapot")
    forbidden = chat(http)
    assert (forbidden.status_code, forbidden.content) == (403, b"")
    assert emu.stats.faults_fired == {"rate_limit": 1, "status": 1, "html_403": 1}


def test_slow_first_token_and_token_delay(emu: OllamaEmulator, http: httpx2.Client) -> None:
    emu.inject(Fault("slow_first_token", delay=0.3))
    started = time.perf_counter()
    assert chat(http, stream=False).status_code == 200
    assert time.perf_counter() - started >= 0.3
    with OllamaEmulator(token_delay=0.02) as slow, httpx2.Client(base_url=slow.base_url) as client:
        started = time.perf_counter()
        payload = {"model": "llama3.2", "messages": HELLO, "options": {"num_predict": 10}}
        with client.stream("POST", "/api/chat", json=payload) as response:
            assert len(ndjson(response)) == 11
        assert time.perf_counter() - started >= 0.2


def test_header_fault_and_model_filter(emu: OllamaEmulator, http: httpx2.Client) -> None:
    response = chat(http, headers={"x-emulator-fault": "server_error; status=502; message=upstream gone"})
    assert (response.status_code, response.json()) == (502, {"error": "upstream gone"})
    bad = chat(http, headers={"x-emulator-fault": "nonsense"})
    assert bad.status_code == 400 and bad.json()["error"].startswith("invalid x-emulator-fault header:")
    emu.inject(Fault("server_error", model="qwen3"))
    assert chat(http).status_code == 200  # llama3.2 passes the qwen3 fault by
    assert chat(http, model="qwen3").status_code == 500


def test_generation_failed_fault_writes_what_the_model_could_not_finish(
    emu: OllamaEmulator, http: httpx2.Client
) -> None:
    emu.inject(Fault("generation_failed"), Fault("generation_failed"))
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    body = chat(http, stream=False, tools=[tool], messages=[{"role": "user", "content": "lookup x"}]).json()
    assert "tool_calls" not in body["message"] and body["message"]["content"].startswith("<tool_call>")
    cut = chat(http, stream=False, format={"type": "object", "properties": {"a": {"type": "string"}}}).json()
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(cut["message"]["content"])


def test_control_plane(emu: OllamaEmulator, http: httpx2.Client) -> None:
    queued = http.post("/_emulator/faults", json={"kind": "server_error", "status": 503})
    assert queued.json() == {"queued": 1, "pending": [{"kind": "server_error", "count": 1, "status": 503}]}
    assert chat(http).status_code == 503
    stats = http.get("/_emulator/stats").json()
    assert stats["faults_fired"] == {"server_error": 1} and stats["by_status"] == {"503": 1}
    assert http.post("/_emulator/faults", json={"kind": "nope"}).status_code == 400
    chat(http, stream=False)
    recorded = http.get("/_emulator/requests").json()["requests"]
    assert recorded[-1]["path"] == "/api/chat" and recorded[-1]["body"]["model"] == "llama3.2"
    assert http.post("/_emulator/reset").json() == {"reset": True}
    assert emu.stats.requests == 0 and emu.loaded_models == []
    assert http.get("/_emulator/nope").status_code == 404


def test_stats_count_completions_and_tokens(emu: OllamaEmulator, http: httpx2.Client) -> None:
    whole = chat(http, stream=False).json()
    _, lines = stream(http)
    stats = emu.stats
    assert (stats.completions, stats.streams) == (2, 1)
    assert stats.completion_tokens == whole["eval_count"] + lines[-1]["eval_count"]
    assert stats.prompt_tokens == whole["prompt_eval_count"] * 2
    assert stats.by_path == {"/api/chat": 2} and stats.by_model == {"llama3.2": 2}


# -- classes of inputs -----------------------------------------------------------------------------

EMULATOR = OllamaEmulator()


@pytest.fixture(scope="module")
def shared() -> Iterator[OllamaEmulator]:
    with EMULATOR:
        yield EMULATOR


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10,
)
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "system", "tool"]), "content": st.text(max_size=40)},
        optional={
            "images": st.lists(st.sampled_from(["QUJD", "!!", ""]), max_size=2),
            "thinking": json_values,
        },
    ),
    max_size=3,
)
bodies = st.fixed_dictionaries(
    {},
    optional={
        "model": st.sampled_from(["llama3.2", "qwen3", "gemma3", "nomic-embed-text", "", "x/y/z:w", "a b"])
        | json_values,
        "messages": messages | json_values,
        "stream": st.booleans() | json_values,
        "think": st.sampled_from([True, False, "high", "max", "nope"]) | json_values,
        "format": st.sampled_from(["json", "", {"type": "object"}, "yaml"]) | json_values,
        "options": st.dictionaries(
            st.sampled_from(["temperature", "num_predict", "stop", "seed", "top_k", "x"]),
            json_values,
            max_size=3,
        )
        | json_values,
        "keep_alive": st.sampled_from(["5m", 0, -1, "1x", 10]) | json_values,
        "tools": st.lists(st.just({"type": "function", "function": {"name": "f"}}), max_size=1) | json_values,
        "top_logprobs": st.integers(-5, 25) | json_values,
    },
)
DOCUMENTED_500 = re.compile(
    r'^(option ".*" must be of (type \w+|an array of strings)'
    r"|this model is missing data required for image input)$"
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(body=bodies, garbage=st.sampled_from([b"", b" trailing", b"\n{}"]))
def test_any_body_gets_an_answer_or_a_well_formed_error(
    shared: OllamaEmulator, body: dict[str, Any], garbage: bytes
) -> None:
    """No body makes the emulator crash: it answers, or sends ``{"error": "<text>"}`` with 400 or
    404, or one of the two 500s Ollama sends for a bad option type or an image without vision."""
    with httpx2.Client(base_url=shared.base_url, timeout=10) as client:
        response = client.post("/api/chat", content=json.dumps(body).encode() + garbage)
        raw = response.read()
    if response.status_code == 200:
        kind = response.headers["content-type"]
        lines = raw.split(b"\n")[:-1] if kind == NDJSON else [raw]
        parsed = [orjson.loads(line) for line in lines]
        assert parsed[-1]["done"] is True and all("error" not in item for item in parsed)
        return
    assert response.headers["content-type"].startswith("application/json")
    error = orjson.loads(raw)
    assert list(error) == ["error"] and isinstance(error["error"], str) and error["error"]
    assert response.status_code in (400, 404, 500), error
    if response.status_code == 500:
        assert DOCUMENTED_500.match(error["error"]), error


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=60))
def test_any_bytes_get_a_json_error_or_an_answer(shared: OllamaEmulator, data: bytes) -> None:
    with httpx2.Client(base_url=shared.base_url, timeout=10) as client:
        response = client.post("/api/chat", content=data)
    assert response.status_code in (400, 404)
    assert set(response.json()) == {"error"}


schemas: st.SearchStrategy[dict[str, Any]] = st.deferred(
    lambda: st.one_of(
        st.sampled_from(
            [
                {"type": "string"},
                {"type": "integer", "minimum": 3, "maximum": 9},
                {"type": "boolean"},
                {"type": "number"},
                {"enum": ["a", "b"]},
            ]
        ),
        st.builds(lambda items: {"type": "array", "items": items, "minItems": 1}, schemas),
        st.dictionaries(st.from_regex(r"[a-z]{1,6}", fullmatch=True), schemas, min_size=1, max_size=3).map(
            lambda props: {"type": "object", "properties": props, "required": sorted(props)}
        ),
    )
)


def _is_object(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "object"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(schema=schemas.filter(_is_object), streamed=st.booleans())
def test_structured_output_is_valid_for_any_schema(
    shared: OllamaEmulator, schema: dict[str, Any], streamed: bool
) -> None:
    with httpx2.Client(base_url=shared.base_url, timeout=10) as client:
        body = {"model": "llama3.2", "messages": HELLO, "format": schema, "stream": streamed}
        response = client.post("/api/chat", content=orjson.dumps(body))
        raw = response.read()
    lines = [orjson.loads(line) for line in raw.split(b"\n") if line]
    content = "".join(line["message"]["content"] for line in lines)
    jsonschema.validate(orjson.loads(content), schema)
    tool = {"type": "function", "function": {"name": "act", "parameters": schema}}
    with httpx2.Client(base_url=shared.base_url, timeout=10) as client:
        called = client.post(
            "/api/chat",
            json={
                "model": "llama3.2",
                "stream": False,
                "tools": [tool],
                "messages": [{"role": "user", "content": "act now"}],
            },
        )
    [call] = called.json()["message"]["tool_calls"]
    jsonschema.validate(call["function"]["arguments"], schema)
