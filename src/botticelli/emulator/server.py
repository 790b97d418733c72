"""``Emulator``: runs the Groq emulator in a background thread (sync tests) or the current loop.

A thread with its own event loop lets synchronous code (``groq.Groq``, plain pytest) talk to the
server without deadlocking; ``astart``/``astop`` serve inside an already running loop instead
(the CLI, or async tests that only use async clients).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

from aiohttp import web

from botticelli.emulator.app import EmulatorApp, Settings, State
from botticelli.emulator.backend import Backend
from botticelli.emulator.batches import DEFAULT_BATCH_STEP
from botticelli.emulator.faults import Fault
from botticelli.emulator.limits import LIMIT_KINDS
from botticelli.emulator.stats import EmulatorStats, RecordedRequest
from botticelli.emulator.textgen import FakeBackend

PLANS = ("free", "developer")

#: How long stopping waits for in-flight responses before cancelling them.
SHUTDOWN_TIMEOUT = 0.25


class Emulator:
    """A Groq-compatible HTTP server with fault injection, for tests and benchmarks.

    >>> with Emulator() as emu:
    ...     client = groq.Groq(base_url=emu.base_url, api_key="gsk_test")

    - ``api_keys``: the accepted keys; ``None`` accepts any key starting with ``gsk_``.
    - ``plan``: ``"free"`` or ``"developer"``, whose per-model catalog limits apply.
    - ``enforce_limits``: answer 429/413 when over a limit (headers are always sent).
    - ``limits``: ``{"rpm", "rpd", "tpm", "tpd"}`` overrides for every model; ``None`` = unlimited.
    - ``token_delay``: seconds per generated token (streams sleep between chunks).
    - ``window_scale``: multiplies every limit window (0.1: a 6 s "minute"), so a test can run a
      per-minute limit in seconds; headers and ``retry-after`` are in scaled seconds.
    - ``backend``: the model (``Backend`` protocol); a deterministic ``FakeBackend`` by default.
    - ``batch_step``: seconds between the phases of a Batch API job (validating, in progress,
      finalizing); settable while running through the ``batch_step`` attribute.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_keys: Iterable[str] | None = None,
        plan: str = "free",
        enforce_limits: bool = False,
        limits: Mapping[str, int | None] | None = None,
        token_delay: float = 0.0,
        backend: Backend | None = None,
        window_scale: float = 1.0,
        batch_step: float = DEFAULT_BATCH_STEP,
    ) -> None:
        if isinstance(api_keys, str):
            api_keys = [api_keys]
        if plan not in PLANS:
            raise ValueError(f"plan must be one of {', '.join(PLANS)}, not {plan!r}")
        overrides = dict(limits or {})
        unknown = set(overrides) - set(LIMIT_KINDS)
        if unknown:
            raise ValueError(f"unknown limit(s) {', '.join(sorted(unknown))}; use rpm, rpd, tpm, tpd")
        for name, value in overrides.items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"limit {name} must be a positive int or None")
        if token_delay < 0:
            raise ValueError("token_delay must be >= 0")
        if not window_scale > 0:
            raise ValueError("window_scale must be > 0")
        if batch_step < 0:
            raise ValueError("batch_step must be >= 0")
        self.host = host
        self._requested_port = port
        self._state = State(
            Settings(
                backend=backend if backend is not None else FakeBackend(),
                api_keys=frozenset(api_keys) if api_keys is not None else None,
                plan=plan,
                enforce_limits=enforce_limits,
                limit_overrides=overrides,
                token_delay=token_delay,
                batch_step=batch_step,
            )
        )
        self._state.limiter.window_scale = window_scale
        self._port: int | None = None
        self._runner: web.ServerRunner | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def batch_step(self) -> float:
        return self._state.settings.batch_step

    @batch_step.setter
    def batch_step(self, seconds: float) -> None:
        self._state.settings.batch_step = seconds  # read at every pause of a running batch job

    # -- lifecycle ----------------------------------------------------------------------------

    async def astart(self) -> Emulator:
        """Start serving on the running event loop."""
        if self._runner is not None:
            raise RuntimeError("the emulator is already running")
        self._state.stopping = asyncio.Event()
        server = web.Server(EmulatorApp(self._state), handler_cancellation=True, access_log=None)
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

    def start(self) -> Emulator:
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

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Emulator:
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
        """``http://host:port``: what the Groq SDK takes as ``base_url`` (paths add ``/openai/v1``)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """``http://host:port/openai/v1``: for OpenAI-compatible clients."""
        return self.base_url + "/openai/v1"

    # -- behaviour and inspection -------------------------------------------------------------

    def inject(self, *faults: Fault) -> None:
        """Queue faults; each fires on the next ``count`` matching chat-completion requests."""
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
        return f"<Emulator {where} plan={self._state.settings.plan}>"
