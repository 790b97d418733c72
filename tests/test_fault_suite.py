"""Whatever a server sends: a correct answer or a ``BotticelliError``, within the bound set, with no
key anywhere and nothing left open.

Every test here talks real HTTP to ``tests.hostile.HostileServer``, which answers with exactly the
bytes a test scripts. Classes of input are generated with hypothesis, so the next case of a class
is caught too; each generated case is checked by ``outcome_of``: the call ends within its bound,
in an answer or a typed error, and no string reachable from the outcome (``str``, ``repr``,
``args``, every attribute, the body and headers kept on errors) nor any log line of any logger at
DEBUG contains the key.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from botticelli import GenerateRequest, GroqDriver, OpenAICompatibleDriver
from botticelli.config import Timeout
from botticelli.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BotticelliError,
    ConfigurationError,
    InvalidRequestError,
    RateLimitError,
    ResponseError,
)
from botticelli.ratelimit import clear_registry
from botticelli.types import GenerateResponse

from .hostile import (
    CLOSE,
    END,
    FAKE_KEY,
    HostileServer,
    Request,
    chunk,
    completion,
    delta,
    every_string,
    response,
    sse,
    stream_head,
    streamed,
)

REQUEST = GenerateRequest.prompt("Hi", max_tokens=16)
FAST = Timeout(read=5, connect=2, total=8, stall=5)
SUITE = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture(scope="module")
def server() -> Iterator[HostileServer]:
    with HostileServer() as hostile:
        yield hostile


@pytest.fixture(autouse=True)
def debug_logs() -> Iterator[_Lines]:
    """Every logger at DEBUG into one list, checked for the key after each test."""
    handler = _Lines()
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old)
    leaked = [line for line in handler.lines if _has_key(line)]
    assert not leaked, leaked[:3]


def _has_key(text: str) -> bool:
    return FAKE_KEY in text or FAKE_KEY[9:] in text


@pytest.fixture(autouse=True)
def _fresh_limiters() -> Iterator[None]:
    """Limiters are shared per (provider, URL, key, model): a port the OS hands out again must
    not bring the limits an earlier test's server reported (a TPM of 6) into this one."""
    clear_registry()
    yield
    clear_registry()


def driver(server: HostileServer, **options: Any) -> OpenAICompatibleDriver:
    options.setdefault("max_retries", 0)
    options.setdefault("timeout", FAST)
    return OpenAICompatibleDriver("m", base_url=server.base_url + "/v1", api_key=FAKE_KEY, **options)


Outcome = GenerateResponse | BotticelliError


def outcome_of(call: Callable[[], Awaitable[GenerateResponse]], bound: float = 10.0) -> Outcome:
    """Run ``call`` on a fresh event loop (as a script would); it must end within ``bound``
    seconds in a response or a BotticelliError, and hold no key in any string it reaches."""

    async def main() -> Outcome:
        try:
            return await asyncio.wait_for(call(), bound)
        except BotticelliError as exc:
            return exc
        except TimeoutError:
            pytest.fail(f"the call did not end within {bound} s")

    started = time.monotonic()
    result = asyncio.run(main())
    assert time.monotonic() - started < bound + 1
    leaked = [s for s in every_string(result) if _has_key(s)]
    assert not leaked, leaked[:3]
    if isinstance(result, GenerateResponse):
        assert isinstance(result.text, str) and isinstance(result.reasoning, str)
        for call_ in result.tool_calls:
            assert isinstance(call_.name, str) and isinstance(call_.arguments, str)
        usage = result.usage
        for value in (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens):
            assert isinstance(value, int) and 0 <= value <= 2**53
        assert result.finish_reason is None or isinstance(result.finish_reason, str)
    return result


def generate(server: HostileServer, **options: Any) -> Callable[[], Awaitable[GenerateResponse]]:
    async def call() -> GenerateResponse:
        d = driver(server, **options)
        try:
            return await d.generate(REQUEST)
        finally:
            await d.aclose()

    return call


def stream(
    server: HostileServer, texts: list[str] | None = None, **options: Any
) -> Callable[[], Awaitable[GenerateResponse]]:
    """Collect a stream; the chunks' texts go to ``texts`` so a test can compare them."""

    async def call() -> GenerateResponse:
        d = driver(server, **options)
        try:
            async with d.generate_stream(REQUEST) as s:
                async for piece in s:
                    if texts is not None and piece.text:
                        texts.append(piece.text)
                assert s.response is not None
                return s.response
        finally:
            await d.aclose()

    return call


# ---- strategies --------------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)

# Where in a chat completion a wrong value can go, as a path of keys and indexes.
BODY_PATHS = [
    (),
    ("choices",),
    ("choices", 0),
    ("choices", 0, "message"),
    ("choices", 0, "message", "content"),
    ("choices", 0, "message", "reasoning"),
    ("choices", 0, "message", "tool_calls"),
    ("choices", 0, "finish_reason"),
    ("usage",),
    ("usage", "prompt_tokens"),
    ("usage", "total_tokens"),
    ("usage", "completion_tokens_details"),
    ("x_groq",),
    ("id",),
    ("model",),
    ("error",),
]
FRAME_PATHS = [
    (),
    ("choices",),
    ("choices", 0),
    ("choices", 0, "delta"),
    ("choices", 0, "delta", "content"),
    ("choices", 0, "delta", "tool_calls"),
    ("choices", 0, "finish_reason"),
    ("usage",),
    ("x_groq",),
    ("error",),
]


def put(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    node = document
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return document


def with_tool_calls(document: dict[str, Any]) -> dict[str, Any]:
    document["choices"][0]["message"]["tool_calls"] = [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    ]
    return document


def frame_with_tool_delta() -> dict[str, Any]:
    frame = delta("x")
    frame["choices"][0]["delta"]["tool_calls"] = [
        {"index": 0, "id": "c", "function": {"name": "f", "arguments": ""}}
    ]
    return frame


# ---- the class: wrong-shaped JSON in bodies ------------------------------------------------------


@SUITE
@given(path=st.sampled_from(BODY_PATHS), value=json_values)
def test_a_body_of_any_shape_is_an_answer_or_a_typed_error(
    server: HostileServer, path: tuple[Any, ...], value: Any
) -> None:
    document = put(with_tool_calls(completion("hello")), path, value)
    server.script(lambda r: response(200, document))
    result = outcome_of(generate(server))
    if isinstance(result, GenerateResponse) and path[:2] not in (("choices",), ("choices", 0)):
        # the answer fields were not touched, or were coerced unambiguously
        assert result.text in ("hello", "") or path == ("choices", 0, "message", "content")


@SUITE
@given(raw=st.binary(max_size=64) | json_values.map(orjson.dumps))
def test_a_body_of_any_bytes_is_an_answer_or_a_typed_error(server: HostileServer, raw: bytes) -> None:
    server.script(lambda r: response(200, raw))
    outcome_of(generate(server))


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"choices": ["x"]}, ResponseError),
        ({"choices": [None]}, ResponseError),
        ({"choices": [{"message": {"content": 42}}]}, ResponseError),
        ({"choices": [{"message": "hello"}]}, ResponseError),
        ({"choices": [{"message": {"content": "ok", "tool_calls": "x"}}]}, ResponseError),
        ({"error": {"message": "boom", "code": "server_error"}}, ResponseError),
    ],
)
def test_the_reported_shapes_are_response_errors_that_keep_the_body(
    server: HostileServer, body: Any, error: type[BotticelliError]
) -> None:
    server.script(lambda r: response(200, body))
    result = outcome_of(generate(server))
    assert isinstance(result, error)
    assert isinstance(result, ResponseError) and result.body == body and result.status == 200


def test_odd_usage_and_x_groq_are_coerced_not_fatal(server: HostileServer) -> None:
    body = completion("hello", x_groq="not-an-object")
    body["usage"] = {
        "prompt_tokens": "12",
        "completion_tokens": "many",
        "total_tokens": 1e300,
        "queue_time": "x",
    }
    server.script(lambda r: response(200, body))
    result = outcome_of(generate(server))
    assert isinstance(result, GenerateResponse) and result.text == "hello"
    assert result.usage.prompt_tokens == 12 and result.usage.completion_tokens == 0
    assert result.usage.total_tokens == 2**53 and result.usage.queue_time is None


def test_content_as_a_list_of_text_parts_is_joined(server: HostileServer) -> None:
    body = completion("")
    body["choices"][0]["message"]["content"] = [
        {"type": "text", "text": "hel"},
        {"type": "text", "text": "lo"},
    ]
    server.script(lambda r: response(200, body))
    result = outcome_of(generate(server))
    assert isinstance(result, GenerateResponse) and result.text == "hello"


# ---- the class: wrong-shaped stream frames -------------------------------------------------------

frames = st.one_of(
    st.builds(lambda text: delta(text), st.text(max_size=5)),
    st.builds(lambda path, value: put(delta("x"), path, value), st.sampled_from(FRAME_PATHS), json_values),
    st.builds(
        lambda path, value: put(frame_with_tool_delta(), path, value),
        st.sampled_from(FRAME_PATHS[:6]),
        json_values,
    ),
    json_values,
)


@SUITE
@given(items=st.lists(frames, max_size=5), done=st.booleans())
def test_a_stream_of_any_frames_is_an_answer_or_a_typed_error(
    server: HostileServer, items: list[Any], done: bool
) -> None:
    body = sse(*items, done=done)
    server.script(lambda r: streamed(body))
    texts: list[str] = []
    result = outcome_of(stream(server, texts))
    if isinstance(result, GenerateResponse):
        assert done, "a stream without [DONE] must never pass as an answer"
        assert result.text == "".join(texts)


@pytest.mark.parametrize(
    "frame",
    [b"[1]", b'{"choices": [{"delta": "text"}]}', b'{"choices": [null]}', b'{"choices": "x"}', b'"x"'],
)
def test_the_reported_frames_are_response_errors(server: HostileServer, frame: bytes) -> None:
    body = sse(delta("a"), frame)
    server.script(lambda r: streamed(body))
    assert isinstance(outcome_of(stream(server)), ResponseError)


# ---- the class: SSE framing never changes the answer --------------------------------------------

texts_ = st.lists(st.text(min_size=1, max_size=6), min_size=1, max_size=6)


@SUITE
@given(
    pieces=texts_,
    newline=st.sampled_from([b"\n", b"\r\n", b"\r"]),
    bom=st.booleans(),
    noise=st.lists(
        st.sampled_from([b": keep-alive", b"event: ping", b"id: 7", b"retry: 3000", b"event: ping\nid: 8"]),
        max_size=3,
    ),
    content_type=st.sampled_from(
        [
            "text/event-stream",
            "Text/Event-Stream",
            "text/event-stream; charset=iso-8859-1",
            "TEXT/EVENT-STREAM;charset=utf-8",
        ]
    ),
    cuts=st.lists(st.integers(min_value=1, max_value=400), max_size=8),
)
def test_framing_never_changes_the_answer(
    server: HostileServer,
    pieces: list[str],
    newline: bytes,
    bom: bool,
    noise: list[bytes],
    content_type: str,
    cuts: list[int],
) -> None:
    blocks = [block.replace(b"\n", newline) + newline * 2 for block in noise]
    blocks += [b"data: " + orjson.dumps(delta(p)) + newline * 2 for p in pieces]
    blocks.append(b"data: [DONE]" + newline * 2)
    body = (b"\xef\xbb\xbf" if bom else b"") + b"".join(blocks)
    parts: list[bytes | float] = [stream_head(content_type=content_type)]
    position = 0
    for cut in sorted(set(cuts)):  # the body split at arbitrary byte offsets, sent apart
        if position < cut < len(body):
            parts += [chunk(body[position:cut]), 0.001]
            position = cut
    parts += [chunk(body[position:]), END]
    server.script(lambda r: parts)
    result = outcome_of(stream(server))
    assert isinstance(result, GenerateResponse), result
    assert result.text == "".join(pieces)


def test_a_five_megabyte_event_arrives_whole(server: HostileServer) -> None:
    big = "é" * (5 * 1024 * 1024 // 2)
    body = sse(delta("<"), delta(big), delta(">"))
    server.script(lambda r: streamed(body))
    result = outcome_of(stream(server), bound=30)
    assert isinstance(result, GenerateResponse) and result.text == "<" + big + ">"


def test_a_bom_before_the_first_event_keeps_the_first_delta(server: HostileServer) -> None:
    body = b"\xef\xbb\xbf" + sse(delta("Héllo"))
    server.script(lambda r: streamed(body, content_type="text/event-stream; charset=iso-8859-1"))
    result = outcome_of(stream(server))
    assert isinstance(result, GenerateResponse) and result.text == "Héllo"


# ---- the class: headers on good answers are never fatal -----------------------------------------

HEADER_NAMES = [
    "x-ratelimit-limit-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens",
    "retry-after",
    "retry-after-ms",
    "x-request-id",
]
odd_values = st.sampled_from(
    [
        "inf",
        "-inf",
        "nan",
        "1e400",
        "-3.97e16",
        "-1000000000",
        "0",
        "1",
        "1.5",
        "-1",
        "",
        "2m59.56s",
        "99999h",
        "Fri, 31 Dec 99999 23:59:59 GMT",
        "Mon, 01 Jan 1900 00:00:00 GMT",
        "1e9",
        "12abc",
    ]
) | st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=30)


@SUITE
@given(headers=st.dictionaries(st.sampled_from(HEADER_NAMES), odd_values, min_size=1, max_size=6))
def test_any_rate_limit_header_on_a_good_answer_keeps_the_answer(
    server: HostileServer, headers: dict[str, str]
) -> None:
    server.script(lambda r: response(200, completion("hello"), headers))

    clear_registry()  # a fresh limiter per example: the free plan's 30 RPM would pace the suite

    async def twice() -> GenerateResponse:
        # Groq with its limiter on: the headers feed it, and the next call must still go out.
        d = GroqDriver(api_key=FAKE_KEY, base_url=server.base_url, plan="free", max_retries=0, timeout=FAST)
        try:
            await d.generate(REQUEST)
            return await asyncio.wait_for(d.generate(REQUEST), 5)
        finally:
            await d.aclose()

    with pytest.warns(UserWarning):  # the fake key does not look like a Groq key
        result = outcome_of(twice)
    assert isinstance(result, GenerateResponse) and result.text == "hello"


@SUITE
@given(headers=st.dictionaries(st.sampled_from(HEADER_NAMES[:6]), odd_values, min_size=1, max_size=6))
def test_any_rate_limit_header_on_a_stream_keeps_the_answer_and_frees_the_slot(
    server: HostileServer, headers: dict[str, str]
) -> None:
    body = sse(delta("hel"), delta("lo"))
    server.script(lambda r: streamed(body, headers))
    clear_registry()  # each example a fresh process: limits learned from the last one's headers go

    async def three() -> GenerateResponse:
        d = driver(server, limits={"concurrency": 1, "rpm": 1000})
        try:
            for _ in range(2):
                await asyncio.wait_for(d.generate_stream(REQUEST).collect(), 3)
            return await asyncio.wait_for(d.generate_stream(REQUEST).collect(), 3)
        finally:
            await d.aclose()

    result = outcome_of(three)
    assert isinstance(result, GenerateResponse) and result.text == "hello"


# ---- the class: the key never appears, whatever the server echoes --------------------------------


def _echo(status: int, where: str) -> Callable[[Request], bytes | list[bytes | float]]:
    def script(r: Request) -> bytes | list[bytes | float]:
        key = r.key
        headers = {"x-request-id": key, "x-echo": f"Bearer {key}"}
        error = {
            "message": f"bad key {key}",
            "code": key,
            "type": key,
            "param": key,
            "failed_generation": key,
        }
        if where == "stream-error":
            body = sse(delta("a"), {"error": error}, done=False)
            return streamed(body, headers)
        if where == "event-error":
            body = (
                sse(delta("a"), done=False)
                + b"event: error\ndata: "
                + orjson.dumps({"error": error})
                + b"\n\n"
            )
            return streamed(body, headers)
        if where == "x_groq":
            body = sse({**delta("a"), "x_groq": {"id": key, "error": key}}, done=True)
            return streamed(body, headers)
        if where == "success":
            return response(200, completion("fine", id=key, x_groq={"id": key}), headers)
        if where == "html":
            return response(status, f"<html><body>{key}</body></html>", headers, content_type="text/html")
        return response(status, {"error": error}, headers)

    return script


@pytest.mark.parametrize(
    ("status", "where"),
    [
        (401, "body"),
        (403, "html"),
        (429, "body"),
        (400, "body"),
        (404, "body"),
        (500, "body"),
        (200, "body"),
        (200, "success"),
        (200, "stream-error"),
        (200, "event-error"),
        (200, "x_groq"),
    ],
)
def test_an_echoed_key_is_nowhere(server: HostileServer, status: int, where: str) -> None:
    server.script(_echo(status, where))
    call = stream(server) if where in ("stream-error", "event-error", "x_groq") else generate(server)
    result = outcome_of(call)  # checks every string of the outcome and every log line
    if where == "success":
        assert isinstance(result, GenerateResponse) and result.text == "fine"
    else:
        assert isinstance(result, BotticelliError)


@SUITE
@given(
    before=st.text(max_size=20),
    after=st.text(max_size=20),
    field=st.sampled_from(["message", "code", "type"]),
)
def test_a_key_echoed_anywhere_in_an_error_is_redacted(
    server: HostileServer, before: str, after: str, field: str
) -> None:
    server.script(
        lambda r: response(429, {"error": {field: before + r.key + after}}, {"x-request-id": r.key})
    )
    result = outcome_of(generate(server))
    assert isinstance(result, RateLimitError)


def test_the_key_is_stripped_on_the_way_in(server: HostileServer) -> None:
    seen: list[str] = []

    def script(r: Request) -> bytes:
        seen.append(r.headers.get("authorization", ""))
        return response(200, completion("ok"))

    server.script(script)

    async def call() -> GenerateResponse:
        d = OpenAICompatibleDriver("m", base_url=server.base_url, api_key=FAKE_KEY + "\n")
        try:
            return await d.generate(REQUEST)
        finally:
            await d.aclose()

    assert isinstance(outcome_of(call), GenerateResponse)
    assert seen == [f"Bearer {FAKE_KEY}"]


@pytest.mark.parametrize("bad", ["\u200b", "\n", " ", "é", "\x00"])
def test_a_key_a_header_cannot_carry_is_a_configuration_error_that_hides_it(bad: str) -> None:
    key = FAKE_KEY[:10] + bad + FAKE_KEY[10:]
    with pytest.raises(ConfigurationError) as caught:
        OpenAICompatibleDriver("m", base_url="http://127.0.0.1:1", api_key=key)
    assert not [s for s in every_string(caught.value) if FAKE_KEY[:10] in s or FAKE_KEY[10:] in s]


# ---- errors keep what the server said -----------------------------------------------------------


def test_error_bodies_and_headers_are_kept(server: HostileServer) -> None:
    error = {
        "message": "tool call failed",
        "type": "invalid_request_error",
        "code": "tool_use_failed",
        "failed_generation": "<function=f>{}</function>",
    }
    server.script(lambda r: response(400, {"error": error}, {"x-request-id": "req_1"}))
    result = outcome_of(generate(server))
    assert isinstance(result, InvalidRequestError) and result.code == "tool_use_failed"
    assert result.body == {"error": error}
    assert result.headers["x-request-id"] == "req_1" and result.request_id == "req_1"


def test_a_non_json_error_keeps_its_text(server: HostileServer) -> None:
    server.script(lambda r: response(403, "<html>denied</html>", content_type="text/html"))
    result = outcome_of(generate(server))
    assert isinstance(result, AuthenticationError) and result.body == "<html>denied</html>"


# ---- the transport: nothing untyped --------------------------------------------------------------


def test_gzip_claimed_on_a_plain_body_is_a_response_error(server: HostileServer) -> None:
    server.script(lambda r: response(200, completion("x"), {"content-encoding": "gzip"}))
    result = outcome_of(generate(server))
    assert isinstance(result, ResponseError) and "decoded" in result.message


def test_a_redirect_loop_is_a_response_error(server: HostileServer) -> None:
    server.script(lambda r: response(302, b"", {"location": r.path}))
    result = outcome_of(generate(server))
    assert isinstance(result, ResponseError) and "redirect" in result.message


@pytest.mark.parametrize("status", [307, 299, 204, 207])
def test_a_status_that_is_not_an_answer_is_not_a_success(server: HostileServer, status: int) -> None:
    server.script(lambda r: response(status, completion("x") if status != 204 else b""))
    assert isinstance(outcome_of(generate(server)), ResponseError)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:abc", "http://127.0.0.1:99999", "http://:80", "http://[::1", "ftp://x", "http://"],
)
def test_a_bad_base_url_is_a_configuration_error(url: str) -> None:
    with pytest.raises(ConfigurationError):
        OpenAICompatibleDriver("m", base_url=url, api_key=FAKE_KEY)
    with pytest.raises(ConfigurationError), pytest.warns(UserWarning):
        GroqDriver(api_key=FAKE_KEY, base_url=url)


def test_a_refused_connection_says_why() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the call: nothing listens there

    async def call() -> GenerateResponse:
        d = OpenAICompatibleDriver("m", base_url=f"http://127.0.0.1:{port}", api_key=FAKE_KEY, max_retries=0)
        try:
            return await d.generate(REQUEST)
        finally:
            await d.aclose()

    result = outcome_of(call)
    assert isinstance(result, APIConnectionError)
    reason = result.message.split("connection failed", 1)[1]
    assert reason.strip(" ()"), result.message


# ---- every call ends within its bound -----------------------------------------------------------


def _trickle(head: bytes, body: bytes = b"x" * 200, every: float = 0.1) -> list[bytes | float]:
    parts: list[bytes | float] = [head]
    for byte in body:
        parts += [bytes([byte]), every]
    return parts


def test_a_body_trickling_one_byte_at_a_time_hits_the_total_deadline(server: HostileServer) -> None:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n"
    server.script(lambda r: _trickle(head))
    started = time.monotonic()
    result = outcome_of(generate(server, timeout=1.0), bound=5)
    assert isinstance(result, APITimeoutError) and time.monotonic() - started < 2.5


def test_a_stream_trickling_one_byte_at_a_time_hits_the_stall_timeout(server: HostileServer) -> None:
    first = sse(delta("a"), done=False)
    server.script(lambda r: [stream_head(), chunk(first), *_trickle(b"", b"data: {" + b" " * 200)])
    started = time.monotonic()
    result = outcome_of(stream(server, timeout=Timeout(read=30, total=30, stall=1.0)), bound=5)
    assert isinstance(result, APITimeoutError) and "stalled" in result.message
    assert time.monotonic() - started < 2.5


def test_pings_do_not_keep_a_stalled_stream_alive(server: HostileServer) -> None:
    pings: list[bytes | float] = []
    for _ in range(40):
        pings += [chunk(b": ping\n\n"), 0.1]
    server.script(lambda r: [stream_head(), chunk(sse(delta("a"), done=False)), *pings])
    result = outcome_of(stream(server, timeout=Timeout(read=30, total=30, stall=1.0)), bound=5)
    assert isinstance(result, APITimeoutError)


def test_a_stream_without_a_first_token_hits_the_total_deadline(server: HostileServer) -> None:
    server.script(lambda r: [stream_head(), 30.0])
    started = time.monotonic()
    result = outcome_of(stream(server, timeout=Timeout(read=30, total=1.0, stall=30)), bound=5)
    assert isinstance(result, APITimeoutError) and time.monotonic() - started < 2.5


def test_a_slow_consumer_is_not_a_stall(server: HostileServer) -> None:
    server.script(lambda r: streamed(sse(delta("a"), delta("b"), delta("c"))))

    async def call() -> GenerateResponse:
        d = driver(server, timeout=Timeout(read=5, total=5, stall=0.3))
        try:
            async with d.generate_stream(REQUEST) as s:
                async for _ in s:
                    await asyncio.sleep(0.5)  # longer than the stall timeout, on our side
                assert s.response is not None
                return s.response
        finally:
            await d.aclose()

    result = outcome_of(call)
    assert isinstance(result, GenerateResponse) and result.text == "abc"


# ---- slots and connections are released on every path -----------------------------------------


def test_leaving_the_loop_frees_the_slot_while_a_variable_holds_the_stream(server: HostileServer) -> None:
    server.script(lambda r: [stream_head(), chunk(sse(delta("a"), done=False)), 5.0])

    async def call() -> GenerateResponse:
        d = driver(server, limits={"concurrency": 1, "rpm": 1000})
        try:
            held = d.generate_stream(REQUEST)
            async for _ in held:
                break
            server.script(lambda r: response(200, completion("next")))
            answer = await asyncio.wait_for(d.generate(REQUEST), 2)  # the slot came back
            assert held is not None
            return answer
        finally:
            await d.aclose()

    result = outcome_of(call)
    assert isinstance(result, GenerateResponse) and result.text == "next"


@SUITE
@given(
    kind=st.sampled_from(["bad-frame", "cut", "error-frame", "not-sse", "bad-json-head", "status-500"]),
)
def test_a_failing_stream_frees_its_slot(server: HostileServer, kind: str) -> None:
    bodies: dict[str, list[bytes | float] | bytes] = {
        "bad-frame": streamed(sse(delta("a"), b"[1]")),
        "cut": [stream_head(), chunk(sse(delta("a"), done=False)), CLOSE],
        "error-frame": streamed(sse(delta("a"), {"error": {"message": "overloaded"}}, done=False)),
        "not-sse": response(200, completion("x")),
        "bad-json-head": response(200, b"{", content_type="application/json"),
        "status-500": response(500, {"error": {"message": "x"}}),
    }
    server.script(lambda r: bodies[kind])

    async def call() -> GenerateResponse:
        d = driver(server, limits={"concurrency": 1, "rpm": 1000})
        try:
            for _ in range(3):
                with pytest.raises(BotticelliError):
                    await asyncio.wait_for(d.generate_stream(REQUEST).collect(), 3)
            server.script(lambda r: response(200, completion("after")))
            return await asyncio.wait_for(d.generate(REQUEST), 3)
        finally:
            await d.aclose()

    result = outcome_of(call)
    assert isinstance(result, GenerateResponse) and result.text == "after"


# ---- retries follow the server's word, with a floor ---------------------------------------------


def test_retry_after_zero_is_not_a_storm(server: HostileServer) -> None:
    answers = iter(
        [response(503, {"error": {"message": "busy"}}, {"retry-after": "0"})] * 2
        + [response(200, completion("ok"))]
    )
    server.script(lambda r: next(answers))
    started = time.monotonic()
    result = outcome_of(generate(server, max_retries=2))
    assert isinstance(result, GenerateResponse) and time.monotonic() - started >= 0.5


def test_the_429_bodys_try_again_is_kept_without_a_limiter(server: HostileServer) -> None:
    busy = response(
        429, {"error": {"message": "Rate limit reached. Please try again in 0.8s.", "type": "tokens"}}
    )
    answers = iter([busy, response(200, completion("ok"))])
    server.script(lambda r: next(answers))
    started = time.monotonic()
    result = outcome_of(generate(server, max_retries=1))
    assert isinstance(result, GenerateResponse) and time.monotonic() - started >= 0.8


# ---- as processes: pools and the CLI ------------------------------------------------------------


def test_pools_close_with_each_event_loop(server: HostileServer) -> None:
    """Three asyncio.run() calls on one driver leave no unclosed transport behind."""
    import subprocess
    import sys

    server.script(lambda r: response(200, completion("ok")))
    code = f"""
import asyncio, gc
from botticelli import OpenAICompatibleDriver, GenerateRequest
d = OpenAICompatibleDriver("m", base_url="{server.base_url}", api_key="{FAKE_KEY}")
for _ in range(3):
    asyncio.run(d.generate(GenerateRequest.prompt("Hi")))
gc.collect()
print("done")
"""
    run = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error::ResourceWarning", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0 and run.stdout.strip() == "done", run.stderr
    assert "ResourceWarning" not in run.stderr and "unclosed" not in run.stderr, run.stderr


@pytest.mark.parametrize(
    ("script", "expect"),
    [
        (lambda r: response(200, {"choices": ["x"]}), "asked for a stream"),
        (
            lambda r: response(401, {"error": {"message": r.key, "code": r.key}}, {"x-request-id": r.key}),
            "401",
        ),
        (lambda r: streamed(sse(delta("a"), {"error": {"message": r.key}}, done=False)), "stream failed"),
        (lambda r: _trickle(stream_head(), b"data: {" + b" " * 400), "timed out"),
    ],
)
def test_the_cli_prints_one_line_without_the_key(
    server: HostileServer, tmp_path: Any, script: Any, expect: str
) -> None:
    import os
    import subprocess
    import sys

    server.script(script)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GROQ_", "BOTTICELLI_"))}
    env.update(
        GROQ_API_KEY=FAKE_KEY,
        GROQ_BASE_URL=server.base_url,
        BOTTICELLI_TIMEOUT="2",
        BOTTICELLI_MAX_RETRIES="0",
        BOTTICELLI_GROQ_PLAN="unlimited",
    )
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "botticelli.cli", "ask", "-v", "Hi"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
    )
    assert time.monotonic() - started < 15
    assert run.returncode == 1, run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("botticelli: error:")]
    assert len(errors) == 1 and expect in errors[0], run.stderr
    assert "Traceback" not in run.stderr
    assert not _has_key(run.stdout + run.stderr)


# ---- the scrubber itself ------------------------------------------------------------------------


@given(word=st.from_regex(r"[a-z]{1,8}-[a-z]{4,10}", fullmatch=True))
def test_words_that_merely_contain_a_key_prefix_are_left_alone(word: str) -> None:
    from botticelli.errors import redact

    assert redact(f"no space: {word}") == f"no space: {word}"  # "disk-quota" stays "disk-quota"


@given(password=st.text(alphabet="abcXYZ019@:!$", min_size=1, max_size=16).filter(lambda p: "@" in p))
def test_url_passwords_are_hidden_whole_even_with_an_at_sign(password: str) -> None:
    from botticelli.errors import redact

    shown = redact(f"Redis at redis://user:{password}@cache-host:6379/0 failed")
    assert shown == "Redis at redis://***@cache-host:6379/0 failed"
