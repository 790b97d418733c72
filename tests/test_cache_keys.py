"""Canonical cache keys: what makes two requests the same, and what never goes into a key."""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson
import pytest

from botticelli import GenerateRequest, GroqDriver, Input, Message, OpenAICompatibleDriver, Role
from botticelli.cache import CachedDriver, CacheError, SQLiteCache, is_deterministic
from botticelli.cache.keys import KeyScope, request_document, scope_of

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
        message = Message(Role.USER, (Input.text("What is this?"), Input.image(data=data)))
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


class _Wrapper(GroqDriver):
    """A wrapper (say, a rate limiter) that hides the URL but exposes ``driver``."""

    def __init__(self, inner: GroqDriver) -> None:  # no super().__init__: no base_url of its own
        self.driver = inner
        self.provider_name = inner.provider_name
        self.model_name = inner.model_name


def test_wrappers_and_local_models_are_told_apart() -> None:
    request = GenerateRequest.prompt("Hi", temperature=0)
    a, b = _Wrapper(groq(base_url="http://127.0.0.1:1")), _Wrapper(groq(base_url="http://127.0.0.1:2"))
    assert scope_of(a)["base_url"] == "http://127.0.0.1:1/openai/v1"
    assert key_of(request, a) != key_of(request, b)

    class Local(_Wrapper):
        model_path = "/models/x.gguf"

    assert scope_of(Local(groq()))["base_url"] == "/models/x.gguf"


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
