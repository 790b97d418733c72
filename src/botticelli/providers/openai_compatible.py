"""Any server that speaks OpenAI chat completions (vLLM, llama.cpp, LM Studio, Ollama's /v1 ...):
the user gives the URL; rate-limit headers, where sent, are per minute as OpenAI's.

OpenAI-family servers (OpenAI itself, Groq, many proxies) say in a 429's message how long to
wait ("Please try again in 7.66s"); that reading is shared here.
"""

from __future__ import annotations

import re

from .._headers import OPENAI_RATE_LIMITS, parse_duration
from ..codecs.base import ErrorFields
from ..errors import ModelsError
from .base import Provider

_TRY_AGAIN = re.compile(r"try again in ([0-9hmsu.]+)")


def read_try_again(status: int, fields: ErrorFields) -> type[ModelsError] | None:
    """A 429 message's "try again in 7.66s" as the error's retry-after."""
    if status == 429:
        hinted = _TRY_AGAIN.search(fields.message)
        if hinted:
            fields.retry_after = parse_duration(hinted.group(1).rstrip("."))
    return None


OPENAI_COMPATIBLE = Provider(
    name="openai-compatible", rate_limits=OPENAI_RATE_LIMITS, read_error=read_try_again
)
