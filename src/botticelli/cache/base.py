"""What every cache backend offers, its statistics, its one error type, and how a failing store
degrades (``Health``): a lookup becomes a miss and a write is dropped, with one warning."""

from __future__ import annotations

import abc
import logging
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

from .. import _defaults
from ..errors import BotticelliError, redact

__all__ = ["DEFAULT_MAX_BYTES", "CacheBackend", "CacheError", "CacheStats", "Health"]

log = logging.getLogger("botticelli.cache")

#: SQLite's default size bound: stored answers beyond it evict the least recently used.
DEFAULT_MAX_BYTES = _defaults.CACHE_MAX_BYTES


class CacheError(BotticelliError):
    """The cache store failed (file unreadable, Redis unreachable). ``get`` and ``set`` of the
    built-in stores never raise it for a failing store (they miss and drop instead); ``stats``
    and ``clear`` do, since their callers asked about the store itself."""


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


class Health:
    """A store's failures, so an outage costs one warning instead of one per request.

    The first failure logs a warning (message only, never a traceback, redacted); later ones
    log at debug level. A success ends the outage once ``quiet`` seconds passed without a
    failure, so a store flapping on and off still warns once. ``skipping()`` says whether a
    remote store should be skipped for now: for a backoff after a failure (doubling from
    ``initial`` to ``longest`` while failures go on; the failures of calls that were in flight
    together count once), so a black-holed Redis costs one timeout per backoff rather than one
    per request.
    """

    __slots__ = (
        "_lock",
        "_retry_at",
        "_streak",
        "errors",
        "failing",
        "initial",
        "last_failure",
        "longest",
        "quiet",
        "where",
    )

    def __init__(
        self, where: str, *, initial: float = 0.25, longest: float = 8.0, quiet: float = 30.0
    ) -> None:
        self.where = where
        self.initial = initial
        self.longest = longest
        self.quiet = quiet
        self.errors = 0  # failures absorbed: lookups answered as misses, writes dropped
        self.failing = False
        self.last_failure = 0.0
        self._streak = 0
        self._retry_at = 0.0
        self._lock = threading.Lock()

    def fail(self, doing: str, exc: BaseException) -> None:
        """Count a failure; warn if it starts an outage."""
        now = time.monotonic()
        with self._lock:
            self.errors += 1
            self.last_failure = now
            if now >= self._retry_at:  # not one more of a burst already backing off
                self._streak += 1
                self._retry_at = now + min(self.longest, self.initial * 2 ** min(self._streak - 1, 16))
            first, self.failing = not self.failing, True
        detail = redact(f"{type(exc).__name__}: {exc}")
        if first:
            log.warning(
                "response cache %s failed %s (%s); requests go to the provider until it works again",
                self.where,
                doing,
                detail,
            )
        else:
            log.debug("response cache %s failed %s again (%s)", self.where, doing, detail)

    def ok(self) -> None:
        """A call succeeded: the next failure may be tried at once; the outage ends if quiet."""
        if not self._streak and not self.failing:
            return
        with self._lock:
            self._streak = 0
            self._retry_at = 0.0
            if self.failing and time.monotonic() - self.last_failure >= self.quiet:
                self.failing = False
                log.info("response cache %s works again", self.where)

    def skipping(self) -> bool:
        """Whether calls should skip the store for now (within the backoff after a failure)."""
        return self._streak > 0 and time.monotonic() < self._retry_at


class CacheBackend(abc.ABC):
    """A key → bytes store with TTL. Keys are hex digests from ``keys``; values ``codec`` bytes.

    ``get`` counts a hit or a miss in the shared statistics; ``ttl`` is seconds, ``None`` for no
    expiry (the size bound still applies). A store verifies what it reads (see ``codec.checksum``)
    and returns only values stored under that very key.
    """

    backend: str = ""
    _health: Health | None = None

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

    async def discard(self, key: str) -> None:
        """Remove an entry that turned out unusable (``CachedDriver`` could not decode it)."""
        return None

    @property
    def errors(self) -> int:
        """Store failures this instance absorbed (lookups answered as misses, writes dropped)."""
        return self._health.errors if self._health is not None else 0

    async def aclose(self) -> None:
        return None

    async def __aenter__(self) -> CacheBackend:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.location!r})"
