"""botticelli: fast, typed, rate-limit-aware LLM inference. Groq first.

    from botticelli import GroqDriver, GenerateRequest, Message
    driver = GroqDriver("openai/gpt-oss-20b")
    response = await driver.generate(GenerateRequest(messages=[Message.user("Hello!")]))

Names are imported lazily on first use, so ``import botticelli`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Role": "types",
    "Input": "types",
    "Message": "types",
    "GenerateRequest": "types",
    "GenerateResponse": "types",
    "StreamChunk": "types",
    "Usage": "types",
    "RateLimitInfo": "types",
    "TextOutput": "types",
    "ReasoningOutput": "types",
    "ToolCallOutput": "types",
    "ToolCall": "types",
    "Timeout": "config",
    "Driver": "drivers.base",
    "ResponseStream": "drivers.base",
    "OpenAICompatibleDriver": "drivers.openai_compatible",
    "GroqDriver": "drivers.groq",
    "BotticelliWarning": "drivers.groq",
    "LocalDriver": "drivers.local",
    "BlockingDriver": "blocking",
    "generate_batch": "batch.runner",
    "CachedDriver": "cache",
    "open_cache": "cache",
    "BotticelliError": "errors",
    "ConfigurationError": "errors",
    "ModelsError": "errors",
    "ErrorKind": "errors",
    "AuthenticationError": "errors",
    "RateLimitError": "errors",
    "ModelNotFoundError": "errors",
    "InvalidRequestError": "errors",
    "APIConnectionError": "errors",
    "APITimeoutError": "errors",
    "ServerError": "errors",
    "ResponseError": "errors",
}

__all__ = [
    "APIConnectionError",
    "APITimeoutError",
    "AuthenticationError",
    "BlockingDriver",
    "BotticelliError",
    "BotticelliWarning",
    "CachedDriver",
    "ConfigurationError",
    "Driver",
    "ErrorKind",
    "GenerateRequest",
    "GenerateResponse",
    "GroqDriver",
    "Input",
    "InvalidRequestError",
    "LocalDriver",
    "Message",
    "ModelNotFoundError",
    "ModelsError",
    "OpenAICompatibleDriver",
    "RateLimitError",
    "RateLimitInfo",
    "ReasoningOutput",
    "ResponseError",
    "ResponseStream",
    "Role",
    "ServerError",
    "StreamChunk",
    "TextOutput",
    "Timeout",
    "ToolCall",
    "ToolCallOutput",
    "Usage",
    "__version__",
    "driver",
    "generate_batch",
    "open_cache",
]


def driver(spec: str, **options: Any) -> Driver:
    """A driver by name: ``driver("groq:openai/gpt-oss-20b")``, ``driver("local:smollm2")``."""
    from .drivers import create

    return create(spec, **options)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'botticelli' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from .batch.runner import generate_batch
    from .blocking import BlockingDriver
    from .cache import CachedDriver, open_cache
    from .config import Timeout
    from .drivers.base import Driver, ResponseStream
    from .drivers.groq import BotticelliWarning, GroqDriver
    from .drivers.local import LocalDriver
    from .drivers.openai_compatible import OpenAICompatibleDriver
    from .errors import (
        APIConnectionError,
        APITimeoutError,
        AuthenticationError,
        BotticelliError,
        ConfigurationError,
        ErrorKind,
        InvalidRequestError,
        ModelNotFoundError,
        ModelsError,
        RateLimitError,
        ResponseError,
        ServerError,
    )
    from .types import (
        GenerateRequest,
        GenerateResponse,
        Input,
        Message,
        RateLimitInfo,
        ReasoningOutput,
        Role,
        StreamChunk,
        TextOutput,
        ToolCall,
        ToolCallOutput,
        Usage,
    )
