"""The Anthropic Messages API emulator: Anthropic's bytes on top of ``emulator.common``.

    from botticelli.emulator.anthropic import AnthropicEmulator
    from botticelli.emulator import Fault

    with AnthropicEmulator() as emu:
        emu.inject(Fault("status", status=529))  # or overloaded()
        client = anthropic.Anthropic(base_url=emu.base_url, api_key="sk-ant-test")

Faithful to ``shared/reference/anthropic-wire.md`` (both API versions, bodies, SSE, errors,
headers, models). Modules:

- ``emulator``: ``AnthropicEmulator``; ``app``: the router; ``state``: state plus its limiter;
- ``messages``: ``/v1/messages`` (JSON and SSE) and ``count_tokens``; ``models``: ``/v1/models``;
- ``validation`` (top-level fields) and ``content`` (messages and blocks): body -> params or
  ``WireError``, with the pydantic-style texts of ``errors``;
- ``replies`` (tool calls, thinking, structured output: what to answer), ``reply`` (the answer as
  content events), ``generation`` (backend text with Anthropic's stop reasons), ``thinking``;
- ``fault_responses``: faults in Anthropic's shapes; ``limits``: RPM/ITPM/OTPM buckets;
- ``wire``: ids, bodies, frames and texts; ``http``: credentials, version, error responses;
  ``model_catalog``: the models and their ``/v1/models`` objects.
"""

from botticelli.emulator.anthropic.emulator import AnthropicEmulator, serve_anthropic
from botticelli.emulator.anthropic.fault_responses import overloaded
from botticelli.emulator.anthropic.limits import DEFAULT_LIMITS, AnthropicLimits

__all__ = ["DEFAULT_LIMITS", "AnthropicEmulator", "AnthropicLimits", "overloaded", "serve_anthropic"]
