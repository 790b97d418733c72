"""``Emulator``: the Groq-compatible server, and ``serve``, what both command lines run.

``python -m botticelli.emulator`` (``emulator/__main__.py``) and ``botticelli serve``
(``cli/serve.py``) parse their own options into one ``ServeOptions`` and call ``serve``.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from botticelli.emulator.backend import Backend, make_backend
from botticelli.emulator.common.limits import LIMIT_KINDS
from botticelli.emulator.common.server import EmulatorServer, Handler, serve_until_signalled
from botticelli.emulator.common.state import DEFAULT_BATCH_STEP, Settings, State
from botticelli.emulator.groq import wire
from botticelli.emulator.groq.app import PREFIX, GroqApp
from botticelli.emulator.textgen import FakeBackend
from botticelli.errors import BotticelliError

#: Whose per-model catalog limits apply.
PLANS = ("free", "developer")


class Emulator(EmulatorServer):
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
        state = State(
            Settings(
                backend=backend if backend is not None else FakeBackend(),
                api_keys=frozenset(api_keys) if api_keys is not None else None,
                plan=plan,
                enforce_limits=enforce_limits,
                limit_overrides=overrides,
                token_delay=token_delay,
                org_id=wire.organization_id(),
                batch_step=batch_step,
            )
        )
        state.limiter.window_scale = window_scale
        super().__init__(host=host, port=port, state=state)

    def handler(self) -> Handler:
        return GroqApp(self._state)

    @property
    def base_url(self) -> str:
        """``http://host:port``: what the Groq SDK takes as ``base_url`` (paths add ``/openai/v1``)."""
        return super().base_url

    @property
    def openai_base_url(self) -> str:
        """``http://host:port/openai/v1``: for OpenAI-compatible clients."""
        return self.base_url + PREFIX

    @property
    def batch_step(self) -> float:
        return self._state.settings.batch_step

    @batch_step.setter
    def batch_step(self, seconds: float) -> None:
        self._state.settings.batch_step = seconds  # read at every pause of a running batch job


@dataclass(frozen=True, slots=True)
class ServeOptions:
    """What ``serve`` runs: the ``Emulator`` arguments, with the backend by name."""

    host: str = "127.0.0.1"
    port: int = 0  # 0 picks a free port
    plan: str = "free"
    enforce_limits: bool = False
    rpm: int | None = None
    rpd: int | None = None
    tpm: int | None = None
    tpd: int | None = None
    token_delay: float = 0.0
    window_scale: float = 1.0
    batch_step: float = DEFAULT_BATCH_STEP
    api_keys: tuple[str, ...] | None = None  # None: any key starting with gsk_
    backend: str = "fake"
    reply_tokens: int | None = None  # the fake backend's reply length (None: its 16-48)

    def limits(self) -> dict[str, int | None]:
        """The limit overrides that were given (``Emulator(limits=...)``)."""
        given = {"rpm": self.rpm, "rpd": self.rpd, "tpm": self.tpm, "tpd": self.tpd}
        return {name: value for name, value in given.items() if value is not None}


def serve(options: ServeOptions) -> int:
    """Serve the emulator in the foreground until SIGINT/SIGTERM; the process exit status.

    Prints ``botticelli emulator listening on http://HOST:PORT`` once it accepts connections;
    a bad option or an address in use prints ``botticelli emulator: …`` on stderr and returns 2.
    """
    try:
        backend = make_backend(options.backend)
        if options.reply_tokens is not None:
            from ..textgen import FakeBackend

            if not isinstance(backend, FakeBackend) or options.reply_tokens < 1:
                raise ValueError(
                    f"--reply-tokens: needs the fake backend and N >= 1, got {options.reply_tokens}"
                )
            backend.reply_tokens = (options.reply_tokens, options.reply_tokens)
        emulator = Emulator(
            host=options.host,
            port=options.port,
            api_keys=options.api_keys,
            plan=options.plan,
            enforce_limits=options.enforce_limits,
            limits=options.limits(),
            token_delay=options.token_delay,
            backend=backend,
            window_scale=options.window_scale,
            batch_step=options.batch_step,
        )
        asyncio.run(serve_until_signalled(emulator))
    except (ValueError, OSError, BotticelliError) as exc:
        print(f"botticelli emulator: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a second Ctrl-C while stopping
        return 130
    return 0
