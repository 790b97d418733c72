"""The core every wire format plugs into: the neutral status table, provider readings and ranges,
typed request fields on the wire, finish reasons, stream framing, and the configurable HTTP
client — all against a real server on 127.0.0.1 (``HostileServer``) where the wire matters."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from botticelli import GenerateRequest, GroqDriver, Message, OpenAICompatibleDriver
from botticelli._sse import NDJSONDecoder
from botticelli._status import classify, error_from_content
from botticelli.codecs import openai_chat
from botticelli.codecs.base import ErrorFields
from botticelli.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    ConfigurationError,
    InvalidRequestError,
    ModelNotFoundError,
    RateLimitError,
    ResponseError,
    ServerError,
)
from botticelli.providers.groq import GROQ
from botticelli.providers.openai_compatible import OPENAI_COMPATIBLE
from botticelli.types import FinishReason, ResponseFormat, Tool, ToolChoice

from .hostile import CLOSE, FAKE_KEY, HostileServer, completion, delta, response, sse, streamed

REQUEST = GenerateRequest.prompt("Hi", max_tokens=16)
GROQ_KEY = "gsk_" + "c" * 48


@pytest.fixture
def server() -> Iterator[HostileServer]:
    with HostileServer() as hostile:
        yield hostile


def generic(server: HostileServer, **options: Any) -> OpenAICompatibleDriver:
    options.setdefault("max_retries", 0)
    return OpenAICompatibleDriver("m", base_url=server.base_url + "/v1", api_key=FAKE_KEY, **options)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def generate_once(driver: Any, request: GenerateRequest = REQUEST) -> Any:
    try:
        return await driver.generate(request)
    finally:
        await driver.aclose()


# ---- status → class: one neutral table, provider readings on top ----------------------------


@given(st.integers(min_value=100, max_value=599))
def test_every_status_has_one_class(status: int) -> None:
    cls = classify(status, ErrorFields("x"))
    expected: type = ResponseError
    if status in (401, 403):
        expected = AuthenticationError
    elif status == 429:
        expected = RateLimitError
    elif status == 408:
        expected = APITimeoutError
    elif status >= 500 or status == 409:
        expected = ServerError
    elif 400 <= status < 500:
        expected = InvalidRequestError
    assert cls is expected


@given(st.sampled_from(["model_not_found", "model_decommissioned", "not_found_error"]), st.integers(400, 499))
def test_a_missing_model_is_named_whatever_the_status(code: str, status: int) -> None:
    if status in (401, 403, 429):
        return
    assert classify(status, ErrorFields("gone", code=code)) is ModelNotFoundError


def _error(status: int, message: str, provider: Any) -> Any:
    body = orjson.dumps({"error": {"message": message, "type": "tokens"}})
    return error_from_content(status, {}, body, codec=openai_chat.GROQ, provider=provider, model="m")


def test_groq_reads_its_429_text_the_generic_provider_only_the_wait() -> None:
    text = (
        "Rate limit reached for model `m` in organization `org` service tier `on_demand` on tokens "
        "per minute (TPM): Limit 6000, Used 5800, Requested 400. Please try again in 2m59.56s."
    )
    groq = _error(429, text, GROQ)
    assert isinstance(groq, RateLimitError)
    assert groq.retry_after == pytest.approx(179.56)
    assert (groq.limit_kind, groq.limit_value, groq.daily) == ("tpm", 6000, False)
    assert groq.limit == "tokens per minute (TPM)"
    daily = _error(429, text.replace("per minute (TPM)", "per day (TPD)"), GROQ)
    assert daily.daily and daily.limit_kind == "tpd"
    plain = _error(429, text, OPENAI_COMPATIBLE)
    assert plain.retry_after == pytest.approx(179.56)  # OpenAI-family servers say it the same way
    assert plain.limit_kind is None and plain.limit_value is None  # the limit wording is Groq's


def test_498_is_groqs_capacity_error_and_nobody_elses() -> None:
    assert isinstance(_error(498, "`flex` tier capacity exceeded", GROQ), ServerError)
    assert 498 in GROQ.no_retry
    assert isinstance(_error(498, "whatever this server means", OPENAI_COMPATIBLE), InvalidRequestError)


def test_a_retired_model_names_its_replacement_from_the_catalog() -> None:
    body = orjson.dumps(
        {"error": {"message": "The model `llama-3.1-8b-instant` does not exist", "code": "model_not_found"}}
    )
    error = error_from_content(
        404, {}, body, codec=openai_chat.GROQ, provider=GROQ, model="llama-3.1-8b-instant"
    )
    assert isinstance(error, ModelNotFoundError) and error.replacement == "openai/gpt-oss-20b"


# ---- provider ranges: refused before any request ---------------------------------------------


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"temperature": 2.5}, "temperature: groq accepts 0 to 2"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "at most 4 stop sequences"),
    ],
)
def test_groq_ranges_are_checked_before_sending(
    server: HostileServer, params: dict[str, Any], needle: str
) -> None:
    request = GenerateRequest.prompt("Hi", **params)
    driver = GroqDriver(api_key=GROQ_KEY, base_url=server.base_url, plan="unlimited")
    with pytest.raises(InvalidRequestError, match=needle):
        run(generate_once(driver, request))
    with pytest.raises(InvalidRequestError):
        driver.generate_stream(request)
    assert server.requests == []


def test_the_neutral_type_takes_what_some_provider_accepts() -> None:
    GenerateRequest.prompt("Hi", temperature=2.5, stop=["a", "b", "c", "d", "e"])  # fine for some servers


# ---- typed request fields, as the OpenAI chat codec encodes them ----------------------------

WEATHER = Tool(
    "get_weather",
    "Weather for a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    strict=True,
)


def test_tools_tool_choice_and_response_format_reach_the_wire(server: HostileServer) -> None:
    request = GenerateRequest(
        (Message.user("Weather in Rome?"),),
        tools=(WEATHER,),
        tool_choice="get_weather",
        parallel_tool_calls=False,
        response_format=ResponseFormat.json_schema({"type": "object"}, name="answer", strict=True),
    )
    run(generate_once(generic(server), request))
    body = orjson.loads(server.requests[-1].body)
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city.",
                "parameters": dict(WEATHER.parameters),
                "strict": True,
            },
        }
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["parallel_tool_calls"] is False
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": True},
    }


@pytest.mark.parametrize("mode", ["auto", "none", "required"])
def test_tool_choice_modes(mode: str) -> None:
    request = GenerateRequest((Message.user("x"),), tools=(WEATHER,), tool_choice=mode)
    assert openai_chat.GENERIC.body(request, "m", stream=False)["tool_choice"] == mode
    json_mode = GenerateRequest((Message.user("x"),), response_format=ResponseFormat.json())
    assert openai_chat.GENERIC.body(json_mode, "m", stream=False)["response_format"] == {
        "type": "json_object"
    }


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"tool_choice": "nosuch", "tools": (WEATHER,)}, "tool_choice"),
        ({"tool_choice": "", "tools": (WEATHER,)}, "tool_choice"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"tools": (WEATHER, WEATHER)}, "tools"),
        ({"tools": ("get_weather",)}, "tools"),
        ({"tool_choice": 7, "tools": (WEATHER,)}, "tool_choice"),
        ({"parallel_tool_calls": "yes"}, "parallel_tool_calls"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
    ],
)
def test_typed_fields_are_checked_at_construction(params: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{field}:"):
        GenerateRequest((Message.user("x"),), **params)


def test_tool_choice_forms_normalise() -> None:
    for given_value in ("get_weather", WEATHER, {"name": "get_weather"}, ToolChoice.tool("get_weather")):
        request = GenerateRequest((Message.user("x"),), tools=(WEATHER,), tool_choice=given_value)
        assert request.tool_choice == ToolChoice("tool", "get_weather")


# ---- finish reasons: neutral, with the provider's word beside it ----------------------------


@pytest.mark.parametrize(
    ("raw", "neutral"),
    [
        ("stop", FinishReason.STOP),
        ("length", FinishReason.LENGTH),
        ("tool_calls", FinishReason.TOOL_CALLS),
        ("function_call", FinishReason.TOOL_CALLS),
        ("content_filter", FinishReason.CONTENT_FILTER),
        ("something_new", FinishReason.OTHER),
    ],
)
def test_finish_reasons(server: HostileServer, raw: str, neutral: FinishReason) -> None:
    body = completion("ok")
    body["choices"][0]["finish_reason"] = raw  # type: ignore[index]
    server.script(lambda r: response(200, body))
    result = run(generate_once(generic(server)))
    assert result.finish_reason is neutral and result.raw_finish_reason == raw
    assert result.finish_reason == neutral.value  # a StrEnum: comparing with the string still works


# ---- rate-limit headers mean what the provider says -----------------------------------------

LIMIT_HEADERS = {
    "x-ratelimit-limit-requests": "1000",
    "x-ratelimit-remaining-requests": "999",
    "x-ratelimit-reset-requests": "1m26.4s",
    "x-ratelimit-limit-tokens": "6000",
    "x-ratelimit-remaining-tokens": "5990",
    "x-ratelimit-reset-tokens": "100ms",
}


def test_windows_follow_the_provider(server: HostileServer) -> None:
    server.script(lambda r: response(200, completion("ok"), LIMIT_HEADERS))
    plain = run(generate_once(generic(server)))
    assert plain.rate_limit.requests_window == "minute" and plain.rate_limit.requests_limit == 1000
    groq = run(generate_once(GroqDriver(api_key=GROQ_KEY, base_url=server.base_url, plan="unlimited")))
    assert groq.rate_limit.requests_window == "day" and groq.rate_limit.tokens_window == "minute"


# ---- NDJSON framing, I/O-free ------------------------------------------------------------------


@given(
    st.lists(
        st.dictionaries(st.text(max_size=5), st.integers(-(2**53), 2**53), max_size=3), min_size=1, max_size=8
    ),
    st.lists(st.integers(min_value=1, max_value=40), max_size=20),
    st.booleans(),
)
def test_ndjson_lines_survive_any_split(objects: list[dict[str, int]], cuts: list[int], crlf: bool) -> None:
    end = b"\r\n" if crlf else b"\n"
    data = b"".join(orjson.dumps(o) + end + (end if i % 3 == 0 else b"") for i, o in enumerate(objects))
    decoder = NDJSONDecoder()
    events = []
    position = 0
    for cut in cuts:
        events += decoder.feed(data[position : position + cut])
        position += cut
    events += decoder.feed(data[position:])
    events += decoder.flush()
    assert [orjson.loads(e.data) for e in events] == objects


def test_ndjson_last_line_without_newline_counts() -> None:
    decoder = NDJSONDecoder()
    first = decoder.feed(b'{"a": 1}\n{"b": 2}')
    assert [e.data for e in first] == ['{"a": 1}']
    assert [e.data for e in decoder.flush()] == ['{"b": 2}']


# ---- the HTTP client can be configured -------------------------------------------------------


def test_extra_headers_go_on_every_request(server: HostileServer) -> None:
    run(generate_once(generic(server, headers={"x-team": "blue"})))
    assert server.requests[-1].headers["x-team"] == "blue"


def test_own_client_is_used_and_left_open(server: HostileServer) -> None:
    async def main() -> bool:
        async with aiohttp.ClientSession(headers={"x-from": "mine", "x-team": "theirs"}) as session:
            driver = generic(server, http_client=session, headers={"x-team": "ours"})
            await driver.generate(REQUEST)
            async for _ in driver.generate_stream(REQUEST):
                pass
            await driver.aclose()
            assert not session.closed  # the caller's to close
            async with session.get(server.base_url + "/v1/models") as reply:  # still usable
                await reply.read()
            return True

    server.script(
        lambda r: streamed(sse(delta("hi"))) if b'"stream":true' in r.body else response(200, completion("x"))
    )
    assert run(main())
    first = server.requests[0].headers
    assert first["x-from"] == "mine" and first["x-team"] == "ours"  # its headers under ours
    assert first["authorization"] == f"Bearer {FAKE_KEY}"
    assert server.requests[1].headers["x-from"] == "mine"


def test_own_connector_is_used_and_closed_with_the_driver(server: HostileServer) -> None:
    sent: list[str] = []

    class Counting(aiohttp.TCPConnector):
        async def connect(self, req: Any, *args: Any, **kwargs: Any) -> Any:
            sent.append(str(req.url))
            return await super().connect(req, *args, **kwargs)

    async def main() -> Counting:
        connector = Counting()
        driver = generic(server, connector=connector)
        await driver.generate(REQUEST)
        await driver.aclose()
        return connector

    connector = run(main())
    assert sent == [server.base_url + "/v1/chat/completions"]
    assert connector.closed


def test_the_http_library_is_imported_at_the_first_call_only() -> None:
    import subprocess
    import sys

    code = (
        "import sys, botticelli\n"
        "d = botticelli.GroqDriver('openai/gpt-oss-20b', api_key='gsk_' + 'x' * 48, plan='unlimited')\n"
        "print(sorted(m for m in ('aiohttp', 'yarl', 'multidict', 'httpx2') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_proxy_from_the_environment_and_from_the_argument(
    server: HostileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = "http://upstream.invalid:8080/v1"
    # The hostile server plays the proxy: a proxied plain-HTTP request carries the absolute URL.
    monkeypatch.setenv("HTTP_PROXY", server.base_url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    run(generate_once(OpenAICompatibleDriver("m", base_url=target, max_retries=0)))
    assert server.requests[-1].path == "http://upstream.invalid:8080/v1/chat/completions"
    with pytest.raises(APIConnectionError):  # trust_env=False: straight to the (unreachable) host
        run(
            generate_once(
                OpenAICompatibleDriver("m", base_url=target, max_retries=0, trust_env=False, timeout=2)
            )
        )
    assert len(server.requests) == 1
    monkeypatch.delenv("HTTP_PROXY")
    run(generate_once(OpenAICompatibleDriver("m", base_url=target, max_retries=0, proxy=server.base_url)))
    assert len(server.requests) == 2 and server.requests[-1].path.startswith("http://upstream.invalid")


def test_bad_client_options_fail_at_construction(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="CA bundle"):
        OpenAICompatibleDriver("m", base_url="https://x.invalid/v1", verify=str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigurationError, match="base_url"):
        OpenAICompatibleDriver("m", base_url="https://x.invalid/v1", proxy="not a url")
    with pytest.raises(ConfigurationError, match="http_client"):
        OpenAICompatibleDriver("m", base_url="https://x.invalid/v1", http_client=object())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="connector"):
        OpenAICompatibleDriver("m", base_url="https://x.invalid/v1", connector=object())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="headers"):
        OpenAICompatibleDriver("m", base_url="https://x.invalid/v1", headers={"x-bad": "a\r\nb"})
    with pytest.raises(ConfigurationError, match="headers"):
        OpenAICompatibleDriver("m", base_url="https://x.invalid/v1", headers={"bad name": "v"})


def test_a_ca_bundle_is_accepted(tmp_path: Path) -> None:
    import certifi

    driver = OpenAICompatibleDriver("m", base_url="https://x.invalid/v1", verify=certifi.where())
    assert driver.base_url == "https://x.invalid/v1"


# ---- model profiles: refused before sending, only for models the catalog knows --------------


def test_a_known_text_model_refuses_images_and_tools_it_cannot_take(server: HostileServer) -> None:
    from botticelli import Input

    image = GenerateRequest(
        (Message(Message.user("x").role, (Input.text("what is it?"), Input.image("https://x/i.png"))),)
    )
    driver = GroqDriver("openai/gpt-oss-20b", api_key=GROQ_KEY, base_url=server.base_url, plan="unlimited")
    with pytest.raises(InvalidRequestError, match="image inputs are not supported") as caught:
        driver.check(image)
    assert caught.value.code == "unsupported_input"
    tools = GenerateRequest((Message.user("x"),), tools=(WEATHER,))
    driver.check(tools)  # gpt-oss takes tools
    guard = GroqDriver("meta-llama/llama-prompt-guard-2-22m", api_key=GROQ_KEY, base_url=server.base_url)
    with pytest.raises(InvalidRequestError, match="tools are not supported"):
        run(generate_once(guard, tools))
    unknown = GroqDriver(
        "some/model-released-tomorrow", api_key=GROQ_KEY, base_url=server.base_url, plan="unlimited"
    )
    unknown.check(image)  # not in the catalog: the server judges
    unknown.check(tools)
    assert server.requests == []


# ---- Groq's failed generations: the request is what to change --------------------------------


@pytest.mark.parametrize("code", ["tool_use_failed", "json_validate_failed"])
def test_a_failed_generation_is_an_invalid_request_keeping_it(server: HostileServer, code: str) -> None:
    failed = "<function=get_weather>{city: Rome}</function>"
    body = {
        "error": {
            "message": "Failed to call a function. Please adjust your prompt.",
            "type": "invalid_request_error",
            "code": code,
            "failed_generation": failed,
        }
    }
    server.script(lambda r: response(400, body))
    with pytest.raises(InvalidRequestError) as caught:
        run(
            generate_once(
                GroqDriver(api_key=GROQ_KEY, base_url=server.base_url, plan="unlimited", max_retries=0)
            )
        )
    assert caught.value.code == code and caught.value.failed_generation == failed
    assert len(server.requests) == 1  # a 400 is not retried


def test_a_failed_generation_mid_stream_is_an_invalid_request_too(server: HostileServer) -> None:
    from .hostile import sse, streamed

    error = {
        "error": {
            "message": "Failed to call a function.",
            "type": "invalid_request_error",
            "code": "tool_use_failed",
            "failed_generation": "Tool use failed: JSON does not match the expected schema for tool calls",
            "status_code": 400,
        }
    }
    server.script(lambda r: streamed(sse(error, done=False)))

    async def main() -> None:
        driver = generic(server)
        try:
            await driver.generate_stream(REQUEST).collect()
        finally:
            await driver.aclose()

    with pytest.raises(InvalidRequestError) as caught:
        run(main())
    assert caught.value.status == 400 and caught.value.failed_generation is not None


# ---- reasoning and service tier: typed, checked against the model's profile ------------------


def test_reasoning_fields_are_checked_and_sent(server: HostileServer) -> None:
    gpt_oss = GroqDriver("openai/gpt-oss-20b", api_key=GROQ_KEY, base_url=server.base_url, plan="unlimited")
    for bad, needle in [
        ({"reasoning_effort": "none"}, "it takes low, medium, high"),
        ({"reasoning_format": "parsed"}, "use include_reasoning"),
    ]:
        with pytest.raises(InvalidRequestError, match=needle):
            gpt_oss.check(GenerateRequest.prompt("Think.", **bad))
    request = GenerateRequest.prompt(
        "Think.", reasoning_effort="high", include_reasoning=True, service_tier="flex"
    )
    run(generate_once(gpt_oss, request))
    body = orjson.loads(server.requests[-1].body)
    assert (body["reasoning_effort"], body["include_reasoning"], body["service_tier"]) == (
        "high",
        True,
        "flex",
    )
    qwen = GroqDriver("qwen/qwen3.8-27b", api_key=GROQ_KEY, base_url=server.base_url, plan="unlimited")
    qwen.check(GenerateRequest.prompt("Think.", reasoning_effort="none", reasoning_format="parsed"))


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"reasoning_format": "visible"}, "reasoning_format"),
        ({"service_tier": "fast"}, "service_tier"),
        ({"include_reasoning": "yes"}, "include_reasoning"),
        ({"reasoning_effort": ""}, "reasoning_effort"),
        ({"include_reasoning": True, "reasoning_format": "parsed"}, "include_reasoning"),
    ],
)
def test_reasoning_fields_are_validated_at_construction(params: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{field}:"):
        GenerateRequest((Message.user("x"),), **params)


# ---- Groq's built-in tools --------------------------------------------------------------------


def test_builtin_tools_are_requested_and_their_runs_typed(server: HostileServer) -> None:
    from botticelli import ExecutedTool

    body = completion("Rome is sunny.")
    body["choices"][0]["message"]["executed_tools"] = [  # type: ignore[index]
        {"index": 0, "type": "browser_search", "arguments": '{"query": "rome weather"}', "output": "sunny"},
        {"type": 7},  # informative only: an odd entry is dropped, the answer kept
    ]
    server.script(lambda r: response(200, body))
    driver = GroqDriver("openai/gpt-oss-20b", api_key=GROQ_KEY, base_url=server.base_url, plan="unlimited")
    request = GenerateRequest((Message.user("Weather in Rome?"),), tools=(Tool.builtin("browser_search"),))
    result = run(generate_once(driver, request))
    assert orjson.loads(server.requests[-1].body)["tools"] == [{"type": "browser_search"}]
    assert result.text == "Rome is sunny."
    assert result.executed_tools == [
        ExecutedTool("browser_search", '{"query": "rome weather"}', "sunny", 0, None)
    ]
    guard = GroqDriver("qwen/qwen3.8-27b", api_key=GROQ_KEY, base_url=server.base_url, plan="unlimited")
    with pytest.raises(InvalidRequestError, match="built-in tool 'browser_search' is not offered"):
        guard.check(request)


# ---- TLS: the trust store decides ---------------------------------------------------------------


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A self-signed HTTPS server on 127.0.0.1 answering every request with one completion; the
    URL and the path of its certificate."""
    import shutil
    import ssl
    import subprocess
    import threading

    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    loop = asyncio.new_event_loop()
    answer = response(200, completion("over tls"))

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    ),
                    0,
                )
                await reader.readexactly(length)
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = loop.run_until_complete(asyncio.start_server(serve, "127.0.0.1", 0, ssl=context))
    port = server.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{port}", str(cert)
    finally:

        async def stop() -> None:
            server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def test_tls_is_verified_against_the_trust_store(tls_server: tuple[str, str]) -> None:
    import ssl

    url, cert = tls_server

    def call(**options: Any) -> Any:
        return run(generate_once(OpenAICompatibleDriver("m", base_url=url + "/v1", max_retries=0, **options)))

    with pytest.raises(APIConnectionError, match=r"(?i)certificate"):
        call()  # self-signed: not in the system store
    assert call(verify=cert).text == "over tls"  # a CA bundle path
    assert call(verify=ssl.create_default_context(cafile=cert)).text == "over tls"
    assert call(verify=False).text == "over tls"


# ---- the pool wait is bounded (pool + connect) on our own connector ------------------------------


async def test_waiting_for_a_pooled_connection_is_bounded(server: HostileServer) -> None:
    """Every pooled connection is held by a call the server never answers: the next call waits
    for the pool no longer than ``pool + connect`` and fails typed, while the held calls stay."""
    from botticelli import _defaults
    from botticelli.config import Timeout

    server.script(lambda r: [30.0])  # accept, read the request, never answer
    timeout = Timeout(read=60, connect=0.2, pool=0.3, total=60, stall=60)
    driver = OpenAICompatibleDriver(
        "m", base_url=server.base_url, api_key=FAKE_KEY, timeout=timeout, max_retries=0
    )
    request = GenerateRequest.prompt("hi")
    held = [asyncio.ensure_future(driver.generate(request)) for _ in range(_defaults.MAX_CONNECTIONS)]
    try:
        for _ in range(200):  # until the server holds every connection
            if server.open_connections >= _defaults.MAX_CONNECTIONS:
                break
            await asyncio.sleep(0.02)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(APITimeoutError):
            await driver.generate(request)
        assert 0.4 <= loop.time() - started < 3.0
        assert not any(task.done() for task in held)
    finally:
        for task in held:
            task.cancel()
        await asyncio.gather(*held, return_exceptions=True)
        await driver.aclose()


async def test_the_queue_for_the_pool_gives_back_every_place(server: HostileServer) -> None:
    """Calls read whole queue for the pool in botticelli (``_send``'s gate): calls that fail
    every way (cut mid-body, a 500, timed out or cancelled while queued, a stream) leave it
    whole, so afterwards every pooled connection serves a call at once (one wave, not two)."""
    from botticelli import _defaults
    from botticelli.config import Timeout

    limit = _defaults.MAX_CONNECTIONS
    whole = response(200, completion("hello"))
    driver = generic(server, timeout=Timeout(read=30, connect=2, pool=0.5, total=60, stall=30))
    try:
        server.script(lambda r: [whole[:30], CLOSE])  # cut mid-body
        for outcome in await asyncio.gather(
            *(driver.generate(REQUEST) for _ in range(20)), return_exceptions=True
        ):
            assert isinstance(outcome, APIConnectionError)
        server.script(lambda r: response(500, {"error": {"message": "down"}}))
        for outcome in await asyncio.gather(
            *(driver.generate(REQUEST) for _ in range(20)), return_exceptions=True
        ):
            assert isinstance(outcome, ServerError)
        server.script(lambda r: streamed(sse(delta("a"), delta("b"))))
        for _ in range(limit):  # streams read to the end hold a place each while they run
            assert [c.text async for c in driver.generate_stream(REQUEST)][:2] == ["a", "b"]
        async for _ in driver.generate_stream(REQUEST):
            break  # a stream left early: its place comes back when it is closed
        server.script(lambda r: [*streamed(sse(delta("a"), done=False))[:2], CLOSE])  # cut
        for _ in range(5):
            with pytest.raises(APIConnectionError, match="during the stream"):
                async for _ in driver.generate_stream(REQUEST):
                    pass
        server.script(lambda r: [3.0, whole])  # every connection busy for 3 s
        held = [asyncio.ensure_future(driver.generate(REQUEST)) for _ in range(limit)]
        queued = [asyncio.ensure_future(driver.generate(REQUEST)) for _ in range(10)]
        await asyncio.sleep(0.2)
        for task in queued[:5]:
            task.cancel()  # cancelled while waiting for a place
        late = await asyncio.gather(*queued, return_exceptions=True)  # the rest time out (pool)
        assert all(isinstance(o, (asyncio.CancelledError, APITimeoutError)) for o in late), late
        assert all(answer.text == "hello" for answer in await asyncio.gather(*held))
        server.script(lambda r: [1.0, whole])
        loop = asyncio.get_running_loop()
        started = loop.time()
        answers = await asyncio.gather(*(driver.generate(REQUEST) for _ in range(limit)))
        assert all(a.text == "hello" for a in answers)
        assert loop.time() - started < 1.9  # one wave: a place lost anywhere above makes two
    finally:
        await driver.aclose()


# ---- Timeout.read: the wait for the next bytes, on a lazily re-armed timer ----------------------


def _body_in_pieces(text: str, pause: float, pieces: int) -> list[Any]:
    """A completion whose body comes in ``pieces`` parts, ``pause`` seconds apart."""
    whole = response(200, completion(text))
    size = -(-len(whole) // pieces)
    parts: list[Any] = []
    for i in range(0, len(whole), size):
        parts += [whole[i : i + size], pause]
    return parts[:-1]


@pytest.mark.parametrize("reused", [False, True])
async def test_a_stalled_answer_times_out_after_read_seconds(server: HostileServer, reused: bool) -> None:
    """Whether the connection is new or comes from the pool (its timer armed by the call before),
    a server that stops sending mid-body fails the call ``read`` seconds after its last bytes."""
    from botticelli.config import Timeout

    whole = response(200, completion("hello"))
    answers = iter(([whole] if reused else []) + [[whole[:40], 0.3, whole[40:80], 30.0]])
    server.script(lambda r: next(answers))
    driver = generic(server, timeout=Timeout(read=0.5, total=30, stall=30))
    try:
        if reused:
            assert (await driver.generate(REQUEST)).text == "hello"
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(APITimeoutError):
            await driver.generate(REQUEST)
        assert 0.3 + 0.5 - 0.05 <= loop.time() - started < 3.0  # the last bytes, then read
        assert server.connections == 1
    finally:
        await driver.aclose()


async def test_bytes_that_keep_coming_never_trip_read(server: HostileServer) -> None:
    """A body trickling in for four times ``read`` succeeds: each piece moves the due time, on
    a new connection and on the pooled one after it."""
    from botticelli.config import Timeout

    server.script(lambda r: _body_in_pieces("slow but steady", 0.15, 8))
    driver = generic(server, timeout=Timeout(read=0.4, total=30, stall=30))
    try:
        for _ in range(2):
            assert (await driver.generate(REQUEST)).text == "slow but steady"
        assert server.connections == 1
    finally:
        await driver.aclose()


async def test_a_pooled_connection_idle_past_read_is_not_timed_out(server: HostileServer) -> None:
    """``read`` bounds a wait for bytes a call awaits: a connection idle in the pool for longer
    (its timer firing meanwhile) serves the next call."""
    from botticelli.config import Timeout

    driver = generic(server, timeout=Timeout(read=0.2, total=30, stall=30))
    try:
        assert (await driver.generate(REQUEST)).text == "hello"
        await asyncio.sleep(0.6)
        assert (await driver.generate(REQUEST)).text == "hello"
        assert server.connections == 1
    finally:
        await driver.aclose()
