"""The default store: one SQLite file in WAL mode, shared safely by several processes.

Reads run synchronously on the caller's thread (the event loop). A lookup is one indexed point
read: 4 µs measured (``bench/cache_bench.py``), against 55-105 µs for the same lookup handed to a
thread, so a thread would cost far more than it spares the loop. WAL readers never wait for
writers, so a lookup cannot block on another process.

Every row carries a checksum over its key, expiry and value (``codec.checksum``), checked on
every read: a row that does not verify (bytes damaged on disk, a row that answers for another
key, a column of the wrong type) is a miss, and is deleted with the next flush. A file that
cannot be opened or written at all (damaged, read-only, immutable, not a database) makes the
cache a no-op with one warning; errors while running make a lookup a miss and drop a write, with
one warning per outage (``base.Health``). Neither ever reaches the caller.

Writes (stores, evictions, counter flushes) run on one worker thread with their own connection
inside ``BEGIN IMMEDIATE`` transactions, so waiting for another process's write lock
(``busy_timeout``) never stalls the event loop. A store follows a provider round trip of
milliseconds, so the hop costs nothing there. Closing hands its last flush to that thread too.

Hits stay read-only: hit/miss counts and last-access times collect in memory and reach the file
in one transaction with the next store, every second, every 256 lookups, on ``stats()`` and on
close. Eviction is least-recently-used by that access time, so across processes it is LRU to
within the flush interval. Expired entries read as misses and are deleted with the next flush;
the rest are purged while evicting and at most once a minute on a store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from ..config import env_value
from ..errors import redact
from .base import DEFAULT_MAX_BYTES, CacheBackend, CacheError, CacheStats, Health
from .codec import checksum

__all__ = ["SCHEMA_VERSION", "SQLiteCache", "default_path"]

T = TypeVar("T")
log = logging.getLogger("botticelli.cache")

SCHEMA_VERSION = 2  # 2: a checksum column; files of another version are reset (only a cache)
FILE_NAME = "responses.sqlite3"
FLUSH_INTERVAL = 1.0  # seconds between counter / access-time flushes while only reading
FLUSH_EVERY = 256  # ... or after this many lookups
PURGE_INTERVAL = 60.0  # seconds between sweeps for expired entries on the store path
LOW_WATER = 0.9  # evict down to this fraction of the bound, so eviction is not on every store
CLOSE_TIMEOUT = 0.25  # seconds close()'s last flush waits for another process's write lock

# What a damaged, locked or unwritable file makes sqlite3 raise, and what reading the rows of a
# damaged file can make Python raise (UnicodeDecodeError of a garbled schema or message, ...).
_FAULTS: tuple[type[Exception], ...] = (sqlite3.Error, ValueError, TypeError, OverflowError)
_CLOSING_FAULTS: tuple[type[Exception], ...] = (*_FAULTS, CacheError)
_OPEN_FAULTS: tuple[type[Exception], ...] = (*_FAULTS, OSError, CacheError)

_COLUMNS = ("key", "value", "checksum", "size", "expires", "accessed")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key      TEXT PRIMARY KEY NOT NULL,
    value    BLOB NOT NULL,
    checksum BLOB NOT NULL,
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
_GET = "SELECT value, expires, checksum FROM entries WHERE key = ?"
_PUT = (
    "INSERT INTO entries (key, value, checksum, size, expires, accessed) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value, checksum = excluded.checksum, "
    "size = excluded.size, expires = excluded.expires, accessed = excluded.accessed"
)
_TOUCH = "UPDATE entries SET accessed = ? WHERE key = ? AND accessed < ?"
_DELETE = "DELETE FROM entries WHERE key = ?"
_DELETE_IF_SAME = "DELETE FROM entries WHERE key = ? AND checksum = ?"
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


def _verifies(key: str, row: tuple[Any, ...]) -> bool:
    """Whether a ``_GET`` row is what was stored under ``key``: right types, right checksum."""
    value, expires, check = row
    return (
        type(value) is bytes
        and type(check) is bytes
        and (expires is None or type(expires) is float)
        and check == checksum(key, value, expires)
    )


def _int(value: object) -> int:
    """A counter or size read from the file; a damaged one counts as 0 rather than raising."""
    return value if type(value) is int else 0


class _Pending:
    """What reads gathered for the next write transaction."""

    __slots__ = ("bad", "discards", "hits", "misses", "stale", "touched")

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0
        self.touched: dict[str, float] = {}
        self.stale: dict[str, float] = {}  # keys read after their expiry: delete on flush
        self.bad: set[str] = set()  # rows that did not verify: delete if they still don't
        self.discards: dict[str, bytes] = {}  # key -> checksum of an entry the driver rejected

    def __bool__(self) -> bool:
        return bool(self.hits or self.misses or self.touched or self.stale or self.bad or self.discards)


class _Store:
    """Connections, the writer thread and the counters not yet written. Kept apart from
    ``SQLiteCache`` so a finalizer can flush and close it without keeping the cache alive."""

    def __init__(self, path: Path, max_bytes: int | None, max_entries: int | None, timeout: float) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.timeout = timeout
        self.health = Health(str(path))
        self.reader: sqlite3.Connection | None = None
        self.writer: sqlite3.Connection | None = None
        self.executor: ThreadPoolExecutor | None = None
        self.writer_ident: int | None = None  # the writer thread, which must never join itself
        self.closed = False
        self._reset_pending()
        self.next_purge = 0.0

    def _reset_pending(self) -> None:
        self.lock = threading.Lock()
        self.pending = _Pending()
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

    def _connect(self, *, closing: bool = False) -> sqlite3.Connection:
        if self.closed and not closing:
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
        """Create the file (private to the user) and the schema, then the reading connection.
        A file of another layout is reset: it is only a cache."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self.path.exists():
            with contextlib.suppress(FileExistsError):
                os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        writer = self.write_conn()
        writer.execute("BEGIN IMMEDIATE")
        try:
            version = writer.execute("PRAGMA user_version").fetchone()[0]
            columns = tuple(row[1] for row in writer.execute("PRAGMA table_info(entries)"))
            if version not in (0, SCHEMA_VERSION) or (columns and columns != _COLUMNS):
                for statement in _DROP:
                    writer.execute(statement)
            for statement in _statements(_SCHEMA):
                writer.execute(statement)
            writer.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            writer.execute("COMMIT")
        except BaseException:
            _rollback(writer)
            raise
        self.read_conn().execute(_GET, ("",)).fetchall()  # the read path works, too

    def read_conn(self) -> sqlite3.Connection:
        conn = self.reader
        if conn is None:
            conn = self.reader = self._connect()
            conn.execute("PRAGMA query_only = ON")
            conn.text_factory = bytes  # a value damaged into TEXT must fail the checksum, not decoding
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
            self.executor = self._new_executor()
        return self.executor

    def _new_executor(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="botticelli-cache", initializer=self._mark_writer
        )

    def _mark_writer(self) -> None:
        self.writer_ident = threading.get_ident()

    def run(self, fn: Callable[[], T]) -> asyncio.Future[T]:
        """Run ``fn`` on the writer thread."""
        return asyncio.get_running_loop().run_in_executor(self.writer_thread(), fn)

    # ---- the read path (caller's thread) ------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        row = self.read_conn().execute(_GET, (key,)).fetchone()
        now = time.time()
        bad = row is not None and not _verifies(key, row)
        with self.lock:
            pending = self.pending
            if row is None or bad or (row[1] is not None and row[1] <= now):
                pending.misses += 1
                if bad:
                    pending.bad.add(key)
                elif row is not None:
                    pending.stale[key] = now
                row = None
            else:
                pending.hits += 1
                pending.touched[key] = now
            due = not self.flush_queued and (
                bad or pending.hits + pending.misses >= FLUSH_EVERY or now - self.last_flush >= FLUSH_INTERVAL
            )
            if due:
                self.flush_queued = True
        if due:
            self.writer_thread().submit(self.flush_quietly)
        return None if row is None else row[0]

    def discard(self, key: str) -> None:
        """Delete the entry stored under ``key`` now, unless it is replaced before the flush."""
        row = self.read_conn().execute(_GET, (key,)).fetchone()
        if row is None:
            return
        with self.lock:
            if type(row[2]) is bytes:
                self.pending.discards[key] = row[2]
            else:
                self.pending.bad.add(key)
            queue, self.flush_queued = not self.flush_queued, True
        if queue:
            self.writer_thread().submit(self.flush_quietly)

    # ---- the write path (writer thread) -----------------------------------------------------

    def _take_pending(self) -> _Pending:
        with self.lock:
            taken, self.pending = self.pending, _Pending()
            self.last_flush = time.time()
            self.flush_queued = False
        return taken

    def _give_back(self, taken: _Pending) -> None:
        """Counts survive a failed transaction; removals do not (the next read finds the row
        bad again if it still is, and a damaged page must not sink every later flush)."""
        with self.lock:
            pending = self.pending
            pending.hits += taken.hits
            pending.misses += taken.misses
            for key, at in taken.touched.items():
                pending.touched.setdefault(key, at)
            pending.stale.update(taken.stale)

    def has_pending(self) -> bool:
        with self.lock:
            return bool(self.pending)

    def _write(self, body: Callable[[sqlite3.Connection], T]) -> T:
        """``body`` and the pending counters in one write transaction."""
        conn = self.write_conn()
        taken = self._take_pending()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._apply(conn, taken)
                result = body(conn)
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
        except BaseException:
            self._give_back(taken)
            raise
        return result

    @staticmethod
    def _apply(conn: sqlite3.Connection, taken: _Pending) -> None:
        if taken.bad:
            conn.text_factory = bytes
            try:  # re-read inside the transaction: a row rewritten meanwhile verifies and stays
                for key in taken.bad:
                    row = conn.execute(_GET, (key,)).fetchone()
                    if row is not None and not _verifies(key, row):
                        conn.execute(_DELETE, (key,))
            finally:
                conn.text_factory = str
        if taken.discards:
            conn.executemany(_DELETE_IF_SAME, list(taken.discards.items()))
        if taken.touched:
            conn.executemany(_TOUCH, [(at, key, at) for key, at in taken.touched.items()])
        if taken.stale:
            expired = conn.executemany(_DELETE_IF_EXPIRED, list(taken.stale.items())).rowcount
            if expired > 0:
                conn.execute(_ADD, (expired, "expired"))
        if taken.hits:
            conn.execute(_ADD, (taken.hits, "hits"))
        if taken.misses:
            conn.execute(_ADD, (taken.misses, "misses"))

    def flush(self) -> None:
        self._write(lambda conn: None)

    def flush_quietly(self) -> None:
        """Background flush: a failure keeps the counts for the next try and is reported to
        ``health`` instead of raising into an executor future nobody reads."""
        try:
            self.flush()
        except _FAULTS as exc:
            self.health.fail("writing", exc)
        except CacheError:
            pass  # closed meanwhile

    def put(self, key: str, value: bytes, ttl: float | None) -> None:
        size = len(value)
        if self.max_bytes is not None and size > self.max_bytes:
            return  # would evict everything else and still not fit
        now = time.time()
        expires = None if ttl is None else now + ttl
        check = checksum(key, value, expires)

        def body(conn: sqlite3.Connection) -> None:
            conn.execute(_PUT, (key, value, check, size, expires, now))
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
            need_bytes -= _int(row[1])
            need_entries -= 1
        cursor.close()
        if victims:
            conn.executemany(_DELETE, victims)
            conn.execute(_ADD, (len(victims), "evictions"))

    def _over(self, total: int, count: int) -> bool:
        return (self.max_bytes is not None and total > self.max_bytes) or (
            self.max_entries is not None and count > self.max_entries
        )

    def counters(self) -> dict[str, int]:
        self.flush()
        rows = self.write_conn().execute(_COUNTERS).fetchall()
        return {str(name): _int(value) for name, value in rows}

    def clear(self) -> int:
        def body(conn: sqlite3.Connection) -> int:
            count = _int(conn.execute("SELECT count(*) FROM entries").fetchone()[0])
            conn.execute("DELETE FROM entries")
            conn.execute("UPDATE counters SET value = 0")
            return count

        with self.lock:  # counts gathered before the clear belong to the old contents
            self.pending = _Pending()
        count = self._write(body)
        with contextlib.suppress(sqlite3.Error):  # give the space back; skipped while others write
            self.write_conn().execute("VACUUM")
        return count

    # ---- closing ----------------------------------------------------------------------------

    def close(self, lock_timeout: float = CLOSE_TIMEOUT) -> Future[None] | None:
        """Flush and close (also run by the finalizer, wherever a collection or the exit runs
        it). Idempotent. It never makes an event loop wait: on a loop's thread (or on the
        writer thread itself) the last flush is handed to the writer thread, after the writes
        already queued, and its future returned; elsewhere it waits for them. That flush waits
        at most ``lock_timeout`` seconds for another process's write lock."""
        if self.closed:
            return None
        self.closed = True
        reader, self.reader = self.reader, None  # first: the last connection to close (the
        if reader is not None:  # writer) checkpoints the WAL into the file, a query_only one can't
            with contextlib.suppress(sqlite3.Error):
                reader.close()
        executor, self.executor = self.executor, None
        may_block = self._may_block()
        if executor is None and not may_block and (self.writer is not None or self.has_pending()):
            executor = self._new_executor()
        handed: Future[None] | None = None
        if executor is not None:
            with contextlib.suppress(RuntimeError):  # the exit already joined the thread
                handed = executor.submit(self._finish, lock_timeout)
            executor.shutdown(wait=may_block)
        if handed is None:
            self._finish(lock_timeout)
        return None if may_block else handed

    def _may_block(self) -> bool:
        if threading.get_ident() == self.writer_ident:
            return False
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return True
        return False

    def _finish(self, lock_timeout: float) -> None:
        """The last flush (counts that cannot be written in time are dropped), then the writing
        connection is closed."""
        try:
            if self.has_pending():
                if self.writer is None:
                    self.writer = self._connect(closing=True)
                self.writer.execute(f"PRAGMA busy_timeout = {int(lock_timeout * 1000)}")
                self.flush()
        except _CLOSING_FAULTS as exc:
            log.debug("cache %s: the last counts were not written: %s", self.path, redact(str(exc)))
        finally:
            writer, self.writer = self.writer, None
            if writer is not None:
                with contextlib.suppress(sqlite3.Error):
                    writer.close()


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
    return _int(rows.get("bytes", 0)), _int(rows.get("entries", 0))


_ORPHANS: list[sqlite3.Connection] = []  # a forked child's inherited connections, never touched
_LIVE: weakref.WeakSet[_Store] = weakref.WeakSet()


def _after_fork() -> None:
    for store in list(_LIVE):
        store.after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return redact(f"{type(exc).__name__}: {exc}")


class SQLiteCache(CacheBackend):
    """``SQLiteCache()`` at the default path, or ``SQLiteCache("/tmp/answers.sqlite3",
    max_bytes=64 << 20)``. Bounds: ``max_bytes`` of stored answers (default 512 MiB) and
    optionally ``max_entries``; ``None`` turns a bound off. ``timeout``: seconds a write waits
    for another process's transaction.

    A file that cannot be opened for writing makes this a cache that stores nothing (one
    warning; ``unusable`` says why): ``get`` misses, ``set`` drops, ``stats``/``clear`` raise
    ``CacheError``. Delete or fix the file and make a new ``SQLiteCache`` to cache again.
    """

    backend = "sqlite"
    _health: Health

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
        self._health = self._store.health
        self.unusable: str | None = None  # why the file could not be used, if it could not
        try:
            self._store.open()
        except _OPEN_FAULTS as exc:
            self._store.close()
            self.unusable = _reason(exc)
            self._health.errors += 1
            self._health.failing = True
            log.warning(
                "response cache at %s is unusable (%s); answering without a cache", self.path, self.unusable
            )
        _LIVE.add(self._store)
        self._finalizer = weakref.finalize(self, self._store.close)

    @property
    def location(self) -> str:
        return str(self.path)

    def _check_usable(self) -> None:
        if self.unusable is not None:
            raise CacheError(
                f"the cache at {self.path} is unusable ({self.unusable}); delete the file to start afresh"
            )

    async def get(self, key: str) -> bytes | None:
        if self.unusable is not None:
            return None
        try:
            value = self._store.get(key)
        except _FAULTS as exc:
            self._health.fail("reading", exc)
            return None
        self._health.ok()
        return value

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        if self.unusable is not None or (ttl is not None and ttl <= 0):
            return
        try:
            await self._store.run(lambda: self._store.put(key, value, ttl))
        except _FAULTS as exc:
            self._health.fail("writing", exc)
            return
        self._health.ok()

    async def discard(self, key: str) -> None:
        if self.unusable is not None:
            return
        try:
            self._store.discard(key)
        except _FAULTS as exc:
            self._health.fail("reading", exc)

    async def stats(self) -> CacheStats:
        self._check_usable()
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
        self._check_usable()
        return await self._call(self._store.clear)

    async def flush(self) -> None:
        """Write the hit/miss counts and access times gathered so far (otherwise written within a
        second, with the next store, or on close)."""
        if self.unusable is None:
            await self._call(self._store.flush)

    async def _call(self, fn: Callable[[], T]) -> T:
        try:
            return await self._store.run(fn)
        except _FAULTS as exc:
            raise CacheError(f"the cache at {self.path}: {_reason(exc)}") from None

    async def aclose(self) -> None:
        """Flush the counters and close the file (idempotent). The work runs on the writer
        thread, waiting as long as a store would for another process's lock; the loop keeps
        running meanwhile."""
        store = self._store
        if store.closed:
            return
        self._finalizer.detach()
        done = store.close(lock_timeout=store.timeout)
        if done is not None:
            await asyncio.wrap_future(done)

    def close(self) -> None:
        """``aclose`` for code without an event loop (on a loop's thread it does not wait)."""
        self._finalizer()
