"""Canonical cache keys: what makes two requests the same, and what never goes into a key, a
printed location or a stored entry (credentials, however many ``@`` they hold; API keys)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from botticelli import GenerateRequest, GroqDriver, Input, Message, OpenAICompatibleDriver, Role
from botticelli.cache import CachedDriver, CacheError, RedisCache, SQLiteCache, is_deterministic
from botticelli.cache.codec import Entry, encode_response, encode_stream
from botticelli.cache.keys import KeyScope, _strip_credentials, request_document, scope_of
from botticelli.cache.redis_store import masked_url
from botticelli.drivers.wrapper import WrapperDriver
from botticelli.errors import ConfigurationError, register_secret
from botticelli.types import (
    GenerateResponse,
    ResponseFormat,
    StreamChunk,
    TextOutput,
    Tool,
    ToolCall,
    ToolCallOutput,
    ToolChoice,
    Usage,
)

from .conftest import TEST_KEY

URL = "http://127.0.0.1:9"  # never contacted: keys are computed offline


def groq(key: str = TEST_KEY, model: str = "openai/gpt-oss-20b", base_url: str = URL) -> GroqDriver:
    return GroqDriver(model, api_key=key, base_url=base_url)


def key_of(request: GenerateRequest, driver: GroqDriver | OpenAICompatibleDriver | None = None) -> str:
    key = KeyScope(scope_of(driver or groq())).key(request)
    assert key is not None
    return key


def test_golden_key() -> None:
    """The key is the documented format, rebuilt by hand here; the literal pins it, so changing
    the canonical document fails this test until KEY_VERSION is bumped along with it."""
    request = GenerateRequest.prompt("Hello", system="Be brief.", temperature=0, max_tokens=20, seed=7)
    scope = {"provider": "groq", "base_url": URL + "/openai/v1", "model": "openai/gpt-oss-20b"}
    document = {
        "messages": [
            ["system", [["text", "Be brief.", None, None, None, None]], None, []],
            ["user", [["text", "Hello", None, None, None, None]], None, []],
        ],
        "max_tokens": 20,
        "temperature": 0.0,
        "top_p": None,
        "stop": None,
        "seed": 7,
        "extra": {},
    }
    sort = orjson.OPT_SORT_KEYS
    by_hand = hashlib.sha256(
        b"botticelli-cache/1\n"
        + orjson.dumps(scope, option=sort)
        + b"\n"
        + orjson.dumps(document, option=sort)
    ).hexdigest()
    assert key_of(request) == by_hand
    assert by_hand == "f1c60c26ddb3c94c97b1bcc5dcc9560f1582e2e820d636371e548b46a349ec81"


def test_api_key_is_not_an_input() -> None:
    request = GenerateRequest.prompt("Hello", temperature=0)
    assert key_of(request, groq("gsk_one_aaaaaaaaaaaaaaaa")) == key_of(
        request, groq("gsk_two_bbbbbbbbbbbbbbbb")
    )
    scope = scope_of(groq())
    assert TEST_KEY not in repr(scope) and TEST_KEY[4:] not in repr(scope)


def test_credentials_in_the_url_are_dropped() -> None:
    plain = OpenAICompatibleDriver("m", base_url="http://llm.local:8000/v1")
    with_user = OpenAICompatibleDriver("m", base_url="http://user:s3cret@llm.local:8000/v1")
    assert scope_of(with_user)["base_url"] == "http://llm.local:8000/v1"
    request = GenerateRequest.prompt("Hi", temperature=0)
    assert key_of(request, plain) == key_of(request, with_user)


@pytest.mark.parametrize(
    "change",
    [
        {"max_tokens": 21},
        {"temperature": 0.5},
        {"top_p": 0.9},
        {"stop": ["\n"]},
        {"seed": 8},
        {"extra": {"reasoning_effort": "low"}},
    ],
    ids=lambda c: next(iter(c)),
)
def test_every_parameter_is_in_the_key(change: dict[str, object]) -> None:
    base: dict[str, object] = {"temperature": 0, "max_tokens": 20, "seed": 7}
    assert key_of(GenerateRequest.prompt("Hi", **base)) != key_of(
        GenerateRequest.prompt("Hi", **base | change)
    )


def test_scope_is_in_the_key() -> None:
    request = GenerateRequest.prompt("Hi", temperature=0)
    keys = {
        key_of(request, groq()),
        key_of(request, groq(model="openai/gpt-oss-120b")),
        key_of(request, groq(base_url="http://127.0.0.1:10")),
        key_of(request, OpenAICompatibleDriver("openai/gpt-oss-20b", base_url=URL + "/openai/v1")),
    }
    assert len(keys) == 4  # the last differs from the first by provider name only


def test_messages_are_in_the_key() -> None:
    one = GenerateRequest([Message.user("Hi")], temperature=0)
    keys = {
        key_of(one),
        key_of(GenerateRequest([Message.user("Hi!")], temperature=0)),
        key_of(GenerateRequest([Message.system("Hi")], temperature=0)),
        key_of(GenerateRequest([Message.user("Hi"), Message.assistant("Hello")], temperature=0)),
        key_of(GenerateRequest([Message.tool("Hi", tool_call_id="c1")], temperature=0)),
    }
    assert len(keys) == 5


def test_bytes_inputs_are_hashed_not_embedded() -> None:
    def with_image(data: bytes) -> GenerateRequest:
        message = Message(
            Role.USER, (Input.text("What is this?"), Input.image(data=data, mime_type="image/png"))
        )
        return GenerateRequest([message], temperature=0)

    image = b"\x89PNG" + b"\x01" * 5000
    assert key_of(with_image(image)) == key_of(with_image(bytes(image)))
    assert key_of(with_image(image)) != key_of(with_image(image + b"\x02"))
    document = request_document(with_image(image))
    assert b"\x01" * 50 not in document and len(document) < 400


def test_equal_numbers_share_a_key() -> None:
    assert key_of(GenerateRequest.prompt("Hi", temperature=0)) == key_of(
        GenerateRequest.prompt("Hi", temperature=0.0)
    )
    assert key_of(GenerateRequest.prompt("Hi", temperature=0, extra={"b": 1, "a": [1, 2]})) == key_of(
        GenerateRequest.prompt("Hi", temperature=0, extra={"a": [1, 2], "b": 1})
    )


def test_unkeyable_extra_makes_the_request_uncacheable() -> None:
    request = GenerateRequest.prompt("Hi", temperature=0, extra={"callback": object()})
    assert KeyScope(scope_of(groq())).key(request) is None


def test_deterministic_rule() -> None:
    assert is_deterministic(GenerateRequest.prompt("Hi", temperature=0))
    assert is_deterministic(GenerateRequest.prompt("Hi", temperature=0.9, seed=1))
    assert not is_deterministic(GenerateRequest.prompt("Hi"))
    assert not is_deterministic(GenerateRequest.prompt("Hi", temperature=0.2))


def test_cached_driver_key(tmp_path: Path) -> None:
    store = SQLiteCache(tmp_path / "c.sqlite3")
    try:
        driver = CachedDriver(groq(), store)
        sampled = GenerateRequest.prompt("Hi", temperature=0.7)
        assert driver.key(sampled) is None
        assert CachedDriver(groq(), store, cache_all=True).key(sampled) == key_of(sampled)
        assert driver.provider_name == "groq" and driver.model_name == "openai/gpt-oss-20b"
    finally:
        store.close()


class _Wrapper(WrapperDriver):
    """A wrapper (say, a rate limiter) with no URL of its own: it passes its driver's through."""


def test_wrappers_and_local_models_are_told_apart() -> None:
    request = GenerateRequest.prompt("Hi", temperature=0)
    a, b = _Wrapper(groq(base_url="http://127.0.0.1:1")), _Wrapper(groq(base_url="http://127.0.0.1:2"))
    assert scope_of(a)["base_url"] == "http://127.0.0.1:1/openai/v1"
    assert scope_of(_Wrapper(a)) == scope_of(a) == scope_of(groq(base_url="http://127.0.0.1:1"))
    assert key_of(request, a) != key_of(request, b)

    class Local(_Wrapper):
        @property
        def endpoint(self) -> str | None:
            return "/models/x.gguf"

    assert scope_of(Local(groq()))["base_url"] == "/models/x.gguf"

    class Nowhere(_Wrapper):
        @property
        def endpoint(self) -> str | None:
            return None

    assert scope_of(Nowhere(groq()))["base_url"] == "botticelli.drivers.groq.GroqDriver"


_WEATHER = Tool("get_weather", "The weather in a city", {"type": "object", "properties": {"city": {}}})


@pytest.mark.parametrize(
    "change",
    [
        {"tools": [_WEATHER]},
        {"tools": [_WEATHER, Tool("get_time")]},
        {"tools": [Tool("get_weather", "The weather in a city")]},  # other parameters
        {"tools": [Tool(_WEATHER.name, _WEATHER.description, _WEATHER.parameters, strict=True)]},
        {"tools": [_WEATHER], "tool_choice": "required"},
        {"tools": [_WEATHER], "tool_choice": "none"},
        {"tools": [_WEATHER], "tool_choice": ToolChoice.tool("get_weather")},
        {"tools": [_WEATHER], "parallel_tool_calls": False},
        {"response_format": ResponseFormat.json()},
        {"response_format": ResponseFormat.json_schema({"type": "object"})},
        {"response_format": ResponseFormat.json_schema({"type": "object"}, strict=True)},
        {"response_format": ResponseFormat.json_schema({"type": "object"}, name="answer")},
        {"parallel_tool_calls": True},
    ],
    ids=repr,
)
def test_typed_request_fields_are_in_the_key(change: dict[str, object]) -> None:
    """Two requests that differ only in tools, tool choice, parallel tool calls or response
    format never share an entry; each setting has a key of its own."""
    base = GenerateRequest.prompt("Weather in Paris?", temperature=0)
    changed = GenerateRequest.prompt("Weather in Paris?", temperature=0, **change)  # type: ignore[arg-type]
    assert key_of(base) != key_of(changed)
    assert key_of(changed) == key_of(GenerateRequest.prompt("Weather in Paris?", temperature=0, **change))  # type: ignore[arg-type]


def test_typed_request_fields_are_canonical() -> None:
    """Every spelling of the same tools and format is one key: schema key order, a read-only
    mapping, ``tool_choice`` as a string or a ``ToolChoice``; tool order is meaningful."""
    import types

    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    reordered = {"required": ["city"], "properties": {"city": {"type": "string"}}, "type": "object"}

    def request(parameters: Any, choice: Any = "auto", tools: Any = None) -> GenerateRequest:
        tools = tools or [Tool("get_weather", "w", parameters), Tool("get_time")]
        return GenerateRequest.prompt(
            "Hi",
            temperature=0,
            tools=tools,
            tool_choice=choice,
            response_format=ResponseFormat.json_schema(parameters),
        )

    keys = {
        key_of(request(schema)),
        key_of(request(reordered)),
        key_of(request(types.MappingProxyType(schema))),
        key_of(request(schema, ToolChoice("auto"))),
    }
    assert len(keys) == 1
    assert key_of(request(schema, tools=[Tool("get_time"), Tool("get_weather", "w", schema)])) not in keys
    # a request without the typed fields keeps its version-1 document, key and stored answer
    assert b"tools" not in request_document(GenerateRequest.prompt("Hi", temperature=0))


async def test_cached_helper_owns_the_store_it_opens(tmp_path: Path) -> None:
    from botticelli.cache import cached

    driver = cached(groq(), str(tmp_path / "c.sqlite3"), ttl=5)
    assert isinstance(driver.cache, SQLiteCache) and driver.ttl == 5
    await driver.aclose()
    with pytest.raises(CacheError, match="closed"):
        await driver.cache.get("0" * 64)
    shared = SQLiteCache(tmp_path / "d.sqlite3")
    await cached(groq(), shared).aclose()
    assert await shared.get("0" * 64) is None  # a store passed in stays open
    shared.close()
    with pytest.raises(ValueError, match="ttl"):
        CachedDriver(groq(), shared, ttl=0)


# ---- credentials and keys never reach a key, a location or a stored entry ------------------------

# What a password can hold inside a URL's userinfo: anything but the path, query and fragment
# delimiters and whitespace, "@" and ":" included.
_password = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126, blacklist_characters="/?#"),
    min_size=1,
    max_size=24,
)
_user = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126, blacklist_characters="/?#:@"), max_size=8
)
_host = st.sampled_from(["localhost", "127.0.0.1", "cache.internal", "[::1]"])


@given(user=_user, password=_password, host=_host, port=st.integers(1, 65535))
def test_masked_url_hides_any_password(user: str, password: str, host: str, port: int) -> None:
    """``redis://:p@ss@host:6379/0`` shows neither ``p@ss`` nor ``ss``: everything before the
    last ``@`` goes, whatever the password holds."""
    url = f"redis://{user}:{password}@{host}:{port}/0"
    assert masked_url(url) == f"redis://***@{host}:{port}/0"
    if not set("[]") & set(user + password):  # brackets make a URL redis-py refuses, see below
        assert RedisCache(url).location == f"redis://***@{host}:{port}/0"
    assert (
        masked_url(f"{url}?password={password.replace('&', '')}&db=1")
        == f"redis://***@{host}:{port}/0?password=***&db=1"
    )


def test_a_malformed_redis_url_is_refused_without_its_password() -> None:
    for url in ("redis://:se[cret@localhost:1/0", "redis://[:pa]ss0@[::1]:1/0"):
        with pytest.raises(ConfigurationError) as refused:
            RedisCache(url)
        assert "cret" not in str(refused.value) and "ss0" not in str(refused.value)


@given(user=_user, password=_password, host=_host)
def test_credentials_never_reach_the_key(user: str, password: str, host: str) -> None:
    with_credentials = f"http://{user}:{password}@{host}:8000/v1"
    assert _strip_credentials(with_credentials) == f"http://{host}:8000/v1"
    assert _strip_credentials(f"http://{host}:8000/v1") == f"http://{host}:8000/v1"  # unchanged


def test_credentials_with_at_signs_share_the_plain_key() -> None:
    request = GenerateRequest.prompt("Hi", temperature=0)
    plain = OpenAICompatibleDriver("m", base_url="http://llm.local:8000/v1")
    with_at = OpenAICompatibleDriver("m", base_url="http://user:p@ss@w0rd@llm.local:8000/v1")
    assert scope_of(with_at)["base_url"] == "http://llm.local:8000/v1"
    assert key_of(request, plain) == key_of(request, with_at)


_token = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=8, max_size=20
)


@st.composite
def leaky_metadata(draw: st.DrawFn) -> tuple[str, str]:
    """A secret and an id that carries it: a registered key value (distinctive, so registering
    it cannot redact anything in other tests), a key-shaped string, or URL credentials."""
    token = draw(_token)
    kind = draw(st.sampled_from(["registered", "gsk", "sk", "bearer", "url"]))
    secret = {
        "registered": f"zz-registered-{token}",
        "gsk": f"gsk_{token}",
        "sk": f"sk-{token}",
        "bearer": f"Bearer {token}",
        "url": f"https://user:{token}@proxy.local/x",
    }[kind]
    if kind == "registered":
        register_secret(secret)
    leak = token if kind != "registered" else secret
    return leak, draw(st.sampled_from(["req_{}", "{}", "id-{}-end", "{} trailing"])).format(secret)


@given(leak=leaky_metadata(), text=st.text(max_size=40))
def test_stored_metadata_is_redacted_and_texts_are_kept(leak: tuple[str, str], text: str) -> None:
    """A server echoing a key into an id, a request id or a tool call id: the entry does not
    hold it. The answer's own text is stored (and replayed) exactly."""
    secret, carrier = leak
    response = GenerateResponse(
        outputs=[TextOutput(text), ToolCallOutput(ToolCall(carrier, "lookup", "{}"))],
        finish_reason=carrier,
        model="m",
        provider="groq",
        id=carrier,
        request_id=carrier,
        usage=Usage(1, 2, 3),
    )
    final = StreamChunk(
        is_final=True, finish_reason="stop", request_id=carrier, tool_calls=(ToolCall(carrier, "f", "{}"),)
    )
    for stored in (encode_response(response), encode_stream([(text, "")], final, model="m", provider="groq")):
        assert secret.encode() not in stored.replace(text.encode(), b"")
        entry = Entry.decode(stored)
        assert entry is not None
        replayed = entry.response(0.0)
        assert replayed.text == text and secret not in (replayed.request_id or "")
