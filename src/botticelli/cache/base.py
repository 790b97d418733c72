"""What every cache backend offers, its statistics, and its one error type."""

from __future__ import annotations

import abc
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import BotticelliError

__all__ = ["DEFAULT_MAX_BYTES", "CacheBackend", "CacheError", "CacheStats"]

#: SQLite's default size bound: stored answers beyond it evict the least recently used.
DEFAULT_MAX_BYTES = 512 * 1024 * 1024


class CacheError(BotticelliError):
    """The cache store failed (file unreadable, Redis unreachable). ``CachedDriver`` never lets it
    fail a request: the request goes to the provider and the error is logged."""


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Counters shared by every process using the store. ``bytes`` is the size of the stored
    answers; ``disk_bytes`` what the SQLite file (with its WAL) takes, ``None`` for Redis."""

    location: str
    backend: str
    hits: int = 0
    misses: int = 0
    entries: int = 0
    bytes: int = 0
    evictions: int = 0
    expired: int = 0
    max_bytes: int | None = None
    max_entries: int | None = None
    disk_bytes: int | None = None

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["hit_rate"] = round(self.hit_rate, 4)
        return data


class CacheBackend(abc.ABC):
    """A key → bytes store with TTL. Keys are hex digests from ``keys``; values ``codec`` bytes.

    ``get`` counts a hit or a miss in the shared statistics; ``ttl`` is seconds, ``None`` for no
    expiry (the size bound still applies).
    """

    backend: str = ""

    @property
    @abc.abstractmethod
    def location(self) -> str:
        """Where the store is, safe to print (no password)."""

    @abc.abstractmethod
    async def get(self, key: str) -> bytes | None: ...

    @abc.abstractmethod
    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None: ...

    @abc.abstractmethod
    async def stats(self) -> CacheStats: ...

    @abc.abstractmethod
    async def clear(self) -> int:
        """Remove every entry and reset the counters; return how many entries there were."""

    async def aclose(self) -> None:
        return None

    async def __aenter__(self) -> CacheBackend:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.location!r})"
