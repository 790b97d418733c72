"""The SQLite store: size bounds with LRU eviction, expiry, counters shared across processes,
several OS processes writing one file at once, and where the file goes by default."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import orjson
import pytest

from botticelli import GenerateRequest, GroqDriver
from botticelli.cache import CachedDriver, CachedResponse, SQLiteCache, open_cache
from botticelli.cache.codec import ENTRY_VERSION
from botticelli.cache.sqlite import SCHEMA_VERSION
from botticelli.emulator import Emulator

from .conftest import TEST_KEY

MODEL = "openai/gpt-oss-20b"


def key(n: int) -> str:
    return f"{n:064x}"


def value(n: int, size: int = 1000) -> bytes:
    return (f"{n}:".encode() + b"x" * size)[:size]


def table(path: Path) -> dict[str, tuple[int, float | None]]:
    """key -> (size, expires), read with a connection of our own."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT key, size, expires FROM entries").fetchall()
    return {k: (s, e) for k, s, e in rows}


async def test_size_bound_evicts_least_recently_used(tmp_path: Path) -> None:
    store = SQLiteCache(tmp_path / "c.sqlite3", max_bytes=10_000)
    for n in range(8):
        await store.set(key(n), value(n))
    for _ in range(3):  # 0 becomes the most recently used
        assert await store.get(key(0)) == value(0)
    for n in range(8, 14):
        await store.set(key(n), value(n))
        stats = await store.stats()
        assert stats.bytes <= 10_000, stats
    present = table(store.path)
    assert key(0) in present  # read recently: kept
    assert key(1) not in present and key(2) not in present  # the oldest untouched: evicted
    assert key(13) in present and key(12) in present
    stats = await store.stats()
    assert stats.evictions == 14 - len(present) and stats.entries == len(present)
    assert stats.bytes == sum(size for size, _ in present.values())
    assert await store.get(key(1)) is None
    await store.aclose()


async def test_entry_bound_and_oversized_values(tmp_path: Path) -> None:
    store = SQLiteCache(tmp_path / "c.sqlite3", max_bytes=5000, max_entries=10)
    for n in range(25):
        await store.set(key(n), value(n, 100))
    assert len(table(store.path)) <= 10 and (await store.stats()).entries <= 10
    await store.set(key(99), value(99, 6000))  # larger than the whole bound: not stored
    assert await store.get(key(99)) is None and await store.get(key(24)) == value(24, 100)
    await store.aclose()


async def test_expired_entries_miss_and_are_purged(tmp_path: Path) -> None:
    store = SQLiteCache(tmp_path / "c.sqlite3")
    await store.set(key(1), value(1), ttl=0.2)
    await store.set(key(2), value(2), ttl=60)
    await store.set(key(3), value(3))
    assert await store.get(key(1)) == value(1)
    await asyncio.sleep(0.3)
    assert await store.get(key(1)) is None
    assert await store.get(key(2)) == value(2) and await store.get(key(3)) == value(3)
    stats = await store.stats()  # the flush deletes the expired row it read
    assert stats.expired == 1 and stats.entries == 2 and key(1) not in table(store.path)
    assert (stats.hits, stats.misses) == (3, 1)
    expires = table(store.path)[key(2)][1]
    assert expires is not None and time.time() + 50 < expires < time.time() + 61
    assert table(store.path)[key(3)][1] is None
    await store.aclose()


async def test_counters_are_shared_by_every_user_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    one, two = SQLiteCache(path), SQLiteCache(path)
    await one.set(key(1), value(1))
    assert await two.get(key(1)) == value(1)
    assert await two.get(key(2)) is None
    await two.aclose()  # closing flushes its counts
    stats = await one.stats()
    assert (stats.hits, stats.misses, stats.entries, stats.bytes) == (1, 1, 1, 1000)
    assert stats.disk_bytes is not None and stats.disk_bytes > 1000
    assert await one.clear() == 1
    stats = await one.stats()
    assert (stats.hits, stats.misses, stats.entries, stats.bytes) == (0, 0, 0, 0)
    await one.aclose()


def test_file_is_private_and_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "c.sqlite3"
    store = SQLiteCache(path)
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        store.close()


def test_a_file_of_another_schema_version_is_reset(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE entries (whatever TEXT)")
        conn.execute("PRAGMA user_version = 99")
    SQLiteCache(path).close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        columns = [row[1] for row in conn.execute("PRAGMA table_info(entries)")]
    assert columns == ["key", "value", "checksum", "size", "expires", "accessed"]


def test_default_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BOTTICELLI_CACHE_URL", "BOTTICELLI_CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    driver = CachedDriver(GroqDriver(MODEL, api_key=TEST_KEY, base_url="http://127.0.0.1:9"))
    assert isinstance(driver.cache, SQLiteCache)
    assert driver.cache.path == tmp_path / "xdg" / "botticelli" / "responses.sqlite3"
    assert driver.cache.path.exists()
    driver.cache.close()
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    store = open_cache()
    assert isinstance(store, SQLiteCache)
    assert store.path == tmp_path / "home" / ".cache" / "botticelli" / "responses.sqlite3"
    store.close()
    monkeypatch.setenv("BOTTICELLI_CACHE_DIR", str(tmp_path / "mine"))
    assert open_cache().location == str(tmp_path / "mine" / "responses.sqlite3")
    monkeypatch.setenv("BOTTICELLI_CACHE_URL", f"sqlite://{tmp_path}/by-url.sqlite3")
    assert open_cache().location == f"{tmp_path}/by-url.sqlite3"


_WORKER = textwrap.dedent(
    """
    import asyncio, os, sys, time
    from pathlib import Path

    from botticelli import GenerateRequest, GroqDriver
    from botticelli.cache import CachedDriver, SQLiteCache

    path, base_url, me, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])

    async def main() -> None:
        store = SQLiteCache(path, max_bytes=None)  # every process creates the schema at once
        Path(f"{go}.ready.{me}").touch()
        deadline = time.monotonic() + 30  # the test gave up: do not wait forever
        while not go.exists():
            if time.monotonic() > deadline:
                sys.exit("no go signal")
            time.sleep(0.002)
        for n in range(150):  # own keys, plus keys every process writes
            await store.set(f"{me:02d}{n:062x}", f"{me}:{n}:".encode() * 20)
            await store.set(f"shared{n % 10:058x}", f"shared:{n % 10}:".encode() * 20)
            got = await store.get(f"{me:02d}{n:062x}")
            assert got == f"{me}:{n}:".encode() * 20, got
        driver = CachedDriver(GroqDriver("openai/gpt-oss-20b", api_key=os.environ["KEY"],
                                         base_url=base_url), store)
        for n in range(5):
            answer = await driver.generate(GenerateRequest.prompt(f"Question {n}", temperature=0))
            print(n, answer.text)
        await driver.aclose()
        await store.aclose()

    asyncio.run(main())
    """
)


def test_concurrent_writer_processes(tmp_path: Path, emulator: Emulator) -> None:
    path, go, workers = tmp_path / "shared.sqlite3", tmp_path / "go", 6
    env = {**os.environ, "KEY": TEST_KEY}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(path), emulator.base_url, str(i), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        for i in range(workers)
    ]
    answers: dict[str, set[str]] = {}
    try:
        deadline = time.monotonic() + 20
        while len(list(tmp_path.glob("go.ready.*"))) < workers:
            assert time.monotonic() < deadline and all(p.poll() is None for p in processes), [
                p.communicate() for p in processes if p.poll() is not None
            ]
            time.sleep(0.01)
        go.touch()  # all at once
        for p in processes:
            out, err = p.communicate(timeout=30)
            assert p.returncode == 0 and err == "", err
            for line in out.splitlines():
                n, _, text = line.partition(" ")
                answers.setdefault(n, set()).add(text)
    finally:
        for p in processes:  # a failed test leaves no worker behind
            if p.poll() is None:
                p.kill()
                p.wait()
    assert len(answers) == 5 and all(len(texts) == 1 for texts in answers.values())
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute("SELECT key, value, size FROM entries").fetchall()
        counters = dict(conn.execute("SELECT name, value FROM counters").fetchall())
    found = {k: v for k, v, _ in rows}
    for me in range(workers):
        for n in range(150):
            assert found.pop(f"{me:02d}{n:062x}") == f"{me}:{n}:".encode() * 20
    for n in range(10):
        assert found.pop(f"shared{n:058x}") == f"shared:{n}:".encode() * 20
    assert len(found) == 5  # the driver's answers, one per question
    assert all(orjson.loads(v)["v"] == ENTRY_VERSION for v in found.values())
    assert counters["entries"] == len(rows) and counters["bytes"] == sum(s for _, _, s in rows)
    assert counters["hits"] + counters["misses"] == workers * (150 + 5)


def test_forked_child_reopens_the_file(tmp_path: Path) -> None:
    if not hasattr(os, "fork"):
        pytest.skip("no fork on this platform")

    store = SQLiteCache(tmp_path / "c.sqlite3")
    asyncio.run(store.set(key(1), value(1)))
    pid = os.fork()
    if pid == 0:  # the child: its own connections and writer thread, the same file
        code = 1
        try:
            ok = asyncio.run(store.get(key(1))) == value(1)
            asyncio.run(store.set(key(2), value(2)))
            store.close()
            code = 0 if ok else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert asyncio.run(store.get(key(2))) == value(2)
    store.close()


async def test_hits_do_not_wait_for_the_disk(tmp_path: Path, emulator: Emulator) -> None:
    store = SQLiteCache(tmp_path / "c.sqlite3")
    driver = CachedDriver(GroqDriver(MODEL, api_key=TEST_KEY, base_url=emulator.base_url), store)
    request = GenerateRequest.prompt("Hello", temperature=0, max_tokens=30)
    await driver.generate(request)
    timings = []
    for _ in range(200):
        started = time.perf_counter()
        answer = await driver.generate(request)
        timings.append(time.perf_counter() - started)
        assert isinstance(answer, CachedResponse)
    timings.sort()
    assert timings[100] < 0.002  # bench/cache_bench.py measures the real figure; this catches I/O
    await driver.aclose()


def test_counts_reach_the_file_at_exit_without_close(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import asyncio, sys
        from botticelli.cache import SQLiteCache

        store = SQLiteCache(sys.argv[1])

        async def main() -> None:
            await store.set("a" * 64, b"answer")
            for _ in range(3):
                await store.get("a" * 64)
            await store.get("b" * 64)

        asyncio.run(main())  # no close: the finalizer flushes at interpreter exit
        """
    )
    path = tmp_path / "c.sqlite3"
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    with sqlite3.connect(path) as conn:
        counters = dict(conn.execute("SELECT name, value FROM counters").fetchall())
    assert (counters["hits"], counters["misses"], counters["entries"]) == (3, 1, 1)


async def test_close_on_the_writer_thread_does_not_join_itself(tmp_path: Path) -> None:
    """The finalizer may run wherever a garbage collection happens, the writer thread included;
    closing there must not try to join that very thread ("cannot join current thread")."""
    cache = SQLiteCache(tmp_path / "c.sqlite3")
    await cache.set("a" * 64, b"answer")
    store = cache._store
    assert store.executor is not None
    await asyncio.get_running_loop().run_in_executor(store.executor, store.close)
    assert store.closed
