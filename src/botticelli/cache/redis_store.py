"""The shared store: Redis (``redis://`` / ``rediss://`` / ``unix://``), for caches used by
several hosts.

Each entry is one string key ``botticelli:cache:v2:<request key>`` holding a 16-byte checksum
over key and entry (``codec.checksum``) followed by the entry bytes, written with ``PX`` when it
has a TTL, so Redis expires it. A value that does not verify (written under another key, by
another format, or damaged) is a miss and is deleted. The size bound is Redis's own: set
``maxmemory`` and ``maxmemory-policy allkeys-lru`` (or ``volatile-lru`` with TTLs) on the server,
which evicts least-recently-used keys far better than a client could; ``stats().max_bytes``
reports that setting. Hit and miss counts live in the hash ``<prefix>_stats``; they ride along
with the next command rather than costing a round trip of their own, so a hit is one ``GET``.
``bytes`` and ``entries`` are counted on demand with ``SCAN`` + ``STRLEN``, exact even after
Redis expired or evicted keys.

A Redis that is down, black-holed or restarting never fails a request: each call is bounded by
``timeout`` (connect and read, no retries), a failed ``get`` is a miss and a failed ``set`` is
dropped, with one warning per outage; after a failure calls skip Redis for a short backoff
(0.25 s doubling to 8 s), so an outage costs one timeout per backoff rather than one per
request, and the first call after the backoff finds Redis again once it is back. ``stats`` and
``clear`` raise ``CacheError`` instead: their caller asked about the store itself.

A ``RedisCache`` belongs to the event loop that first uses it (redis-py's asyncio connections
do); create one per loop.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import AsyncIterator
from typing import Any

from .. import _defaults
from ..errors import ConfigurationError, redact
from .base import CacheBackend, CacheError, CacheStats, Health
from .codec import CHECKSUM_BYTES, checksum

__all__ = ["DEFAULT_PREFIX", "DEFAULT_TIMEOUT", "DEFAULT_URL", "RedisCache"]

DEFAULT_PREFIX = "botticelli:cache:v2:"  # v2: values carry a checksum
DEFAULT_URL = "redis://localhost:6379/0"
DEFAULT_TIMEOUT = (
    _defaults.REDIS_TIMEOUT
)  # seconds per connect and per reply: a cache must be faster than asking
FLUSH_INTERVAL = 1.0  # seconds: hit/miss counts wait at most this long for a ride ...
FLUSH_EVERY = 256  # ... or this many lookups
_SCAN_BATCH = 1000


_QUERY_PASSWORD = re.compile(r"([?&](?:password|username)=)[^&#]*", re.IGNORECASE)


def masked_url(url: str) -> str:
    """The URL with its credentials replaced by ``***`` (``user:password@``, however many ``@``
    the password holds, and a ``?password=`` parameter), for messages and ``location``."""
    return _QUERY_PASSWORD.sub(r"\1***", redact(url))


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class RedisCache(CacheBackend):
    """``RedisCache("redis://cache.internal:6379/0")``; ``prefix`` separates caches sharing a
    database; ``timeout`` bounds each connect and each reply (seconds). ``client``: an existing
    ``redis.asyncio.Redis`` to use instead (not closed by us; its own timeouts and retries
    apply)."""

    backend = "redis"
    _health: Health

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        prefix: str = DEFAULT_PREFIX,
        timeout: float = DEFAULT_TIMEOUT,
        client: Any = None,
    ) -> None:
        try:
            import redis.asyncio as aioredis
            from redis.asyncio.retry import Retry  # the sync one warns on an asyncio client (8.2)
            from redis.backoff import NoBackoff
            from redis.exceptions import RedisError
        except ImportError:
            raise ConfigurationError(
                "the Redis cache needs redis-py: pip install 'botticelli[redis]'"
            ) from None
        if not prefix:
            raise ValueError("prefix: must not be empty (clear() deletes every key under it)")
        self.url = url
        self.prefix = prefix
        self.timeout = timeout
        self._stats_key = prefix + "_stats"
        self._owns_client = client is None
        # what a failing Redis raises: redis-py's errors, and the OS's when a socket dies oddly
        self._faults: tuple[type[Exception], ...] = (RedisError, OSError)
        # redis-py types each command as "value or awaitable"; Any keeps the awaits honest-looking.
        # No retries: redis-py's default (3, with backoff up to seconds) would multiply the
        # timeout on every call to a dead server; the next call reconnects anyway.
        try:
            self._redis: Any = client or aioredis.Redis.from_url(
                url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
            )
        except ValueError:  # urllib's message quotes the URL's parts, credentials included
            raise ConfigurationError(f"cache URL {masked_url(url)}: not a valid Redis URL") from None
        self._health = Health(self.location)
        self._hits = 0
        self._misses = 0
        self._last_flush = time.monotonic()

    @property
    def location(self) -> str:
        return masked_url(self.url)

    def _error(self, doing: str, exc: BaseException) -> CacheError:
        return CacheError(redact(f"cannot {doing} Redis at {self.location}: {type(exc).__name__}: {exc}"))

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
        """The verified entry, else ``None``: absent, not verifying (then deleted), or Redis
        failing (one warning per outage, never an exception)."""
        if self._health.skipping():
            return None
        name = self.prefix + key
        pending = self._hits + self._misses
        try:
            if pending and (pending >= FLUSH_EVERY or time.monotonic() - self._last_flush >= FLUSH_INTERVAL):
                pipe = self._redis.pipeline(transaction=False)
                pipe.get(name)
                counts = self._take_counts(pipe)
                try:
                    stored = (await pipe.execute())[0]
                except BaseException:
                    self._give_back(counts)
                    raise
            else:
                stored = await self._redis.get(name)
        except self._faults as exc:
            self._health.fail("reading from", exc)
            return None
        self._health.ok()
        if stored is None:
            self._misses += 1
            return None
        value = _unseal(key, stored)
        if value is None:
            self._misses += 1
            await self._delete(name)
            return None
        self._hits += 1
        return value

    async def _delete(self, name: str) -> None:
        try:
            await self._redis.delete(name)
        except self._faults as exc:
            self._health.fail("deleting from", exc)

    async def discard(self, key: str) -> None:
        if not self._health.skipping():
            await self._delete(self.prefix + key)

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """Store ``value`` with its checksum; dropped (one warning per outage) if Redis fails."""
        if (ttl is not None and ttl <= 0) or self._health.skipping():
            return
        pipe = self._redis.pipeline(transaction=False)
        px = None if ttl is None else max(1, round(ttl * 1000))
        pipe.set(self.prefix + key, checksum(key, value) + value, px=px)
        counts = self._take_counts(pipe)
        try:
            await pipe.execute()
        except self._faults as exc:
            self._give_back(counts)
            self._health.fail("writing to", exc)
            return
        self._health.ok()

    async def flush(self) -> None:
        """Send the hit/miss counts gathered so far (``CacheError`` if Redis fails)."""
        if not (self._hits or self._misses):
            return
        pipe = self._redis.pipeline(transaction=False)
        counts = self._take_counts(pipe)
        try:
            await pipe.execute()
        except self._faults as exc:
            self._give_back(counts)
            raise self._error("write to", exc) from None

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
        except self._faults as exc:
            raise self._error("read from", exc) from None
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
        try:
            value = int((await self._redis.info("memory")).get("maxmemory", 0))
        except (ValueError, TypeError):
            return None
        except self._faults:
            return None
        return value or None

    async def clear(self) -> int:
        removed = 0
        self._hits = self._misses = 0
        try:
            async for batch in self._entry_keys():
                removed += int(await self._redis.unlink(*batch))
            await self._redis.delete(self._stats_key)
        except self._faults as exc:
            raise self._error("clear", exc) from None
        return removed

    async def aclose(self) -> None:
        """Send pending counts (best effort, skipped during an outage) and close the connections
        we opened."""
        try:
            if not self._health.skipping():
                with contextlib.suppress(CacheError):
                    await self.flush()
        finally:
            if self._owns_client:
                with contextlib.suppress(*self._faults):
                    await self._redis.aclose()


def _unseal(key: str, stored: bytes) -> bytes | None:
    """The entry bytes if ``stored`` is a checksum and an entry written under ``key``."""
    if type(stored) is not bytes or len(stored) < CHECKSUM_BYTES:
        return None
    value = stored[CHECKSUM_BYTES:]
    return value if stored[:CHECKSUM_BYTES] == checksum(key, value) else None
