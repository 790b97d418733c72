"""Transport: one pooled async HTTP client per driver (per event loop), the retry loop, and the
mapping of transport failures to typed errors. Knows nothing of wire formats: the codec's error
mapper is handed in."""

from __future__ import annotations

import asyncio
import ssl
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import httpx2

from . import _defaults
from ._retry import retry_delay, should_retry
from .config import Timeout
from .errors import APIConnectionError, APITimeoutError, ModelsError, RateLimitError

if TYPE_CHECKING:
    from .ratelimit.limiter import Limiter

    ErrorMapper = Callable[[int, Mapping[str, str], bytes], ModelsError]


_ssl_context: ssl.SSLContext | None = None


def _shared_ssl_context() -> ssl.SSLContext:
    """One SSL context per process: building one costs ~30 ms, and every client would."""
    global _ssl_context
    if _ssl_context is None:
        _ssl_context = httpx2.create_ssl_context()
    return _ssl_context


def header_dict(response: httpx2.Response) -> dict[str, str]:
    """Response headers as a plain dict (names arrive lower-cased): one pass, then O(1) lookups,
    where each ``httpx2.Headers`` lookup scans the whole list."""
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in response.headers.raw}


class Transport:
    __slots__ = (
        "_clients",
        "_error_mapper",
        "_extensions",
        "_headers",
        "_urls",
        "limiter",
        "max_retries",
        "model",
        "provider",
    )

    def __init__(
        self,
        *,
        headers: dict[str, str],
        timeout: Timeout,
        max_retries: int,
        error_mapper: ErrorMapper,
        provider: str,
        model: str,
        limiter: Limiter | None = None,
    ) -> None:
        if max_retries < 0:
            raise ValueError(f"max_retries: must be >= 0, got {max_retries}")
        # Built once: per request we only wrap them in an httpx2.Request (no header merging).
        self._headers = httpx2.Headers(headers)
        self._extensions = {
            "timeout": {
                "connect": timeout.connect,
                "read": timeout.read,
                "write": timeout.write,
                "pool": timeout.pool,
            }
        }
        self._urls: dict[str, httpx2.URL] = {}
        self.max_retries = max_retries
        self._error_mapper = error_mapper
        self.provider = provider
        self.model = model
        # Client-side rate limits, consulted per attempt; None (plan "unlimited") costs nothing.
        self.limiter = limiter
        # One client per event loop: a pooled connection belongs to the loop that opened it, and
        # the blocking API runs drivers on a loop of its own.
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx2.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )

    def _client(self) -> httpx2.AsyncClient:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = httpx2.AsyncClient(
                verify=_shared_ssl_context(),
                limits=httpx2.Limits(
                    max_connections=_defaults.MAX_CONNECTIONS,
                    max_keepalive_connections=_defaults.MAX_KEEPALIVE_CONNECTIONS,
                ),
                follow_redirects=True,
            )
            self._clients[loop] = client
        return client

    async def send(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        stream: bool = False,
        headers: Mapping[str, str] | None = None,
        tokens: int = 0,
        limited: bool = True,
        max_retries: int | None = None,
    ) -> httpx2.Response:
        """Send with retries; return a 2xx response (streamed: the caller must close it) or raise
        the typed error of the last attempt. ``headers`` add to or replace the driver's own (e.g.
        a multipart content type).

        With a limiter, every attempt first waits for its capacity (one request, ``tokens``
        estimated tokens, a concurrency slot); every response's headers feed it; a 429 blocks
        every caller of the limiter for the retry-after. The slot is released here, except for
        a streamed 2xx: the caller releases it (``limiter.release()``) when the stream ends.

        ``limited=False`` bypasses the limiter (file and batch management calls do not count
        against the chat quota); ``max_retries`` overrides the driver's for one call (0 for
        requests that must not be repeated, like creating a paid batch)."""
        client = self._client()
        parsed = self._urls.get(url)
        if parsed is None:
            parsed = self._urls[url] = httpx2.URL(url)
        request_headers = self._headers
        if headers:
            request_headers = self._headers.copy()
            request_headers.update(headers)
        limiter = self.limiter if limited else None
        retry_budget = self.max_retries if max_retries is None else max_retries
        retries_taken = 0
        while True:
            reply_headers: Mapping[str, str] | None = None
            status = 0
            if limiter is not None:
                await limiter.acquire(tokens)
            request = httpx2.Request(
                method, parsed, headers=request_headers, content=content, extensions=self._extensions
            )
            try:
                response = await client.send(request, stream=stream)
            except httpx2.TimeoutException as exc:
                error: ModelsError = APITimeoutError(
                    f"request timed out ({type(exc).__name__})", provider=self.provider, model=self.model
                )
            except httpx2.TransportError as exc:
                error = APIConnectionError(
                    f"connection failed: {exc or type(exc).__name__}",
                    provider=self.provider,
                    model=self.model,
                )
            except BaseException:
                if limiter is not None:
                    limiter.release()
                raise
            else:
                status = response.status_code
                if status < 400:
                    if limiter is not None:
                        if not stream:
                            limiter.release()
                        await limiter.observe(response.headers)
                    return response
                if stream:
                    try:
                        await response.aread()
                    except BaseException:
                        if limiter is not None:
                            limiter.release()
                        raise
                    finally:
                        await response.aclose()
                reply_headers = header_dict(response)
                error = self._error_mapper(status, reply_headers, response.content)
            if limiter is not None:
                limiter.release()
                if reply_headers is not None:
                    await limiter.observe(reply_headers)
                    asked = error.retry_after if isinstance(error, RateLimitError) else None
                    wait = asked if asked is not None else retry_delay(retries_taken, reply_headers)
                    await limiter.rejected(error, tokens, wait)
            if reply_headers is not None and not should_retry(status, reply_headers):
                raise error
            if retries_taken >= retry_budget:
                raise error
            if isinstance(error, RateLimitError):
                if error.daily or (error.retry_after or 0.0) > _defaults.MAX_RETRY_AFTER:
                    raise error  # waiting in-process would not help; say when instead
                if limiter is not None and limiter.rated:
                    retries_taken += 1  # the limiter holds every caller for the retry-after
                    continue
            await asyncio.sleep(retry_delay(retries_taken, reply_headers))
            retries_taken += 1

    async def aclose(self) -> None:
        clients = list(self._clients.items())
        self._clients.clear()
        current = asyncio.get_running_loop()
        for loop, client in clients:
            if loop is current:
                await client.aclose()
