"""Transport: one pooled async HTTP client per driver (per event loop), the retry loop, and the
mapping of transport failures to typed errors. Knows nothing of wire formats: the codec's error
mapper is handed in."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import weakref
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx2

from . import _defaults
from ._retry import retry_delay, should_retry
from .config import Timeout
from .errors import (
    APIConnectionError,
    APITimeoutError,
    ConfigurationError,
    ModelsError,
    RateLimitError,
    ResponseError,
    redact,
    register_secret,
)

if TYPE_CHECKING:
    from .ratelimit.limiter import Limiter

    ErrorMapper = Callable[[int, Mapping[str, str], bytes], ModelsError]


_ssl_context: ssl.SSLContext | None = None

#: Statuses that are an answer; anything else below 400 (1xx, a 3xx left after redirects, 207-299)
#: is a server we do not understand, never a success.
_SUCCESS = frozenset(range(200, 207))


def _shared_ssl_context() -> ssl.SSLContext:
    """One SSL context per process: building one costs ~30 ms, and every client would."""
    global _ssl_context
    if _ssl_context is None:
        _ssl_context = httpx2.create_ssl_context()
    return _ssl_context


class _RedactingFilter(logging.Filter):
    """httpcore2 logs response headers at DEBUG, and a server may echo the key into one: every
    record of the HTTP libraries' loggers is scrubbed before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record that cannot even format itself
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        return True


_HTTP_LOGGERS = (
    "httpx2",
    "httpcore2.connection",
    "httpcore2.http11",
    "httpcore2.http2",
    "httpcore2.proxy",
    "httpcore2.socks",
)
_redacting_filter = _RedactingFilter()
for _name in _HTTP_LOGGERS:
    logging.getLogger(_name).addFilter(_redacting_filter)


@dataclass(frozen=True, slots=True)
class Reply:
    """A whole answer of a non-streamed call, free of the HTTP library's types."""

    status: int
    headers: dict[str, str]
    content: bytes


def header_dict(response: httpx2.Response) -> dict[str, str]:
    """Response headers as a plain dict (names arrive lower-cased): one pass, then O(1) lookups,
    where each ``httpx2.Headers`` lookup scans the whole list."""
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in response.headers.raw}


def check_api_key(api_key: str | None) -> str | None:
    """The key as it goes on the wire: surrounding whitespace (a file's trailing newline) removed,
    registered for redaction, and refused (without showing it) if a header cannot carry it."""
    if api_key is None:
        return None
    if not isinstance(api_key, str):
        raise ConfigurationError(f"api_key: expected a string, got {type(api_key).__name__}")
    register_secret(api_key)
    key = api_key.strip()
    if not key:
        return None
    for position, char in enumerate(key):
        if not (char.isascii() and char.isprintable()) or char == " ":
            raise ConfigurationError(
                f"api_key: character {position + 1} is U+{ord(char):04X}, which cannot be sent in "
                "an HTTP header; the key was probably copied with a stray character"
            )
    return key


def check_base_url(url: object) -> str:
    """``scheme://host[:port][/path]`` or a ``ConfigurationError`` naming what is wrong."""
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigurationError(f"base_url: expected http(s)://host[:port][/path], got {url!r}")
    try:
        parsed = httpx2.URL(url)
        port = parsed.port
    except (httpx2.InvalidURL, ValueError, TypeError) as exc:
        raise ConfigurationError(f"base_url: {url!r} is not a valid URL ({exc})") from None
    if not parsed.host:
        raise ConfigurationError(f"base_url: {url!r} has no host")
    if port is not None and not 0 < port < 65536:
        raise ConfigurationError(f"base_url: port {port} in {url!r} is outside 1-65535")
    return url.rstrip("/")


def connection_error(exc: BaseException, *, provider: str, model: str, during: str = "") -> ModelsError:
    """Any failure below HTTP (or an HTTP library's own exception) as one typed error; the one
    place transport exceptions are mapped, for requests and for streams alike."""
    reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, httpx2.TimeoutException | TimeoutError):
        message = f"timed out {during}" if during else "request timed out"
        return APITimeoutError(f"{message} ({type(exc).__name__})", provider=provider, model=model)
    if isinstance(exc, httpx2.DecodingError):
        return ResponseError(f"the body could not be decoded ({reason})", provider=provider, model=model)
    if isinstance(exc, httpx2.TooManyRedirects):
        return ResponseError(f"the server redirected in a loop ({reason})", provider=provider, model=model)
    if during:
        return APIConnectionError(
            f"the connection was lost {during} ({reason})", provider=provider, model=model
        )
    return APIConnectionError(f"connection failed ({reason})", provider=provider, model=model)


async def _close_with_loop(client: httpx2.AsyncClient) -> AsyncGenerator[None, None]:
    """Started once in the loop that owns ``client``: ``asyncio.run`` (and any runner that calls
    ``loop.shutdown_asyncgens()``) closes live async generators before closing the loop, which
    closes the pool's connections with it instead of leaving them to the garbage collector."""
    try:
        yield
    finally:
        await client.aclose()


class Transport:
    __slots__ = (
        "_client_options",
        "_clients",
        "_error_mapper",
        "_extensions",
        "_given_client",
        "_headers",
        "_no_retry",
        "_request_id_header",
        "_urls",
        "limiter",
        "max_retries",
        "model",
        "provider",
        "timeout",
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
        no_retry: frozenset[int] = frozenset(),
        request_id_header: str = "x-request-id",
        verify: bool | str | ssl.SSLContext | None = None,
        proxy: str | None = None,
        trust_env: bool = True,
        client: httpx2.AsyncClient | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        if max_retries < 0:
            raise ValueError(f"max_retries: must be >= 0, got {max_retries}")
        if client is not None and not isinstance(client, httpx2.AsyncClient):
            raise ConfigurationError(
                f"http_client: expected an httpx2.AsyncClient, got {type(client).__name__}"
            )
        if client is not None and (transport is not None or proxy is not None or verify is not None):
            raise ConfigurationError(
                "http_client: give either your own client or verify/proxy/http_transport"
            )
        if proxy is not None:
            check_base_url(proxy)  # the same rules; a bad proxy fails here, not on the first call
        if isinstance(verify, str):  # a CA bundle: loaded now, so a bad path fails here
            try:
                verify = (
                    ssl.create_default_context(capath=verify)
                    if os.path.isdir(verify)
                    else ssl.create_default_context(cafile=verify)
                )
            except (OSError, ssl.SSLError) as exc:
                raise ConfigurationError(f"verify: cannot load the CA bundle {verify!r} ({exc})") from None
        self._given_client = client
        self._client_options = (verify, proxy, trust_env, transport)
        self._no_retry = no_retry
        self._request_id_header = request_id_header
        # Built once: per request we only wrap them in an httpx2.Request (no header merging).
        try:
            self._headers = httpx2.Headers(headers)
        except (UnicodeError, ValueError, TypeError) as exc:
            raise ConfigurationError(f"headers: cannot be sent in HTTP ({type(exc).__name__})") from None
        if client is not None:  # its own headers (auth of a gateway, tracing) go too; ours win
            merged = client.headers.copy()
            merged.update(self._headers)
            self._headers = merged
        self._extensions = {
            "timeout": {
                "connect": timeout.connect,
                "read": timeout.read,
                "write": timeout.write,
                "pool": timeout.pool,
            }
        }
        self.timeout = timeout
        self._urls: dict[str, httpx2.URL] = {}
        self.max_retries = max_retries
        self._error_mapper = error_mapper
        self.provider = provider
        self.model = model
        # Client-side rate limits, consulted per attempt; None (plan "unlimited") costs nothing.
        self.limiter = limiter
        # One client per event loop: a pooled connection belongs to the loop that opened it, and
        # the blocking API runs drivers on a loop of its own. The value keeps the generator that
        # closes the client when its loop shuts down.
        self._clients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[httpx2.AsyncClient, AsyncGenerator[None, None]]
        ] = weakref.WeakKeyDictionary()

    async def _client(self) -> httpx2.AsyncClient:
        if self._given_client is not None:
            return self._given_client  # the caller's: its loop, its pool, its closing
        loop = asyncio.get_running_loop()
        entry = self._clients.get(loop)
        if entry is not None:
            return entry[0]
        verify, proxy, trust_env, transport = self._client_options
        if verify is None or verify is True:
            verify = _shared_ssl_context() if trust_env else True
        client = httpx2.AsyncClient(
            verify=verify,
            proxy=proxy,
            trust_env=trust_env,
            transport=transport,
            limits=httpx2.Limits(
                max_connections=_defaults.MAX_CONNECTIONS,
                max_keepalive_connections=_defaults.MAX_KEEPALIVE_CONNECTIONS,
            ),
            follow_redirects=True,
            max_redirects=_defaults.MAX_REDIRECTS,
        )
        closer = _close_with_loop(client)
        await closer.__anext__()  # registers it with this loop's shutdown_asyncgens
        self._clients[loop] = (client, closer)
        return client

    def deadline(self) -> float:
        """The loop time by which a call starting now must have its answer (``Timeout.total``)."""
        return asyncio.get_running_loop().time() + self.timeout.total

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
        deadline: float | None = None,
    ) -> httpx2.Response:
        """Send with retries; return a 2xx response (streamed: the caller must close it) or raise
        the typed error of the last attempt. ``headers`` add to or replace the driver's own (e.g.
        a multipart content type).

        Everything (waiting for the limiter, every attempt, every back-off) happens before
        ``deadline`` (loop time; default ``Timeout.total`` from now), else ``APITimeoutError``.

        With a limiter, every attempt first waits for its capacity (one request, ``tokens``
        estimated tokens, a concurrency slot); every response's headers feed it; a 429 blocks
        every caller of the limiter for the retry-after; a failed attempt's tokens are refunded.
        The slot is released here, except for a streamed 2xx: the caller releases it
        (``limiter.release()``) when the stream ends.

        ``limited=False`` bypasses the limiter (file and batch management calls do not count
        against the chat quota); ``max_retries`` overrides the driver's for one call (0 for
        requests that must not be repeated, like creating a paid batch)."""
        if deadline is None:
            deadline = self.deadline()
        try:
            async with asyncio.timeout_at(deadline):
                return await self._send(method, url, content, stream, headers, tokens, limited, max_retries)
        except TimeoutError:
            raise APITimeoutError(
                f"timed out: no answer within the deadline of {self.timeout.total:g} s (Timeout.total)",
                provider=self.provider,
                model=self.model,
            ) from None

    async def _send(
        self,
        method: str,
        url: str,
        content: bytes | None,
        stream: bool,
        headers: Mapping[str, str] | None,
        tokens: int,
        limited: bool,
        max_retries: int | None,
    ) -> httpx2.Response:
        client = await self._client()
        parsed = self._urls.get(url)
        if parsed is None:
            try:
                parsed = httpx2.URL(url)
            except (httpx2.InvalidURL, ValueError, TypeError) as exc:
                raise ConfigurationError(f"cannot send to {url!r}: {exc}") from None
            self._urls[url] = parsed
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
            try:
                request = httpx2.Request(
                    method, parsed, headers=request_headers, content=content, extensions=self._extensions
                )
                response = await client.send(request, stream=stream)
            except Exception as exc:
                error = connection_error(exc, provider=self.provider, model=self.model)
            except BaseException:
                if limiter is not None:
                    limiter.release()
                raise
            else:
                status = response.status_code
                if status in _SUCCESS:
                    if limiter is not None:
                        if not stream:
                            limiter.release()
                        await limiter.observe(response.headers)
                    return response
                try:
                    if stream:
                        await response.aread()
                    reply_headers = header_dict(response)
                    error = self._mapped(status, reply_headers, response.content)
                except Exception as exc:
                    error = connection_error(
                        exc, provider=self.provider, model=self.model, during="reading an error body"
                    )
                except BaseException:
                    if limiter is not None:
                        limiter.release()
                    raise
                finally:
                    if stream:
                        await response.aclose()
            if limiter is not None:
                limiter.release()
                if reply_headers is not None:
                    await limiter.observe(reply_headers)
                    asked = error.retry_after if isinstance(error, RateLimitError) else None
                    await limiter.rejected(error, tokens, retry_delay(retries_taken, reply_headers, asked))
                await limiter.refund(tokens)
            if isinstance(error, ResponseError):
                raise error  # a server we cannot understand will not be understood on a retry
            if reply_headers is not None and not should_retry(status, reply_headers, self._no_retry):
                raise error
            if retries_taken >= retry_budget:
                raise error
            asked = None
            if isinstance(error, RateLimitError):
                if error.daily or (error.retry_after or 0.0) > _defaults.MAX_RETRY_AFTER:
                    raise error  # waiting in-process would not help; say when instead
                if limiter is not None and limiter.rated:
                    retries_taken += 1  # the limiter holds every caller for the retry-after
                    continue
                asked = error.retry_after
            await asyncio.sleep(retry_delay(retries_taken, reply_headers, asked))
            retries_taken += 1

    def _mapped(self, status: int, headers: Mapping[str, str], content: bytes) -> ModelsError:
        if status < 400:
            return ResponseError(
                f"the server answered {status}, which is not an answer"
                + (" (a redirect without a Location)" if 300 <= status < 400 else ""),
                provider=self.provider,
                model=self.model,
                status=status,
                request_id=headers.get(self._request_id_header),
                body=content[:4096],
                headers=headers,
            )
        return self._error_mapper(status, headers, content)

    async def aclose(self) -> None:
        """Close every loop's pool: this loop's now, a running other loop's on that loop."""
        entries = list(self._clients.items())
        self._clients.clear()
        current = asyncio.get_running_loop()
        for loop, (client, closer) in entries:
            if loop is current:
                await closer.aclose()
            elif not loop.is_closed() and loop.is_running():
                future = asyncio.run_coroutine_threadsafe(closer.aclose(), loop)
                with contextlib.suppress(Exception):
                    await asyncio.wrap_future(future)
            else:
                with contextlib.suppress(Exception):
                    await client.aclose()
