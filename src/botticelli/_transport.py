"""Transport: one pooled aiohttp session per driver (per event loop), the retry loop, and the
mapping of transport failures to typed errors. Knows nothing of wire formats: the codec's error
mapper is handed in.

aiohttp is imported at the first call (``Transport._session``), never at ``import botticelli``
nor when a driver is built: a script that only builds a driver, or fails before its first call,
never pays for it."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import os
import ssl
import weakref
from collections.abc import AsyncGenerator, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from . import _deadlines, _defaults, _tls
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
    import aiohttp

    from .ratelimit.limiter import Limiter

    ErrorMapper = Callable[[int, Mapping[str, str], bytes], ModelsError]


#: Statuses that are an answer; anything else below 400 (1xx, a 3xx left after redirects, 207-299)
#: is a server we do not understand, never a success.
_SUCCESS = frozenset(range(200, 207))


class _RedactingFilter(logging.Filter):
    """aiohttp logs at DEBUG, and a server may echo the key into what it logs: every record of
    the HTTP library's loggers is scrubbed before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record that cannot even format itself
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        return True


_HTTP_LOGGERS = ("aiohttp", "aiohttp.client", "aiohttp.internal")
_redacting_filter = _RedactingFilter()
for _name in _HTTP_LOGGERS:
    logging.getLogger(_name).addFilter(_redacting_filter)


@dataclass(frozen=True, slots=True)
class Reply:
    """A whole answer of a non-streamed call, free of the HTTP library's types."""

    status: int
    headers: dict[str, str]
    content: bytes


def header_dict(response: aiohttp.ClientResponse) -> dict[str, str]:
    """Response headers as a plain dict with lower-case names, one pass over the raw pairs (a
    repeated header: the last one wins)."""
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response.raw_headers}


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
        parsed = urlsplit(url)
        host = parsed.hostname
        port = parsed.port
    except ValueError as exc:
        raise ConfigurationError(f"base_url: {url!r} is not a valid URL ({exc})") from None
    if not host:
        raise ConfigurationError(f"base_url: {url!r} has no host")
    if any(c.isspace() or not c.isprintable() for c in url):
        raise ConfigurationError(f"base_url: {url!r} is not a valid URL (a space or control character)")
    if port is not None and not 0 < port < 65536:
        raise ConfigurationError(f"base_url: port {port} in {url!r} is outside 1-65535")
    return url.rstrip("/")


_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def check_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Header names lower-cased and checked now (RFC 9110 tokens; values latin-1 without CR, LF
    or NUL), so a header HTTP cannot carry fails at construction, not on the first call."""
    checked: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not isinstance(value, str) or not name or not set(name) <= _TOKEN:
            raise ConfigurationError(f"headers: cannot be sent in HTTP (the name {name!r})")
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            raise ConfigurationError(f"headers: cannot be sent in HTTP (the value of {name!r})") from None
        if "\r" in value or "\n" in value or "\x00" in value:
            raise ConfigurationError(f"headers: cannot be sent in HTTP (the value of {name!r})")
        checked[name.lower()] = value
    return checked


def connection_error(
    exc: BaseException, *, provider: str, model: str, during: str = "", hint: str | None = None
) -> ModelsError:
    """Any failure below HTTP (or an HTTP library's own exception) as one typed error; the one
    place transport exceptions are mapped, for requests and for streams alike. ``hint``: what to
    do when no server answered at all (Ollama: start ``ollama serve``)."""
    reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, TimeoutError):  # aiohttp's ServerTimeoutError family included
        message = f"timed out {during}" if during else "request timed out"
        return APITimeoutError(f"{message} ({type(exc).__name__})", provider=provider, model=model)
    kind = type(exc).__name__
    cause = type(exc.__cause__).__name__ if exc.__cause__ is not None else ""
    if kind == "ClientPayloadError" and (
        cause == "ContentEncodingError" or "content-encoding" in str(exc).lower()
    ):
        return ResponseError(f"the body could not be decoded ({reason})", provider=provider, model=model)
    if kind == "TooManyRedirects":
        return ResponseError(f"the server redirected in a loop ({reason})", provider=provider, model=model)
    if during:
        return APIConnectionError(
            f"the connection was lost {during} ({reason})", provider=provider, model=model
        )
    suffix = f"; {hint}" if hint else ""
    return APIConnectionError(f"connection failed ({reason}){suffix}", provider=provider, model=model)


async def _close_with_loop(
    session: aiohttp.ClientSession, when_closed: list[Callable[[], object]]
) -> AsyncGenerator[None, None]:
    """Started once in the loop that owns ``session``: ``asyncio.run`` (and any runner that calls
    ``loop.shutdown_asyncgens()``) closes live async generators before closing the loop, which
    closes the pool's connections with it instead of leaving them to the garbage collector.
    ``when_closed`` runs after (the finalizer's ``detach``: nothing is left to close)."""
    try:
        yield
    finally:
        try:
            await session.close()
        finally:
            for callback in when_closed:
                callback()


class Transport:
    __slots__ = (
        "__weakref__",  # a finalizer closes each loop's session when a dropped driver goes
        "_client_options",
        "_connector",
        "_error_mapper",
        "_gates",
        "_given_session",
        "_headers",
        "_no_retry",
        "_proxies",
        "_request_headers",
        "_request_id_header",
        "_sessions",
        "_timeout",
        "connect_hint",
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
        connect_hint: str | None = None,
        verify: bool | str | ssl.SSLContext | None = None,
        proxy: str | None = None,
        trust_env: bool = True,
        client: aiohttp.ClientSession | None = None,
        connector: aiohttp.BaseConnector | None = None,
    ) -> None:
        if max_retries < 0:
            raise ValueError(f"max_retries: must be >= 0, got {max_retries}")
        if client is not None and not _is_instance(client, "ClientSession"):
            raise ConfigurationError(
                f"http_client: expected an aiohttp.ClientSession, got {type(client).__name__}"
            )
        if connector is not None and not _is_instance(connector, "BaseConnector"):
            raise ConfigurationError(
                f"connector: expected an aiohttp.BaseConnector, got {type(connector).__name__}"
            )
        if client is not None and (connector is not None or proxy is not None or verify is not None):
            raise ConfigurationError("http_client: give either your own session or verify/proxy/connector")
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
        self._given_session = client
        self._connector = connector
        self._client_options = (verify, proxy, trust_env)
        self._no_retry = no_retry
        self._request_id_header = request_id_header
        self.connect_hint = connect_hint
        # Checked once: our own sessions carry them as their default headers (aiohttp copies
        # them into each request); a given session gets them per request, over its own.
        self._headers = check_headers(headers)
        self._request_headers: dict[str, str] | None = self._headers if client is not None else None
        self.timeout = timeout
        self._timeout: Any = None  # the aiohttp.ClientTimeout, built with the first session
        self._proxies: dict[str, Any] = {}  # url → (proxy URL, proxy auth) or None
        self.max_retries = max_retries
        self._error_mapper = error_mapper
        self.provider = provider
        self.model = model
        # Client-side rate limits, consulted per attempt; None (plan "unlimited") costs nothing.
        self.limiter = limiter
        # One session per event loop: a pooled connection belongs to the loop that opened it, and
        # the blocking API runs drivers on a loop of its own. The value keeps the generator that
        # closes the session when its loop shuts down.
        self._sessions: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[aiohttp.ClientSession, AsyncGenerator[None, None]]
        ] = weakref.WeakKeyDictionary()
        # Per loop, with our own connector: the queue for its pool (``_send``).
        self._gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    async def _session(self) -> aiohttp.ClientSession:
        if self._given_session is not None:
            if self._timeout is None:
                self._timeout = _client_timeout(self.timeout)
            return self._given_session  # the caller's: its loop, its pool, its closing
        loop = asyncio.get_running_loop()
        entry = self._sessions.get(loop)
        if entry is not None:
            return entry[0]
        _tls.import_aiohttp()  # here, at the first call: not at import, not at construction
        import aiohttp

        verify, proxy, _ = self._client_options
        connector = self._connector
        if self._timeout is None:
            # Our own connector bounds the pool wait + connect phase itself (on the deadline watch)
            self._timeout = _client_timeout(self.timeout, connect_phase=connector is not None)
        if connector is None:
            ssl_option: ssl.SSLContext | bool
            if verify is None or verify is True:
                ssl_option = _tls.default_ssl()
            elif verify is False:
                ssl_option = False
            else:
                ssl_option = verify
            connector = _bounded_connector()(
                self.timeout.pool + self.timeout.connect,
                limit=_defaults.MAX_CONNECTIONS,
                ssl=ssl_option,
                keepalive_timeout=_defaults.KEEPALIVE_TIMEOUT,
            )
            self._gates[loop] = asyncio.Semaphore(_defaults.MAX_CONNECTIONS)
        session = aiohttp.ClientSession(
            connector=connector,
            connector_owner=True,  # a given connector too: it is closed with the driver
            headers=self._headers,
            timeout=self._timeout,
            proxy=proxy,
            # Proxies from the environment are resolved here, once per URL (``_proxy_for``):
            # aiohttp's own trust_env looks them up, and .netrc, in a thread on every request.
            trust_env=False,
            cookie_jar=aiohttp.DummyCookieJar(),  # an API client keeps no cookies
        )
        when_closed: list[Callable[[], object]] = []
        closer = _close_with_loop(session, when_closed)
        await closer.__anext__()  # registers it with this loop's shutdown_asyncgens
        self._sessions[loop] = (session, closer)
        # A driver dropped without aclose() while its loop lives on (the blocking API's loop, a
        # long-running service): the session is closed on that loop, not left to the garbage
        # collector. The finalizer holds the session, so it cannot be collected unclosed first;
        # once the session is closed it lets go.
        finalizer = weakref.finalize(self, _close_soon, loop, closer)
        finalizer.atexit = False
        when_closed.append(finalizer.detach)
        return session

    def _proxy_for(self, url: str) -> Any:
        """The environment's proxy for ``url`` (``HTTP_PROXY`` / ``HTTPS_PROXY``, ``NO_PROXY``,
        proxy credentials from .netrc), by aiohttp's own rules, looked up once per URL."""
        try:
            return self._proxies[url]
        except KeyError:
            pass
        found = None
        if self._given_session is None and self._client_options[1] is None and self._client_options[2]:
            from aiohttp.helpers import get_env_proxy_for_url
            from yarl import URL

            with contextlib.suppress(LookupError):
                found = get_env_proxy_for_url(URL(url))
        self._proxies[url] = found
        return found

    def deadline(self) -> float:
        """The loop time by which a call starting now must have its answer (``Timeout.total``)."""
        return asyncio.get_running_loop().time() + self.timeout.total

    def send(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        tokens: int = 0,
        limited: bool = True,
        max_retries: int | None = None,
        deadline: float | None = None,
    ) -> Coroutine[Any, Any, Reply]:
        """Send with retries; return the 2xx answer, read whole, or raise the typed error of the
        last attempt. ``headers`` add to or replace the driver's own (e.g. a multipart content
        type).

        Everything (waiting for the limiter, every attempt, every back-off) happens before
        ``deadline`` (loop time; default ``Timeout.total`` from now), else ``APITimeoutError``.

        With a limiter, every attempt first waits for its capacity (one request, ``tokens``
        estimated tokens, a concurrency slot); every response's headers feed it; a 429 blocks
        every caller of the limiter for the retry-after; a failed attempt's tokens are refunded.

        ``limited=False`` bypasses the limiter (file and batch management calls do not count
        against the chat quota); ``max_retries`` overrides the driver's for one call (0 for
        requests that must not be repeated, like creating a paid batch).

        Not a coroutine function itself but the call's one coroutine: each resumption of a call
        passes through every coroutine frame between its task and aiohttp."""
        return self._send(method, url, content, False, headers, tokens, limited, max_retries, deadline)

    def stream(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        tokens: int = 0,
        deadline: float | None = None,
    ) -> Coroutine[Any, Any, tuple[aiohttp.ClientResponse, dict[str, str], Callable[[], None]]]:
        """As ``send``, but a 2xx response comes back open, with its headers and a callable: the
        caller reads its body, then must ``release()`` it, call the callable (the stream's place
        in the queue for the pool) and (with a limiter) ``limiter.release()`` the concurrency
        slot the stream holds until it ends. Retries happen only before the body."""
        return self._send(method, url, content, True, None, tokens, True, None, deadline)

    def deadline_error(self) -> APITimeoutError:
        return APITimeoutError(
            f"timed out: no answer within the deadline of {self.timeout.total:g} s (Timeout.total)",
            provider=self.provider,
            model=self.model,
        )

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
        deadline: float | None,
    ) -> Any:  # a Reply; with ``stream``, the open response, its headers and its place's release
        # One frame for the deadline and every attempt (see ``send``).
        loop = asyncio.get_running_loop()
        deadlines = _deadlines.watch(loop)
        bound = deadlines.enter(loop.time() + self.timeout.total if deadline is None else deadline)
        try:
            entry = self._sessions.get(loop) if self._given_session is None else None
            session = entry[0] if entry is not None else await self._session()
            if _tls.pending is not None and url.startswith("https:"):  # the CA store, off the loop, once
                await loop.run_in_executor(None, _tls.pending.load_now)
            proxy = self._proxy_for(url)
            proxy_url, proxy_auth = proxy if proxy is not None else (None, None)
            request_headers = self._request_headers
            if headers:
                request_headers = {**(request_headers or {}), **check_headers(headers)}
            timeout = self._timeout
            limiter = self.limiter if limited else None
            # Calls queue for our pool here, FIFO, not in aiohttp's connector: its waiters (a
            # future per call, the queues shuffled on every release) cost ~6 % of a call's client
            # CPU at concurrency 512. A stream's place goes with it to the caller, who gives it
            # back with the response. Only an optimisation: the connector still enforces its limit.
            gate = self._gates.get(loop)
            retry_budget = self.max_retries if max_retries is None else max_retries
            retries_taken = 0
            while True:
                reply_headers: dict[str, str] | None = None
                status = 0
                if limiter is not None:
                    await limiter.acquire(tokens)
                response = None
                handed_over = False
                gated = False
                try:
                    if gate is not None:
                        if gate.locked():  # every connection busy: wait, within pool + connect
                            bound_at = loop.time() + self.timeout.pool + self.timeout.connect
                            await _deadlines.within(bound_at, gate.acquire())
                        else:
                            await gate.acquire()
                        gated = True
                    response = await session.request(
                        method,
                        url,
                        data=content,
                        headers=request_headers,
                        timeout=timeout,
                        proxy=proxy_url,
                        proxy_auth=proxy_auth,
                        max_redirects=_defaults.MAX_REDIRECTS,
                    )
                    status = response.status
                    reply_headers = header_dict(response)
                    if status in _SUCCESS and stream:
                        if limiter is not None:
                            await limiter.observe(reply_headers)
                        handed_over = True
                        return (
                            response,
                            reply_headers,
                            gate.release if gated and gate is not None else _no_place,
                        )
                    body = await response.read()
                except Exception as exc:
                    during = "" if status in _SUCCESS or reply_headers is None else "reading an error body"
                    hint = self.connect_hint if response is None else None  # no server answered at all
                    error = connection_error(
                        exc, provider=self.provider, model=self.model, during=during, hint=hint
                    )
                    reply_headers = None
                except BaseException:
                    if limiter is not None:
                        limiter.release()
                    raise
                else:
                    if status in _SUCCESS:
                        if limiter is not None:
                            limiter.release()
                            await limiter.observe(reply_headers)
                        return Reply(status, reply_headers, body)
                    error = self._mapped(status, reply_headers, body)
                finally:
                    if response is not None and not handed_over:
                        response.release()
                    if gated and gate is not None and not handed_over:
                        gate.release()
                if limiter is not None:
                    limiter.release()
                    if reply_headers is not None:
                        await limiter.observe(reply_headers)
                        asked = error.retry_after if isinstance(error, RateLimitError) else None
                        await limiter.rejected(
                            error, tokens, retry_delay(retries_taken, reply_headers, asked)
                        )
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
        except asyncio.CancelledError:
            if deadlines.leave(bound):
                raise self.deadline_error() from None
            raise
        finally:
            deadlines.leave(bound)

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
        entries = list(self._sessions.items())
        self._sessions.clear()
        current = asyncio.get_running_loop()
        for loop, (session, closer) in entries:
            if loop is current:
                await closer.aclose()
            elif not loop.is_closed() and loop.is_running():
                future = asyncio.run_coroutine_threadsafe(closer.aclose(), loop)
                with contextlib.suppress(Exception):
                    await asyncio.wrap_future(future)
            else:
                with contextlib.suppress(Exception):
                    await session.close()


def _no_place() -> None:
    """The release of a stream that took no place in the queue (a session or connector of the caller's)."""


_closing: set[asyncio.Task[None]] = set()  # closes scheduled by finalizers, kept until done


def _close_soon(loop: asyncio.AbstractEventLoop, closer: AsyncGenerator[None, None]) -> None:
    """From any thread: close a session on its own loop, if that loop still runs."""

    def start() -> None:
        task = loop.create_task(closer.aclose())
        _closing.add(task)
        task.add_done_callback(_closing.discard)

    if not loop.is_closed():
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(start)


def _client_timeout(timeout: Timeout, *, connect_phase: bool = True) -> Any:
    """Per-phase bounds of one attempt: ``connect`` covers waiting for a pooled connection
    (``pool``) plus opening one (``connect``); ``read`` each read from the socket. aiohttp has no
    write bound; ``total`` (ours, around the whole call) covers a server that will not read.
    Without ``connect_phase`` the connector bounds the first phase (``_bounded_connector``)."""
    import aiohttp

    return aiohttp.ClientTimeout(
        total=None,
        connect=timeout.pool + timeout.connect if connect_phase else None,
        sock_connect=timeout.connect,
        sock_read=timeout.read,
    )


@functools.cache
def _bounded_connector() -> Any:
    """A ``TCPConnector`` that bounds the wait for a pooled connection plus opening one on the
    loop's deadline watch. aiohttp's own ``ClientTimeout.connect`` arms an ``asyncio.timeout`` per
    request, held while a request queues for the pool: measured at concurrency 512 that alone
    cost ~25 µs of client CPU a call. Past the bound: ``TimeoutError``, which aiohttp reports as
    its ``ConnectionTimeoutError``, as it does its own. Its connections keep ``sock_read`` with a
    lazy timer (``_lazy_read_timer``)."""
    import aiohttp

    handler = _lazy_read_timer()

    class BoundedConnector(aiohttp.TCPConnector):
        def __init__(self, bound: float, **options: Any) -> None:
            super().__init__(**options)
            self._phase_bound = bound
            if handler is not None and isinstance(getattr(self, "_factory", None), functools.partial):
                self._factory = functools.partial(handler, loop=self._loop)

        async def connect(self, req: Any, traces: Any, timeout: Any) -> Any:  # noqa: ASYNC109 (aiohttp's signature)
            # _deadlines.within, inlined: one coroutine frame less for every call waiting here
            loop = self._loop
            deadlines = _deadlines.watch(loop)
            bound = deadlines.enter(loop.time() + self._phase_bound)
            try:
                return await super().connect(req, traces, timeout)
            except asyncio.CancelledError:
                if deadlines.leave(bound):
                    raise TimeoutError from None
                raise
            finally:
                deadlines.leave(bound)

    return BoundedConnector


#: What the lazy read timer relies on in aiohttp's ``ResponseHandler``, methods and the
#: attributes its ``__init__`` sets (3.10 to 3.14 have them all); if a release renames any, its
#: own timer is kept.
_HANDLER_METHODS = ("_reschedule_timeout", "_drop_timeout", "_on_read_timeout", "connection_lost")
_HANDLER_ATTRIBUTES = frozenset({"_read_timeout", "_read_timeout_handle"})


@functools.cache
def _lazy_read_timer() -> Any:
    """aiohttp's connection protocol with ``sock_read`` (``Timeout.read``: the longest wait for
    the next bytes) kept by a lazy timer. aiohttp cancels and re-arms a loop timer at every
    request start, every read and every body end, two heap pushes and two cancels a call that
    raw aiohttp (no ``sock_read``) never pays: measured ~4 % of a plain call's client CPU at
    concurrency 16. Here every read only moves the due time; the one armed timer, when it
    fires, re-arms itself for the due time if bytes came meanwhile, and does nothing when no
    read is awaited. A connection in steady use fires it about once per ``read`` period.
    ``None`` when this aiohttp lacks a part it relies on."""
    from aiohttp.client_proto import ResponseHandler

    if not all(hasattr(ResponseHandler, name) for name in _HANDLER_METHODS) or not (
        set(ResponseHandler.__init__.__code__.co_names) >= _HANDLER_ATTRIBUTES
        and "_loop" in ResponseHandler._reschedule_timeout.__code__.co_names
    ):
        return None

    class LazyReadTimer(ResponseHandler):
        _read_due = math.inf  # loop time by which bytes must come; inf: no read awaited

        def _reschedule_timeout(self) -> None:
            timeout = self._read_timeout
            if not timeout:
                self._read_due = math.inf
                return
            due = self._loop.time() + timeout
            self._read_due = due
            handle = self._read_timeout_handle
            if handle is None or handle.when() > due:  # none armed, or armed for a longer bound
                if handle is not None:
                    handle.cancel()
                self._read_timeout_handle = self._loop.call_at(due, self._read_timer)

        def _drop_timeout(self) -> None:
            self._read_due = math.inf  # the armed timer, when it fires, finds nothing awaited

        def _read_timer(self) -> None:
            self._read_timeout_handle = None
            due = self._read_due
            if due == math.inf:
                return
            if self._loop.time() >= due:
                self._on_read_timeout()
            else:
                self._read_timeout_handle = self._loop.call_at(due, self._read_timer)

        def connection_lost(self, exc: BaseException | None) -> None:
            super().connection_lost(exc)
            handle = self._read_timeout_handle
            if handle is not None:  # a closed connection's timer goes with it
                handle.cancel()
                self._read_timeout_handle = None

    return LazyReadTimer


def _is_instance(value: object, name: str) -> bool:
    """``isinstance(value, aiohttp.<name>)``, importing aiohttp only when a value is given."""
    import aiohttp

    return isinstance(value, getattr(aiohttp, name))
