"""The token estimate counts what the provider bills: text per script (CJK about a token per
character, ASCII about four characters per token), images at a fixed cost whatever their bytes,
JSON extras by length; never below a safe lower bound, whatever the text."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from botticelli import GenerateRequest, InvalidRequestError, Message, _defaults
from botticelli._headers import GROQ_RATE_LIMITS
from botticelli.catalog import lookup
from botticelli.providers.groq_plans import GROQ_PLANS
from botticelli.ratelimit import RateLimits, resolve_limits
from botticelli.ratelimit.estimate import IMAGE_TOKENS, MESSAGE_OVERHEAD, REPLY_OVERHEAD, prompt_tokens
from botticelli.ratelimit.limiter import Limiter
from botticelli.types import Input, Role, ToolCall

MODEL = "openai/gpt-oss-20b"


def cjk_count(text: str) -> int:
    """CJK ideographs, Kana and Hangul syllables: about one token each in every tokenizer."""
    return sum(
        1 for c in text if "\u4e00" <= c <= "\u9fff" or "\u3040" <= c <= "\u30ff" or "\uac00" <= c <= "\ud7a3"
    )


def limiter(plan_source: str = "plan=") -> Limiter:
    info = lookup(MODEL)
    assert info is not None
    return Limiter(
        provider="groq",
        model=MODEL,
        limits=RateLimits(rpm=30, rpd=1000, tpm=8000, tpd=200000),
        sources=dict.fromkeys(("rpm", "rpd", "tpm", "tpd"), "free plan"),
        plan="free",
        plan_source=plan_source,
        resolver=lambda name: resolve_limits("groq", MODEL, name, None, plans=GROQ_PLANS),
        plans=GROQ_PLANS,
        schema=GROQ_RATE_LIMITS,
        max_completion=info.max_completion_tokens,
        context_window=info.context_window,
        clock=time.monotonic,
    )


scripts = st.one_of(
    st.text(),  # anything Unicode (hypothesis leaves out lone surrogates)
    st.text(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)),  # Chinese
    st.text(st.characters(min_codepoint=0x3040, max_codepoint=0x30FF)),  # Kana
    st.text(st.characters(min_codepoint=0xAC00, max_codepoint=0xD7A3)),  # Hangul
    st.text(st.characters(min_codepoint=0x0400, max_codepoint=0x04FF)),  # Cyrillic
    st.text(st.characters(codec="ascii")),
)


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(st.lists(scripts, min_size=1, max_size=3), min_size=1, max_size=4))
def test_text_estimate_is_never_below_the_lower_bounds(texts: list[list[str]]) -> None:
    messages = [Message(Role.USER, tuple(Input.text(t) for t in parts)) for parts in texts]
    request = GenerateRequest(messages)
    every = [t for parts in texts for t in parts]
    estimate = prompt_tokens(request)
    assert estimate >= sum(len(t.encode()) for t in every) / 8
    assert estimate >= sum(cjk_count(t) for t in every)
    assert estimate >= REPLY_OVERHEAD + MESSAGE_OVERHEAD * len(messages)


@settings(max_examples=100, deadline=None)
@given(text=st.text(st.characters(codec="ascii"), min_size=1, max_size=2000))
def test_ascii_is_about_four_characters_per_token(text: str) -> None:
    request = GenerateRequest([Message.user(text)])
    overhead = REPLY_OVERHEAD + MESSAGE_OVERHEAD
    assert len(text) / 4 <= prompt_tokens(request) - overhead <= len(text) / 4 + 1


def test_cjk_counts_a_token_per_character_where_bytes_said_three_quarters() -> None:
    text = "東京の天気はどうですか" * 100  # 1,100 characters, 3,300 bytes
    request = GenerateRequest([Message.user(text)])
    assert prompt_tokens(request) >= 1100  # bytes / 4 said 825


@settings(max_examples=100, deadline=None)
@given(size=st.integers(1, 5_000_000), mime=st.sampled_from(["image/jpeg", "image/png", "image/webp"]))
def test_an_images_cost_does_not_depend_on_its_bytes(size: int, mime: str) -> None:
    text = Input.text("What is in this picture?")
    by_bytes = GenerateRequest([Message(Role.USER, (text, Input.image(data=bytes(size), mime_type=mime)))])
    by_url = GenerateRequest([Message(Role.USER, (text, Input.image("https://example.com/cat.jpg")))])
    only_text = GenerateRequest([Message(Role.USER, (text,))])
    assert prompt_tokens(by_bytes) == prompt_tokens(by_url) == prompt_tokens(only_text) + IMAGE_TOKENS


def test_a_30kb_jpeg_is_not_refused_as_10000_tokens() -> None:
    jpeg = b"\xff\xd8\xff\xe0" + bytes(30_000)
    request = GenerateRequest(
        [Message(Role.USER, (Input.text("Describe it"), Input.image(data=jpeg, mime_type="image/jpeg")))],
        max_tokens=300,
    )
    tokens = limiter().estimate_request(request)  # an explicitly chosen free plan: 8K TPM
    assert IMAGE_TOKENS + 300 <= tokens < IMAGE_TOKENS + 300 + 20


def test_tools_and_extras_count_by_length() -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}] * 20
    plain = GenerateRequest([Message.user("hi")])
    with_tools = GenerateRequest([Message.user("hi")], extra={"tools": tools})
    extra = prompt_tokens(with_tools) - prompt_tokens(plain)
    import json

    assert extra == pytest.approx(len(json.dumps({"tools": tools})) / 4, abs=2)
    calls = Message(Role.ASSISTANT, (), tool_calls=(ToolCall("call_1", "lookup", '{"q": "x"}'),))
    answered = GenerateRequest([Message.user("hi"), calls, Message.tool("42", tool_call_id="call_1")])
    assert prompt_tokens(answered) > prompt_tokens(plain) + 2 * MESSAGE_OVERHEAD


def test_estimate_request_refuses_like_estimate() -> None:
    limit = limiter()
    small = GenerateRequest([Message.user("Say hi")], max_tokens=8)
    assert limit.estimate_request(small) == prompt_tokens(small) + 8
    unset = GenerateRequest([Message.user("Say hi")])
    assert limit.estimate_request(unset) == prompt_tokens(unset) + _defaults.UNSET_MAX_TOKENS_ESTIMATE
    big = GenerateRequest([Message.user("东" * 7000)], max_tokens=2000)
    with pytest.raises(InvalidRequestError, match="tokens per minute") as caught:
        limit.estimate_request(big)
    assert caught.value.code == "request_too_large"
    assert limiter(plan_source="default").estimate_request(big) > 8000  # only assumed: sent
    assert limit.estimate(400, 100) == 200  # the bytes-based estimate still works
