"""The default store: one SQLite file in WAL mode, shared safely by several processes.

Reads run synchronously on the caller's thread (the event loop). A lookup is one indexed point
read: 4 µs measured (``bench/cache_bench.py``), against 55-105 µs for the same lookup handed to a
thread, so a thread would cost far more than it spares the loop. WAL readers never wait for
writers, so a lookup cannot block on another process.

Writes (stores, evictions, counter flushes) run on one worker thread with their own connection
inside ``BEGIN IMMEDIATE`` transactions, so waiting for another process's write lock
(``busy_timeout``) never stalls the event loop. A store follows a provider round trip of
milliseconds, so the hop costs nothing there.

Hits stay read-only: hit/miss counts and last-access times collect in memory and reach the file
in one transaction with the next store, every second, every 256 lookups, on ``stats()`` and on
close. Eviction is least-recently-used by that access time, so across processes it is LRU to
within the flush interval. Expired entries read as misses and are deleted with the next flush;
the rest are purged while evicting and at most once a minute on a store.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from ..config import env_value
from .base import DEFAULT_MAX_BYTES, CacheBackend, CacheError, CacheStats

__all__ = ["SCHEMA_VERSION", "SQLiteCache", "default_path"]

T = TypeVar("T")

SCHEMA_VERSION = 1
FILE_NAME = "responses.sqlite3"
FLUSH_INTERVAL = 1.0  # seconds between counter / access-time flushes while only reading
FLUSH_EVERY = 256  # ... or after this many lookups
PURGE_INTERVAL = 60.0  # seconds between sweeps for expired entries on the store path
LOW_WATER = 0.9  # evict down to this fraction of the bound, so eviction is not on every store

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key      TEXT PRIMARY KEY NOT NULL,
    value    BLOB NOT NULL,
    size     INTEGER NOT NULL,
    expires  REAL,
    accessed REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_accessed ON entries (accessed);
CREATE INDEX IF NOT EXISTS entries_expires ON entries (expires) WHERE expires IS NOT NULL;
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL)
    WITHOUT ROWID;
INSERT OR IGNORE INTO counters (name, value) VALUES
    ('hits', 0), ('misses', 0), ('bytes', 0), ('entries', 0), ('evictions', 0), ('expired', 0);
CREATE TRIGGER IF NOT EXISTS entries_insert AFTER INSERT ON entries BEGIN
    UPDATE counters SET value = value + NEW.size WHERE name = 'bytes';
    UPDATE counters SET value = value + 1 WHERE name = 'entries';
END;
CREATE TRIGGER IF NOT EXISTS entries_delete AFTER DELETE ON entries BEGIN
    UPDATE counters SET value = value - OLD.size WHERE name = 'bytes';
    UPDATE counters SET value = value - 1 WHERE name = 'entries';
END;
CREATE TRIGGER IF NOT EXISTS entries_resize AFTER UPDATE OF size ON entries BEGIN
    UPDATE counters SET value = value + NEW.size - OLD.size WHERE name = 'bytes';
END;
"""
_DROP = ("DROP TABLE IF EXISTS entries", "DROP TABLE IF EXISTS counters")
_GET = "SELECT value, expires FROM entries WHERE key = ?"
_PUT = (
    "INSERT INTO entries (key, value, size, expires, accessed) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value, size = excluded.size, "
    "expires = excluded.expires, accessed = excluded.accessed"
)
_TOUCH = "UPDATE entries SET accessed = ? WHERE key = ? AND accessed < ?"
_DELETE_IF_EXPIRED = "DELETE FROM entries WHERE key = ? AND expires IS NOT NULL AND expires <= ?"
_PURGE = "DELETE FROM entries WHERE expires IS NOT NULL AND expires <= ?"
_ADD = "UPDATE counters SET value = value + ? WHERE name = ?"
_COUNTERS = "SELECT name, value FROM counters"


def default_path() -> Path:
    """``$BOTTICELLI_CACHE_DIR/responses.sqlite3``, else ``$XDG_CACHE_HOME/botticelli/...``,
    else ``~/.cache/botticelli/responses.sqlite3``."""
    directory = env_value("BOTTICELLI_CACHE_DIR")
    if directory:
        return Path(directory).expanduser() / FILE_NAME
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "botticelli" / FILE_NAME


class _Store:
    """Connections, the writer thread and the counters not yet written. Kept apart from
    ``SQLiteCache`` so a finalizer can flush and close it without keeping the cache alive."""

    def __init__(self, path: Path, max_bytes: int | None, max_entries: int | None, timeout: float) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.timeout = timeout
        self.reader: sqlite3.Connection | None = None
        self.writer: sqlite3.Connection | None = None
        self.executor: ThreadPoolExecutor | None = None
        self.writer_ident: int | None = None  # the writer thread, which must never join itself
        self.closed = False
        self._reset_pending()
        self.next_purge = 0.0

    def _reset_pending(self) -> None:
        self.lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.touched: dict[str, float] = {}
        self.stale: dict[str, float] = {}  # keys read after their expiry: delete on flush
        self.last_flush = time.time()
        self.flush_queued = False

    def after_fork(self) -> None:
        """A forked child must not use its parent's connections or thread: forget them (without
        closing: closing could disturb the parent's locks) and reopen on first use."""
        for conn in (self.reader, self.writer):
            if conn is not None:
                _ORPHANS.append(conn)
        self.reader = self.writer = None
        self.executor = None
        self._reset_pending()

    # ---- connections ----------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self.closed:
            raise CacheError(f"the cache at {self.path} is closed")
        conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise CacheError(
                    f"{self.path}: SQLite refused WAL mode (got {mode}); is it on a network drive?"
                )
            conn.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            conn.close()
            raise
        return conn

    def open(self) -> None:
        """Create the file (private to the user) and the schema, then the reading connection."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self.path.exists():
            with contextlib.suppress(FileExistsError):
                os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        writer = self.write_conn()
        writer.execute("BEGIN IMMEDIATE")
        try:
            version = writer.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):  # an older or newer layout: it is only a cache
                for statement in _DROP:
                    writer.execute(statement)
            for statement in _statements(_SCHEMA):
                writer.execute(statement)
            writer.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            writer.execute("COMMIT")
        except BaseException:
            _rollback(writer)
            raise
        self.read_conn()

    def read_conn(self) -> sqlite3.Connection:
        conn = self.reader
        if conn is None:
            conn = self.reader = self._connect()
            conn.execute("PRAGMA query_only = ON")
        return conn

    def write_conn(self) -> sqlite3.Connection:
        conn = self.writer
        if conn is None:
            conn = self.writer = self._connect()
        return conn

    def writer_thread(self) -> ThreadPoolExecutor:
        if self.closed:
            raise CacheError(f"the cache at {self.path} is closed")
        if self.executor is None:
            self.executor = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="botticelli-cache", initializer=self._mark_writer
            )
        return self.executor

    def run(self, fn: Callable[[], T]) -> asyncio.Future[T]:
        """Run ``fn`` on the writer thread."""
        return asyncio.get_running_loop().run_in_executor(self.writer_thread(), fn)

    # ---- the read path (caller's thread) ------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        row = self.read_conn().execute(_GET, (key,)).fetchone()
        now = time.time()
        with self.lock:
            if row is None or (row[1] is not None and row[1] <= now):
                self.misses += 1
                if row is not None:
                    self.stale[key] = now
                row = None
            else:
                self.hits += 1
                self.touched[key] = now
            due = not self.flush_queued and (
                self.hits + self.misses >= FLUSH_EVERY or now - self.last_flush >= FLUSH_INTERVAL
            )
            if due:
                self.flush_queued = True
        if due:
            self.writer_thread().submit(self.flush_quietly)
        return None if row is None else row[0]

    # ---- the write path (writer thread) -----------------------------------------------------

    def _take_pending(self) -> tuple[int, int, dict[str, float], dict[str, float]]:
        with self.lock:
            taken = (self.hits, self.misses, self.touched, self.stale)
            self.hits = self.misses = 0
            self.touched, self.stale = {}, {}
            self.last_flush = time.time()
            self.flush_queued = False
        return taken

    def _give_back(self, pending: tuple[int, int, dict[str, float], dict[str, float]]) -> None:
        hits, misses, touched, stale = pending
        with self.lock:
            self.hits += hits
            self.misses += misses
            for key, at in touched.items():
                self.touched.setdefault(key, at)
            self.stale.update(stale)

    def _write(self, body: Callable[[sqlite3.Connection], T]) -> T:
        """``body`` and the pending counters in one write transaction; pending counts survive a
        failed transaction."""
        conn = self.write_conn()
        pending = self._take_pending()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._apply(conn, pending)
                result = body(conn)
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
        except BaseException:
            self._give_back(pending)
            raise
        return result

    @staticmethod
    def _apply(
        conn: sqlite3.Connection, pending: tuple[int, int, dict[str, float], dict[str, float]]
    ) -> None:
        hits, misses, touched, stale = pending
        if touched:
            conn.executemany(_TOUCH, [(at, key, at) for key, at in touched.items()])
        if stale:
            expired = conn.executemany(_DELETE_IF_EXPIRED, list(stale.items())).rowcount
            if expired > 0:
                conn.execute(_ADD, (expired, "expired"))
        if hits:
            conn.execute(_ADD, (hits, "hits"))
        if misses:
            conn.execute(_ADD, (misses, "misses"))

    def flush(self) -> None:
        self._write(lambda conn: None)

    def flush_quietly(self) -> None:
        """Background flush: a failure keeps the counts for the next try instead of raising into
        an executor future nobody reads."""
        with contextlib.suppress(sqlite3.Error, CacheError):
            self.flush()

    def put(self, key: str, value: bytes, ttl: float | None) -> None:
        size = len(value)
        if self.max_bytes is not None and size > self.max_bytes:
            return  # would evict everything else and still not fit
        now = time.time()
        expires = None if ttl is None else now + ttl

        def body(conn: sqlite3.Connection) -> None:
            conn.execute(_PUT, (key, value, size, expires, now))
            if now >= self.next_purge:
                self.next_purge = now + PURGE_INTERVAL
                _purge_expired(conn, now)
            self._evict(conn, key, now)

        self._write(body)

    def _evict(self, conn: sqlite3.Connection, keep: str, now: float) -> None:
        if not self._over(*_size(conn)):
            return
        _purge_expired(conn, now)
        total, count = _size(conn)
        if not self._over(total, count):
            return
        need_bytes = total - int(self.max_bytes * LOW_WATER) if self.max_bytes is not None else 0
        need_entries = count - int(self.max_entries * LOW_WATER) if self.max_entries is not None else 0
        victims: list[tuple[str]] = []
        cursor = conn.execute("SELECT key, size FROM entries WHERE key != ? ORDER BY accessed", (keep,))
        while need_bytes > 0 or need_entries > 0:
            row = cursor.fetchone()
            if row is None:
                break
            victims.append((row[0],))
            need_bytes -= row[1]
            need_entries -= 1
        cursor.close()
        if victims:
            conn.executemany("DELETE FROM entries WHERE key = ?", victims)
            conn.execute(_ADD, (len(victims), "evictions"))

    def _over(self, total: int, count: int) -> bool:
        return (self.max_bytes is not None and total > self.max_bytes) or (
            self.max_entries is not None and count > self.max_entries
        )

    def counters(self) -> dict[str, int]:
        self.flush()
        rows = self.write_conn().execute(_COUNTERS).fetchall()
        return {str(name): int(value) for name, value in rows}

    def clear(self) -> int:
        def body(conn: sqlite3.Connection) -> int:
            count = int(conn.execute("SELECT count(*) FROM entries").fetchone()[0])
            conn.execute("DELETE FROM entries")
            conn.execute("UPDATE counters SET value = 0")
            return count

        with self.lock:  # counts gathered before the clear belong to the old contents
            self.hits = self.misses = 0
            self.touched, self.stale = {}, {}
        count = self._write(body)
        with contextlib.suppress(sqlite3.Error):  # give the space back; skipped while others write
            self.write_conn().execute("VACUUM")
        return count

    def _mark_writer(self) -> None:
        self.writer_ident = threading.get_ident()

    def close(self) -> None:
        """Flush and close (also run by the finalizer at exit). Idempotent."""
        if self.closed:
            return
        if self.executor is not None:  # finish queued writes before the last flush ...
            # ... unless a garbage collection ran the finalizer on the writer thread itself
            self.executor.shutdown(wait=threading.get_ident() != self.writer_ident)
            self.executor = None
        if self.writer is not None:
            with contextlib.suppress(sqlite3.Error, CacheError):
                self.flush()
        self.closed = True
        for conn in (self.reader, self.writer):
            if conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
        self.reader = self.writer = None


def _statements(script: str) -> list[str]:
    """Split a script into statements (``executescript`` would commit our transaction first)."""
    statements: list[str] = []
    current = ""
    for line in script.strip().splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    return statements


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def _purge_expired(conn: sqlite3.Connection, now: float) -> None:
    purged = conn.execute(_PURGE, (now,)).rowcount  # rowcount leaves out the triggers' updates
    if purged > 0:
        conn.execute(_ADD, (purged, "expired"))


def _size(conn: sqlite3.Connection) -> tuple[int, int]:
    rows = dict(
        conn.execute("SELECT name, value FROM counters WHERE name IN ('bytes', 'entries')").fetchall()
    )
    return int(rows.get("bytes", 0)), int(rows.get("entries", 0))


_ORPHANS: list[sqlite3.Connection] = []  # a forked child's inherited connections, never touched
_LIVE: weakref.WeakSet[_Store] = weakref.WeakSet()


def _after_fork() -> None:
    for store in list(_LIVE):
        store.after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


class SQLiteCache(CacheBackend):
    """``SQLiteCache()`` at the default path, or ``SQLiteCache("/tmp/answers.sqlite3",
    max_bytes=64 << 20)``. Bounds: ``max_bytes`` of stored answers (default 512 MiB) and
    optionally ``max_entries``; ``None`` turns a bound off. ``timeout``: seconds a write waits
    for another process's transaction."""

    backend = "sqlite"

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        max_bytes: int | None = DEFAULT_MAX_BYTES,
        max_entries: int | None = None,
        timeout: float = 10.0,
    ) -> None:
        for name, bound in (("max_bytes", max_bytes), ("max_entries", max_entries)):
            if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int) or bound < 1):
                raise ValueError(f"{name}: expected a positive integer or None, got {bound!r}")
        self.path = Path(path).expanduser() if path is not None else default_path()
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self._store = _Store(self.path, max_bytes, max_entries, timeout)
        try:
            self._store.open()
        except sqlite3.Error as exc:
            self._store.close()
            raise CacheError(f"cannot open the cache at {self.path}: {exc}") from None
        except OSError as exc:
            raise CacheError(f"cannot create the cache at {self.path}: {exc.strerror or exc}") from None
        _LIVE.add(self._store)
        self._finalizer = weakref.finalize(self, self._store.close)

    @property
    def location(self) -> str:
        return str(self.path)

    async def get(self, key: str) -> bytes | None:
        try:
            return self._store.get(key)
        except sqlite3.Error as exc:
            raise CacheError(f"reading the cache at {self.path}: {exc}") from None

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        if ttl is not None and ttl <= 0:
            return
        await self._call(lambda: self._store.put(key, value, ttl))

    async def stats(self) -> CacheStats:
        counters = await self._call(self._store.counters)
        disk = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                disk += os.stat(f"{self.path}{suffix}").st_size
        return CacheStats(
            location=self.location,
            backend=self.backend,
            hits=counters.get("hits", 0),
            misses=counters.get("misses", 0),
            entries=counters.get("entries", 0),
            bytes=counters.get("bytes", 0),
            evictions=counters.get("evictions", 0),
            expired=counters.get("expired", 0),
            max_bytes=self.max_bytes,
            max_entries=self.max_entries,
            disk_bytes=disk,
        )

    async def clear(self) -> int:
        return await self._call(self._store.clear)

    async def flush(self) -> None:
        """Write the hit/miss counts and access times gathered so far (otherwise written within a
        second, with the next store, or on close)."""
        await self._call(self._store.flush)

    async def _call(self, fn: Callable[[], T]) -> T:
        try:
            return await self._store.run(fn)
        except sqlite3.Error as exc:
            raise CacheError(f"writing the cache at {self.path}: {exc}") from None

    async def aclose(self) -> None:
        """Flush the counters and close the file (idempotent)."""
        store = self._store
        if store.closed:
            return
        executor = store.executor
        if executor is not None:  # let queued writes finish off the loop
            await asyncio.get_running_loop().run_in_executor(executor, lambda: None)
        self._finalizer()

    def close(self) -> None:
        """``aclose`` for code without an event loop."""
        self._finalizer()
