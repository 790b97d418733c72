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
from .._sse import EventTooLarge, SSEDecoder
from .._transport import Transport, check_api_key, check_base_url, connection_error, header_dict
from ..codecs import openai_chat as codec
from ..config import Secret, Timeout
from ..errors import APITimeoutError, ConfigurationError, ModelsError, ResponseError
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
        api_key = check_api_key(api_key)
        self.base_url = check_base_url(base_url)
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
        tokens = limiter.estimate_request(request) if limiter is not None else 0
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
        return ResponseStream(self._stream(body, request), model=self.model_name, provider=self.provider_name)

    async def _stream(self, body: bytes, request: GenerateRequest) -> AsyncGenerator[StreamChunk, None]:
        transport = self._transport
        limiter = transport.limiter
        tokens = limiter.estimate_request(request) if limiter is not None else 0
        loop = asyncio.get_running_loop()
        deadline = transport.deadline()
        response = await transport.send(
            "POST", self._chat_url, content=body, stream=True, tokens=tokens, deadline=deadline
        )
        # The response is open and holds a limiter slot: every path from here releases both.
        stall = transport.timeout.stall
        wait_until = min(deadline, loop.time() + stall)  # the first piece: within total and stall
        chunks = 0
        request_id: str | None = None
        try:
            headers = header_dict(response)
            request_id = headers.get("x-request-id")
            decoder = codec.StreamDecoder(
                provider=self.provider_name,
                model=self.model_name,
                request_id=request_id,
                rate_limit=parse_rate_limit(headers),
            )
            request_id = decoder.request_id
            self.last_rate_limit = decoder.rate_limit
            if "text/event-stream" not in headers.get("content-type", "").lower():
                async with asyncio.timeout_at(wait_until):
                    raise await self._not_a_stream(response, headers, decoder.request_id)
            sse = SSEDecoder()
            reader = response.aiter_bytes().__aiter__()
            ended = False
            while not decoder.done and not ended:
                try:
                    async with asyncio.timeout_at(wait_until):
                        data = await reader.__anext__()
                except StopAsyncIteration:
                    ended = True
                    events = sse.flush()
                else:
                    events = sse.feed(data)
                for event in events:
                    chunk = decoder.feed(event.data, event.event)
                    request_id = decoder.request_id
                    if chunk is not None:
                        chunks += 1
                        yield chunk
                        wait_until = loop.time() + stall  # the consumer's own time never counts
                    elif decoder.done:
                        break
            if decoder.done:
                if limiter is not None and decoder.usage is not None:
                    await _settle(limiter, tokens, decoder.usage, request.max_tokens)
                # The chunked body's terminator follows [DONE] at once; reading it before the
                # final chunk lets the connection go back to the pool even when the consumer
                # stops at the final chunk. Bounded, in case a server lingers.
                await _drain(reader)
                yield StreamChunk(
                    is_final=True,
                    finish_reason=decoder.finish_reason,
                    usage=decoder.usage,
                    request_id=decoder.request_id,
                    rate_limit=decoder.rate_limit,
                    tool_calls=decoder.tool_calls(),
                )
                return
        except TimeoutError:
            if chunks:
                message = f"timed out: the stream stalled, nothing new for {stall:g} s (Timeout.stall)"
            else:
                message = (
                    f"timed out: no first token within {min(stall, transport.timeout.total):g} s "
                    "(Timeout.stall / Timeout.total)"
                )
            raise APITimeoutError(
                message,
                provider=self.provider_name,
                model=self.model_name,
                status=response.status_code,
                request_id=request_id,
            ) from None
        except EventTooLarge as exc:
            raise ResponseError(
                f"the stream sent {exc}",
                provider=self.provider_name,
                model=self.model_name,
                status=response.status_code,
                request_id=request_id,
            ) from None
        except ModelsError:
            raise
        except Exception as exc:
            error = connection_error(
                exc, provider=self.provider_name, model=self.model_name, during="during the stream"
            )
            error.status = response.status_code
            error.request_id = request_id
            raise error from None
        finally:
            if limiter is not None:
                limiter.release()  # the concurrency slot, held by a stream until it ends
            with contextlib.suppress(Exception):
                await response.aclose()
        raise ResponseError(
            "the stream ended before [DONE]; the answer may be incomplete",
            provider=self.provider_name,
            model=self.model_name,
            status=response.status_code,
            request_id=request_id,
        )

    async def _not_a_stream(
        self, response: httpx2.Response, headers: Mapping[str, str], request_id: str | None
    ) -> ModelsError:
        content = await response.aread()
        data = codec.parse_json(
            content, provider=self.provider_name, model=self.model_name, request_id=request_id
        )
        if isinstance(data, dict) and "error" in data:
            return codec.error_from_body(
                response.status_code,
                headers,
                data,
                provider=self.provider_name,
                model=self.model_name,
                profile=self._profile,
            )
        return ResponseError(
            f"asked for a stream, got {headers.get('content-type', 'no content type')[:80]}",
            provider=self.provider_name,
            model=self.model_name,
            status=response.status_code,
            request_id=request_id,
            body=data,
            headers=headers,
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
