"""Canonical request keys: which answers count as "the same request".

A key is ``sha256`` (hex) over a versioned canonical document::

    b"botticelli-cache/1\\n" + scope + b"\\n" + request

* ``scope``: orjson with sorted keys of ``{"provider", "base_url", "model"}`` of the driver.
  ``base_url`` is the server's URL with any ``user:password@`` part removed, however many
  ``@`` the password holds, and any registered key value masked (for drivers without a URL,
  e.g. the local one, the model file path, else the driver's class name).
* ``request``: orjson with sorted keys of the messages (role, each input's kind, text, URL,
  MIME type, name and the sha256 of its bytes, tool calls) and every generation parameter
  (``max_tokens``, ``temperature``, ``top_p``, ``stop``, ``seed``, ``extra``); numbers that
  are floats on the wire are normalised, so ``temperature=0`` and ``0.0`` share a key.

Whether the request streams is not part of the key: a stored stream answers a ``generate`` and
a stored ``generate`` answers a stream (replayed as chunks). The API key is never an input: a
driver's key lives in a private ``Secret`` this module never reads. Bump ``KEY_VERSION`` when
the document changes, so old entries stop matching instead of answering wrongly.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from ..drivers.base import Driver
from ..errors import redact
from ..types import GenerateRequest, Input, Message

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
    raise TypeError(f"cannot key a {type(value).__name__}")


def _input(item: Input) -> list[Any]:
    digest = hashlib.sha256(item.data).hexdigest() if item.data is not None else None
    return [item.kind, item.text_value, digest, item.url, item.mime_type, item.name]


def _message(message: Message) -> list[Any]:
    return [
        message.role.value,
        [_input(i) for i in message.content],
        message.tool_call_id,
        [[c.id, c.name, c.arguments] for c in message.tool_calls],
    ]


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)


def request_document(request: GenerateRequest) -> bytes:
    """The canonical bytes of a request (raises TypeError for an ``extra`` value it can't key)."""
    return orjson.dumps(
        {
            "messages": [_message(m) for m in request.messages],
            "max_tokens": request.max_tokens,
            "temperature": _float(request.temperature),
            "top_p": _float(request.top_p),
            "stop": list(request.stop) if request.stop is not None else None,
            "seed": request.seed,
            "extra": dict(request.extra),
        },
        default=_default,
        option=_OPTIONS,
    )


def _strip_credentials(url: str) -> str:
    """The URL without its credentials, by the one scrubber (``errors.redact``, which masks
    everything up to the last ``@`` before the path); the mask is then dropped so a URL with and
    without credentials share a key. A URL without secrets is returned unchanged."""
    return redact(url).replace("://***@", "://", 1)


def scope_of(driver: Driver) -> dict[str, str]:
    """Which server and model a driver talks to: the part of the key fixed per driver.

    The server is the driver's ``base_url``, else its ``model_path`` (local models); a wrapper
    without either (a rate limiter, say) is looked through via its ``driver`` attribute, so two
    wrapped drivers for different servers never share keys. Failing all that, the class name.
    """
    where: str | None = None
    seen: Driver | None = driver
    for _ in range(8):  # wrappers of wrappers, without looping forever on a cycle
        if seen is None:
            break
        base_url = getattr(seen, "base_url", None)
        path = getattr(seen, "model_path", None)
        if isinstance(base_url, str) and base_url:
            where = _strip_credentials(base_url)
            break
        if path:
            where = str(path)
            break
        inner = getattr(seen, "driver", None)
        seen = inner if isinstance(inner, Driver) else None
    if where is None:
        where = f"{type(driver).__module__}.{type(driver).__qualname__}"
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
