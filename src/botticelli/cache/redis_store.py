"""The shared store: Redis (``redis://`` / ``rediss://`` / ``unix://``), for caches used by
several hosts.

Each entry is one string key ``botticelli:cache:v1:<request key>`` holding the entry bytes,
written with ``PX`` when it has a TTL, so Redis expires it. The size bound is Redis's own: set
``maxmemory`` and ``maxmemory-policy allkeys-lru`` (or ``volatile-lru`` with TTLs) on the server,
which evicts least-recently-used keys far better than a client could; ``stats().max_bytes``
reports that setting. Hit and miss counts live in the hash ``<prefix>_stats``; they ride along
with the next command rather than costing a round trip of their own, so a hit is one ``GET``.
``bytes`` and ``entries`` are counted on demand with ``SCAN`` + ``STRLEN``, exact even after
Redis expired or evicted keys.

A ``RedisCache`` belongs to the event loop that first uses it (redis-py's asyncio connections
do); create one per loop.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import ConfigurationError
from .base import CacheBackend, CacheError, CacheStats

__all__ = ["DEFAULT_PREFIX", "DEFAULT_URL", "RedisCache"]

DEFAULT_PREFIX = "botticelli:cache:v1:"
DEFAULT_URL = "redis://localhost:6379/0"
FLUSH_INTERVAL = 1.0  # seconds: hit/miss counts wait at most this long for a ride ...
FLUSH_EVERY = 256  # ... or this many lookups
_SCAN_BATCH = 1000


def masked_url(url: str) -> str:
    """The URL with its password replaced by ``***``, for messages and ``location``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class RedisCache(CacheBackend):
    """``RedisCache("redis://cache.internal:6379/0")``; ``prefix`` separates caches sharing a
    database. ``client``: an existing ``redis.asyncio.Redis`` to use instead (not closed by us)."""

    backend = "redis"

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        prefix: str = DEFAULT_PREFIX,
        timeout: float = 5.0,
        client: Any = None,
    ) -> None:
        try:
            import redis.asyncio as aioredis
        except ImportError:
            raise ConfigurationError(
                "the Redis cache needs redis-py: pip install 'botticelli[redis]'"
            ) from None
        if not prefix:
            raise ValueError("prefix: must not be empty (clear() deletes every key under it)")
        self.url = url
        self.prefix = prefix
        self._stats_key = prefix + "_stats"
        self._owns_client = client is None
        # redis-py types each command as "value or awaitable"; Any keeps the awaits honest-looking
        self._redis: Any = client or aioredis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self._hits = 0
        self._misses = 0
        self._last_flush = time.monotonic()

    @property
    def location(self) -> str:
        return masked_url(self.url)

    def _error(self, doing: str, exc: Exception) -> CacheError:
        return CacheError(f"{doing} Redis at {self.location}: {type(exc).__name__}: {exc}")

    def _take_counts(self, pipe: Any) -> tuple[int, int]:
        hits, misses = self._hits, self._misses
        if hits:
            pipe.hincrby(self._stats_key, "hits", hits)
        if misses:
            pipe.hincrby(self._stats_key, "misses", misses)
        self._hits = self._misses = 0
        self._last_flush = time.monotonic()
        return hits, misses

    def _give_back(self, counts: tuple[int, int]) -> None:
        self._hits += counts[0]
        self._misses += counts[1]

    async def get(self, key: str) -> bytes | None:
        from redis.exceptions import RedisError

        name = self.prefix + key
        pending = self._hits + self._misses
        try:
            if pending and (pending >= FLUSH_EVERY or time.monotonic() - self._last_flush >= FLUSH_INTERVAL):
                pipe = self._redis.pipeline(transaction=False)
                pipe.get(name)
                counts = self._take_counts(pipe)
                try:
                    value = (await pipe.execute())[0]
                except BaseException:
                    self._give_back(counts)
                    raise
            else:
                value = await self._redis.get(name)
        except RedisError as exc:
            raise self._error("reading from", exc) from None
        if value is None:
            self._misses += 1
            return None
        self._hits += 1
        return value  # type: ignore[no-any-return]

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        from redis.exceptions import RedisError

        if ttl is not None and ttl <= 0:
            return
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(self.prefix + key, value, px=None if ttl is None else max(1, round(ttl * 1000)))
        counts = self._take_counts(pipe)
        try:
            await pipe.execute()
        except RedisError as exc:
            self._give_back(counts)
            raise self._error("writing to", exc) from None

    async def flush(self) -> None:
        """Send the hit/miss counts gathered so far."""
        from redis.exceptions import RedisError

        if not (self._hits or self._misses):
            return
        pipe = self._redis.pipeline(transaction=False)
        counts = self._take_counts(pipe)
        try:
            await pipe.execute()
        except RedisError as exc:
            self._give_back(counts)
            raise self._error("writing to", exc) from None

    async def _entry_keys(self) -> AsyncIterator[list[bytes]]:
        """Every entry key, in batches: the prefix and exactly 64 hex digits, so neither the stats
        hash nor the keys of a longer prefix sharing the database (``...v1:team-b:``) match."""
        batch: list[bytes] = []
        pattern = _glob_escape(self.prefix) + "[0-9a-f]" * 64
        async for name in self._redis.scan_iter(match=pattern, count=_SCAN_BATCH):
            batch.append(name)
            if len(batch) >= _SCAN_BATCH:
                yield batch
                batch = []
        if batch:
            yield batch

    async def stats(self) -> CacheStats:
        from redis.exceptions import RedisError

        try:
            await self.flush()
            counters = {k.decode(): int(v) for k, v in (await self._redis.hgetall(self._stats_key)).items()}
            entries = total = 0
            async for batch in self._entry_keys():
                pipe = self._redis.pipeline(transaction=False)
                for name in batch:
                    pipe.strlen(name)
                sizes = await pipe.execute()
                entries += sum(1 for s in sizes if s)
                total += sum(sizes)
            max_bytes = await self._maxmemory()
        except RedisError as exc:
            raise self._error("reading from", exc) from None
        return CacheStats(
            location=self.location,
            backend=self.backend,
            hits=counters.get("hits", 0),
            misses=counters.get("misses", 0),
            entries=entries,
            bytes=total,
            max_bytes=max_bytes,
        )

    async def _maxmemory(self) -> int | None:
        """The server's ``maxmemory`` (its size bound), if set and visible to us."""
        from redis.exceptions import RedisError

        try:
            value = int((await self._redis.info("memory")).get("maxmemory", 0))
        except (RedisError, ValueError, TypeError):
            return None
        return value or None

    async def clear(self) -> int:
        from redis.exceptions import RedisError

        removed = 0
        self._hits = self._misses = 0
        try:
            async for batch in self._entry_keys():
                removed += int(await self._redis.unlink(*batch))
            await self._redis.delete(self._stats_key)
        except RedisError as exc:
            raise self._error("clearing", exc) from None
        return removed

    async def aclose(self) -> None:
        """Send pending counts (best effort) and close the connections we opened."""
        from redis.exceptions import RedisError

        try:
            with contextlib.suppress(CacheError):
                await self.flush()
        finally:
            if self._owns_client:
                with contextlib.suppress(RedisError):
                    await self._redis.aclose()
