"""What a SQLite cache reads back is what was stored under that key, or a miss: random bytes
written into the file, rows tampered column by column, garbled schema text and entries that
verify but do not decode never give a wrong answer, never raise, and cost at most one warning.

Every case is generated: hypothesis picks the byte ranges, the tampered column and its new
value, the malformed entry, so the next case of the same kind is caught too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from botticelli import GenerateRequest, GroqDriver
from botticelli.cache import CachedDriver, CachedResponse, CacheError, SQLiteCache
from botticelli.cache.codec import ENTRY_VERSION, Entry, checksum
from botticelli.emulator import Emulator

from .conftest import TEST_KEY

MODEL = "openai/gpt-oss-20b"
KEYS = 48


def key(n: int) -> str:
    return f"{n:064x}"


def value(n: int) -> bytes:
    """Sizes from a few bytes to past a page (overflow pages get damaged too)."""
    return f"<{n}>".encode() * (1 + (n * 389) % 1500)


@contextmanager
def logged() -> Iterator[list[logging.LogRecord]]:
    """Every record the botticelli loggers emit meanwhile (hypothesis cannot use caplog)."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("botticelli")
    handler, level = Keep(logging.DEBUG), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def assert_quiet(records: list[logging.LogRecord]) -> None:
    """At most one warning, no errors, and never a traceback."""
    warnings = [r for r in records if r.levelno >= logging.WARNING]
    assert len(warnings) <= 1, [r.getMessage() for r in warnings]
    assert all(r.levelno < logging.ERROR for r in records)
    assert all(r.exc_info is None and r.stack_info is None for r in records)


async def fill(path: Path) -> None:
    store = SQLiteCache(path)
    for n in range(KEYS):
        await store.set(key(n), value(n), ttl=None if n % 3 else 3600)
    await store.aclose()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A well-formed cache file (closed, so all of it is in the main file), copied per example."""
    path = tmp_path_factory.mktemp("template") / "c.sqlite3"
    asyncio.run(fill(path))
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0
    return path


@contextmanager
def copy_of(template: Path) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "c.sqlite3"
        shutil.copy(template, path)
        yield path


def overwrite(path: Path, writes: list[tuple[int, bytes]]) -> None:
    size = path.stat().st_size
    with open(path, "r+b") as file:
        for offset, data in writes:
            file.seek(offset % size)
            file.write(data)


async def use(store: SQLiteCache) -> int:
    """Read every key, store new ones, read again; the number of wrong answers."""
    wrong = 0
    for _ in range(2):
        for n in range(KEYS):
            got = await store.get(key(n))
            wrong += got is not None and got != value(n)
        for n in range(KEYS, KEYS + 8):
            await store.set(key(n), value(n))
            got = await store.get(key(n))
            wrong += got is not None and got != value(n)
    with contextlib.suppress(CacheError):  # stats may report a damaged file, nothing else
        await store.stats()
    return wrong


writes = st.lists(
    st.tuples(st.integers(min_value=0), st.binary(min_size=1, max_size=300)), min_size=1, max_size=6
)


@settings(max_examples=60, deadline=None)
@given(writes=writes, while_open=st.booleans())
def test_random_bytes_never_answer_wrongly(
    template: Path, writes: list[tuple[int, bytes]], while_open: bool
) -> None:
    """The issue's fault test: random byte ranges of the file overwritten, either before the
    cache opens it or while it is open. No wrong answer, no exception, at most one warning."""

    async def run(path: Path) -> int:
        store = SQLiteCache(path)
        if while_open:
            overwrite(path, writes)
        try:
            return await use(store)
        finally:
            await store.aclose()

    with copy_of(template) as path, logged() as records:
        if not while_open:
            overwrite(path, writes)
        assert asyncio.run(run(path)) == 0
    assert_quiet(records)


def schema_offset(path: Path) -> int:
    offset = path.read_bytes().find(b"CREATE TABLE entries")
    assert offset > 0
    return offset


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(at=st.integers(min_value=0, max_value=1200), junk=st.binary(min_size=1, max_size=12))
def test_garbled_schema_text_degrades_to_no_cache(
    template: Path, emulator: Emulator, at: int, junk: bytes
) -> None:
    """Bytes inside the schema text (sqlite raises DatabaseError or UnicodeDecodeError on open):
    the cache is built anyway and either works or stores nothing, the driver keeps answering."""

    async def run(path: Path) -> None:
        store = SQLiteCache(path)
        driver = CachedDriver(GroqDriver(MODEL, api_key=TEST_KEY, base_url=emulator.base_url), store)
        try:
            request = GenerateRequest.prompt("Why is the sky blue?", temperature=0, max_tokens=20)
            first, second = await driver.generate(request), await driver.generate(request)
            assert first.text and second.text == first.text
            assert (await use(store)) == 0
        finally:
            await driver.aclose()
            await store.aclose()

    with copy_of(template) as path, logged() as records:
        overwrite(path, [(schema_offset(path) + at, junk)])
        asyncio.run(run(path))
    assert_quiet(records)


# ---- rows tampered in a well-formed file -------------------------------------------------------

_other_bytes = st.binary(min_size=0, max_size=64)
_tampers = st.one_of(
    st.tuples(st.just("value"), _other_bytes),
    st.tuples(st.just("value"), st.text(max_size=40)),  # a TEXT value where a BLOB belongs
    st.tuples(st.just("checksum"), _other_bytes),
    st.tuples(st.just("checksum"), st.text(max_size=20)),
    st.tuples(st.just("checksum"), st.integers(min_value=-(2**63), max_value=2**63 - 1)),
    st.tuples(st.just("expires"), st.text(max_size=20)),  # wrong types must not escape
    st.tuples(st.just("expires"), _other_bytes),
    st.tuples(st.just("expires"), st.integers(min_value=-(2**63), max_value=2**63 - 1)),
    st.tuples(st.just("expires"), st.floats(allow_nan=False)),
    st.tuples(st.just("swap"), st.integers(min_value=0, max_value=KEYS - 1)),  # another row's entry
    st.tuples(st.just("rename"), st.integers(min_value=KEYS + 100, max_value=KEYS + 200)),
)


def tamper(path: Path, victim: int, how: tuple[str, Any]) -> str:
    """Change one row with a connection of our own; the key that must now miss."""
    kind, new = how
    with sqlite3.connect(path) as conn:
        if kind in ("value", "checksum", "expires"):
            conn.execute(f"UPDATE entries SET {kind} = ? WHERE key = ?", (new, key(victim)))
        elif kind == "swap":
            other = new if new != victim else (victim + 1) % KEYS
            conn.execute(
                "UPDATE entries SET value = (SELECT value FROM entries WHERE key = :b), "
                "checksum = (SELECT checksum FROM entries WHERE key = :b), "
                "expires = (SELECT expires FROM entries WHERE key = :b) WHERE key = :a",
                {"a": key(victim), "b": key(other)},
            )
        else:
            conn.execute("UPDATE entries SET key = ? WHERE key = ?", (key(new), key(victim)))
            return key(new)
    conn.close()
    return key(victim)


def row(path: Path, name: str) -> tuple[Any, ...] | None:
    with sqlite3.connect(path) as conn:
        conn.text_factory = bytes
        found = conn.execute("SELECT value, expires, checksum FROM entries WHERE key = ?", (name,)).fetchone()
    conn.close()
    return found  # type: ignore[no-any-return]


def unchanged(path: Path, name: str, n: int) -> bool:
    """Whether the tamper happened to leave the row as it was (then it may still hit)."""
    found = row(path, name)
    return (
        found is not None
        and found[0] == value(n)
        and type(found[1]) in (float, type(None))
        and found[2] == checksum(name, value(n), found[1])
    )


@settings(max_examples=120, deadline=None)
@given(victim=st.integers(min_value=0, max_value=KEYS - 1), how=_tampers)
def test_a_tampered_row_misses_and_is_removed(template: Path, victim: int, how: tuple[str, Any]) -> None:
    async def run(path: Path, name: str) -> None:
        store = SQLiteCache(path)
        try:
            assert await store.get(name) is None
            for n in range(KEYS):  # the other rows still answer, exactly
                if n != victim:
                    assert await store.get(key(n)) == value(n)
            await store.flush()
            assert row(path, name) is None  # removed by the flush
            await store.set(name, b"fresh")  # and the key works again
            assert await store.get(name) == b"fresh"
        finally:
            await store.aclose()

    with copy_of(template) as path, logged() as records:
        name = tamper(path, victim, how)
        if how[0] != "rename" and unchanged(path, name, victim):
            return  # hypothesis wrote the same bytes back: nothing was tampered
        asyncio.run(run(path, name))
    assert not [r for r in records if r.levelno >= logging.WARNING]  # a bad row is not an outage


# ---- entries that verify but do not decode -----------------------------------------------------

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats()
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_FIELDS = (
    "model",
    "provider",
    "id",
    "request_id",
    "finish_reason",
    "usage",
    "outputs",
    "chunks",
    "tool_calls",
)


def good_entry(stream: bool) -> dict[str, Any]:
    return {
        "v": ENTRY_VERSION,
        "model": MODEL,
        "provider": "groq",
        "id": "chatcmpl-1",
        "request_id": "req_1",
        "finish_reason": "stop",
        "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8, "queue_time": 0.01},
        "outputs": None
        if stream
        else [["reasoning", "think"], ["text", "hello"], ["tool_call", "c1", "f", "{}"]],
        "chunks": [["hel", "th"], ["lo", "ink"]] if stream else None,
        "tool_calls": [["c1", "f", "{}"]] if stream else [],
    }


@st.composite
def malformed_entries(draw: st.DrawFn) -> bytes:
    """A real entry with fields replaced by arbitrary JSON, or arbitrary bytes altogether."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=200))
    entry: Any = good_entry(draw(st.booleans()))
    for field in draw(st.lists(st.sampled_from(_FIELDS), min_size=1, max_size=3, unique=True)):
        entry[field] = draw(_json)
    if draw(st.integers(0, 9)) == 0:
        entry = draw(_json)
    return orjson.dumps(entry, option=orjson.OPT_NON_STR_KEYS) if _dumpable(entry) else b"{"


def _dumpable(value: Any) -> bool:
    try:
        orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        return False
    return True


@settings(max_examples=400, deadline=None)
@given(stored=malformed_entries())
def test_decoding_is_total(stored: bytes) -> None:
    """Any bytes: no entry (a miss), or an entry whose response and replay are well typed."""
    entry = Entry.decode(stored)
    if entry is None:
        return
    for _ in range(2):  # fresh objects every time
        response = entry.response(0.001)
        assert isinstance(response, CachedResponse) and isinstance(response.text, str)
        assert all(
            isinstance(o.text if o.kind != "tool_call" else o.call.arguments, str) for o in response.outputs
        )
        for name in ("prompt_tokens", "completion_tokens", "total_tokens"):
            assert type(getattr(response.usage, name)) is int
        chunks = list(entry.replay())
        assert chunks[-1].is_final and all(isinstance(c.text, str) for c in chunks)
        assert "".join(c.text for c in chunks) == response.text


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stored=malformed_entries(), stream=st.booleans())
def test_a_malformed_entry_never_raises_on_a_hit(emulator: Emulator, stored: bytes, stream: bool) -> None:
    """A malformed entry stored with a valid checksum (so it verifies): a request for it either
    decodes it as a well-typed answer or asks the provider and replaces it."""

    async def run(path: Path) -> None:
        store = SQLiteCache(path)
        driver = CachedDriver(GroqDriver(MODEL, api_key=TEST_KEY, base_url=emulator.base_url), store)
        request = GenerateRequest.prompt("Why is the sky blue?", temperature=0, max_tokens=20)
        name = driver.key(request)
        assert name is not None
        try:
            await store.set(name, stored)
            decodes = Entry.decode(stored) is not None
            asked = emulator.stats.requests
            if stream:
                chunks = [c async for c in driver.generate_stream(request)]
                assert chunks[-1].is_final
            else:
                answer = await driver.generate(request)
                assert isinstance(answer.text, str)
            assert emulator.stats.requests == asked + (not decodes)
            if not decodes:  # replaced by the provider's answer, which now hits
                again = await driver.generate(request)
                assert isinstance(again, CachedResponse) and again.text
                assert emulator.stats.requests == asked + 1
        finally:
            await driver.aclose()
            await store.aclose()

    with tempfile.TemporaryDirectory() as directory, logged() as records:
        asyncio.run(run(Path(directory) / "c.sqlite3"))
    assert not [r for r in records if r.levelno >= logging.WARNING]


async def test_an_undecodable_entry_is_discarded(tmp_path: Path) -> None:
    """``discard`` (what the driver calls for an entry that does not decode) deletes the row,
    but not a row rewritten since."""
    store = SQLiteCache(tmp_path / "c.sqlite3")
    try:
        await store.set(key(1), b"not an entry")
        await store.set(key(2), b"not an entry either")
        await store.discard(key(1))
        await store.discard(key(2))
        await store.set(key(2), b"rewritten meanwhile")  # flushes the discards first, then stores
        await store.flush()
        assert row(store.path, key(1)) is None
        assert await store.get(key(2)) == b"rewritten meanwhile"
    finally:
        await store.aclose()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(writes=writes)
def test_a_driver_over_a_damaged_file_answers_like_the_provider(
    tmp_path_factory: pytest.TempPathFactory, emulator: Emulator, writes: list[tuple[int, bytes]]
) -> None:
    """End to end: answers cached by one driver, the file damaged, a new driver over it gives
    exactly the provider's answers (from the cache or from the provider), never another's."""
    prompts = [f"Question number {n}" for n in range(10)]

    async def answers(path: Path) -> list[str]:
        store = SQLiteCache(path)
        driver = CachedDriver(GroqDriver(MODEL, api_key=TEST_KEY, base_url=emulator.base_url), store)
        try:
            return [
                (await driver.generate(GenerateRequest.prompt(p, temperature=0, max_tokens=30))).text
                for p in prompts
            ]
        finally:
            await driver.aclose()
            await store.aclose()

    with tempfile.TemporaryDirectory() as directory, logged() as records:
        path = Path(directory) / "c.sqlite3"
        expected = asyncio.run(answers(path))
        assert len(set(expected)) == len(prompts)  # distinct answers: a swap would show
        overwrite(path, writes)
        assert asyncio.run(answers(path)) == expected
    assert_quiet(records)
