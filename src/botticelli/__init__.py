"""botticelli: fast, typed, rate-limit-aware LLM inference. Groq first.

    from botticelli import GroqDriver, GenerateRequest, Message
    driver = GroqDriver("openai/gpt-oss-20b")
    response = await driver.generate(GenerateRequest(messages=[Message.user("Hello!")]))

Names are imported lazily on first use, so ``import botticelli`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._version import __version__

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
    "Tool": "types",
    "ToolChoice": "types",
    "ResponseFormat": "types",
    "FinishReason": "types",
    "ExecutedTool": "types",
    "ModelListing": "types",
    "Timeout": "config",
    "Driver": "drivers.base",
    "ResponseStream": "drivers.base",
    "OpenAICompatibleDriver": "drivers.openai_compatible",
    "GroqDriver": "drivers.groq",
    "AnthropicDriver": "drivers.anthropic",
    "OllamaDriver": "drivers.ollama",
    "BotticelliWarning": "errors",
    "HTTPDriver": "drivers.http",
    "LocalDriver": "drivers.local",
    "BlockingDriver": "blocking",
    "generate_batch": "batch.runner",
    "iter_batch": "batch.runner",
    "WrapperDriver": "drivers.wrapper",
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
    "OutputValidationError": "errors",
    "ToolArgumentsError": "errors",
    "MaxTurnsError": "errors",
    "run_tools": "tools",
    "ToolRun": "tools",
}

__all__ = [
    "APIConnectionError",
    "APITimeoutError",
    "AnthropicDriver",
    "AuthenticationError",
    "BlockingDriver",
    "BotticelliError",
    "BotticelliWarning",
    "CachedDriver",
    "ConfigurationError",
    "Driver",
    "ErrorKind",
    "ExecutedTool",
    "FinishReason",
    "GenerateRequest",
    "GenerateResponse",
    "GroqDriver",
    "HTTPDriver",
    "Input",
    "InvalidRequestError",
    "LocalDriver",
    "MaxTurnsError",
    "Message",
    "ModelListing",
    "ModelNotFoundError",
    "ModelsError",
    "OllamaDriver",
    "OpenAICompatibleDriver",
    "OutputValidationError",
    "RateLimitError",
    "RateLimitInfo",
    "ReasoningOutput",
    "ResponseError",
    "ResponseFormat",
    "ResponseStream",
    "Role",
    "ServerError",
    "StreamChunk",
    "TextOutput",
    "Timeout",
    "Tool",
    "ToolArgumentsError",
    "ToolCall",
    "ToolCallOutput",
    "ToolChoice",
    "ToolRun",
    "Usage",
    "WrapperDriver",
    "__version__",
    "driver",
    "generate_batch",
    "iter_batch",
    "open_cache",
    "run_tools",
]


def driver(spec: str, **options: Any) -> Driver:
    """A driver by name: ``driver("groq:openai/gpt-oss-20b")``, ``driver("local:smollm2")``, a bare
    Groq model id, or any provider a plugin registers in the entry-point group
    ``botticelli.providers`` (``botticelli.plugins``). Options go to the driver's constructor."""
    from .plugins import create

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
    from .batch.runner import generate_batch, iter_batch
    from .blocking import BlockingDriver
    from .cache import CachedDriver, open_cache
    from .config import Timeout
    from .drivers.anthropic import AnthropicDriver
    from .drivers.base import Driver, ResponseStream
    from .drivers.groq import GroqDriver
    from .drivers.http import HTTPDriver
    from .drivers.local import LocalDriver
    from .drivers.ollama import OllamaDriver
    from .drivers.openai_compatible import OpenAICompatibleDriver
    from .drivers.wrapper import WrapperDriver
    from .errors import (
        APIConnectionError,
        APITimeoutError,
        AuthenticationError,
        BotticelliError,
        BotticelliWarning,
        ConfigurationError,
        ErrorKind,
        InvalidRequestError,
        MaxTurnsError,
        ModelNotFoundError,
        ModelsError,
        OutputValidationError,
        RateLimitError,
        ResponseError,
        ServerError,
        ToolArgumentsError,
    )
    from .tools import ToolRun, run_tools
    from .types import (
        ExecutedTool,
        FinishReason,
        GenerateRequest,
        GenerateResponse,
        Input,
        Message,
        ModelListing,
        RateLimitInfo,
        ReasoningOutput,
        ResponseFormat,
        Role,
        StreamChunk,
        TextOutput,
        Tool,
        ToolCall,
        ToolCallOutput,
        ToolChoice,
        Usage,
    )
