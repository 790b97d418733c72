"""A Groq-compatible HTTP server for tests and benchmarks, in the spirit of moto for AWS.

    from botticelli.emulator import Emulator, Fault

    with Emulator() as emu:
        emu.inject(Fault("rate_limit", retry_after=1.0, count=2))
        client = groq.Groq(base_url=emu.base_url, api_key="gsk_test")

Faithful to Groq's wire format (bodies, headers, SSE framing, error bodies, rate limits) as
documented in ``groq-wire.md``; the model behind it is pluggable (``Backend``), a deterministic
fake by default. Also runs standalone: ``python -m botticelli.emulator --port 0``, or from code:
``serve(ServeOptions(port=8000))``.

Other wire formats: ``AnthropicEmulator`` (``emulator/anthropic/``, the Messages API) and
``OllamaEmulator`` (``emulator/ollama/``, the native ``/api``), the same way (``with ...() as
emu``, ``emu.inject(Fault(...))``), imported only when named; ``python -m botticelli.emulator
--wire anthropic|ollama`` serves them. The pytest plugin (``botticelli.testing``) has a fixture
for each.

Layout: ``common/`` holds what every wire format shares (server lifecycle, state, faults,
stats, rate-limit buckets, the control plane, ``WireError``); ``groq/`` is Groq's wire format
(validation, chat completions, models, files and batches, bodies and error texts); ``backend``,
``textgen`` and ``local_backend`` are the models behind any of them. Another wire format is one
package beside ``groq/`` built on ``common/``.
"""

from botticelli.emulator.backend import BACKENDS, Backend, Finish, Generation, register_backend
from botticelli.emulator.common.errors import WireError
from botticelli.emulator.common.faults import KINDS as FAULT_KINDS
from botticelli.emulator.common.faults import Fault
from botticelli.emulator.common.limits import Limits, RateLimiter, go_duration
from botticelli.emulator.common.stats import EmulatorStats, RecordedRequest
from botticelli.emulator.groq.emulator import Emulator, ServeOptions, serve
from botticelli.emulator.textgen import FakeBackend

__all__ = [
    "BACKENDS",
    "FAULT_KINDS",
    "AnthropicEmulator",
    "Backend",
    "Emulator",
    "EmulatorStats",
    "FakeBackend",
    "Fault",
    "Finish",
    "Generation",
    "Limits",
    "OllamaEmulator",
    "RateLimiter",
    "RecordedRequest",
    "ServeOptions",
    "WireError",
    "go_duration",
    "register_backend",
    "serve",
]


def __getattr__(name: str) -> object:
    """The other wires' emulators, imported on first use (a Groq user pays nothing for them)."""
    if name == "AnthropicEmulator":
        from botticelli.emulator.anthropic import AnthropicEmulator

        return AnthropicEmulator
    if name == "OllamaEmulator":
        from botticelli.emulator.ollama import OllamaEmulator

        return OllamaEmulator
    raise AttributeError(f"module 'botticelli.emulator' has no attribute {name!r}")
