"""Response caching for any driver: SQLite on disk by default, Redis to share across hosts.

    from botticelli import GroqDriver
    from botticelli.cache import CachedDriver, open_cache

    driver = CachedDriver(GroqDriver(), ttl=86400)                   # default SQLite file
    driver = CachedDriver(GroqDriver(), open_cache("redis://cache:6379/0"))

Which store ``open_cache()`` / ``CachedDriver(driver)`` use: the argument, else
``$BOTTICELLI_CACHE_URL`` (a ``redis://`` URL or a file path), else the SQLite file
``$BOTTICELLI_CACHE_DIR/responses.sqlite3``, else ``$XDG_CACHE_HOME/botticelli/...``, else
``~/.cache/botticelli/responses.sqlite3``.

Every stored entry carries a checksum over its key, expiry and bytes; what does not verify on
read is a miss and is deleted. A store that fails (a damaged or read-only file, Redis down or
hanging) never fails a request: lookups miss and writes are dropped, with one warning.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ..config import env_value
from ..errors import ConfigurationError
from .base import DEFAULT_MAX_BYTES, CacheBackend, CacheError, CacheStats
from .codec import CachedResponse
from .driver import CachedDriver, CachedStream, DriverCacheStats
from .keys import KEY_VERSION, is_deterministic
from .redis_store import RedisCache  # imports redis-py only when a RedisCache is made
from .sqlite import SQLiteCache, default_path

if TYPE_CHECKING:
    from ..drivers.base import Driver

__all__ = [
    "DEFAULT_MAX_BYTES",
    "KEY_VERSION",
    "CacheBackend",
    "CacheError",
    "CacheStats",
    "CachedDriver",
    "CachedResponse",
    "CachedStream",
    "DriverCacheStats",
    "RedisCache",
    "SQLiteCache",
    "cache_url",
    "cached",
    "default_path",
    "is_deterministic",
    "open_cache",
]

_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def cache_url() -> str:
    """The configured store: ``$BOTTICELLI_CACHE_URL``, else the default SQLite path."""
    return env_value("BOTTICELLI_CACHE_URL") or str(default_path())


def open_cache(url: str | os.PathLike[str] | None = None, **options: Any) -> CacheBackend:
    """A store by URL: ``redis://host:port/db`` (also ``rediss://``, ``unix://``), a file path or
    ``sqlite:///path``; ``None`` reads ``$BOTTICELLI_CACHE_URL``, else the default SQLite file.
    ``options`` go to the store's constructor (``max_bytes=``, ``prefix=`` ...)."""
    target = os.fspath(url) if url is not None else cache_url()
    if target.startswith(_REDIS_SCHEMES):
        return RedisCache(target, **options)
    if target.startswith("sqlite://"):
        target = target[len("sqlite://") :]
    elif "://" in target:
        raise ConfigurationError(
            f"cache URL: expected redis://..., rediss://..., unix://..., sqlite:///path or a file path, "
            f"got {target.split('://')[0]}://..."
        )
    if not target:
        raise ConfigurationError("cache URL: the SQLite path is empty")
    return SQLiteCache(target, **options)


def cached(
    driver: Driver,
    cache: CacheBackend | str | os.PathLike[str] | None = None,
    *,
    ttl: float | None = None,
    cache_all: bool = False,
) -> CachedDriver:
    """``cached(GroqDriver(), "redis://...")``: ``CachedDriver`` with the store given by URL."""
    if cache is not None and not isinstance(cache, CacheBackend):
        store = open_cache(cache)
        wrapped = CachedDriver(driver, store, ttl=ttl, cache_all=cache_all)
        wrapped._owns_cache = True
        return wrapped
    return CachedDriver(driver, cache, ttl=ttl, cache_all=cache_all)
