"""A SQLite cache that cannot be used (read-only, immutable, not a database, not a file) still
builds: it stores nothing, says why in one warning, and the driver keeps answering from the
provider. And closing never makes the event loop wait, even while another process holds the
write lock.

Tests run as root, which ignores permission bits, so the permission cases run the cache in a
child process as ``nobody`` (``setpriv``); ``chattr +i`` (which binds root too) covers the
immutable ones where the filesystem supports it.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from botticelli import GenerateRequest, GroqDriver
from botticelli.cache import CachedDriver, CacheError, SQLiteCache
from botticelli.emulator import Emulator

from .conftest import TEST_KEY
from .test_cache_integrity import logged
from .test_cli import clean_env

MODEL = "openai/gpt-oss-20b"
NOBODY = 65534


def request() -> GenerateRequest:
    return GenerateRequest.prompt("Why is the sky blue?", temperature=0, max_tokens=20)


async def answer_twice(store: SQLiteCache, emulator: Emulator) -> list[str]:
    driver = CachedDriver(GroqDriver(MODEL, api_key=TEST_KEY, base_url=emulator.base_url), store)
    try:
        return [(await driver.generate(request())).text for _ in range(2)]
    finally:
        await driver.aclose()


def assert_degraded(path: Path, emulator: Emulator) -> None:
    """Built, unusable, one warning without a traceback, every request answered by the provider."""
    asked = emulator.stats.requests
    with logged() as records:
        store = SQLiteCache(path)
        texts = asyncio.run(answer_twice(store, emulator))
        assert store.unusable is not None and store.errors == 1
        with pytest.raises(CacheError, match="unusable"):
            asyncio.run(store.stats())
        asyncio.run(store.aclose())
    assert texts[0] and texts == [texts[0]] * 2
    assert emulator.stats.requests == asked + 2  # nothing was cached
    warnings = [r for r in records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "unusable" in warnings[0].getMessage(), [r.getMessage() for r in records]
    assert all(r.exc_info is None for r in records)


def made_cache(path: Path) -> None:
    SQLiteCache(path).close()


# ---- as root: things no permission check is needed for ------------------------------------------


def _directory(path: Path) -> None:
    path.mkdir()


def _under_a_file(path: Path) -> Path:
    path.write_bytes(b"a regular file")
    return path / "c.sqlite3"


@pytest.mark.parametrize("kind", ["directory", "under-a-file", "dangling-symlink-into-a-file"])
def test_a_path_that_is_not_a_database_file(kind: str, tmp_path: Path, emulator: Emulator) -> None:
    path = tmp_path / "c.sqlite3"
    if kind == "directory":
        _directory(path)
    elif kind == "under-a-file":
        path = _under_a_file(path)
    else:
        (tmp_path / "file").write_bytes(b"x")
        path.symlink_to(tmp_path / "file" / "nowhere")
    assert_degraded(path, emulator)


_sqlite_header = st.binary(max_size=2000).map(lambda tail: b"SQLite format 3\x00" + tail)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(min_size=1, max_size=5000) | _sqlite_header)
def test_a_file_that_is_not_a_cache(emulator: Emulator, content: bytes) -> None:
    """Random bytes, or SQLite's header followed by random bytes: unusable or reset, never an
    exception; if the cache does open, it caches."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "c.sqlite3"
        path.write_bytes(content)
        with logged() as records:
            store = SQLiteCache(path)
            texts = asyncio.run(answer_twice(store, emulator))
            asyncio.run(store.aclose())
        assert texts[0] and texts == [texts[0]] * 2
        warnings = [r for r in records if r.levelname == "WARNING"]
        assert len(warnings) == (store.unusable is not None)
        assert all(r.exc_info is None for r in records)


# ---- immutable (chattr +i binds root too) ---------------------------------------------------------


@contextmanager
def immutable(path: Path) -> Iterator[None]:
    """``chattr +i`` for the duration, undone whatever happens; skip where unsupported."""
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"chattr +i is not available here: {done.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


@pytest.mark.skipif(shutil.which("chattr") is None, reason="no chattr")
@pytest.mark.parametrize("what", ["file", "directory", "directory-with-file"])
def test_immutable(what: str, tmp_path: Path, emulator: Emulator) -> None:
    directory = tmp_path / "cache"
    directory.mkdir()
    path = directory / "c.sqlite3"
    if what != "directory":
        made_cache(path)
    with immutable(path if what == "file" else directory):
        assert_degraded(path, emulator)


# ---- read-only by permission, as a user permissions apply to ---------------------------------------

_CHILD = textwrap.dedent(
    """
    import asyncio, json, logging, sys
    from botticelli import GenerateRequest, GroqDriver
    from botticelli.cache import CachedDriver, CacheError, SQLiteCache

    records = []
    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)
    logging.getLogger("botticelli").addHandler(Keep())
    logging.getLogger("botticelli").setLevel(logging.DEBUG)

    async def main():
        store = SQLiteCache(sys.argv[1])
        groq = GroqDriver("openai/gpt-oss-20b", api_key=sys.argv[3], base_url=sys.argv[2])
        driver = CachedDriver(groq, store)
        request = GenerateRequest.prompt("Why is the sky blue?", temperature=0, max_tokens=20)
        texts = [(await driver.generate(request)).text for _ in range(2)]
        try:
            await store.stats()
            stats = "ok"
        except CacheError as exc:
            stats = str(exc)
        await driver.aclose()
        await store.aclose()
        print(json.dumps({
            "texts": texts, "unusable": store.unusable, "stats": stats,
            "warnings": [r.getMessage() for r in records if r.levelno >= logging.WARNING],
            "tracebacks": sum(r.exc_info is not None for r in records),
        }))

    asyncio.run(main())
    """
)


@pytest.fixture
def unprivileged_dir() -> Iterator[tuple[Path, Callable[[list[str]], list[str]]]]:
    """A directory the child user owns, outside pytest's root-only tree, and how to run a command
    as that user (as is, when the tests do not run as root)."""
    directory = Path(tempfile.mkdtemp(prefix="botticelli-ro-"))
    os.chmod(directory, 0o755)
    if os.geteuid() != 0:
        yield directory, lambda argv: argv
    else:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: cannot drop privileges")
        os.chown(directory, NOBODY, NOBODY)
        yield (
            directory,
            lambda argv: ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *argv],
        )
    for root, dirs, _ in os.walk(directory):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)
    shutil.rmtree(directory)


@pytest.mark.parametrize("case", ["file-0444", "dir-0555", "dir-0555-with-file"])
def test_read_only(
    case: str, unprivileged_dir: tuple[Path, Callable[[list[str]], list[str]]], emulator: Emulator
) -> None:
    directory, as_user = unprivileged_dir
    cache_dir = directory / "cache"
    cache_dir.mkdir()
    path = cache_dir / "c.sqlite3"
    if case != "dir-0555":
        made_cache(path)
    for made in (cache_dir, *cache_dir.iterdir()):
        if os.geteuid() == 0:
            os.chown(made, NOBODY, NOBODY)
    if case == "file-0444":
        path.chmod(0o444)
    else:
        cache_dir.chmod(0o555)
    done = subprocess.run(
        as_user([sys.executable, "-c", _CHILD, str(path), emulator.base_url, TEST_KEY]),
        capture_output=True,
        text=True,
        env=clean_env(HOME=str(directory), XDG_CONFIG_HOME=str(directory), XDG_CACHE_HOME=str(directory)),
        cwd=directory,
        timeout=30,
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    result = json.loads(done.stdout)
    assert result["texts"][0] and result["texts"] == [result["texts"][0]] * 2
    assert result["unusable"] and "unusable" in result["stats"]
    assert len(result["warnings"]) == 1 and result["tracebacks"] == 0, result
    assert emulator.stats.requests == 2  # both answered by the provider


# ---- closing never blocks the loop -------------------------------------------------------------

HOLD = 0.3  # seconds another process keeps the write lock


def writer_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("botticelli-cache")}


def counters(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        found = dict(conn.execute("SELECT name, value FROM counters").fetchall())
    conn.close()
    return found


@settings(max_examples=16, deadline=None)
@given(
    hits=st.integers(min_value=0, max_value=300),
    stores=st.integers(min_value=0, max_value=3),
    locked=st.booleans(),
    how=st.sampled_from(["aclose", "close", "finalizer"]),
)
def test_closing_never_blocks_the_loop(hits: int, stores: int, locked: bool, how: str) -> None:
    """Pending counts and queued writes, another process holding the write lock or not, closed
    by ``aclose``, ``close`` on the loop, or the finalizer: the loop keeps ticking, no writer
    thread outlives the close for long, and with the lock free (or freed in time for
    ``aclose``) the counts reach the file."""
    before = writer_threads()

    async def run(path: Path) -> float:
        store = SQLiteCache(path, timeout=5.0)
        await store.set("a" * 64, b"answer")
        for n in range(stores):
            await store.set(f"{n:064x}", b"more")
        for _ in range(hits):
            await store.get("a" * 64)
        holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        if locked:
            holder.execute("BEGIN IMMEDIATE")
            threading.Timer(HOLD, holder.execute, ("COMMIT",)).start()
        gaps: list[float] = []

        async def tick() -> None:
            last = time.perf_counter()
            while True:
                await asyncio.sleep(0.002)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        ticker = asyncio.create_task(tick())
        inner = store._store
        gc.collect()  # so that no unrelated collection is timed below
        await asyncio.sleep(0.01)
        started = time.perf_counter()
        if how == "aclose":
            await store.aclose()
        elif how == "close":
            store.close()
        else:
            del store  # the last reference: the finalizer runs here, on the loop's thread
        call = time.perf_counter() - started
        assert inner.closed
        await asyncio.sleep(0.02)
        ticker.cancel()
        if locked:
            await asyncio.sleep(HOLD)  # let the holder commit before closing it
        holder.close()
        return max(gaps) if how == "aclose" else call

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "c.sqlite3"
        blocked = asyncio.run(run(path))
        assert blocked < 0.1, f"{how} blocked the loop for {blocked:.3f} s"
        for thread in writer_threads() - before:
            thread.join(timeout=5)
            assert not thread.is_alive()
        if not locked or how == "aclose":
            assert counters(path)["hits"] == hits


@settings(max_examples=5, deadline=None)
@given(stores=st.integers(min_value=1, max_value=4), lookups=st.integers(min_value=0, max_value=20))
def test_a_locked_file_drops_writes_then_recovers(stores: int, lookups: int) -> None:
    """Another process holds the write lock past ``timeout`` (sqlite3 raises "database is
    locked" at run time): stores are dropped with one warning, lookups keep answering from the
    file, and stores work again once the lock is released."""

    async def run(path: Path) -> None:
        store = SQLiteCache(path, timeout=0.05)
        try:
            await store.set("a" * 64, b"kept")
            holder = sqlite3.connect(path, isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")
            for n in range(stores):
                await store.set(f"{n:064x}", b"dropped")
            for _ in range(lookups):
                assert await store.get("a" * 64) == b"kept"
            holder.execute("COMMIT")
            holder.close()
            await store.set("b" * 64, b"stored")
            assert await store.get("b" * 64) == b"stored"
            assert await store.get(f"{0:064x}") is None
            assert store.errors == stores
        finally:
            await store.aclose()

    with tempfile.TemporaryDirectory() as directory, logged() as records:
        asyncio.run(run(Path(directory) / "c.sqlite3"))
    warnings = [r for r in records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "locked" in warnings[0].getMessage()
    assert all(r.exc_info is None for r in records)
