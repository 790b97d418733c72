"""``CachedDriver``: any driver, answering repeated requests from a cache.

A ``WrapperDriver``: provider, model, limiter, rate-limit status, the last rate-limit snapshot,
capabilities and endpoint are the wrapped driver's (a hit leaves ``last_rate_limit`` as the last
real response set it).

A hit never reaches the provider. Only deterministic requests (temperature 0 or a fixed seed)
are cached unless ``cache_all=True``; failed requests are never stored. A stream is stored when
its final chunk arrives and replays chunk for chunk; a stored ``generate`` answers a stream and
vice versa (see ``keys``). The cache store failing never fails a request: the built-in stores
answer a miss and drop the write themselves, with one warning per outage (``cache.errors``
counts those); a ``CacheError`` from any other store is handled the same way here
(``stats.errors`` counts those). An entry that verifies but does not decode is a miss and is
discarded from the store.

Concurrent identical requests in one process share one provider call (the first one asks, the
others wait for its answer), so a batch with duplicate prompts pays for each prompt once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from ..drivers.base import Driver, ResponseStream
from ..drivers.wrapper import WrapperDriver
from ..types import GenerateRequest, GenerateResponse, StreamChunk
from .base import CacheBackend, CacheError
from .codec import Entry, StoredChunk, encode_response, encode_stream
from .keys import KeyScope, is_deterministic, scope_of

__all__ = ["CachedDriver", "CachedStream", "DriverCacheStats"]

log = logging.getLogger("botticelli.cache")


@dataclass(slots=True)
class DriverCacheStats:
    """This driver's own counts (the store's ``stats()`` counts every process)."""

    hits: int = 0
    misses: int = 0
    bypassed: int = 0  # not cacheable: non-deterministic without cache_all, or an unkeyable extra
    coalesced: int = 0  # answered by an identical request already in flight
    stored: int = 0  # answers handed to the store (a failing built-in store drops them)
    # CacheErrors a store raised (the requests still went through); the built-in stores raise
    # none from lookups and stores: they count their own failures in ``cache.errors``
    errors: int = 0


class _HitFlag:
    """Shared by a ``CachedStream`` and its generator so the generator needn't refer to the
    stream (which would make a reference cycle)."""

    __slots__ = ("hit",)

    def __init__(self) -> None:
        self.hit: bool | None = None


class CachedStream(ResponseStream):
    """A ``ResponseStream`` that also says whether it is replayed from the cache: ``cached`` is
    ``None`` until the first chunk, then True or False."""

    __slots__ = ("_flag",)

    def __init__(
        self, source: AsyncGenerator[StreamChunk, None], flag: _HitFlag, *, model: str, provider: str
    ) -> None:
        super().__init__(source, model=model, provider=provider)
        self._flag = flag

    @property
    def cached(self) -> bool | None:
        return self._flag.hit


class CachedDriver(WrapperDriver):
    """``CachedDriver(GroqDriver(...))`` caches in the default SQLite file; pass ``cache=`` a
    ``SQLiteCache``, ``RedisCache`` or ``open_cache(url)`` to choose. ``ttl``: seconds an entry
    lives (``None``: until evicted). ``cache_all``: also cache sampled requests. ``aclose()``
    closes the inner driver, and the cache too when this driver opened it. ``driver`` (also
    ``inner``) is the wrapped driver."""

    def __init__(
        self,
        driver: Driver,
        cache: CacheBackend | None = None,
        *,
        ttl: float | None = None,
        cache_all: bool = False,
    ) -> None:
        if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or ttl <= 0):
            raise ValueError(f"ttl: expected a positive number of seconds or None, got {ttl!r}")
        super().__init__(driver)
        if cache is None:
            from . import open_cache

            cache = open_cache()
            self._owns_cache = True
        else:
            self._owns_cache = False
        self.cache = cache
        self.ttl = ttl
        self.cache_all = cache_all
        self.stats = DriverCacheStats()
        self.last_hit = False  # whether the most recent generate() was answered by the cache
        self._keys = KeyScope(scope_of(driver))
        self._inflight: dict[str, asyncio.Future[bytes | None]] = {}
        self._warned = False  # a raising store's outage was already logged

    @property
    def driver(self) -> Driver:
        """The wrapped driver (the same as ``inner``)."""
        return self.inner

    def key(self, request: GenerateRequest) -> str | None:
        """The request's cache key, or ``None`` if this driver would not cache it."""
        if not (self.cache_all or is_deterministic(request)):
            return None
        return self._keys.key(request)

    async def _lookup(self, key: str) -> bytes | None:
        try:
            return await self.cache.get(key)
        except CacheError as exc:
            self._failed("cache lookup failed, asking the provider: %s", exc)
            return None

    def _failed(self, message: str, exc: CacheError) -> None:
        """One warning per run of failures of a store that raises (the built-in ones don't)."""
        self.stats.errors += 1
        if self._warned:
            log.debug(message, exc)
        else:
            self._warned = True
            log.warning(message, exc)

    async def _discard(self, key: str) -> None:
        """An entry that verified but did not decode: remove it so it stops costing lookups."""
        try:
            await self.cache.discard(key)
        except CacheError as exc:
            self._failed("cache discard failed: %s", exc)

    async def _store(self, key: str, value: bytes) -> None:
        try:
            await self.cache.set(key, value, self.ttl)
        except CacheError as exc:
            self._failed("cache store failed; the answer was not cached: %s", exc)
            return
        self._warned = False
        self.stats.stored += 1

    def _hit(self, value: bytes, started: float) -> GenerateResponse | None:
        entry = Entry.decode(value)
        if entry is None:
            return None
        return entry.response(time.perf_counter() - started)

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        started = time.perf_counter()
        key = self.key(request)
        if key is None:
            self.stats.bypassed += 1
            self.last_hit = False
            return await self.inner.generate(request)
        value = await self._lookup(key)
        if value is not None:
            if (hit := self._hit(value, started)) is not None:
                self.stats.hits += 1
                self.last_hit = True
                return hit
            await self._discard(key)
        loop = asyncio.get_running_loop()
        future = self._inflight.get(key)
        while future is not None and future.get_loop() is loop:
            # an identical request is in flight: share its answer (if it fails, ask ourselves)
            value = await asyncio.shield(future)
            if value is not None and (hit := self._hit(value, started)) is not None:
                self.stats.coalesced += 1
                self.last_hit = True
                return hit
            future = self._inflight.get(key)
        self.stats.misses += 1
        self.last_hit = False
        if future is not None:  # in flight on another event loop: no sharing across loops
            return await self._ask(key, request)
        future = loop.create_future()
        self._inflight[key] = future
        stored: bytes | None = None
        try:
            response, stored = await self._ask_and_encode(key, request)
        finally:
            del self._inflight[key]
            future.set_result(stored)
        return response

    async def _ask_and_encode(self, key: str, request: GenerateRequest) -> tuple[GenerateResponse, bytes]:
        response = await self.inner.generate(request)
        value = encode_response(response)
        await self._store(key, value)
        return response, value

    async def _ask(self, key: str, request: GenerateRequest) -> GenerateResponse:
        return (await self._ask_and_encode(key, request))[0]

    def generate_stream(self, request: GenerateRequest) -> ResponseStream:
        key = self.key(request)
        if key is None:
            self.stats.bypassed += 1
            return self.inner.generate_stream(request)
        flag = _HitFlag()
        return CachedStream(
            self._stream(key, request, flag), flag, model=self.model_name, provider=self.provider_name
        )

    async def _stream(
        self, key: str, request: GenerateRequest, flag: _HitFlag
    ) -> AsyncGenerator[StreamChunk, None]:
        value = await self._lookup(key)
        entry = Entry.decode(value) if value is not None else None
        if value is not None and entry is None:
            await self._discard(key)
        if entry is not None:
            self.stats.hits += 1
            flag.hit = True
            for chunk in entry.replay():
                yield chunk
            return
        self.stats.misses += 1
        flag.hit = False
        parts: list[StoredChunk] = []
        async with self.inner.generate_stream(request) as inner:
            async for chunk in inner:
                if not chunk.is_final:
                    parts.append((chunk.text, chunk.reasoning, chunk.reasoning_signature))
                    yield chunk
                    continue
                # Store before handing over the final chunk: a consumer may stop right there.
                # The inner stream stamped its own timings; the outer one stamps ours.
                final = dataclasses.replace(chunk, latency=None, time_to_first_token=None)
                await self._store(
                    key, encode_stream(parts, final, model=self.model_name, provider=self.provider_name)
                )
                yield final

    async def aclose(self) -> None:
        try:
            await self.inner.aclose()
        finally:
            if self._owns_cache:
                await self.cache.aclose()

    def __repr__(self) -> str:
        return f"CachedDriver({self.inner!r}, cache={self.cache!r})"
