"""``EmulatorServer``: the lifecycle every emulator shares, in a background thread or the running loop.

A thread with its own event loop lets synchronous code (``groq.Groq``, plain pytest) talk to the
server without deadlocking; ``astart``/``astop`` serve inside an already running loop instead
(the CLI, or async tests that only use async clients). A wire format subclasses it, builds the
``State`` from its own options and returns its request handler from ``handler()``.
``serve_until_signalled`` is the foreground loop of the command lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from botticelli.emulator.common.faults import Fault
from botticelli.emulator.common.state import State
from botticelli.emulator.common.stats import EmulatorStats, RecordedRequest

#: How long stopping waits for in-flight responses before cancelling them.
SHUTDOWN_TIMEOUT = 0.25

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


class EmulatorServer:
    """Serves one ``State`` on ``host:port`` (0 picks a free port) with a wire format's handler."""

    def __init__(self, *, host: str, port: int, state: State) -> None:
        self.host = host
        self._requested_port = port
        self._state = state
        self._port: int | None = None
        self._runner: web.ServerRunner | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def handler(self) -> Handler:
        """The request handler given to ``aiohttp.web.Server`` (one per start)."""
        raise NotImplementedError

    # -- lifecycle ----------------------------------------------------------------------------

    async def astart(self) -> Self:
        """Start serving on the running event loop."""
        if self._runner is not None:
            raise RuntimeError("the emulator is already running")
        self._state.stopping = asyncio.Event()
        server = web.Server(self.handler(), handler_cancellation=True, access_log=None)
        runner = web.ServerRunner(server, shutdown_timeout=SHUTDOWN_TIMEOUT)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._requested_port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = runner.addresses[0][1]
        return self

    async def astop(self) -> None:
        """Stop serving: hanging requests are released, in-flight ones get ``SHUTDOWN_TIMEOUT``."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        if self._state.stopping is not None:
            self._state.stopping.set()
        await runner.cleanup()

    def start(self) -> Self:
        """Serve in a background thread with its own event loop; returns once it accepts requests."""
        if self._thread is not None or self._runner is not None:
            raise RuntimeError("the emulator is already running")
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self.astart())
            except BaseException as exc:
                failure.append(exc)
                loop.close()
                ready.set()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name="botticelli-emulator", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        return self

    def stop(self) -> None:
        """Stop the server (idempotent)."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self.astop(), loop).result(timeout=10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            self._thread = self._loop = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await self.astart()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.astop()

    # -- where it listens ---------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the emulator is not running; call start() first")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://host:port`` (an IPv6 host in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # -- behaviour and inspection -------------------------------------------------------------

    def inject(self, *faults: Fault) -> None:
        """Queue faults; each fires on the next ``count`` matching requests."""
        for fault in faults:
            if not isinstance(fault, Fault):
                raise TypeError(f"expected a Fault, got {type(fault).__name__}")
            self._state.faults.push(fault)

    @property
    def pending_faults(self) -> list[dict[str, Any]]:
        return self._state.faults.pending()

    @property
    def stats(self) -> EmulatorStats:
        """A consistent copy of the counters."""
        return self._state.recorder.snapshot()

    @property
    def requests(self) -> list[RecordedRequest]:
        """The requests received so far (oldest first; at most the last 10,000)."""
        return self._state.recorder.requests()

    @property
    def enforce_limits(self) -> bool:
        return self._state.settings.enforce_limits

    @enforce_limits.setter
    def enforce_limits(self, value: bool) -> None:
        self._state.settings.enforce_limits = value

    @property
    def org_id(self) -> str:
        """The organization id that appears in rate-limit messages."""
        return self._state.settings.org_id

    def reset(self) -> None:
        """Forget pending faults, counters, recorded requests and rate-limit state."""
        self._state.reset()

    def __repr__(self) -> str:
        where = self.base_url if self._port is not None else "not running"
        return f"<{type(self).__name__} {where} plan={self._state.settings.plan}>"


async def serve_until_signalled(server: EmulatorServer) -> None:
    """Serve in the foreground until SIGINT or SIGTERM.

    Prints exactly one line, ``botticelli emulator listening on http://HOST:PORT``, once it
    accepts connections, so a parent process started with port 0 can read the URL.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows
            loop.add_signal_handler(sig, stop.set)
    await server.astart()
    try:
        print(f"botticelli emulator listening on {server.base_url}", flush=True)
        await stop.wait()
    finally:
        await server.astop()
