"""HTTP status → exception class: the one provider-neutral table.

The codec reads an error body into ``ErrorFields``; the provider's reader adds what only it
means (Groq's "try again in 7.66s", which limit, 498); this module picks the class and attaches
the catalog's retirement notice to a missing model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from . import catalog
from ._headers import parse_retry_after
from .errors import (
    APITimeoutError,
    AuthenticationError,
    InvalidRequestError,
    ModelNotFoundError,
    ModelsError,
    RateLimitError,
    ResponseError,
    ServerError,
)

if TYPE_CHECKING:
    from .codecs.base import Codec, ErrorFields
    from .providers.base import Provider

_TAGS = re.compile(r"<[^>]+>")
_MODEL_CODES = frozenset({"model_not_found", "model_decommissioned", "not_found_error"})


def classify(status: int, fields: ErrorFields) -> type[ModelsError]:
    """The class for a status and what its body said."""
    if status in (401, 403):
        return AuthenticationError
    if status == 429:
        return RateLimitError
    if fields.code in _MODEL_CODES or (status == 404 and "model" in fields.message.lower()):
        return ModelNotFoundError
    if status == 408:
        return APITimeoutError
    if status >= 500 or status == 409:
        return ServerError
    if 400 <= status < 500:
        return InvalidRequestError
    return ResponseError


def error_from_data(
    status: int,
    headers: Mapping[str, str],
    data: Any,
    *,
    codec: Codec,
    provider: Provider,
    model: str,
) -> ModelsError:
    """A parsed error body as one typed exception."""
    return _error(status, headers, codec.error_fields(status, data), data, codec, provider, model)


def _error(
    status: int,
    headers: Mapping[str, str],
    fields: ErrorFields,
    data: Any,
    codec: Codec,
    provider: Provider,
    model: str,
) -> ModelsError:
    cls = provider.read_error(status, fields) if provider.read_error is not None else None
    if cls is None:
        cls = classify(status, fields)
    message = fields.message
    context: dict[str, Any] = {
        "provider": provider.name,
        "model": model,
        "status": status,
        "code": fields.code,
        "request_id": headers.get(codec.request_id_header),
        "body": data,
        "headers": headers,
    }
    if issubclass(cls, RateLimitError):
        retry_after = parse_retry_after(headers)
        return cls(
            message,
            retry_after=retry_after if retry_after is not None else fields.retry_after,
            limit=fields.limit or fields.type,
            daily=fields.daily,
            limit_kind=fields.limit_kind,
            limit_value=fields.limit_value,
            **context,
        )
    if issubclass(cls, ModelNotFoundError):
        info = catalog.lookup(model, provider.catalog) if provider.catalog else None
        replacement = None
        if info is not None and info.retired:
            message = f"{message} {info.retirement_notice()}"
            replacement = info.replacement
        return cls(message, replacement=replacement, **context)
    if issubclass(cls, InvalidRequestError) and fields.failed_generation is not None:
        return cls(message, failed_generation=fields.failed_generation, **context)
    return cls(message, **context)


def error_from_content(
    status: int,
    headers: Mapping[str, str],
    content: bytes,
    *,
    codec: Codec,
    provider: Provider,
    model: str,
) -> ModelsError:
    """A non-2xx answer's raw body as one typed exception; a body that is not a JSON object (an
    HTML page from a proxy, plain text) still gets the class its status says."""
    try:
        data = orjson.loads(content) if content else None
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        return error_from_data(status, headers, data, codec=codec, provider=provider, model=model)
    raw = content[:2000].decode("utf-8", "replace")
    text = " ".join(_TAGS.sub(" ", raw).split())[:160]
    kind = "an HTML page" if "html" in headers.get("content-type", "").lower() else "a non-JSON body"
    message = f"the server answered {status} with {kind}"
    if status == 403:
        message += " (a proxy or firewall such as Cloudflare refused the request)"
    from .codecs.base import ErrorFields

    fields = ErrorFields(f"{message}: {text}" if text else message)
    return _error(status, headers, fields, data if data is not None else raw, codec, provider, model)
