"""The output file is the journal: one result line appended per finished item, so a run killed
at any moment (even SIGKILL) resumes from the file alone, without redoing finished work.

Each line goes to the kernel in one ``write`` as soon as its item finishes, so a killed process
loses only what was still in flight; ``fsync`` follows within ``sync_interval`` (in a thread, off
the event loop) so a machine crash loses at most that much more. A kill can leave a torn last
line; opening the journal cuts it off. When every item has a result, ``finish`` rewrites the file
atomically in input order, one line per id (the last result of an id wins, which is how
``--retry-errors`` replaces an error without editing the file in place). Lines are made by
``lines.result_line``: whatever a server sent, each result can be written and holds no key.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterable, Sequence
from types import TracebackType

import orjson

from ..errors import BotticelliError
from .items import BatchId, BatchItem, BatchResult
from .lines import journal_id, result_line

__all__ = ["Journal", "JournalError", "read_results"]

try:  # POSIX: one writer per output file; the lock dies with the process, even on SIGKILL
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock
    fcntl = None  # type: ignore[assignment]


class JournalError(BotticelliError):
    """The output file cannot serve as a journal (not a regular file, in use, unreadable)."""


class Journal:
    """``async with Journal("out.jsonl") as journal``: ``done`` maps each id already in the file
    (as ``journal_id`` writes it) to whether its result is a success; ``status`` looks an item's
    id up there; ``append`` records a result; ``finish`` tidies the file."""

    def __init__(self, path: str | os.PathLike[str], *, sync_interval: float = 0.05) -> None:
        self.path = os.path.realpath(os.fspath(path))
        self.sync_interval = sync_interval
        self.done: dict[BatchId, bool] = {}
        self.bad_lines: list[int] = []  # line numbers of lines that are not results (ignored)
        self.torn = False  # a torn last line (a kill mid-write) was cut off on open
        self.appended = 0
        self._fd: int | None = None
        self._dirty = asyncio.Event()
        self._closing = False
        self._syncer: asyncio.Task[None] | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def open(self) -> None:
        """Lock and read the file (creating it), cutting off a torn last line."""
        if os.path.exists(self.path) and not os.path.isfile(self.path):
            raise JournalError(f"{self.path} is not a regular file; the output is also the journal")
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_BINARY", 0), 0o666)
        except OSError as exc:
            raise JournalError(f"cannot open {self.path}: {exc.strerror or exc}") from None
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise JournalError(
                        f"{self.path} is in use by another batch run; wait for it or pick another output"
                    ) from None
            with open(fd, "rb", closefd=False) as handle:
                handle.seek(0)
                data = handle.read()
            self._load(fd, data)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def _load(self, fd: int, data: bytes) -> None:
        end = data.rfind(b"\n") + 1
        tail = data[end:]
        for number, item_id, ok, _line in _entries(data[:end]):
            if item_id is None:
                self.bad_lines.append(number)
            else:
                self.done[item_id] = ok
        if tail.strip():
            parsed = _entry(tail)
            if parsed[0] is not None:  # a complete line missing only its newline: keep it
                os.write(fd, b"\n")
                self.done[parsed[0]] = parsed[1]
                return
            self.torn = True
        if tail:
            os.ftruncate(fd, end)

    async def __aenter__(self) -> Journal:
        if self._fd is None:
            self.open()
        self._syncer = asyncio.ensure_future(self._sync_loop())
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the background fsync, sync what is left, close and unlock."""
        if self._syncer is not None:
            self._closing = True
            self._dirty.set()
            syncer, self._syncer = self._syncer, None
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(syncer)  # a Ctrl-C now must not abandon an fsync mid-way
        self.close()

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.fsync(fd)
            os.close(fd)

    async def _sync_loop(self) -> None:
        while not self._closing:
            await self._dirty.wait()
            if self._closing:
                return
            await asyncio.sleep(self.sync_interval)
            self._dirty.clear()
            fd = self._fd
            if fd is not None:
                await asyncio.to_thread(os.fsync, fd)

    # -- use ------------------------------------------------------------------------------------

    def pending(self, items: Iterable[BatchItem], *, retry_errors: bool = False) -> list[BatchItem]:
        """The items still to run: those without a result, and with ``retry_errors`` those whose
        result is an error."""
        if retry_errors:
            return [item for item in items if not self.status(item.id)]
        return [item for item in items if self.status(item.id) is None]

    def status(self, item_id: BatchId) -> bool | None:
        """Whether the file's (last) result for ``item_id`` is a success; ``None``: no result."""
        return self.done.get(journal_id(item_id))

    def unknown_ids(self, items: Iterable[BatchItem]) -> int:
        """How many results in the file belong to no item of this input (another input's?)."""
        known = {journal_id(item.id) for item in items}
        return sum(1 for item_id in self.done if item_id not in known)

    def append(self, result: BatchResult) -> None:
        """Write one result line now (one ``write`` call, so a kill leaves whole lines or a torn
        last one, never interleaved ones); it is fsynced within ``sync_interval``. Any result can
        be written: ``result_line`` redacts keys and brings odd numbers and strings into JSON."""
        if self._fd is None:
            raise JournalError("the journal is not open")
        line, ok = result_line(result)
        try:
            _write_all(self._fd, line)
        except OSError as exc:  # a full disk stops the batch: results it cannot keep are lost work
            raise JournalError(f"cannot write to {self.path}: {exc.strerror or exc}") from None
        self.done[journal_id(result.id)] = ok
        self.appended += 1
        self._dirty.set()

    def finish(self, order: Sequence[BatchId]) -> bool:
        """If every id in ``order`` has a result, rewrite the file atomically as one line per id
        in that order (results for ids not in ``order`` follow, in file order) and return true;
        otherwise leave it as is (still a valid journal) and return false."""
        if self._fd is None:
            raise JournalError("the journal is not open")
        with open(self._fd, "rb", closefd=False) as handle:
            handle.seek(0)
            data = handle.read()
        latest: dict[BatchId, bytes] = {}
        for _number, item_id, _ok, line in _entries(data):
            if item_id is not None:
                latest.pop(item_id, None)  # re-insert: extras keep the order of their last line
                latest[item_id] = line
        keys = list(dict.fromkeys(journal_id(item_id) for item_id in order))
        if any(item_id not in latest for item_id in keys):
            return False
        wanted = set(keys)
        parts = [latest[item_id] for item_id in keys]
        parts += [line for item_id, line in latest.items() if item_id not in wanted]
        canonical = b"".join(parts)
        if canonical != data:
            try:
                self._replace(canonical)
            except OSError as exc:  # the journal itself is intact: a rerun tidies it
                with contextlib.suppress(OSError):
                    os.remove(f"{self.path}.tmp")
                raise JournalError(f"cannot rewrite {self.path}: {exc.strerror or exc}") from None
        return True

    def _replace(self, content: bytes) -> None:
        temporary = f"{self.path}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o666)
        try:
            _write_all(fd, content)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, self.path)
        with contextlib.suppress(OSError, AttributeError):  # make the rename itself durable
            directory = os.open(os.path.dirname(self.path), os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def remove_if_empty(path: str) -> None:
    """Drop an output file a run created but never wrote to (e.g. it stopped before any result)."""
    with contextlib.suppress(OSError):
        if os.path.getsize(path) == 0:
            os.remove(path)


def read_results(path: str | os.PathLike[str]) -> dict[BatchId, bool]:
    """Each id with a result in a journal file, mapped to whether its (last) result is a success;
    empty if there is no such file. Reads without locking: for summaries, not for resuming."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return {}
    return {item_id: ok for _n, item_id, ok, _line in _entries(data) if item_id is not None}


def _entries(data: bytes) -> Iterable[tuple[int, BatchId | None, bool, bytes]]:
    """``(line number, id, ok, line)`` per non-blank line, the line with its newline; id
    ``None``: the line is not a result."""
    for number, line in enumerate(data.split(b"\n"), 1):
        if line.strip():
            item_id, ok = _entry(line)
            yield number, item_id, ok, line + b"\n"


def _entry(line: bytes) -> tuple[BatchId | None, bool]:
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None, False
    if not isinstance(data, dict):
        return None, False
    item_id = data.get("id")
    if isinstance(item_id, bool) or not isinstance(item_id, (str, int)) or item_id == "":
        return None, False
    return item_id, "error" not in data
