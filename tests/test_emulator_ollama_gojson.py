"""The pieces of Go the Ollama emulator imitates, checked without HTTP: the JSON scanner's and
decoder's error texts, base64, durations, quoting, ``json.Marshal``'s escapes, model names,
``options`` and Ollama's order of request checks."""

from __future__ import annotations

import binascii
import json
import re
from typing import Any

import orjson
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from botticelli.emulator.common.errors import WireError
from botticelli.emulator.ollama import options as opts
from botticelli.emulator.ollama.catalog import DEFAULT_MODELS, Catalog
from botticelli.emulator.ollama.gojson import EmptyBody, GoJSONError, dumps, first_value, go_quote, parse
from botticelli.emulator.ollama.gotime import FOREVER, parse_duration, parse_keep_alive, timestamp
from botticelli.emulator.ollama.gotypes import base64_problem, decode
from botticelli.emulator.ollama.names import parse_name
from botticelli.emulator.ollama.requests import CHAT_REQUEST
from botticelli.emulator.ollama.validation import Late, Request, validate_chat
from botticelli.emulator.textgen import FakeBackend

# -- the scanner -------------------------------------------------------------------------------

SYNTAX = [
    (b"x", "invalid character 'x' looking for beginning of value"),
    (b"{x", "invalid character 'x' looking for beginning of object key string"),
    (b'{"a" 1}', "invalid character '1' after object key"),
    (b'{"a":1 2}', "invalid character '2' after object key:value pair"),
    (b"[1 2]", "invalid character '2' after array element"),
    (b"[1,]", "invalid character ']' looking for beginning of value"),
    (b'{"a":1,}', "invalid character '}' looking for beginning of object key string"),
    (b'"\x01"', "invalid character '\\x01' in string literal"),
    (b'"\n"', "invalid character '\\n' in string literal"),
    (b'"\\q"', "invalid character 'q' in string escape code"),
    (b'"\\u12x4"', "invalid character 'x' in \\u hexadecimal character escape"),
    (b"-x", "invalid character 'x' in numeric literal"),
    (b"[1.x]", "invalid character 'x' after decimal point in numeric literal"),
    (b"[1ex]", "invalid character 'x' in exponent of numeric literal"),
    (b"tx", "invalid character 'x' in literal true (expecting 'r')"),
    (b"fals?", "invalid character '?' in literal false (expecting 'e')"),
    (b"'a'", "invalid character '\\'' looking for beginning of value"),
    (b"NaN", "invalid character 'N' looking for beginning of value"),
    (b"\xef\xbb\xbf{}", "invalid character 'ï' looking for beginning of value"),
    (b"{", "unexpected EOF"),
    (b'{"a":', "unexpected EOF"),
    (b"nul", "unexpected EOF"),
    (b'"abc', "unexpected EOF"),
    (b"[1", "unexpected EOF"),
    (b"-", "unexpected EOF"),
]


@pytest.mark.parametrize(("data", "message"), SYNTAX)
def test_syntax_errors_have_gos_text(data: bytes, message: str) -> None:
    with pytest.raises(GoJSONError) as info:
        parse(data)
    assert info.value.message == message


@pytest.mark.parametrize("data", [b"", b"  \r\n\t"])
def test_whitespace_is_eof(data: bytes) -> None:
    with pytest.raises(EmptyBody):
        first_value(data)


def test_only_the_first_value_is_read() -> None:
    assert parse(b'{"a": 1} {"b": 2}') == {"a": 1}
    assert parse(b"12x") == 12
    assert parse(b"01") == 0
    assert parse(b'"\xff"') == "\ufffd"  # invalid UTF-8 decodes as U+FFFD, as in Go
    assert parse(b'"\\ud800"') == "\ufffd"
    assert parse(b"123456789012345678901234567890") == 1.2345678901234568e29  # float64, as Go's any


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(value=json_values, tail=st.binary(max_size=10))
def test_a_valid_document_parses_whatever_follows_it(value: Any, tail: bytes) -> None:
    assert parse(json.dumps(value).encode() + b" " + tail) == value


@given(data=st.binary(max_size=40))
def test_any_bytes_parse_or_raise_a_go_error(data: bytes) -> None:
    try:
        value = parse(data)
    except GoJSONError as error:
        assert error.message
    else:
        try:
            strict = json.loads(data.decode("utf-8"), parse_constant=lambda name: pytest.fail(name))
        except ValueError:
            return  # trailing bytes, invalid UTF-8, ...: Go reads what Python refuses
        assert value == strict


# -- typed decoding ------------------------------------------------------------------------------

DECODE_ERRORS: list[tuple[Any, str]] = [
    ("x", "json: cannot unmarshal string into Go value of type api.ChatRequest"),
    ({"model": True}, "json: cannot unmarshal bool into Go struct field ChatRequest.model of type string"),
    (
        {"messages": {}},
        "json: cannot unmarshal object into Go struct field ChatRequest.messages of type []api.Message",
    ),
    (
        {"messages": ["hi"]},
        "json: cannot unmarshal string into Go struct field ChatRequest.messages of type api.Alias",
    ),
    (
        {"messages": [{"images": [1]}]},
        "json: cannot unmarshal number into Go struct field ChatRequest.messages.images"
        " of type api.ImageData",
    ),
    (
        {"top_logprobs": 1.5},
        "json: cannot unmarshal number 1.5 into Go struct field ChatRequest.top_logprobs of type int",
    ),
    (
        {"top_logprobs": 2**64},
        f"json: cannot unmarshal number {2**64} into Go struct field ChatRequest.top_logprobs of type int",
    ),
    (
        {"options": []},
        "json: cannot unmarshal array into Go struct field ChatRequest.options"
        " of type map[string]interface {}",
    ),
    ({"tools": {}}, "json: cannot unmarshal object into Go struct field ChatRequest.tools of type api.Tools"),
    (
        {"tools": [{"function": {"name": 1}}]},
        "json: cannot unmarshal number into Go struct field ToolFunction.tools.function.name of type string",
    ),
    (
        {"tools": [{"function": {"parameters": {"required": "a"}}}]},
        "json: cannot unmarshal string into Go struct field "
        "ToolFunctionParameters.tools.function.parameters.required of type []string",
    ),
    ({"keep_alive": []}, "unsupported duration type: '[]interface {}'"),
    ({"keep_alive": "soon"}, 'time: invalid duration "soon"'),
    ({"think": {}}, "think must be a boolean or string"),
]


@pytest.mark.parametrize(("value", "message"), DECODE_ERRORS)
def test_decode_errors_have_gos_text(value: Any, message: str) -> None:
    with pytest.raises(GoJSONError) as info:
        decode(value, CHAT_REQUEST)
    assert info.value.message == message


def test_the_first_mismatch_wins_but_an_unmarshaler_error_wins_over_it() -> None:
    with pytest.raises(GoJSONError, match=r"ChatRequest\.model"):
        decode({"model": 1, "stream": "x"}, CHAT_REQUEST)
    with pytest.raises(GoJSONError, match=r"^think must be"):
        decode({"model": 1, "think": 2}, CHAT_REQUEST)  # UnmarshalJSON stops the decoder at once


def test_fields_match_case_insensitively_and_null_leaves_them_unset() -> None:
    decoded = decode({"MODEL": "a", "Stream": None, "unknown": 1, "model": "b"}, CHAT_REQUEST)
    assert decoded == {"model": "b"}


# -- base64, durations, quoting, marshal ----------------------------------------------------------


@given(st.text(alphabet="ABCabc019+/=!", max_size=12))
def test_base64_agrees_with_strict_decoding(text: str) -> None:
    # Python accepts padding after a complete quantum ("AAAA="), Go does not
    assume(not re.fullmatch(r"(?:[A-Za-z0-9+/]{4})+=+", text))
    try:
        binascii.a2b_base64(text.encode(), strict_mode=True)
    except binascii.Error:
        assert base64_problem(text.encode()) is not None
    else:
        assert base64_problem(text.encode()) is None


@pytest.mark.parametrize(
    ("text", "offset"),
    [("QUJD", None), ("QUJ", 0), ("QU!D", 2), ("QQ==QQ==", 4), ("QQ=", 3), ("Q\nUJD", None), ("QUJD=", 4)],
)
def test_base64_offsets(text: str, offset: int | None) -> None:
    assert base64_problem(text.encode()) == offset


@pytest.mark.parametrize(
    ("text", "nanoseconds"),
    [
        ("5m", 300 * 10**9),
        ("1h30m", 5400 * 10**9),
        ("1.5s", 1_500_000_000),
        ("0", 0),
        ("-2s", -2 * 10**9),
        ("10µs", 10_000),
        (".5ms", 500_000),
    ],
)
def test_durations(text: str, nanoseconds: int) -> None:
    assert parse_duration(text) == nanoseconds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'time: invalid duration ""'),
        ("5", 'time: missing unit in duration "5"'),
        ("5d", 'time: unknown unit "d" in duration "5d"'),
        ("s", 'time: invalid duration "s"'),
        ("5é", 'time: unknown unit "\\xc3\\xa9" in duration "5\\xc3\\xa9"'),
        ("9999999999h", 'time: invalid duration "9999999999h"'),
    ],
)
def test_duration_errors(text: str, message: str) -> None:
    with pytest.raises(GoJSONError) as info:
        parse_duration(text)
    assert info.value.message == message


def test_keep_alive() -> None:
    assert parse_keep_alive(30) == 30 * 10**9
    assert parse_keep_alive(-1) == FOREVER == parse_keep_alive("-5m")
    with pytest.raises(GoJSONError, match="unsupported duration type: 'map"):
        parse_keep_alive({})


def test_go_quote_and_marshal() -> None:
    assert go_quote('a"b\\c\n\x01é\u00a0') == '"a\\"b\\\\c\\n\\x01é\\u00a0"'
    assert dumps({"a": "<&>\u2028"}) == b'{"a":"\\u003c\\u0026\\u003e\\u2028"}'
    assert dumps({"n": 2**70}) == orjson.dumps({"n": float(2**70)})
    assert timestamp(1_700_000_000_123_400_000) == "2023-11-14T22:13:20.1234Z"
    assert timestamp(1_700_000_000_000_000_000) == "2023-11-14T22:13:20Z"


# -- names, options --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "full"),
    [
        ("llama3.2", "registry.ollama.ai/library/llama3.2:latest"),
        ("llama3.2:3b", "registry.ollama.ai/library/llama3.2:3b"),
        ("user/model:tag", "registry.ollama.ai/user/model:tag"),
        ("example.com:5000/team/model:v1", "example.com:5000/team/model:v1"),
        ("https://example.com/team/model", "example.com/team/model:latest"),
    ],
)
def test_valid_names(text: str, full: str) -> None:
    name = parse_name(text)
    assert name.valid and str(name) == full


@pytest.mark.parametrize(
    "text", ["llama3.2:", "a b", "-x", "ns.dot/model", "model:t:g", "é", "x" * 81, "/m", "a/b/c/d"]
)
def test_invalid_names(text: str) -> None:
    assert not parse_name(text).valid


def test_options_are_read_like_from_map() -> None:
    resolved = opts.resolve(
        {"temperature": 0.6, "stop": ["<|im_end|>"]}, {"num_predict": 12.9, "unknown": "x", "seed": None}
    )
    assert (resolved.temperature, resolved.num_predict, resolved.stop, resolved.seed) == (
        0.6,
        12,
        ("<|im_end|>",),
        -1,
    )
    assert opts.resolve({}, {"num_ctx": 0}).num_ctx == opts.DEFAULT_NUM_CTX
    with pytest.raises(WireError) as info:
        opts.resolve({}, {"use_mmap": 1})
    assert (info.value.status, info.value.message) == (500, 'option "use_mmap" must be of type boolean')


# -- the order of checks ------------------------------------------------------------------------

CATALOG = Catalog(DEFAULT_MODELS)


def check(body: dict[str, Any]) -> Request | Late | WireError:
    try:
        return validate_chat(orjson.dumps(body), CATALOG, FakeBackend())[1]
    except WireError as error:
        return error


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # top_logprobs is checked before the model is even looked at
        ({"model": "nope", "top_logprobs": 30}, "top_logprobs must be between 0 and 20"),
        # the model is found before thinking, tools or options are checked
        ({"model": "nope", "think": True, "options": {"temperature": "x"}}, "model 'nope' not found"),
        # thinking before capabilities
        ({"model": "gemma3", "think": True, "tools": [{}]}, '"gemma3" does not support thinking'),
        # capabilities before options
        ({"model": "gemma3", "tools": [{}], "options": {"temperature": "x"}}, "does not support tools"),
        # options before the empty-messages load
        (
            {"model": "gemma3", "options": {"temperature": "x"}},
            'option "temperature" must be of type float32',
        ),
    ],
)
def test_checks_come_in_ollamas_order(body: dict[str, Any], message: str) -> None:
    outcome = check(body)
    assert isinstance(outcome, WireError) and message in outcome.message


def test_an_unload_needs_no_capability_and_a_late_format_error_is_late() -> None:
    unload = check({"model": "nomic-embed-text", "keep_alive": 0, "think": True})
    assert isinstance(unload, Request) and unload.action == "unload"
    late = check({"model": "llama3.2", "messages": [{"role": "USER", "content": "x"}], "format": 3})
    assert isinstance(late, Late) and late.error.status == 400


def test_truncation_drops_old_turns_to_fit_num_ctx() -> None:
    long = [{"role": "system", "content": "be brief"}] + [{"role": "user", "content": "x" * 400}] * 20
    request = check({"model": "llama3.2", "messages": long, "options": {"num_ctx": 512}})
    assert isinstance(request, Request)
    assert (
        request.prompt_tokens <= 512
        and request.messages[0]["role"] == "system"
        and len(request.messages) < 21
    )
    kept = check({"model": "llama3.2", "messages": long, "options": {"num_ctx": 512}, "truncate": False})
    assert isinstance(kept, Request) and len(kept.messages) == 21
