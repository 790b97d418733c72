"""Ollama: a local server (``ollama serve``) speaking its native API under ``/api``.

What is Ollama's alone lives here: where the server is (``OLLAMA_HOST``, which people write as
``host:port`` or a bare ``0.0.0.0``, as the server reads it for its bind address: ``parse_host``),
no key and no rate limits locally (ollama-wire.md §1, §6), and the readings of its error texts:
a missing model is fixed with ``ollama pull <name>``, a refused connection with ``ollama serve``.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from .._headers import NO_RATE_LIMITS
from ..codecs.base import ErrorFields
from ..errors import ModelNotFoundError, ModelsError
from .base import ParameterRanges, Provider

DEFAULT_PORT = 11434

#: "model 'llama9' not found" (chat lookup) and 'model "llama9" not found, try pulling it first'
#: (scheduling, Go's %q), §6.
_NOT_FOUND = re.compile(r"""model ['"]([^'"]+)['"] not found""")

#: What a refused connection most likely means, for the error's message.
CONNECT_HINT = "is Ollama running? Start it with `ollama serve` (or point OLLAMA_HOST / base_url= at it)"

#: Addresses a server binds to but a client cannot portably connect to: the loopback is meant.
_UNSPECIFIED = {"0.0.0.0": "127.0.0.1", "::": "::1"}


def parse_host(host: str) -> str:
    """``OLLAMA_HOST`` (or ``base_url=``) as a URL. Without a scheme, by the official SDK's
    ``_parse_host`` rules (§1): ``http``, port 11434 unless given, ``:8080`` on the loopback, a
    path kept. A URL with a scheme is kept as written (its own default port, credentials and
    path). Unlike the SDK, the bind-all ``0.0.0.0`` / ``[::]`` (how the *server* is told to listen
    everywhere) becomes the loopback, which every OS accepts as a destination."""
    host = host.strip()
    if "://" in host:
        return _loopback_for_unspecified(host)
    split = urlsplit(f"http://{host}")
    try:
        port = split.port or DEFAULT_PORT
    except ValueError:  # not a port: left for the URL check to name
        return f"http://{host}"
    root = (
        f"http://{_bracketed(_UNSPECIFIED.get(split.hostname or '', split.hostname or '127.0.0.1'))}:{port}"
    )
    path = split.path.strip("/")
    return f"{root}/{path}" if path else root


def _bracketed(name: str) -> str:
    try:
        if isinstance(ipaddress.ip_address(name), ipaddress.IPv6Address):
            return f"[{name}]"
    except ValueError:
        pass
    return name


def _loopback_for_unspecified(url: str) -> str:
    try:
        split = urlsplit(url)
        name, port = split.hostname, split.port
    except ValueError:  # left for the URL check to name
        return url
    if name not in _UNSPECIFIED:
        return url
    userinfo, at, _ = split.netloc.rpartition("@")
    where = _bracketed(_UNSPECIFIED[name]) + (f":{port}" if port else "")
    return split._replace(netloc=f"{userinfo}{at}{where}").geturl()


def read_error(status: int, fields: ErrorFields) -> type[ModelsError] | None:
    """A missing model is one ``ollama pull`` away; a retired one will not load again; a gin
    ``404 page not found`` means the URL is not an Ollama API."""
    message = fields.message
    missing = _NOT_FOUND.search(message)
    if missing:
        fields.message = f"{message}; pull it first: `ollama pull {missing.group(1)}`"
        return ModelNotFoundError
    if "no longer compatible with your version of ollama" in message.lower():
        return ModelNotFoundError
    if status == 404 and "page not found" in message:
        fields.message = (
            f"{message} (is this an Ollama server? base_url is http://host:{DEFAULT_PORT}, without /api)"
        )
    return None


OLLAMA = Provider(
    name="ollama",
    title="Ollama",
    base_url=f"http://localhost:{DEFAULT_PORT}",
    base_url_env="OLLAMA_HOST",
    api_key_env=("OLLAMA_API_KEY",),  # only for ollama.com; a local server needs none (§1)
    key_required=False,
    api_prefix="/api",
    catalog="ollama",
    rate_limits=NO_RATE_LIMITS,
    read_error=read_error,
    connect_hint=CONNECT_HINT,
    # Options are passed to llama.cpp unchecked; temperature has no documented upper bound, and
    # stop sequences are a list of any length (§3).
    ranges=ParameterRanges(temperature=(0.0, float("inf")), max_stop=None),
)

__all__ = ["CONNECT_HINT", "OLLAMA", "parse_host", "read_error"]
