"""Groq: the OpenAI-compatible driver configured with Groq's URL, key, catalog and wire profile."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .. import _defaults, catalog
from .._transport import check_api_key, check_base_url
from ..codecs.openai_chat import GROQ_PROFILE
from ..config import Timeout, config_path, env_value
from ..errors import ConfigurationError
from .openai_compatible import OpenAICompatibleDriver

if TYPE_CHECKING:
    from ..ratelimit import RateLimits


class BotticelliWarning(UserWarning):
    """Something works but is probably not what you meant (retired model, odd-looking key)."""


class GroqDriver(OpenAICompatibleDriver):
    """``GroqDriver("openai/gpt-oss-20b")``: key from the argument, ``GROQ_API_KEY`` or ``./.env``;
    base URL (scheme://host[:port]) from the argument, ``GROQ_BASE_URL`` or api.groq.com.

    Client-side rate limits keep requests under the organisation's limits instead of collecting
    429s. ``plan``: ``"free"``, ``"developer"`` or ``"unlimited"`` (no limiting), else
    ``BOTTICELLI_GROQ_PLAN``, else ``botticelli.toml``, else ``"free"``; corrected from the
    response headers. ``limits``: overrides such as ``{"rpm": 20, "budget": 0.8}``. ``redis_url``
    (or ``BOTTICELLI_REDIS_URL``) shares the limits with other processes. See
    ``botticelli.ratelimit`` and ``rate_limit_status()``."""

    provider_name = "groq"
    _own_limiter = True

    def __init__(
        self,
        model: str = _defaults.GROQ_DEFAULT_MODEL,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | Timeout | None = None,
        max_retries: int | None = None,
        plan: str | None = None,
        limits: Mapping[str, Any] | RateLimits | None = None,
        redis_url: str | None = None,
    ) -> None:
        key = check_api_key(api_key or env_value("GROQ_API_KEY"))
        if not key:
            raise ConfigurationError(
                "no Groq API key. Get one at "
                f"{_defaults.GROQ_KEYS_URL}, then `export GROQ_API_KEY=gsk_...`, put "
                "GROQ_API_KEY=gsk_... in a .env file in the working directory, or pass api_key=."
            )
        if not key.startswith(_defaults.GROQ_KEY_PREFIX):
            warnings.warn(
                f"the Groq API key does not start with {_defaults.GROQ_KEY_PREFIX!r}; is it a Groq key?",
                BotticelliWarning,
                stacklevel=2,
            )
        root = check_base_url(base_url or env_value("GROQ_BASE_URL") or _defaults.GROQ_BASE_URL)
        if root.endswith(_defaults.GROQ_API_PREFIX):  # tolerate a full URL; the SDK would double it
            root = root[: -len(_defaults.GROQ_API_PREFIX)]
        info = catalog.lookup(model, "groq")
        if info is not None and info.retired:
            warnings.warn(info.retirement_notice(), BotticelliWarning, stacklevel=2)
        limiter = None
        chosen = plan or os.environ.get("BOTTICELLI_GROQ_PLAN")
        if chosen != "unlimited" or limits is not None or config_path() is not None:
            from ..ratelimit import limiter_for  # not even imported when nothing is limited

            limiter = limiter_for(
                self.provider_name,
                model,
                base_url=root,
                api_key=key,
                plan=plan,
                limits=limits,
                redis_url=redis_url,
                with_plans=True,
            )
        super().__init__(
            model,
            base_url=root + _defaults.GROQ_API_PREFIX,
            api_key=key,
            timeout=timeout,
            max_retries=max_retries,
            profile=GROQ_PROFILE,
            rate_limiter=limiter,
        )
        self.root_url = root

    @classmethod
    def with_api_key(
        cls, api_key: str, model: str = _defaults.GROQ_DEFAULT_MODEL, **options: object
    ) -> GroqDriver:
        return cls(model, api_key=api_key, **options)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"GroqDriver(model={self.model_name!r}, base_url={self.root_url!r})"
