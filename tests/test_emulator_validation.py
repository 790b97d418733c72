"""The Groq emulator's request validation (``emulator/groq/validation.py``), by class of body.

Every malformed body gets a ``WireError`` with the status Groq documents (400 for a bad
parameter, 404 for a model that does not exist), nothing else escapes, and valid bodies pass.
Then the two renderings of a ``WireError``: the HTTP error response and the Batch API's error
line carry the same status and body for the same request.
"""

from __future__ import annotations

import time
from typing import Any

import httpx2
import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from botticelli import catalog
from botticelli.emulator import Emulator, FakeBackend, WireError
from botticelli.emulator.groq import wire
from botticelli.emulator.groq.validation import (
    DEFAULT_MAX_TOKENS,
    MAX_STOP,
    ROLES,
    ChatParams,
    fault_from_header,
    validate_chat,
)

from .conftest import TEST_KEY

CHAT = "/openai/v1/chat/completions"
MODEL = "openai/gpt-oss-20b"
HELLO = [{"role": "user", "content": "Say hello."}]
BACKEND = FakeBackend()

_ALL = catalog.models(include_retired=True)
CHAT_MODELS = sorted(
    m.id for m in _ALL if not m.retired and m.kind == "chat" and (m.context_window or 0) >= 8192
)
DECOMMISSIONED = sorted(m.id for m in _ALL if m.retired and m.server_error == "model_decommissioned")
RETIRED_NOT_FOUND = sorted(m.id for m in _ALL if m.retired and m.server_error != "model_decommissioned")
NOT_CHAT = sorted(m.id for m in _ALL if not m.retired and m.kind != "chat")
SMALLEST = min(
    (m for m in _ALL if not m.retired and m.kind == "chat"), key=lambda m: m.context_window or 1 << 60
)

# -- strategies -------------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
not_a_number = json_values.filter(
    lambda v: v is None or isinstance(v, bool) or not isinstance(v, (int, float))
)
not_an_int = json_values.filter(lambda v: v is not None and (isinstance(v, bool) or not isinstance(v, int)))
good_message = st.fixed_dictionaries(
    {"role": st.sampled_from(sorted(ROLES)), "content": st.text(max_size=200)}
)
good_messages = st.lists(good_message, min_size=1, max_size=4)


def body(**fields: Any) -> dict[str, Any]:
    """A valid body with ``fields`` replaced (a value of ``...`` removes the field)."""
    out: dict[str, Any] = {"model": MODEL, "messages": HELLO}
    out.update(fields)
    return {k: v for k, v in out.items() if v is not ...}


def refusal(data: Any) -> WireError:
    """The ``WireError`` validation raises for ``data``; fails if it passes or raises anything else."""
    try:
        params = validate_chat(data, BACKEND)
    except WireError as error:
        return error
    pytest.fail(f"accepted {data!r} as {params!r}")


def assert_bad_parameter(data: Any, param: str | None) -> WireError:
    error = refusal(data)
    assert (error.status, error.type, error.param) == (400, "invalid_request_error", param), error
    return error


# -- bodies that are not objects, and models ------------------------------------------------------


@given(json_values.filter(lambda v: not isinstance(v, dict)))
def test_a_body_that_is_not_an_object_cannot_be_parsed(data: Any) -> None:
    error = assert_bad_parameter(data, None)
    assert error.message == "We could not parse the JSON body of your request." and error.code is None


@given(st.one_of(st.just(...), st.just(""), json_values.filter(lambda v: not isinstance(v, str))))
def test_a_missing_or_non_string_model_is_a_400(model: Any) -> None:
    error = assert_bad_parameter(body(model=model), "model")
    assert error.message == "'model' : property 'model' is missing"


@given(st.text(min_size=1, max_size=40))
def test_an_unknown_model_is_a_404(model: str) -> None:
    assume(catalog.lookup(model) is None)
    error = refusal(body(model=model))
    assert error == wire.model_not_found(model)
    assert (error.status, error.code) == (404, "model_not_found")


@pytest.mark.parametrize("model", RETIRED_NOT_FOUND)
def test_a_retired_model_answered_as_unknown_is_a_404(model: str) -> None:
    assert refusal(body(model=model)) == wire.model_not_found(model)


@pytest.mark.parametrize("model", DECOMMISSIONED)
def test_a_decommissioned_model_is_a_400(model: str) -> None:
    error = refusal(body(model=model))
    assert (error.status, error.code) == (400, "model_decommissioned")
    assert error == wire.model_decommissioned(model)


@pytest.mark.parametrize("model", NOT_CHAT)
def test_a_model_that_does_not_chat_is_a_400(model: str) -> None:
    error = assert_bad_parameter(body(model=model), "model")
    assert "does not support chat completions" in error.message


# -- messages -------------------------------------------------------------------------------------

bad_message = st.one_of(
    json_values.filter(lambda v: not isinstance(v, dict)),
    st.fixed_dictionaries(
        {"role": json_values.filter(lambda r: not isinstance(r, str) or r not in ROLES), "content": st.text()}
    ),
    st.fixed_dictionaries(
        {
            "role": st.sampled_from(sorted(ROLES)),
            "content": st.text(),
            "name": json_values.filter(lambda n: n is not None),
        }
    ),
    st.fixed_dictionaries(
        {
            "role": st.sampled_from(["system", "user", "developer"]),
            "content": json_values.filter(lambda c: not isinstance(c, (str, list))),
        }
    ),
)


@given(
    st.one_of(
        st.just(...),
        st.just([]),
        json_values.filter(lambda v: v is not None and not isinstance(v, list)),
        st.tuples(good_messages, bad_message, good_messages).map(lambda t: [*t[0], t[1], *t[2]]),
    )
)
def test_malformed_messages_are_a_400_naming_messages(messages: Any) -> None:
    error = assert_bad_parameter(body(messages=messages), "messages")
    assert error.message.startswith("'messages")


# -- sampling parameters ------------------------------------------------------------------------


@given(st.one_of(not_an_int, st.integers(max_value=0), st.integers(min_value=2)))
def test_n_other_than_one_is_a_400(n: Any) -> None:
    assert_bad_parameter(body(n=n), "n")


@pytest.mark.parametrize(("name", "high"), [("temperature", 2.0), ("top_p", 1.0)])
@given(data=st.data())
def test_numbers_out_of_range_or_not_numbers_are_a_400(name: str, high: float, data: st.DataObject) -> None:
    value = data.draw(
        st.one_of(
            not_a_number.filter(lambda v: v is not None),
            st.floats(max_value=0.0, exclude_max=True, allow_nan=False, allow_infinity=False),
            st.floats(min_value=high, exclude_min=True, allow_nan=False, allow_infinity=False),
            st.integers(max_value=-1),
            st.integers(min_value=int(high) + 1),
        )
    )
    error = assert_bad_parameter(body(**{name: value}), name)
    assert error.message.startswith(f"'{name}' : ")


@pytest.mark.parametrize("name", ["logprobs", "logit_bias", "top_logprobs"])
@given(value=json_values.filter(lambda v: v not in (None, False, {})))
def test_unsupported_fields_are_a_400(name: str, value: Any) -> None:
    error = assert_bad_parameter(body(**{name: value}), name)
    assert error.message == f"`{name}` is not supported with this model"


@given(
    st.one_of(
        st.lists(st.text(), min_size=MAX_STOP + 1, max_size=MAX_STOP + 4),
        json_values.filter(lambda v: v is not None and not isinstance(v, (str, list))),
        st.lists(json_values, min_size=1, max_size=4).filter(
            lambda v: not all(isinstance(s, str) for s in v)
        ),
    )
)
def test_bad_stop_sequences_are_a_400(stop: Any) -> None:
    assert_bad_parameter(body(stop=stop), "stop")


@given(not_an_int)
def test_a_seed_that_is_not_an_integer_is_a_400(seed: Any) -> None:
    assert_bad_parameter(body(seed=seed), "seed")


@pytest.mark.parametrize("name", ["max_completion_tokens", "max_tokens"])
@given(value=st.one_of(not_an_int, st.integers(max_value=0)))
def test_max_tokens_below_one_or_not_an_integer_is_a_400(name: str, value: Any) -> None:
    error = assert_bad_parameter(body(**{name: value}), name)
    assert error.message.startswith(f"'{name}' : ")


@given(model=st.sampled_from(CHAT_MODELS), over=st.integers(min_value=1, max_value=10**6))
def test_max_tokens_above_the_models_maximum_is_a_400(model: str, over: int) -> None:
    maximum = catalog.lookup(model).max_completion_tokens  # type: ignore[union-attr]
    assume(maximum is not None)
    assert maximum is not None
    error = assert_bad_parameter(body(model=model, max_tokens=maximum + over), "max_completion_tokens")
    assert error == wire.max_tokens_too_large(maximum)


def test_a_prompt_beyond_the_context_window_is_a_400() -> None:
    window = SMALLEST.context_window
    assert window is not None
    messages = [{"role": "user", "content": "x" * (4 * window)}]
    error = refusal(body(model=SMALLEST.id, messages=messages))
    assert error == wire.context_length_exceeded()
    assert (error.status, error.param, error.code) == (400, "messages", "context_length_exceeded")


def test_a_malformed_fault_header_is_a_400() -> None:
    with pytest.raises(WireError) as caught:
        fault_from_header("no_such_fault")
    assert caught.value.status == 400 and caught.value.message.startswith("invalid x-emulator-fault header")


# -- anything at all ------------------------------------------------------------------------------

FIELDS = [
    "model",
    "messages",
    "n",
    "temperature",
    "top_p",
    "logprobs",
    "logit_bias",
    "top_logprobs",
    "stop",
    "seed",
    "max_tokens",
    "max_completion_tokens",
    "stream",
]
any_body = st.fixed_dictionaries(
    {},
    optional={
        "model": st.one_of(st.sampled_from([m.id for m in _ALL]), json_values),
        "messages": st.one_of(good_messages, json_values),
        **{name: json_values for name in FIELDS[2:]},
    },
)


@settings(max_examples=300)
@given(any_body)
def test_any_body_is_accepted_or_refused_with_a_documented_status(data: dict[str, Any]) -> None:
    try:
        params = validate_chat(data, BACKEND)
    except WireError as error:
        assert error.status in (400, 404) and error.type == "invalid_request_error"
        rendered = wire.error_body_of(error)["error"]
        assert list(rendered)[:2] == ["message", "type"] and set(rendered) <= {
            "message",
            "type",
            "param",
            "code",
        }
        orjson.dumps(rendered)
    else:
        assert isinstance(params, ChatParams) and params.model.id == data["model"]


# -- valid bodies ---------------------------------------------------------------------------------


@given(
    model=st.sampled_from(CHAT_MODELS),
    messages=good_messages,
    temperature=st.none() | st.floats(0.0, 2.0) | st.integers(0, 2),
    top_p=st.none() | st.floats(0.0, 1.0),
    stop=st.none() | st.text(max_size=5) | st.lists(st.text(max_size=5), max_size=MAX_STOP),
    seed=st.none() | st.integers(-(2**63), 2**63 - 1),
    max_tokens=st.none() | st.integers(1, 4096),
    stream=st.none() | st.booleans(),
    n=st.none() | st.just(1),
)
def test_valid_bodies_pass(
    model: str,
    messages: list[dict[str, Any]],
    temperature: float | None,
    top_p: float | None,
    stop: str | list[str] | None,
    seed: int | None,
    max_tokens: int | None,
    stream: bool | None,
    n: int | None,
) -> None:
    given_fields = {
        "temperature": temperature,
        "top_p": top_p,
        "stop": stop,
        "seed": seed,
        "max_tokens": max_tokens,
        "stream": stream,
        "n": n,
        "logprobs": False,
        "logit_bias": {},
    }
    data = body(model=model, messages=messages, **{k: v for k, v in given_fields.items() if v is not None})
    params = validate_chat(data, BACKEND)
    info = catalog.lookup(model)
    assert info is not None and params.model == info
    assert params.messages == messages
    assert params.prompt_tokens == BACKEND.count_tokens(messages)
    assert params.temperature == (1.0 if temperature is None else float(temperature))
    assert params.top_p == (1.0 if top_p is None else float(top_p))
    assert params.stop == (() if stop is None else (stop,) if isinstance(stop, str) else tuple(stop))
    assert params.stream is (stream is True)
    if seed is not None:
        assert params.seed == seed
    expected = max_tokens or min(DEFAULT_MAX_TOKENS, info.max_completion_tokens or DEFAULT_MAX_TOKENS)
    assert params.max_tokens == expected


# -- the renderings: an HTTP response and a batch error line ------------------------------------

MALFORMED = {
    "not-an-object": [1, 2],
    "no-model": body(model=...),
    "unknown-model": body(model="no/such-model"),
    "decommissioned": body(model=DECOMMISSIONED[0]),
    "no-messages": body(messages=...),
    "bad-role": body(messages=[{"role": "robot", "content": "hi"}]),
    "hot": body(temperature=2.5),
    "n": body(n=3),
    "logprobs": body(logprobs=True),
    "stops": body(stop=["a", "b", "c", "d", "e"]),
    "seed": body(seed="7"),
    "max-tokens": body(max_tokens=10**9),
    "context": body(
        model=SMALLEST.id, messages=[{"role": "user", "content": "x" * 4 * (SMALLEST.context_window or 1)}]
    ),
}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.one_of(st.sampled_from(list(MALFORMED.values())), any_body))
def test_the_http_endpoint_renders_the_wire_error_as_groqs_error_body(data: Any) -> None:
    try:
        validate_chat(data, BACKEND)
    except WireError as error:
        expected: WireError | None = error
    else:
        expected = None
    assume(expected is not None)
    assert expected is not None
    with httpx2.Client(base_url=EMULATOR.base_url, headers={"Authorization": f"Bearer {TEST_KEY}"}) as client:
        response = client.post(CHAT, content=orjson.dumps(data), headers={"content-type": "application/json"})
    assert response.status_code == expected.status
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"].startswith("req_")
    assert response.content == orjson.dumps(wire.error_body_of(expected))


EMULATOR = Emulator()


@pytest.fixture(scope="module", autouse=True)
def _running_emulator() -> Any:
    with EMULATOR:
        yield


def test_a_batch_line_gets_the_error_the_http_endpoint_gives() -> None:
    """Each invalid request of a batch lands in the error file with the HTTP endpoint's status and body."""
    EMULATOR.batch_step = 0.0
    lines = [
        {"custom_id": name, "method": "POST", "url": "/v1/chat/completions", "body": data}
        for name, data in MALFORMED.items()
        if isinstance(data, dict)  # a batch line's body must be an object to be a request at all
    ]
    lines.append(
        {"custom_id": "valid", "method": "POST", "url": "/v1/chat/completions", "body": body(seed=1)}
    )
    with httpx2.Client(
        base_url=EMULATOR.openai_base_url, headers={"Authorization": f"Bearer {TEST_KEY}"}, timeout=5
    ) as client:
        direct = {}
        for line in lines:
            response = client.post("/chat/completions", json=line["body"])
            direct[line["custom_id"]] = (response.status_code, response.json())
        jsonl = b"".join(orjson.dumps(line) + b"\n" for line in lines)
        uploaded = client.post(
            "/files", files={"file": ("requests.jsonl", jsonl)}, data={"purpose": "batch"}
        ).json()
        batch = client.post(
            "/batches",
            json={
                "input_file_id": uploaded["id"],
                "endpoint": "/v1/chat/completions",
                "completion_window": "24h",
            },
        ).json()
        deadline = time.monotonic() + 20
        while batch["status"] != "completed":
            assert time.monotonic() < deadline, batch
            time.sleep(0.02)
            batch = client.get(f"/batches/{batch['id']}").json()
        errors = client.get(f"/files/{batch['error_file_id']}/content").content
        outputs = client.get(f"/files/{batch['output_file_id']}/content").content
    records = {r["custom_id"]: r for r in map(orjson.loads, (errors + outputs).splitlines())}
    assert set(records) == set(direct)
    assert batch["request_counts"] == {"total": len(lines), "completed": 1, "failed": len(lines) - 1}
    for custom_id, (status, answer) in direct.items():
        response = records[custom_id]["response"]
        assert response["status_code"] == status, custom_id
        if status == 200:  # ids and timings differ per call; the shape and the text do not
            assert list(response["body"]) == list(answer)
            assert response["body"]["choices"] == answer["choices"]
        else:
            assert response["body"] == answer, custom_id
            assert status in (400, 404) and records[custom_id]["error"] is None
