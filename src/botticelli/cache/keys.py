"""Canonical request keys: which answers count as "the same request".

A key is ``sha256`` (hex) over a versioned canonical document::

    b"botticelli-cache/1\\n" + scope + b"\\n" + request

* ``scope``: orjson with sorted keys of ``{"provider", "base_url", "model"}`` of the driver
  (``Driver.provider_name``, ``endpoint`` and ``model_name``, which wrappers pass through).
  ``base_url`` is the endpoint with any ``user:password@`` part removed, however many ``@``
  the password holds, and any registered key value masked (the local driver's endpoint is its
  model file; a driver without one is named by its class).
* ``request``: orjson with sorted keys of the messages (role, each input's kind, text, URL,
  MIME type, name and the sha256 of its bytes, tool calls) and every generation parameter
  (``max_tokens``, ``temperature``, ``top_p``, ``stop``, ``seed``, ``extra``); numbers that
  are floats on the wire are normalised, so ``temperature=0`` and ``0.0`` share a key. The
  typed fields added later are in the document only when set, so a request without them keeps
  the key it always had (and its stored answer): ``tools`` (each ``[name, description,
  parameters, strict]``, in order), ``tool_choice`` (``[mode, name]``),
  ``parallel_tool_calls`` and ``response_format`` (``[type, schema, name, strict]``). No
  version-1 document had those names, so a key with them can match no older entry.

Whether the request streams is not part of the key: a stored stream answers a ``generate`` and
a stored ``generate`` answers a stream (replayed as chunks). The API key is never an input: a
driver's key lives in a private ``Secret`` this module never reads. Bump ``KEY_VERSION`` when
the document changes, so old entries stop matching instead of answering wrongly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

from ..drivers.base import Driver
from ..errors import redact
from ..types import GenerateRequest, Input, Message, ResponseFormat, Tool

__all__ = ["KEY_VERSION", "KeyScope", "is_deterministic", "request_document", "scope_of"]

KEY_VERSION = 1
_MAGIC = b"botticelli-cache/%d\n" % KEY_VERSION
_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def is_deterministic(request: GenerateRequest) -> bool:
    """Temperature 0 or a fixed seed: the only requests worth caching by default, since asking
    again would (ideally) give the same answer anyway."""
    return request.seed is not None or request.temperature == 0


def _default(value: Any) -> Any:
    """orjson fallback for ``extra`` values: bytes by digest, sets sorted; anything else is
    refused (TypeError), which makes the request uncacheable rather than keyed by ``repr``."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"sha256": hashlib.sha256(value).hexdigest()}
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, Mapping):  # a schema held in a MappingProxyType, say
        return dict(value)
    raise TypeError(f"cannot key a {type(value).__name__}")


def _input(item: Input) -> list[Any]:
    digest = hashlib.sha256(item.data).hexdigest() if item.data is not None else None
    return [item.kind, item.text_value, digest, item.url, item.mime_type, item.name]


def _message(message: Message) -> list[Any]:
    key = [
        message.role.value,
        [_input(i) for i in message.content],
        message.tool_call_id,
        [[c.id, c.name, c.arguments] for c in message.tool_calls],
    ]
    if message.reasoning:  # only when present: the keys of every earlier entry stay the same
        key.append([[r.text, r.signature] for r in message.reasoning])
    return key


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)


def _tool(tool: Tool) -> list[Any]:
    if tool.kind != "function":
        return [tool.name, tool.description, dict(tool.parameters), tool.strict, tool.kind]
    return [tool.name, tool.description, dict(tool.parameters), tool.strict]


def _format(response_format: ResponseFormat) -> list[Any]:
    schema = dict(response_format.schema) if response_format.schema is not None else None
    return [response_format.type, schema, response_format.name, response_format.strict]


def request_document(request: GenerateRequest) -> bytes:
    """The canonical bytes of a request (raises TypeError for an ``extra`` value it can't key)."""
    document: dict[str, Any] = {
        "messages": [_message(m) for m in request.messages],
        "max_tokens": request.max_tokens,
        "temperature": _float(request.temperature),
        "top_p": _float(request.top_p),
        "stop": list(request.stop) if request.stop is not None else None,
        "seed": request.seed,
        "extra": dict(request.extra),
    }
    if request.tools:
        document["tools"] = [_tool(t) for t in request.tools]
    if request.tool_choice is not None:
        document["tool_choice"] = [request.tool_choice.mode, request.tool_choice.name]
    if request.parallel_tool_calls is not None:
        document["parallel_tool_calls"] = request.parallel_tool_calls
    if request.response_format is not None:
        document["response_format"] = _format(request.response_format)
    for name in ("reasoning_effort", "reasoning_format", "include_reasoning", "service_tier"):
        value = getattr(request, name)
        if value is not None:  # only when set: a request without them keeps its old key
            document[name] = value
    return orjson.dumps(document, default=_default, option=_OPTIONS)


def _strip_credentials(url: str) -> str:
    """The URL without its credentials, by the one scrubber (``errors.redact``, which masks
    everything up to the last ``@`` before the path); the mask is then dropped so a URL with and
    without credentials share a key. A URL without secrets is returned unchanged."""
    return redact(url).replace("://***@", "://", 1)


def scope_of(driver: Driver) -> dict[str, str]:
    """Which server and model a driver talks to: the part of the key fixed per driver.

    The server is the driver's ``endpoint`` (its base URL, without credentials, or the local
    model file); a wrapper (``WrapperDriver``) passes its inner driver's through, so two wrapped
    drivers for different servers never share keys. A driver without one: its class name (the
    innermost driver's, for a wrapper).
    """
    from ..drivers.wrapper import WrapperDriver

    endpoint = driver.endpoint
    if endpoint:
        where = _strip_credentials(endpoint) if "://" in endpoint else endpoint
    else:
        named = driver.innermost if isinstance(driver, WrapperDriver) else driver
        where = f"{type(named).__module__}.{type(named).__qualname__}"
    return {"provider": driver.provider_name, "base_url": where, "model": driver.model_name}


class KeyScope:
    """Keys for one driver. The scope is hashed once; each key copies that hash state and adds the
    request, so a key costs one orjson dump and one short sha256."""

    __slots__ = ("_base", "scope")

    def __init__(self, scope: dict[str, str]) -> None:
        self.scope = scope
        self._base = hashlib.sha256(_MAGIC + orjson.dumps(scope, option=_OPTIONS) + b"\n")

    def key(self, request: GenerateRequest) -> str | None:
        """The hex key, or ``None`` when ``extra`` holds something that has no canonical form."""
        try:
            document = request_document(request)
        except TypeError:
            return None
        digest = self._base.copy()
        digest.update(document)
        return digest.hexdigest()
