"""The one error hierarchy.

    BotticelliError
    ├── ConfigurationError          bad or missing configuration (no key, bad URL, missing extra)
    └── ModelsError                 anything a provider or the way to it did wrong
        ├── AuthenticationError     401, 403 (including HTML pages from a proxy)
        ├── RateLimitError          429; .retry_after seconds, .limit which limit was hit
        ├── ModelNotFoundError      404 model_not_found, 400 model_decommissioned
        ├── InvalidRequestError     400, 413, 422 (context length, JSON validation, tool use)
        ├── APIConnectionError      could not connect, connection dropped
        │   └── APITimeoutError     connect or read timed out
        ├── ServerError             5xx, 498 (flex capacity)
        └── ResponseError           a body or stream we cannot parse, an error frame in a
            │                       stream, a stream that ends before [DONE]
            ├── OutputValidationError   generate_json: the answer does not fit the schema
            └── ToolArgumentsError      a tool call's arguments are not a JSON object
    MaxTurnsError (a BotticelliError)   run_tools: the model still asks for tools at max_turns

Every ModelsError carries provider, model, status, code, message, request_id and kind (an
ErrorKind), so callers can catch a class or match on ``err.kind``. No text here ever holds an API
key: messages are scrubbed of anything that looks like one before they are stored.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "APIConnectionError",
    "APITimeoutError",
    "AuthenticationError",
    "BotticelliError",
    "ConfigurationError",
    "ErrorKind",
    "InvalidRequestError",
    "MaxTurnsError",
    "ModelNotFoundError",
    "ModelsError",
    "OutputValidationError",
    "RateLimitError",
    "ResponseError",
    "ServerError",
    "ToolArgumentsError",
]

# Keys of Groq (gsk_), OpenAI-style (sk-...), HuggingFace (hf_) and Bearer headers; a prefix must
# start a word, so "disk-quota" stays "disk-quota".
_SECRET = re.compile(r"(?<![A-Za-z0-9])(gsk_|sk-|hf_|Bearer\s+)[A-Za-z0-9_\-.]{4,}")
# Credentials in a URL: everything between "scheme://" and the last "@" before the path, so a
# password that itself contains "@" is hidden whole.
_URL_CREDENTIALS = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://)[^\s/?#]*@")
# The values of every key this process was handed (drivers register theirs): redacted whatever
# their shape, wherever the server echoes them. Short values are not registered (too many false
# hits, and nobody's key is four characters).
_secrets: set[str] = set()
_MIN_SECRET = 8


def register_secret(value: str | None) -> None:
    """Make ``redact`` hide ``value`` (and its stripped form) from now on, in this process."""
    if value and len(value.strip()) >= _MIN_SECRET:
        _secrets.add(value)
        _secrets.add(value.strip())


def redact(text: str) -> str:
    """Hide every registered key value, anything shaped like an API key, and URL credentials."""
    if not isinstance(text, str):
        text = str(text)
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, "***")
    if "://" in text and "@" in text:
        text = _URL_CREDENTIALS.sub(r"\1***@", text)
    # Every match of _SECRET holds one of these literally; most texts (ids, messages) hold none,
    # and four substring tests cost a fraction of the regular expression's scan.
    if "sk-" in text or "gsk_" in text or "hf_" in text or "Bearer" in text:
        return _SECRET.sub(_masked, text)
    return text


def _masked(match: re.Match[str]) -> str:
    return match.group(1) + "***"


def redact_optional(text: object) -> str | None:
    """``redact`` for optional fields that came from a server (codes, ids, types)."""
    return None if text is None else redact(str(text))


def redact_value(value: Any) -> Any:
    """``redact`` applied to every string in a JSON-like value (keys and values), a new value."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(str(k)): redact_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return redact(bytes(value).decode("utf-8", "replace"))
    return value


class ErrorKind(enum.Enum):
    AUTHENTICATION = "authentication"
    RATE_LIMIT = "rate_limit"
    MODEL_NOT_FOUND = "model_not_found"
    INVALID_REQUEST = "invalid_request"
    CONNECTION = "connection"
    TIMEOUT = "timeout"
    SERVER = "server"
    RESPONSE = "response"


class BotticelliWarning(UserWarning):
    """Something works but is probably not what you meant (retired model, odd-looking key)."""


class BotticelliError(Exception):
    """Base of every error botticelli raises."""


class ConfigurationError(BotticelliError):
    """Configuration is missing or wrong; nothing was sent."""

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))


class ModelsError(BotticelliError):
    """A provider request failed. Read ``kind`` or catch the subclass."""

    kind: ErrorKind = ErrorKind.SERVER

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        model: str = "",
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.message = redact(message)
        self.provider = provider
        self.model = model
        self.status = status
        self.code = redact_optional(code)
        self.request_id = redact_optional(request_id)
        # What the server sent, for diagnosis: parsed JSON or text, every string redacted.
        self.body = redact_value(body)
        self.headers: dict[str, str] = (
            {str(k): redact(str(v)) for k, v in headers.items()} if headers is not None else {}
        )
        super().__init__(self.message)

    def __str__(self) -> str:
        where = "/".join(p for p in (self.provider, self.model) if p)
        parts = [f"{where}: " if where else ""]
        if self.status is not None:
            parts.append(f"{self.status} ")
        if self.code:
            parts.append(f"({self.code}) ")
        parts.append(self.message)
        if self.request_id:
            parts.append(f" [request {self.request_id}]")
        return "".join(parts)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(provider={self.provider!r}, model={self.model!r}, "
            f"status={self.status!r}, code={self.code!r}, request_id={self.request_id!r}, "
            f"message={self.message!r})"
        )


class AuthenticationError(ModelsError):
    kind = ErrorKind.AUTHENTICATION


class RateLimitError(ModelsError):
    """429. ``retry_after``: seconds the server asked us to wait; ``limit``: which limit, e.g.
    ``"tokens per minute (TPM)"``; ``daily``: a per-day quota, which waiting briefly won't fix.
    ``limit_kind`` (``"rpm"``, ``"rpd"``, ``"tpm"``, ``"tpd"``) and ``limit_value``: the limit the
    server named, where its provider's reading could tell (the limiter learns from them)."""

    kind = ErrorKind.RATE_LIMIT

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        limit: str | None = None,
        daily: bool = False,
        limit_kind: str | None = None,
        limit_value: int | None = None,
        **context: object,
    ) -> None:
        super().__init__(message, **context)  # type: ignore[arg-type]
        self.retry_after = retry_after
        self.limit = redact_optional(limit)
        self.daily = daily
        self.limit_kind = limit_kind
        self.limit_value = limit_value


class ModelNotFoundError(ModelsError):
    """Unknown, inaccessible or retired model. ``replacement`` names the successor if known."""

    kind = ErrorKind.MODEL_NOT_FOUND

    def __init__(self, message: str, *, replacement: str | None = None, **context: object) -> None:
        super().__init__(message, **context)  # type: ignore[arg-type]
        self.replacement = redact_optional(replacement)


class InvalidRequestError(ModelsError):
    """The request was refused as it stands (4xx), or refused before sending. ``failed_generation``:
    what the model produced when the provider could not turn it into the tool call or JSON asked
    for (Groq's ``tool_use_failed`` / ``json_validate_failed``), redacted; else ``None``."""

    kind = ErrorKind.INVALID_REQUEST

    def __init__(self, message: str, *, failed_generation: str | None = None, **context: object) -> None:
        super().__init__(message, **context)  # type: ignore[arg-type]
        self.failed_generation = redact_optional(failed_generation)


class APIConnectionError(ModelsError):
    kind = ErrorKind.CONNECTION


class APITimeoutError(APIConnectionError):
    kind = ErrorKind.TIMEOUT


class ServerError(ModelsError):
    kind = ErrorKind.SERVER


class ResponseError(ModelsError):
    kind = ErrorKind.RESPONSE


class OutputValidationError(ResponseError):
    """``generate_json``: the model's answer is not JSON, or does not fit the schema.
    ``raw_text``: the answer as it came; ``errors``: what is wrong, pydantic's shape (a list of
    dicts with ``loc``, ``msg``, ``type``); ``response``: the whole ``GenerateResponse``."""

    def __init__(
        self,
        message: str,
        *,
        raw_text: str = "",
        errors: list[dict[str, Any]] | None = None,
        response: Any = None,
        **context: object,
    ) -> None:
        super().__init__(message, **context)  # type: ignore[arg-type]
        self.raw_text = redact(raw_text)
        self.errors: list[dict[str, Any]] = [
            {**e, "msg": redact(str(e.get("msg", "")))} for e in errors or ()
        ]
        self.response = response


class ToolArgumentsError(ResponseError):
    """A tool call's ``arguments`` are not a JSON object (``ToolCall.args``). ``tool_name`` and
    ``arguments`` (the raw text) say which."""

    def __init__(self, message: str, *, tool_name: str = "", arguments: str = "", **context: object) -> None:
        super().__init__(message, **context)  # type: ignore[arg-type]
        self.tool_name = redact(tool_name)
        self.arguments = redact(arguments)


class MaxTurnsError(BotticelliError):
    """``run_tools`` reached ``max_turns`` and the model still asks for tools. ``result`` is the
    ``ToolRun`` so far: ``.response`` (the last response, with its unrun tool calls) and
    ``.messages`` (the transcript); also here as ``response`` and ``messages``."""

    def __init__(self, message: str, *, result: Any) -> None:
        super().__init__(redact(message))
        self.result = result
        self.response = result.response
        self.messages = result.messages
