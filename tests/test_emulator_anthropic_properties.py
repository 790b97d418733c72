"""Properties of the Anthropic emulator over whole classes of inputs (hypothesis, real HTTP).

- any body, however broken, gets a well-formed 4xx error envelope and never a 5xx;
- a forced tool call's ``input`` validates against the tool's ``input_schema``, and structured
  output against its schema (checked with ``jsonschema``);
- a stream and a JSON answer to the same request agree, and every stream obeys the SSE grammar;
- a stop sequence cuts the text exactly before its first occurrence.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2
import jsonschema
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as note
from hypothesis import strategies as st

from botticelli.emulator.anthropic import AnthropicEmulator
from botticelli.emulator.anthropic.thinking import sign
from botticelli.emulator.anthropic.validation import CREATE_FIELDS, validate
from botticelli.emulator.common.errors import WireError
from botticelli.emulator.textgen import VOCABULARY, FakeBackend

KEY = "sk-ant-properties"
MODEL = "claude-haiku-4-5"
HEADERS = {"x-api-key": KEY, "anthropic-version": "2023-06-01", "content-type": "application/json"}
BASE: dict[str, Any] = {
    "model": MODEL,
    "max_tokens": 32,
    "messages": [{"role": "user", "content": "Hi there."}],
}
ERROR_TYPES = {400: "invalid_request_error", 404: "not_found_error", 413: "request_too_large"}
HTTP_SETTINGS = settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

EMULATOR = AnthropicEmulator()


@pytest.fixture(scope="module", autouse=True)
def _running() -> Iterator[None]:
    with EMULATOR:
        yield


@pytest.fixture(scope="module")
def http() -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=EMULATOR.base_url, headers=HEADERS, timeout=10.0) as client:
        yield client


scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
field_names = st.sampled_from([*CREATE_FIELDS, "temperature", "top_p", "top_k", "n", "prompt"])

#: A body using most of the schema, valid on both versions; the edits below break it in depth.
FULL: dict[str, Any] = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 2048,
    "system": [{"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look at this."},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "notes"}},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "hm", "signature": sign("hm")},
                {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "x"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "42"}]}
            ],
        },
    ],
    "tools": [
        {"name": "lookup", "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}}
    ],
    "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    "thinking": {"type": "enabled", "budget_tokens": 1024},
    "output_config": {"effort": "high"},
    "metadata": {"user_id": "u-1"},
    "stop_sequences": ["END"],
    "service_tier": "auto",
}


def edit(draw: st.DrawFn, value: Any) -> Any:
    """``value`` with one random edit somewhere inside: descend into a child (two times in three)
    or act here: replace the value with random JSON, or for an object drop a key or add one."""
    if isinstance(value, (dict, list)) and value and draw(st.integers(0, 2)) > 0:
        key = draw(st.sampled_from(list(value) if isinstance(value, dict) else range(len(value))))
        value[key] = edit(draw, value[key])
        return value
    action = draw(st.integers(0, 2))
    if isinstance(value, dict) and value and action == 1:
        del value[draw(st.sampled_from(sorted(value)))]
    elif isinstance(value, dict) and action == 2:
        value[draw(st.text(min_size=1, max_size=6))] = draw(json_values)
    else:
        return draw(json_values)
    return value


@st.composite
def broken_bodies(draw: st.DrawFn) -> Any:
    """A valid body (``BASE`` or ``FULL``) with one to three random edits anywhere inside it, or a
    random top-level field; or any JSON value at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)
    body: Any = orjson.loads(orjson.dumps(draw(st.sampled_from([BASE, FULL]))))
    for _ in range(draw(st.integers(1, 3))):
        if not isinstance(body, dict):  # the whole body was replaced
            break
        if draw(st.integers(0, 5)) == 0:
            body[draw(field_names)] = draw(json_values)
        else:
            body = edit(draw, body)
    return body


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key/index path inside ``value``."""
    children = (
        value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    )
    for key, child in children:
        yield (*prefix, key)
        yield from paths(child, (*prefix, key))


def edited(body: Any, path: tuple[Any, ...], replacement: Any) -> Any:
    """A copy of ``body`` with ``path`` set to ``replacement`` (``DELETE``: removed)."""
    copy = orjson.loads(orjson.dumps(body))
    parent = copy
    for step in path[:-1]:
        parent = parent[step]
    if replacement is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = replacement
    return copy


DELETE = object()
REPLACEMENTS: list[Any] = [DELETE, None, True, 0, -1, 1.5, "", "x", [], [{}], {}, {"type": "x"}]


def test_every_field_of_a_full_body_replaced_or_removed_gets_a_4xx_or_an_answer(http: httpx2.Client) -> None:
    """Exhaustive where hypothesis is thin: each path of ``FULL`` edited each way, one at a time."""
    for path in paths(FULL):
        for replacement in REPLACEMENTS:
            if replacement is DELETE and isinstance(path[-1], int):
                continue
            body = edited(FULL, path, replacement)
            try:
                validate(body, "2023-06-01", FakeBackend())
            except WireError as error:
                assert error.status in (400, 404), (path, replacement)
            response = http.post("/v1/messages", content=orjson.dumps(body))
            assert response.status_code in (200, 400, 404), (path, replacement, response.text)


def test_the_bodies_edited_are_valid() -> None:
    for body in (BASE, FULL):
        for version in ("2023-06-01", "2026-10-21"):
            validate(body, version, FakeBackend())


@settings(max_examples=400, deadline=None, database=None)
@given(broken_bodies())
def test_validation_refuses_with_wire_errors_only(body: Any) -> None:
    for version in ("2023-06-01", "2026-10-21"):
        try:
            validate(body, version, FakeBackend())
        except WireError as error:
            assert error.status in (400, 404) and error.message
            assert error.type == ERROR_TYPES[error.status]


@HTTP_SETTINGS
@given(broken_bodies())
def test_any_broken_body_gets_a_well_formed_error_never_a_5xx(http: httpx2.Client, body: Any) -> None:
    try:
        validate(body, "2023-06-01", FakeBackend())
    except WireError as error:
        expected: WireError | None = error
    else:
        expected = None
    response = http.post("/v1/messages", content=orjson.dumps(body))
    note(f"status {response.status_code}")
    assert response.status_code < 500
    if expected is None:
        assert response.status_code == 200
        return
    assert response.status_code == expected.status
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-should-retry"] == "false"
    assert response.json() == {
        "type": "error",
        "error": {"type": expected.type, "message": expected.message},
        "request_id": response.headers["request-id"],
    }


# -- schemas ---------------------------------------------------------------------------------

leaf_schemas = st.one_of(
    st.builds(lambda: {"type": "string"}),
    st.builds(
        lambda n, m: {"type": "string", "minLength": n, "maxLength": n + m},
        st.integers(0, 20),
        st.integers(0, 20),
    ),
    st.builds(
        lambda values: {"type": "string", "enum": values},
        st.lists(st.text(min_size=1, max_size=6), min_size=1, max_size=4, unique=True),
    ),
    st.sampled_from([{"type": "string", "format": f} for f in ("date", "date-time", "email", "uri", "uuid")]),
    st.builds(
        lambda lo, span: {"type": "integer", "minimum": lo, "maximum": lo + span},
        st.integers(-1000, 1000),
        st.integers(0, 50),
    ),
    st.builds(lambda lo: {"type": "number", "exclusiveMinimum": lo}, st.integers(-100, 100)),
    st.just({"type": "boolean"}),
    st.just({"type": ["string", "null"]}),
)


def objects(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=10)

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        properties = draw(st.dictionaries(names, children, max_size=5))
        required = [name for name in properties if draw(st.booleans())]
        schema: dict[str, Any] = {"type": "object", "properties": properties, "required": required}
        if draw(st.booleans()):
            schema["additionalProperties"] = False
        return schema

    return build()


schemas = st.recursive(
    leaf_schemas,
    lambda inner: (
        objects(inner)
        | st.builds(
            lambda items, n: {"type": "array", "items": items, "minItems": n, "maxItems": n + 2},
            inner,
            st.integers(0, 3),
        )
    ),
    max_leaves=8,
)
object_schemas = objects(schemas)


@HTTP_SETTINGS
@given(schema=object_schemas, prompt=st.text(min_size=1, max_size=40).filter(str.strip))
def test_a_forced_tool_call_input_is_valid_for_its_schema(
    http: httpx2.Client, schema: dict[str, Any], prompt: str
) -> None:
    tool = {"name": "do_it", "input_schema": schema}
    body = {**BASE, "tools": [tool], "tool_choice": {"type": "tool", "name": "do_it"}}
    body["messages"] = [{"role": "user", "content": prompt}]
    reply = http.post("/v1/messages", content=orjson.dumps(body)).json()
    assert reply["stop_reason"] == "tool_use"
    [call] = reply["content"]
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(call["input"])


@HTTP_SETTINGS
@given(schema=object_schemas)
def test_structured_output_is_valid_json_for_its_schema(http: httpx2.Client, schema: dict[str, Any]) -> None:
    body = {**BASE, "output_config": {"format": {"type": "json_schema", "schema": schema}}}
    reply = http.post("/v1/messages", content=orjson.dumps(body)).json()
    [block] = reply["content"]
    jsonschema.Draft202012Validator(schema).validate(orjson.loads(block["text"]))


# -- streams ---------------------------------------------------------------------------------

words = st.sampled_from(VOCABULARY)
prompts = st.lists(words, min_size=1, max_size=12).map(" ".join)
TOOL = {
    "name": "lookup",
    "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
}


def fold(raw: bytes) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Check the SSE grammar of §5 and fold the stream into (content, message_delta)."""
    frames = [chunk.split(b"\n", 1) for chunk in raw[:-2].split(b"\n\n")]
    events = []
    for event_line, data_line in frames:
        assert event_line.startswith(b"event: ") and data_line.startswith(b"data: ")
        data = orjson.loads(data_line[6:])
        assert data["type"] == event_line[7:].decode()
        if data["type"] != "ping":
            events.append(data)
    assert events[0]["type"] == "message_start" and events[-1]["type"] == "message_stop"
    assert events[-2]["type"] == "message_delta"
    content: list[dict[str, Any]] = []
    open_index: int | None = None
    partial: dict[int, str] = {}
    for event in events[1:-2]:
        kind, index = event["type"], event["index"]
        if kind == "content_block_start":
            assert open_index is None and index == len(content)
            content.append(dict(event["content_block"]))
            open_index = index
        elif kind == "content_block_delta":
            assert index == open_index
            delta, block = event["delta"], content[index]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif delta["type"] == "signature_delta":
                block["signature"] = delta["signature"]
            else:
                assert delta["type"] == "input_json_delta"
                partial[index] = partial.get(index, "") + delta["partial_json"]
        else:
            assert kind == "content_block_stop" and index == open_index
            if content[index]["type"] == "tool_use":
                content[index]["input"] = orjson.loads(partial.get(index) or "{}")
            open_index = None
    assert open_index is None
    return content, events[-2]


def without_ids(content: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in block.items() if k != "id"} for block in content]


@HTTP_SETTINGS
@given(
    prompt=prompts,
    max_tokens=st.integers(1, 80),
    stops=st.lists(words, max_size=2),
    tools=st.booleans(),
    thinking=st.booleans(),
)
def test_a_stream_and_a_json_answer_agree(
    http: httpx2.Client, prompt: str, max_tokens: int, stops: list[str], tools: bool, thinking: bool
) -> None:
    body: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": max_tokens + (1100 if thinking else 0),
        "messages": [{"role": "user", "content": prompt}],
        "stop_sequences": stops,
    }
    if tools:
        body["tools"] = [TOOL]
    if thinking:
        body["thinking"] = {"type": "enabled", "budget_tokens": 1024}
    plain = http.post("/v1/messages", content=orjson.dumps(body)).json()
    with http.stream("POST", "/v1/messages", content=orjson.dumps({**body, "stream": True})) as response:
        content, final = fold(response.read())
    assert without_ids(content) == without_ids(plain["content"])
    assert final["delta"] == {"stop_reason": plain["stop_reason"], "stop_sequence": plain["stop_sequence"]}
    assert final["usage"]["output_tokens"] == plain["usage"]["output_tokens"] <= body["max_tokens"]


@HTTP_SETTINGS
@given(prompt=prompts, data=st.data())
def test_a_stop_sequence_cuts_before_its_first_occurrence(
    http: httpx2.Client, prompt: str, data: st.DataObject
) -> None:
    body: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 200,
        "messages": [{"role": "user", "content": prompt}],
    }
    full = http.post("/v1/messages", content=orjson.dumps(body)).json()
    assert full["stop_reason"] == "end_turn"
    text = full["content"][0]["text"]
    start = data.draw(st.integers(0, len(text) - 1))
    stop = text[start : start + data.draw(st.integers(1, 8))]
    cut = http.post("/v1/messages", content=orjson.dumps({**body, "stop_sequences": [stop]})).json()
    assert cut["stop_reason"] == "stop_sequence" and cut["stop_sequence"] == stop
    assert cut["content"][0]["text"] == text[: text.index(stop)]
