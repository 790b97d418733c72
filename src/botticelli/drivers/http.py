"""The one HTTP driver: the lifecycle of a call, the same for every wire format.

profile check → limiter estimate → send (retries, deadline: the transport) → decode or stream
→ settle usage → release. Everything wire-specific is the codec's (``codecs/base.Codec``),
everything vendor-specific the provider's (``providers/base.Provider``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import time
import warnings
from collections.abc import AsyncGenerator, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from .. import _defaults, catalog
from .._deadlines import within
from .._headers import parse_rate_limit
from .._sse import EventTooLarge, NDJSONDecoder, SSEDecoder
from .._status import error_from_content, error_from_data
from .._transport import Reply, Transport, check_api_key, check_base_url, connection_error
from ..codecs import _shape
from ..codecs._shape import parse_json
from ..config import Secret, Timeout, config_path, env_value
from ..errors import APITimeoutError, BotticelliWarning, ConfigurationError, ModelsError, ResponseError
from ..types import GenerateRequest, GenerateResponse, Later, ModelListing, RateLimitInfo, StreamChunk, Usage
from .base import Driver, ResponseStream
from .profile import check_capabilities

if TYPE_CHECKING:
    import aiohttp

    from ..catalog import Capabilities
    from ..codecs.base import Codec
    from ..providers.base import Provider
    from ..ratelimit import Limiter, RateLimits, RateLimitStatus


class HTTPDriver(Driver):
    """A driver for one (provider, codec, model). Subclasses only configure it.

    HTTP client options, on every HTTP driver: ``verify`` (``False``, a CA bundle path or an
    ``ssl.SSLContext``; default: the system store, else certifi's, ``SSL_CERT_FILE`` /
    ``SSL_CERT_DIR`` honoured), ``proxy`` (default: ``HTTP_PROXY`` / ``HTTPS_PROXY`` /
    ``NO_PROXY`` from the environment unless ``trust_env=False``), ``headers`` (added to every
    request), ``http_client`` (your own ``aiohttp.ClientSession``, used as is and never closed by
    us; its headers go too, ours win) or ``connector`` (an ``aiohttp.BaseConnector`` under our
    session, e.g. an ``aiohttp.UnixConnector``; made in the loop that will use the driver, and
    closed with the driver).
    """

    def __init__(
        self,
        model: str,
        *,
        provider: Provider,
        codec: Codec,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float | Timeout | None = None,
        max_retries: int | None = None,
        headers: Mapping[str, str] | None = None,
        plan: str | None = None,
        limits: Mapping[str, Any] | RateLimits | None = None,
        redis_url: str | None = None,
        rate_limiter: Limiter | None = None,
        verify: bool | str | ssl.SSLContext | None = None,
        proxy: str | None = None,
        trust_env: bool = True,
        http_client: aiohttp.ClientSession | None = None,
        connector: aiohttp.BaseConnector | None = None,
        _warn_level: int = 2,
    ) -> None:
        if not model or not isinstance(model, str):
            raise ConfigurationError("model: a model name is required")
        self.provider = provider
        self.codec = codec
        self.provider_name = provider.name
        self.model_name = model
        key = self._api_key_for(api_key, _warn_level + 1)
        self.root_url = self._root_for(base_url)
        self.base_url = self.root_url + provider.api_prefix
        self._api_key = Secret(key) if key else None
        self._url = codec.url(self.base_url, model, stream=False)
        self._stream_url = codec.url(self.base_url, model, stream=True)
        info = catalog.lookup(model, provider.catalog) if provider.catalog else None
        # Refusals by profile only for models the catalog knows: a model released since is the
        # server's to judge, not a conservative default's.
        self._profile: Capabilities | None = info.capabilities if info is not None else None
        self._who = f"{provider.title} model {model!r}"  # names the model in a refusal
        if info is not None and info.retired:
            warnings.warn(info.retirement_notice(), BotticelliWarning, stacklevel=_warn_level + 1)
        wire_headers = {
            "accept": "application/json",
            "content-type": "application/json",
            "user-agent": _defaults.USER_AGENT,
        }
        wire_headers.update(codec.auth_headers(key))
        wire_headers.update(headers or {})
        self._last_rate_limit: RateLimitInfo | Later | None = None
        if rate_limiter is None:
            rate_limiter = self._limiter_for(key, plan, limits, redis_url)
        self._transport = Transport(
            headers=wire_headers,
            timeout=Timeout.of(timeout),
            max_retries=_defaults.MAX_RETRIES if max_retries is None else max_retries,
            error_mapper=self._error,
            provider=provider.name,
            model=model,
            limiter=rate_limiter,
            no_retry=provider.no_retry,
            request_id_header=codec.request_id_header,
            connect_hint=f"{provider.connect_hint} (tried {self.root_url})"
            if provider.connect_hint
            else None,
            verify=verify,
            proxy=proxy,
            trust_env=trust_env,
            client=http_client,
            connector=connector,
        )

    # -- configuration -------------------------------------------------------------------------

    def _api_key_for(self, given: str | None, level: int) -> str | None:
        provider = self.provider
        key = check_api_key(given)
        for name in provider.api_key_env:
            if key:
                break
            key = check_api_key(env_value(name))
        if not key and provider.key_required:
            first = provider.api_key_env[0] if provider.api_key_env else "API_KEY"
            example = f"{first}={provider.key_prefix or ''}..."
            where = f"Get one at {provider.keys_url}, then " if provider.keys_url else ""
            raise ConfigurationError(
                f"no {provider.title} API key. {where}`export {example}`, put "
                f"{example} in a .env file in the working directory, or pass api_key=."
            )
        if key and provider.key_prefix and not key.startswith(provider.key_prefix):
            warnings.warn(
                f"the {provider.title} API key does not start with {provider.key_prefix!r}; "
                f"is it a {provider.title} key?",
                BotticelliWarning,
                stacklevel=level + 1,
            )
        return key

    def _root_for(self, given: str | None) -> str:
        provider = self.provider
        url = (
            given
            or (env_value(provider.base_url_env) if provider.base_url_env else None)
            or provider.base_url
        )
        if url is None:
            raise ConfigurationError(f"base_url: {provider.name} needs the server's URL (base_url=...)")
        root = check_base_url(url)
        prefix = provider.api_prefix
        if prefix and root.endswith(prefix):  # tolerate a full URL; the SDK would double it
            root = root[: -len(prefix)]
        return root

    def _limiter_for(
        self,
        key: str | None,
        plan: str | None,
        limits: Mapping[str, Any] | RateLimits | None,
        redis_url: str | None,
    ) -> Limiter | None:
        provider = self.provider
        configured = limits is not None or redis_url is not None or _has_config()
        if provider.plans is not None:
            chosen = plan or os.environ.get(f"BOTTICELLI_{provider.name.upper()}_PLAN")
            wanted = chosen != "unlimited" or configured
        else:
            wanted = configured
        if not wanted:
            return None
        from importlib import import_module

        from ..ratelimit import limiter_for  # not even imported when nothing is limited

        plans = None
        if provider.plans is not None:
            module, _, name = provider.plans.partition(":")
            plans = getattr(import_module(module), name)
        return limiter_for(
            provider.name,
            self.model_name,
            base_url=self.root_url,
            api_key=key,
            plan=plan,
            limits=limits,
            redis_url=redis_url,
            schema=provider.rate_limits,
            plans=plans,
        )

    @property
    def endpoint(self) -> str | None:
        return self.base_url

    @property
    def max_retries(self) -> int:
        return self._transport.max_retries

    @property
    def limiter(self) -> Limiter | None:
        """The client-side rate limiter, or ``None`` when nothing is limited."""
        return self._transport.limiter

    @property
    def last_rate_limit(self) -> RateLimitInfo | None:  # type: ignore[override]
        """The rate-limit headers of the latest response, read now (``None``: none yet)."""
        value = self._last_rate_limit
        if type(value) is Later:
            value = self._last_rate_limit = value.get()
        return value  # type: ignore[return-value]

    def rate_limit_status(self) -> RateLimitStatus | None:
        """Configured limits, what is used and when each resets (``None``: no limiter)."""
        limiter = self._transport.limiter
        return limiter.status() if limiter is not None else None

    # -- errors --------------------------------------------------------------------------------

    def _error(self, status: int, headers: Mapping[str, str], content: bytes) -> ModelsError:
        return error_from_content(
            status, headers, content, codec=self.codec, provider=self.provider, model=self.model_name
        )

    def error_from_data(self, status: int, headers: Mapping[str, str], data: Any) -> ModelsError:
        """An error body this driver's server sent (also inside Batch API result lines)."""
        return error_from_data(
            status, headers, data, codec=self.codec, provider=self.provider, model=self.model_name
        )

    def parse_json(self, content: bytes, headers: Mapping[str, str], status: int = 200) -> Any:
        return parse_json(
            content,
            provider=self.provider_name,
            model=self.model_name,
            request_id=headers.get(self.codec.request_id_header),
            status=status,
        )

    # -- other endpoints ---------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        limited: bool = False,
        max_retries: int | None = None,
    ) -> Reply:
        """Any other endpoint of the provider (files, batches, models) through the same key,
        retries, deadline and typed errors; ``path`` is relative to ``base_url``. Not counted
        against the rate limits unless ``limited``."""
        return await self._transport.send(
            method,
            self.base_url + path,
            content=content,
            headers=headers,
            limited=limited,
            max_retries=max_retries,
        )

    async def listing(self, path: str, field: str) -> tuple[dict[str, Any], list[Any]]:
        """``GET path``: the body and its ``field`` array (a model list); a ``ResponseError``
        keeping the body when there is none. The entries are the caller's to read leniently."""
        reply = await self.request("GET", path)
        data = self.parse_json(reply.content, reply.headers, reply.status)
        entries = data.get(field) if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise ResponseError(
                f"the model list has no {field} array",
                provider=self.provider_name,
                model=self.model_name,
                status=reply.status,
                body=data,
            )
        return data, entries

    async def list_models(self) -> list[ModelListing]:
        """The models the server offers now (``GET /models``, OpenAI's shape; Groq adds context
        windows). Drivers of other wire formats override it."""
        _, entries = await self.listing("/models", "data")
        found = []
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
                continue  # a listing informs: odd entries are skipped, not fatal
            created = _shape.count(entry.get("created"))
            active = entry.get("active")
            found.append(
                ModelListing(
                    id=entry["id"],
                    status=None if not isinstance(active, bool) else ("active" if active else "inactive"),
                    created=None if created is None else _iso(created),
                    context_window=_shape.count(entry.get("context_window")),
                    max_output_tokens=_shape.count(entry.get("max_completion_tokens")),
                    owned_by=_shape.label(entry.get("owned_by")),
                )
            )
        return found

    # -- generate ------------------------------------------------------------------------------

    def check(self, request: GenerateRequest, *, stream: bool = False) -> None:
        """Raise ``InvalidRequestError`` for what the provider or the model (its catalog
        profile) is documented to refuse (``stream``: as a streamed request)."""
        self.provider.check(request, self.model_name, stream=stream)
        if self._profile is not None:
            check_capabilities(
                request,
                self._profile,
                who=self._who,
                model=self.model_name,
                provider=self.provider_name,
            )

    def _encode(self, request: GenerateRequest, *, stream: bool) -> bytes:
        self.check(request, stream=stream)
        return self.codec.encode(request, self.model_name, stream=stream, provider=self.provider_name)

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        body = self._encode(request, stream=False)
        started = time.perf_counter()
        limiter = self._transport.limiter
        tokens = limiter.estimate_request(request) if limiter is not None else 0
        reply = await self._transport.send("POST", self._url, content=body, tokens=tokens)
        headers = reply.headers
        data = self.parse_json(reply.content, headers, reply.status)
        if self.codec.is_error(data):
            raise self.error_from_data(reply.status, headers, data)
        result = self.codec.decode(data, headers, provider=self.provider_name, model=self.model_name)
        # Read when someone looks (most callers never do), as the headers said at arrival.
        reading = Later(partial(parse_rate_limit, headers, self.provider.rate_limits, now=time.time()))
        setattr(result, "rate_limit", reading)  # noqa: B010 (the slot resolves a Later on access)
        result.latency = time.perf_counter() - started
        self._last_rate_limit = reading
        if limiter is not None:
            await _settle(limiter, tokens, result.usage, request.max_tokens)
        return result

    def generate_stream(self, request: GenerateRequest) -> ResponseStream:
        body = self._encode(request, stream=True)
        return ResponseStream(self._stream(body, request), model=self.model_name, provider=self.provider_name)

    async def _stream(self, body: bytes, request: GenerateRequest) -> AsyncGenerator[StreamChunk, None]:
        transport = self._transport
        codec = self.codec
        limiter = transport.limiter
        tokens = limiter.estimate_request(request) if limiter is not None else 0
        loop = asyncio.get_running_loop()
        deadline = transport.deadline()
        response, headers, give_back = await transport.stream(
            "POST", self._stream_url, content=body, tokens=tokens, deadline=deadline
        )
        # The response is open and holds its place for the pool and a limiter slot: every path
        # from here releases all three.
        stall = transport.timeout.stall
        wait_until = min(deadline, loop.time() + stall)  # the first piece: within total and stall
        chunks = 0
        request_id: str | None = None
        try:
            decoder = codec.stream_decoder(
                provider=self.provider_name,
                model=self.model_name,
                request_id=headers.get(codec.request_id_header),
                rate_limit=parse_rate_limit(headers, self.provider.rate_limits),
            )
            request_id = decoder.request_id
            self._last_rate_limit = decoder.rate_limit
            framer: SSEDecoder | NDJSONDecoder
            if codec.framing == "sse":
                if "text/event-stream" not in headers.get("content-type", "").lower():
                    raise await within(wait_until, self._not_a_stream(response, headers, request_id))
                framer = SSEDecoder()
            else:
                framer = NDJSONDecoder()
            content = response.content
            ended = False
            while not decoder.done and not ended:
                # What has arrived is taken at once; only an empty buffer waits, under the timer.
                data = content.read_nowait()
                if not data and not content.at_eof():
                    data = await within(wait_until, content.readany())
                if data:
                    events = framer.feed(data)
                else:
                    ended = True
                    events = framer.flush()
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
                final = decoder.final()
                if limiter is not None and final.usage is not None:
                    await _settle(limiter, tokens, final.usage, request.max_tokens)
                # The body's end follows the end marker at once; reading it before the final
                # chunk lets the connection go back to the pool even when the consumer stops at
                # the final chunk. Bounded, in case a server lingers.
                await _drain(content)
                yield final
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
                status=response.status,
                request_id=request_id,
            ) from None
        except EventTooLarge as exc:
            raise ResponseError(
                f"the stream sent {exc}",
                provider=self.provider_name,
                model=self.model_name,
                status=response.status,
                request_id=request_id,
            ) from None
        except ModelsError:
            raise
        except Exception as exc:
            error = connection_error(
                exc, provider=self.provider_name, model=self.model_name, during="during the stream"
            )
            error.status = response.status
            error.request_id = request_id
            raise error from None
        finally:
            if limiter is not None:
                limiter.release()  # the concurrency slot, held by a stream until it ends
            # Back to the pool if the body was read to its end, else the connection is closed.
            response.release()
            give_back()
        raise ResponseError(
            f"the stream ended before {codec.end_marker}; the answer may be incomplete",
            provider=self.provider_name,
            model=self.model_name,
            status=response.status,
            request_id=request_id,
        )

    async def _not_a_stream(
        self, response: aiohttp.ClientResponse, headers: Mapping[str, str], request_id: str | None
    ) -> ModelsError:
        content = await response.read()
        data = self.parse_json(content, headers, response.status)
        if self.codec.is_error(data):
            return self.error_from_data(response.status, headers, data)
        return ResponseError(
            f"asked for a stream, got {headers.get('content-type', 'no content type')[:80]}",
            provider=self.provider_name,
            model=self.model_name,
            status=response.status,
            request_id=request_id,
            body=data,
            headers=headers,
        )

    async def aclose(self) -> None:
        await self._transport.aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model_name!r}, base_url={self.root_url!r})"


async def _settle(limiter: Limiter, tokens: int, usage: Usage, max_tokens: int | None) -> None:
    """Swap the reservation's estimate for the reported usage (absent usage: keep the estimate;
    cached prompt tokens do not count toward the limits)."""
    used = (usage.total_tokens or usage.prompt_tokens + usage.completion_tokens) - (usage.cached_tokens or 0)
    completion = usage.completion_tokens if max_tokens is None else None
    await limiter.settle(tokens, used or None, completion)


def _has_config() -> bool:
    """Whether a botticelli.toml or Redis URL could configure limits (cheap: environment and a
    few stat calls, the file itself is read only if present)."""
    return bool(os.environ.get("BOTTICELLI_REDIS_URL")) or config_path() is not None


async def _drain(content: aiohttp.StreamReader) -> None:
    """Read what is left of a finished stream, briefly (errors no longer matter), so its
    connection can go back to the pool. The body's end usually came with the end marker: then
    there is nothing to wait for."""
    with contextlib.suppress(Exception):
        content.read_nowait()
        if content.is_eof():
            return
        async with asyncio.timeout(_defaults.STREAM_DRAIN_TIMEOUT):
            while await content.readany():
                pass


def _iso(timestamp: int) -> str:
    """Unix seconds as ISO 8601 (UTC), the form every listing prints."""
    import datetime

    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
