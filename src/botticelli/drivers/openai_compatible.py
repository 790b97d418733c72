"""Any server that speaks OpenAI chat completions: the generic HTTP driver, configured."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..codecs.openai_chat import GENERIC, OpenAIChat
from ..config import Timeout
from ..providers.openai_compatible import OPENAI_COMPATIBLE
from .http import HTTPDriver

if TYPE_CHECKING:
    import ssl

    import aiohttp

    from ..ratelimit import Limiter, RateLimits


class OpenAICompatibleDriver(HTTPDriver):
    """``OpenAICompatibleDriver("my-model", base_url="http://localhost:8000/v1")``.

    ``base_url`` includes the version prefix; the driver posts to ``{base_url}/chat/completions``.
    ``limits`` (e.g. ``{"rpm": 60, "tpm": 100_000}``) turns on client-side rate limiting, shared
    through Redis with ``redis_url`` or ``BOTTICELLI_REDIS_URL``; see ``botticelli.ratelimit``.
    ``provider`` names the server in errors and limits; ``codec`` adjusts the wire (e.g.
    ``OpenAIChat(stream_usage_option=True)`` for OpenAI itself). HTTP client options: see
    ``HTTPDriver``.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str,
        api_key: str | None = None,
        timeout: float | Timeout | None = None,
        max_retries: int | None = None,
        headers: Mapping[str, str] | None = None,
        provider: str | None = None,
        codec: OpenAIChat = GENERIC,
        limits: Mapping[str, Any] | RateLimits | None = None,
        redis_url: str | None = None,
        rate_limiter: Limiter | None = None,
        verify: bool | str | ssl.SSLContext | None = None,
        proxy: str | None = None,
        trust_env: bool = True,
        http_client: aiohttp.ClientSession | None = None,
        connector: aiohttp.BaseConnector | None = None,
    ) -> None:
        config = OPENAI_COMPATIBLE if not provider else dataclasses.replace(OPENAI_COMPATIBLE, name=provider)
        super().__init__(
            model,
            provider=config,
            codec=codec,
            base_url=base_url,
            api_key=api_key,
            timeout=timeout,
            max_retries=max_retries,
            headers=headers,
            limits=limits,
            redis_url=redis_url,
            rate_limiter=rate_limiter,
            verify=verify,
            proxy=proxy,
            trust_env=trust_env,
            http_client=http_client,
            connector=connector,
        )
