"""Blocking use of any driver, for scripts and notebooks, without a second copy of its logic.

Coroutines run on one private event loop in a daemon thread, so this works even where a loop is
already running (Jupyter). The driver's transport keeps a separate connection pool for that loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from concurrent.futures import Future
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from .types import GenerateRequest, GenerateResponse, StreamChunk

if TYPE_CHECKING:
    from .drivers.base import Driver

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def _background_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="botticelli-blocking", daemon=True).start()
            _loop = loop
        return _loop


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the background loop and wait for it; Ctrl-C cancels it."""
    future: Future[T] = asyncio.run_coroutine_threadsafe(coro, _background_loop())
    try:
        return future.result()
    except BaseException:
        future.cancel()
        raise


class BlockingDriver:
    """``GroqDriver(...).blocking()``: ``generate`` returns the response, ``generate_stream``
    yields chunks; breaking out of the loop closes the HTTP response."""

    __slots__ = ("driver",)

    def __init__(self, driver: Driver) -> None:
        self.driver = driver

    def generate(self, request: GenerateRequest) -> GenerateResponse:
        return run(self.driver.generate(request))

    def generate_stream(self, request: GenerateRequest) -> Iterator[StreamChunk]:
        stream = self.driver.generate_stream(request)
        try:
            while True:
                try:
                    yield run(stream.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            run(stream.aclose())

    def close(self) -> None:
        run(self.driver.aclose())

    def __enter__(self) -> BlockingDriver:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"BlockingDriver({self.driver!r})"
