"""Ollama: the generic HTTP driver with the ``/api/chat`` codec and Ollama's configuration, plus
the two model endpoints a local server is asked about (``/api/tags``, ``/api/show``).

What this driver adds over the generic one: ``OLLAMA_HOST`` in the forms people write it
(``host:port``, ``0.0.0.0``; ``providers.ollama.parse_host``), and a refused connection that says
to start ``ollama serve``, the usual reason with a local server.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from ..codecs import _shape
from ..codecs.ollama_chat import OllamaChat
from ..config import Timeout, env_value
from ..errors import ConfigurationError, ResponseError
from ..providers.ollama import OLLAMA, parse_host
from ..types import ModelListing
from .http import HTTPDriver

if TYPE_CHECKING:
    import ssl

    import aiohttp

    from ..ratelimit import RateLimits

__all__ = ["DEFAULT_MODEL", "OllamaDriver", "OllamaModelDetails"]

#: The model ``ollama:`` means without one: the small one most people have pulled.
DEFAULT_MODEL = "llama3.2"


@dataclass(frozen=True, slots=True)
class OllamaModelDetails:
    """What ``POST /api/show`` says of one pulled model: what a client decides on (its
    capabilities, e.g. ``"tools"``, ``"thinking"``, ``"vision"``; its context length), the
    Modelfile's ``parameters`` and ``template`` as text, and ``raw``, the whole answer."""

    model: str
    capabilities: tuple[str, ...] = ()
    family: str | None = None
    parameter_size: str | None = None
    quantization_level: str | None = None
    format: str | None = None
    context_length: int | None = None
    parameters: str | None = None
    template: str | None = None
    license: str | None = None
    modified_at: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def supports(self, capability: str) -> bool:
        return capability in self.capabilities


class OllamaDriver(HTTPDriver):
    """``OllamaDriver("llama3.2")``: the server from ``base_url=``, else ``OLLAMA_HOST`` (also
    from ``./.env``; ``host:port``, ``:port``, ``0.0.0.0`` or a URL, as the official SDK reads
    it), else http://localhost:11434. No key locally; ``OLLAMA_API_KEY``, where set, is sent as a
    bearer token (ollama.com). No client-side rate limits unless ``limits=``.

    ``keep_alive``: how long the server keeps the model loaded after each request (``"5m"``,
    seconds, ``0`` unloads; default: the server's). Ollama-only fields go in
    ``GenerateRequest.extra`` (``{"options": {"num_ctx": 8192}}``; see ``OllamaChat``). HTTP
    client options: see ``HTTPDriver``."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        base_url: str | None = None,
        timeout: float | Timeout | None = None,
        max_retries: int | None = None,
        headers: Mapping[str, str] | None = None,
        keep_alive: str | float | None = None,
        limits: Mapping[str, Any] | RateLimits | None = None,
        verify: bool | str | ssl.SSLContext | None = None,
        proxy: str | None = None,
        trust_env: bool = True,
        http_client: aiohttp.ClientSession | None = None,
        connector: aiohttp.BaseConnector | None = None,
    ) -> None:
        if keep_alive is not None and (
            isinstance(keep_alive, bool) or not isinstance(keep_alive, str | int | float)
        ):
            raise ConfigurationError(
                f"keep_alive: expected a duration such as '5m' or seconds, got {keep_alive!r}"
            )
        super().__init__(
            model,
            provider=OLLAMA,
            codec=OllamaChat(keep_alive=keep_alive),
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            headers=headers,
            limits=limits,
            verify=verify,
            proxy=proxy,
            trust_env=trust_env,
            http_client=http_client,
            connector=connector,
        )
        self.keep_alive = keep_alive

    def _root_for(self, given: str | None) -> str:
        """``OLLAMA_HOST`` / ``base_url`` normalised as the SDK does, then the generic checks."""
        if not given:
            given = env_value("OLLAMA_HOST")
        if isinstance(given, str) and given.strip():
            given = parse_host(given)
        return super()._root_for(given)

    # -- models --------------------------------------------------------------------------------

    async def list_models(self) -> list[ModelListing]:
        """The pulled models (``GET /api/tags``): name, size on disk, when pulled, the context
        length where the server says it."""
        _, entries = await self.listing("/tags", "models")
        found = []
        for entry in entries:
            if not isinstance(entry, dict):
                continue  # a listing informs: odd entries are skipped, not fatal
            name = entry.get("name") or entry.get("model")
            if not isinstance(name, str):
                continue
            details = _shape.lenient_obj(entry.get("details"), "details")
            found.append(
                ModelListing(
                    id=name,
                    created=_shape.label(entry.get("modified_at")),
                    context_window=_shape.count(details.get("context_length")),
                    owned_by=_namespace(name),
                    size=_shape.count(entry.get("size")),
                )
            )
        return found

    async def show(self, model: str | None = None) -> OllamaModelDetails:
        """``POST /api/show`` for ``model`` (default: this driver's): capabilities, details,
        context length. A model that is not pulled is a ``ModelNotFoundError`` (``ollama pull``)."""
        name = model or self.model_name
        reply = await self.request("POST", "/show", content=orjson.dumps({"model": name}))
        data = self.parse_json(reply.content, reply.headers, reply.status)
        if self.codec.is_error(data):
            raise self.error_from_data(reply.status, reply.headers, data)
        if not isinstance(data, dict):
            raise ResponseError(
                "the model details are not an object",
                provider=self.provider_name,
                model=name,
                status=reply.status,
                body=data,
            )
        details = _shape.lenient_obj(data.get("details"), "details")
        info = _shape.lenient_obj(data.get("model_info"), "model_info")
        capabilities = data.get("capabilities")
        return OllamaModelDetails(
            model=name,
            capabilities=tuple(c for c in capabilities if isinstance(c, str))
            if isinstance(capabilities, list)
            else (),
            family=_shape.label(details.get("family")),
            parameter_size=_shape.label(details.get("parameter_size")),
            quantization_level=_shape.label(details.get("quantization_level")),
            format=_shape.label(details.get("format")),
            context_length=_context_length(info) or _shape.count(details.get("context_length")),
            parameters=_shape.label(data.get("parameters")),
            template=_shape.label(data.get("template")),
            license=_shape.label(data.get("license")),
            modified_at=_shape.label(data.get("modified_at")),
            raw=data,
        )

    def __repr__(self) -> str:
        return f"OllamaDriver(model={self.model_name!r}, base_url={self.root_url!r})"


def _namespace(name: str) -> str:
    """Who publishes a model, as ``/v1/models`` says (§7): the name's namespace, ``library`` for
    the official ones (``llama3.2``; ``user/model``; ``host/user/model``)."""
    parts = name.split(":", 1)[0].split("/")
    return parts[-2] if len(parts) > 1 else "library"


def _context_length(info: Mapping[str, Any]) -> int | None:
    """``model_info["<architecture>.context_length"]``, the GGUF key (any architecture's)."""
    arch = info.get("general.architecture")
    if isinstance(arch, str):
        found = _shape.count(info.get(f"{arch}.context_length"))
        if found:
            return found
    for key, value in info.items():
        if isinstance(key, str) and key.endswith(".context_length"):
            return _shape.count(value)
    return None
