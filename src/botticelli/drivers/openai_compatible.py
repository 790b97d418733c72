"""A driver for any server that speaks OpenAI chat completions; Groq is a configuration of it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

import httpx2

from .. import _defaults
from .._headers import parse_rate_limit
from .._transport import Transport, header_dict
from ..codecs import openai_chat as codec
from ..config import Secret, Timeout
from ..errors import APIConnectionError, APITimeoutError, ConfigurationError, ModelsError, ResponseError
from ..types import GenerateRequest, GenerateResponse, RateLimitInfo, StreamChunk, Usage
from .base import Driver, ResponseStream

if TYPE_CHECKING:
    from ..ratelimit import Limiter, RateLimits, RateLimitStatus


class OpenAICompatibleDriver(Driver):
    """``OpenAICompatibleDriver("my-model", base_url="http://localhost:8000/v1")``.

    ``base_url`` includes the version prefix; the driver posts to ``{base_url}/chat/completions``.
    ``limits`` (e.g. ``{"rpm": 60, "tpm": 100_000}``) turns on client-side rate limiting, shared
    through Redis with ``redis_url`` or ``BOTTICELLI_REDIS_URL``; see ``botticelli.ratelimit``.
    """

    provider_name = "openai-compatible"
    _own_limiter = False  # subclasses that build their limiter themselves (plans) set True

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
        profile: codec.WireProfile = codec.GENERIC_PROFILE,
        limits: Mapping[str, Any] | RateLimits | None = None,
        redis_url: str | None = None,
        rate_limiter: Limiter | None = None,
    ) -> None:
        if not model or not isinstance(model, str):
            raise ConfigurationError("model: a model name is required")
        if provider:
            self.provider_name = provider
        self.model_name = model
        self.base_url = _check_url(base_url)
        self._profile = profile
        self._api_key = Secret(api_key) if api_key else None
        self._chat_url = self.base_url + "/chat/completions"
        wire_headers = {
            "accept": "application/json",
            "content-type": "application/json",
            "user-agent": _defaults.USER_AGENT,
        }
        if api_key:
            wire_headers["authorization"] = f"Bearer {api_key}"
        wire_headers.update(headers or {})
        self.last_rate_limit: RateLimitInfo | None = None
        if (
            rate_limiter is None
            and not self._own_limiter
            and (limits is not None or redis_url is not None or _has_config())
        ):
            from ..ratelimit import limiter_for

            rate_limiter = limiter_for(
                self.provider_name,
                model,
                base_url=self.base_url,
                api_key=api_key,
                limits=limits,
                redis_url=redis_url,
            )
        self._transport = Transport(
            headers=wire_headers,
            timeout=Timeout.of(timeout),
            max_retries=_defaults.MAX_RETRIES if max_retries is None else max_retries,
            error_mapper=self._map_error,
            provider=self.provider_name,
            model=model,
            limiter=rate_limiter,
        )

    @property
    def max_retries(self) -> int:
        return self._transport.max_retries

    @property
    def limiter(self) -> Limiter | None:
        """The client-side rate limiter, or ``None`` when nothing is limited."""
        return self._transport.limiter

    def rate_limit_status(self) -> RateLimitStatus | None:
        """Configured limits, what is used and when each resets (``None``: no limiter)."""
        limiter = self._transport.limiter
        return limiter.status() if limiter is not None else None

    def _map_error(self, status: int, headers: Mapping[str, str], content: bytes) -> ModelsError:
        return codec.error_from_status(
            status,
            headers,
            content,
            provider=self.provider_name,
            model=self.model_name,
            profile=self._profile,
        )

    def _body(self, request: GenerateRequest, *, stream: bool) -> bytes:
        return codec.encode_request(
            request, self.model_name, stream=stream, profile=self._profile, provider=self.provider_name
        )

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        body = self._body(request, stream=False)
        started = time.perf_counter()
        limiter = self._transport.limiter
        tokens = limiter.estimate(len(body), request.max_tokens) if limiter is not None else 0
        response = await self._transport.send("POST", self._chat_url, content=body, tokens=tokens)
        headers = header_dict(response)
        data = codec.parse_json(
            response.content,
            provider=self.provider_name,
            model=self.model_name,
            request_id=headers.get("x-request-id"),
        )
        result = codec.decode_response(data, headers, provider=self.provider_name, model=self.model_name)
        result.latency = time.perf_counter() - started
        self.last_rate_limit = result.rate_limit
        if limiter is not None:
            await _settle(limiter, tokens, result.usage, request.max_tokens)
        return result

    def generate_stream(self, request: GenerateRequest) -> ResponseStream:
        body = self._body(request, stream=True)
        return ResponseStream(
            self._stream(body, request.max_tokens), model=self.model_name, provider=self.provider_name
        )

    async def _stream(self, body: bytes, max_tokens: int | None) -> AsyncGenerator[StreamChunk, None]:
        limiter = self._transport.limiter
        tokens = limiter.estimate(len(body), max_tokens) if limiter is not None else 0
        response = await self._transport.send(
            "POST", self._chat_url, content=body, stream=True, tokens=tokens
        )
        headers = header_dict(response)
        decoder = codec.StreamDecoder(
            provider=self.provider_name,
            model=self.model_name,
            request_id=headers.get("x-request-id"),
            rate_limit=parse_rate_limit(headers),
        )
        self.last_rate_limit = decoder.rate_limit
        try:
            if "text/event-stream" not in headers.get("content-type", ""):
                raise await self._not_a_stream(response, decoder.request_id)
            events = httpx2.EventSource(response).__aiter__()
            async for event in events:
                chunk = decoder.feed(event.data, event.event)
                if chunk is not None:
                    yield chunk
                elif decoder.done:
                    break
            if decoder.done:
                if limiter is not None and decoder.usage is not None:
                    await _settle(limiter, tokens, decoder.usage, max_tokens)
                yield StreamChunk(
                    is_final=True,
                    finish_reason=decoder.finish_reason,
                    usage=decoder.usage,
                    request_id=decoder.request_id,
                    rate_limit=decoder.rate_limit,
                    tool_calls=decoder.tool_calls(),
                )
                # The chunked body's terminator follows [DONE] at once; reading it lets the
                # connection go back to the pool instead of being closed (a new TCP+TLS
                # handshake for the next stream). Bounded, in case a server lingers.
                await _drain(events)
        except httpx2.TimeoutException:
            raise APITimeoutError(
                "the stream stalled: no data within the read timeout",
                provider=self.provider_name,
                model=self.model_name,
                status=response.status_code,
                request_id=decoder.request_id,
            ) from None
        except httpx2.TransportError as exc:
            raise APIConnectionError(
                f"the connection was lost during the stream ({type(exc).__name__})",
                provider=self.provider_name,
                model=self.model_name,
                status=response.status_code,
                request_id=decoder.request_id,
            ) from None
        finally:
            if limiter is not None:
                limiter.release()  # the concurrency slot, held by a stream until it ends
            await response.aclose()
        if not decoder.done:
            raise ResponseError(
                "the stream ended before [DONE]; the answer may be incomplete",
                provider=self.provider_name,
                model=self.model_name,
                status=response.status_code,
                request_id=decoder.request_id,
            )

    async def _not_a_stream(self, response: httpx2.Response, request_id: str | None) -> ModelsError:
        content = await response.aread()
        data = codec.parse_json(
            content, provider=self.provider_name, model=self.model_name, request_id=request_id
        )
        if isinstance(data, dict) and "error" in data:
            return codec.error_from_body(
                response.status_code,
                response.headers,
                data,
                provider=self.provider_name,
                model=self.model_name,
                profile=self._profile,
            )
        return ResponseError(
            f"asked for a stream, got {response.headers.get('content-type', 'no content type')}",
            provider=self.provider_name,
            model=self.model_name,
            status=response.status_code,
            request_id=request_id,
        )

    async def aclose(self) -> None:
        await self._transport.aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model_name!r}, base_url={self.base_url!r})"


async def _settle(limiter: Limiter, tokens: int, usage: Usage, max_tokens: int | None) -> None:
    """Swap the reservation's estimate for the reported usage (absent usage: keep the estimate;
    cached prompt tokens do not count toward Groq's limits)."""
    used = (usage.total_tokens or usage.prompt_tokens + usage.completion_tokens) - (usage.cached_tokens or 0)
    completion = usage.completion_tokens if max_tokens is None else None
    await limiter.settle(tokens, used or None, completion)


def _has_config() -> bool:
    """Whether a botticelli.toml or Redis URL could configure limits (cheap: environment and a
    few stat calls, the file itself is read only if present)."""
    import os

    from ..config import config_path

    return bool(os.environ.get("BOTTICELLI_REDIS_URL")) or config_path() is not None


async def _drain(events: AsyncIterator[object]) -> None:
    """Read what is left of a finished stream, briefly; errors no longer matter."""

    async def read_rest() -> None:
        async for _ in events:
            pass

    with contextlib.suppress(Exception):
        await asyncio.wait_for(read_rest(), _defaults.STREAM_DRAIN_TIMEOUT)


def _check_url(url: str) -> str:
    if not isinstance(url, str) or not url.startswith(("http://", "https://")) or url[-3:] == "://":
        raise ConfigurationError(f"base_url: expected http(s)://host[:port][/path], got {url!r}")
    return url.rstrip("/")
