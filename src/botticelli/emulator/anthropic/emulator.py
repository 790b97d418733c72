"""``AnthropicEmulator``: a local Anthropic Messages API for tests, beside the Groq ``Emulator``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping

from botticelli.emulator.anthropic import wire
from botticelli.emulator.anthropic.app import AnthropicApp
from botticelli.emulator.anthropic.limits import AnthropicLimits
from botticelli.emulator.anthropic.state import AnthropicState
from botticelli.emulator.backend import Backend
from botticelli.emulator.common.server import EmulatorServer, Handler, serve_until_signalled
from botticelli.emulator.common.state import Settings
from botticelli.emulator.textgen import FakeBackend


class AnthropicEmulator(EmulatorServer):
    """An Anthropic-compatible HTTP server with fault injection, for tests and benchmarks.

    >>> with AnthropicEmulator() as emu:
    ...     client = anthropic.Anthropic(base_url=emu.base_url, api_key="sk-ant-test")

    - ``api_keys``: the accepted keys (``x-api-key`` or ``Authorization: Bearer``, both API
      versions); ``None`` accepts any key starting with ``sk-ant-``.
    - ``enforce_limits``: answer 429 when over a limit (the headers are always sent).
    - ``limits``: ``{"rpm", "itpm", "otpm"}`` overrides of the default 1,000 / 80,000 / 16,000
      per minute, per key and model; ``None`` = unlimited.
    - ``token_delay``: seconds per generated token (streams sleep between deltas).
    - ``window_scale``: multiplies the one-minute window (0.1: a 6 s "minute").
    - ``backend``: the model (``Backend`` protocol); a deterministic ``FakeBackend`` by default.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_keys: Iterable[str] | None = None,
        enforce_limits: bool = False,
        limits: Mapping[str, int | None] | None = None,
        token_delay: float = 0.0,
        backend: Backend | None = None,
        window_scale: float = 1.0,
    ) -> None:
        if isinstance(api_keys, str):
            api_keys = [api_keys]
        if token_delay < 0:
            raise ValueError("token_delay must be >= 0")
        if not window_scale > 0:
            raise ValueError("window_scale must be > 0")
        state = AnthropicState(
            Settings(
                backend=backend if backend is not None else FakeBackend(),
                api_keys=frozenset(api_keys) if api_keys is not None else None,
                enforce_limits=enforce_limits,
                token_delay=token_delay,
                org_id=wire.organization_id(),
            ),
            AnthropicLimits.from_mapping(limits or {}),
            window_scale=window_scale,
        )
        super().__init__(host=host, port=port, state=state)
        self._anthropic_state = state

    def handler(self) -> Handler:
        return AnthropicApp(self._anthropic_state)

    @property
    def limits(self) -> AnthropicLimits:
        """The per-minute limits every (key, model) gets."""
        return self._anthropic_state.limits

    @property
    def token_delay(self) -> float:
        return self._anthropic_state.settings.token_delay

    @token_delay.setter
    def token_delay(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("token_delay must be >= 0")
        self._anthropic_state.settings.token_delay = seconds


def serve_anthropic(emulator: AnthropicEmulator) -> None:
    """Serve ``emulator`` in the foreground until SIGINT/SIGTERM (prints the one "listening on"
    line of ``common.server.serve_until_signalled``)."""
    asyncio.run(serve_until_signalled(emulator))
