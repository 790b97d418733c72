"""The real Groq API. Skipped unless GROQ_API_KEY is set; run with ``./run tests -m api``."""

from __future__ import annotations

import pytest

from botticelli import GenerateRequest, GroqDriver, Message, ModelNotFoundError

from .conftest import REAL_GROQ_API_KEY

pytestmark = [
    pytest.mark.api,
    pytest.mark.skipif(not REAL_GROQ_API_KEY, reason="needs GROQ_API_KEY (talks to the real Groq API)"),
]

REQUEST = GenerateRequest(messages=[Message.user("Say hello in three words.")], max_tokens=64, temperature=0)


def real(model: str = "openai/gpt-oss-20b") -> GroqDriver:
    assert REAL_GROQ_API_KEY is not None
    return GroqDriver(model, api_key=REAL_GROQ_API_KEY)


async def test_real_generate() -> None:
    response = await real().generate(REQUEST)
    assert response.text and response.request_id and response.usage.total_tokens > 0
    assert response.rate_limit is not None and response.rate_limit.tokens_limit


async def test_real_stream() -> None:
    chunks = [c async for c in real().generate_stream(REQUEST)]
    assert chunks[-1].is_final and chunks[-1].usage is not None


async def test_real_retired_model() -> None:
    with pytest.warns(UserWarning):
        driver = real("llama-3.1-8b-instant")
    with pytest.raises(ModelNotFoundError) as caught:
        await driver.generate(REQUEST)
    assert caught.value.replacement == "openai/gpt-oss-20b"
