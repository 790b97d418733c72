"""``WrapperDriver``: the base of drivers that wrap a driver (the cache; fallback and
instrumentation next), so a wrapper is itself a ``Driver`` that adds one concern and delegates
the rest.

Everything that describes the wrapped driver passes through, read fresh on every access:
``provider_name``, ``model_name``, ``limiter``, ``rate_limit_status()``, ``last_rate_limit``,
``capabilities`` and ``endpoint``; ``aclose()`` closes it. ``generate`` and ``generate_stream``
delegate too, so a subclass overrides only what its concern changes. Code above a wrapper (the
batch runner's 429 count, the cache's key scope) reads these attributes and never needs to know
how deep the wrapping goes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..types import GenerateRequest, GenerateResponse, RateLimitInfo
from .base import Driver, ResponseStream

if TYPE_CHECKING:
    from ..catalog import Capabilities
    from ..ratelimit import Limiter, RateLimitStatus

__all__ = ["WrapperDriver"]


class WrapperDriver(Driver):
    """``WrapperDriver(inner)``: a driver that is ``inner`` in every respect until a subclass
    overrides something. ``inner`` is the wrapped driver (itself possibly a wrapper)."""

    def __init__(self, inner: Driver) -> None:
        if not isinstance(inner, Driver):
            raise TypeError(f"{type(self).__name__} wraps a Driver, got {type(inner).__name__}")
        self.inner = inner

    # Plain attributes on Driver, read-only views of the inner driver's here: a wrapper never
    # holds a copy that could go stale or disagree.
    @property
    def provider_name(self) -> str:  # type: ignore[override]  # read-only here, on purpose
        return self.inner.provider_name

    @property
    def model_name(self) -> str:  # type: ignore[override]
        return self.inner.model_name

    @property
    def limiter(self) -> Limiter | None:
        return self.inner.limiter

    def rate_limit_status(self) -> RateLimitStatus | None:
        return self.inner.rate_limit_status()

    @property
    def last_rate_limit(self) -> RateLimitInfo | None:  # type: ignore[override]
        return self.inner.last_rate_limit

    @property
    def capabilities(self) -> Capabilities:
        return self.inner.capabilities

    @property
    def endpoint(self) -> str | None:
        return self.inner.endpoint

    @property
    def innermost(self) -> Driver:
        """The driver at the bottom of the wrapping (the one that talks to the provider)."""
        driver: Driver = self.inner
        while isinstance(driver, WrapperDriver):
            driver = driver.inner
        return driver

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        return await self.inner.generate(request)

    def generate_stream(self, request: GenerateRequest) -> ResponseStream:
        return self.inner.generate_stream(request)

    async def aclose(self) -> None:
        await self.inner.aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.inner!r})"
