"""``botticelli cache stats`` and ``botticelli cache clear``: look at or empty the response cache.

The store is ``--url``, else ``$BOTTICELLI_CACHE_URL``, else the default SQLite file (see
``botticelli.cache``). ``stats`` never creates a cache file that is not there yet. A store that
cannot be used (unreachable Redis, a damaged or read-only file) is one error line, exit 1; URLs
are printed with their credentials masked.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from . import output

if TYPE_CHECKING:
    from ..cache import CacheBackend, CacheStats

_URL_HELP = "A redis:// URL or a SQLite file path. [env: BOTTICELLI_CACHE_URL; default: the user cache dir]"
_CONTEXT = {"help_option_names": ["-h", "--help"]}


@click.group(context_settings=_CONTEXT, short_help="Show or empty the response cache.")
def cache() -> None:
    """Show or empty the response cache used by CachedDriver.

    \b
    Examples:
      botticelli cache stats
      botticelli cache stats --json --url redis://localhost:6379/0
      botticelli cache clear
    """


def _target(url: str | None) -> str:
    from ..cache import cache_url

    return url or cache_url()


def _missing_file(target: str) -> bool:
    """A SQLite path with no file yet: report an empty cache instead of creating one."""
    from pathlib import Path

    if target.startswith(("redis://", "rediss://", "unix://")):
        return False
    path = target.removeprefix("sqlite://")
    return bool(path) and "://" not in path and not Path(path).expanduser().exists()


def _open(target: str) -> CacheBackend:
    """The store, without the warning an unusable SQLite file logs: ``stats`` and ``clear``
    raise a ``CacheError`` saying the same, which the CLI prints as its one error line."""
    import logging

    from ..cache import open_cache

    log = logging.getLogger("botticelli.cache")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        return open_cache(target)
    finally:
        log.setLevel(level)


async def _stats(target: str) -> CacheStats:
    store = _open(target)
    try:
        return await store.stats()
    finally:
        await store.aclose()


async def _clear(target: str) -> int:
    store = _open(target)
    try:
        return await store.clear()
    finally:
        await store.aclose()


@cache.command(context_settings=_CONTEXT)
@click.option("--url", metavar="URL", help=_URL_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the counters as one JSON object.")
def stats(url: str | None, as_json: bool) -> int:
    """Print entries, bytes, hits, misses and evictions of the cache.

    Hits and misses count every process that used this cache since it was last cleared.
    """
    import asyncio

    from ..cache import CacheStats

    target = _target(url)
    if _missing_file(target):
        result = CacheStats(location=target, backend="sqlite")
    else:
        result = asyncio.run(_stats(target))
    if as_json:
        import orjson

        _write(orjson.dumps(result.to_dict()).decode() + "\n")
    else:
        _write(_table(result))
    return 0


@cache.command(context_settings=_CONTEXT)
@click.option("--url", metavar="URL", help=_URL_HELP)
def clear(url: str | None) -> int:
    """Delete every cached answer and reset the counters."""
    import asyncio

    target = _target(url)
    from ..cache.redis_store import masked_url

    removed = 0 if _missing_file(target) else asyncio.run(_clear(target))

    _write(f"removed {removed} cached answer{'' if removed == 1 else 's'} from {masked_url(target)}\n")
    return 0


def _size(n: int) -> str:
    """Exact bytes (for scripts), with a rounded binary unit beside them past 1 KiB."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024:
            return f"{n} ({value:.1f} {unit})"
    return f"{n} ({value / 1024:.1f} TiB)"


def _table(s: CacheStats) -> str:
    rows = [
        ("location", s.location),
        ("backend", s.backend),
        ("entries", str(s.entries) + (f" (max {s.max_entries})" if s.max_entries else "")),
        ("bytes", _size(s.bytes) + (f", max {_size(s.max_bytes)}" if s.max_bytes else "")),
        ("hits", str(s.hits)),
        ("misses", str(s.misses)),
        ("hit rate", f"{s.hit_rate:.1%}"),
    ]
    if s.backend == "sqlite":
        rows += [("evictions", str(s.evictions)), ("expired", str(s.expired))]
        if s.disk_bytes is not None:
            rows.append(("on disk", _size(s.disk_bytes)))
    width = max(len(name) for name, _ in rows)
    return "".join(f"{name.ljust(width)}  {value}\n" for name, value in rows)


def _write(text: str) -> None:
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        raise output.StdoutClosed from None
