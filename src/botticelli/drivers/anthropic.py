"""Anthropic: the generic HTTP driver with the Messages codec and Anthropic's configuration.

What this driver adds is the one thing users of every peer library trip over: sampling
parameters a model (or the API version) rejects. Version ``2026-10-21`` removed
``temperature``/``top_p``/``top_k``; newer models reject ``temperature`` on ``2023-06-01`` too,
and several 4.x models take ``temperature`` or ``top_p`` but not both (anthropic-wire.md §1.1).
By default such a parameter is dropped with one warning per model and parameter; with
``strict=True`` it is an ``InvalidRequestError`` before any request. Never a server 400.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .. import catalog
from ..codecs.anthropic_messages import CURRENT_VERSION, DEFAULT_MAX_TOKENS, VERSIONS, AnthropicMessages
from ..config import Timeout, env_value
from ..errors import BotticelliWarning, ConfigurationError, InvalidRequestError
from ..providers.anthropic import ANTHROPIC
from ..types import GenerateRequest, ModelListing
from .http import HTTPDriver

if TYPE_CHECKING:
    import ssl

    import aiohttp

    from ..ratelimit import RateLimits

__all__ = ["DEFAULT_MODEL", "AnthropicDriver"]

DEFAULT_MODEL = "claude-sonnet-5-5"
_SAMPLING = ("temperature", "top_p", "top_k")


class AnthropicDriver(HTTPDriver):
    """``AnthropicDriver("claude-sonnet-5-5")``: key from ``api_key=``, ``ANTHROPIC_API_KEY`` or
    ``auth_token=`` / ``ANTHROPIC_AUTH_TOKEN`` (also from ``./.env``); base URL from the argument,
    ``ANTHROPIC_BASE_URL`` or api.anthropic.com.

    ``version``: ``"2026-10-21"`` (default; the key goes as ``Authorization: Bearer``) or
    ``"2023-06-01"`` (``x-api-key``, as the 0.x SDKs). ``strict``: refuse, rather than drop with
    a warning, a sampling parameter the model or version rejects. ``max_tokens`` is required by
    the API: a request without one gets ``AnthropicMessages.default_max_tokens``. No client-side
    rate limits unless ``limits=`` (then the ``anthropic-ratelimit-*`` headers correct them).
    HTTP client options: see ``HTTPDriver``."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        api_key: str | None = None,
        auth_token: str | None = None,
        base_url: str | None = None,
        timeout: float | Timeout | None = None,
        max_retries: int | None = None,
        version: str = CURRENT_VERSION,
        strict: bool = False,
        limits: Mapping[str, Any] | RateLimits | None = None,
        redis_url: str | None = None,
        headers: Mapping[str, str] | None = None,
        verify: bool | str | ssl.SSLContext | None = None,
        proxy: str | None = None,
        trust_env: bool = True,
        http_client: aiohttp.ClientSession | None = None,
        connector: aiohttp.BaseConnector | None = None,
    ) -> None:
        if version not in VERSIONS:
            raise ConfigurationError(
                f"version: the Messages API has {' and '.join(VERSIONS)}, not {version!r}"
            )
        if auth_token is None and api_key is None and not env_value("ANTHROPIC_API_KEY"):
            auth_token = env_value("ANTHROPIC_AUTH_TOKEN")
        # A bearer token is always sent as one; a key only on the version that wants it so.
        bearer = version == CURRENT_VERSION or (auth_token is not None and api_key is None)
        # max_tokens is required: the default, capped by the model's output limit where the
        # catalog knows it (it does not yet: anthropic-wire.md §10 has no per-model limits).
        known = catalog.capabilities(model, "anthropic").max_output_tokens
        default = min(DEFAULT_MAX_TOKENS, known) if known else DEFAULT_MAX_TOKENS
        super().__init__(
            model,
            provider=ANTHROPIC,
            codec=AnthropicMessages(version=version, bearer=bearer, default_max_tokens=default),
            base_url=base_url,
            api_key=api_key if api_key is not None else auth_token,
            timeout=timeout,
            max_retries=max_retries,
            headers=headers,
            limits=limits,
            redis_url=redis_url,
            verify=verify,
            proxy=proxy,
            trust_env=trust_env,
            http_client=http_client,
            connector=connector,
        )
        self.version = version
        self.strict = strict
        self._warned: set[str] = set()

    def __repr__(self) -> str:
        where = f"version={self.version!r}, base_url={self.root_url!r}"
        return f"AnthropicDriver(model={self.model_name!r}, {where})"

    # -- what the model or the version rejects ---------------------------------------------------

    def _rejected(self, request: GenerateRequest) -> dict[str, str]:
        """Sampling parameters of ``request`` the API would answer 400 to, with the reason."""
        given = [n for n in _SAMPLING if getattr(request, n, None) is not None or n in request.extra]
        if not given:
            return {}
        profile = self._profile
        found: dict[str, str] = {}
        for name in given:
            if self.version == CURRENT_VERSION:
                found[name] = f"API version {CURRENT_VERSION} removed it"
            elif profile is not None and profile.rejects(name):
                found[name] = f"`{name}` is deprecated for model {self.model_name!r}"
        if profile is not None and profile.exclusive_parameters:
            both = [n for n in profile.exclusive_parameters if n in given and n not in found]
            for name in both[1:]:
                found[name] = f"model {self.model_name!r} takes only one of {' and '.join(both)}"
        return found

    def _accepted(self, request: GenerateRequest) -> GenerateRequest:
        rejected = self._rejected(request)
        if not rejected:
            return request
        if self.strict:
            name, reason = next(iter(rejected.items()))
            raise InvalidRequestError(
                f"{name} is not accepted: {reason} (strict=True; leave it out, or strict=False to drop it)",
                provider=self.provider_name,
                model=self.model_name,
                code="unsupported_parameter",
            )
        for name, reason in rejected.items():
            if name not in self._warned:
                self._warned.add(name)
                warnings.warn(
                    f"Anthropic: {name} dropped from requests to {self.model_name!r}: {reason}",
                    BotticelliWarning,
                    stacklevel=4,
                )
        extra = {k: v for k, v in request.extra.items() if k not in rejected}
        return dataclasses.replace(
            request,
            extra=extra,
            temperature=None if "temperature" in rejected else request.temperature,
            top_p=None if "top_p" in rejected else request.top_p,
        )

    def check(self, request: GenerateRequest, *, stream: bool = False) -> None:
        super().check(self._accepted(request), stream=stream)

    def _encode(self, request: GenerateRequest, *, stream: bool) -> bytes:
        return super()._encode(self._accepted(request), stream=stream)

    # -- the live model list -----------------------------------------------------------------------

    async def list_models(
        self, *, lifecycle: tuple[str, ...] = ("active", "deprecated")
    ) -> list[ModelListing]:
        """``GET /v1/models``, every page, with the lifecycle fields the 2.x API adds (§8.1):
        ``lifecycle`` picks ``active``, ``deprecated`` and/or ``retired`` models."""
        from ..codecs import _shape

        found: list[ModelListing] = []
        after: str | None = None
        for _ in range(100):  # a server that always says has_more cannot keep us here
            query = "limit=1000" + "".join(f"&lifecycle[]={name}" for name in lifecycle)
            if after:
                query += f"&after_id={after}"
            data, entries = await self.listing(f"/models?{query}", "data")
            for entry in entries:
                if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
                    continue
                found.append(
                    ModelListing(
                        id=entry["id"],
                        display_name=_shape.label(entry.get("display_name")),
                        status=_shape.label(entry.get("lifecycle")),
                        created=_shape.label(entry.get("created_at")),
                        context_window=_shape.count(entry.get("max_input_tokens")),
                        max_output_tokens=_shape.count(entry.get("max_tokens")),
                        deprecated_at=_shape.label(entry.get("deprecated_at")),
                        retires_at=_shape.label(entry.get("retires_at")),
                        owned_by="Anthropic",
                    )
                )
            last = _shape.label(data.get("last_id"))
            if data.get("has_more") is not True or not last or last == after:
                break
            after = last
        return found
