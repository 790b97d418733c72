"""The Ollama emulator: Ollama's native API (``/api/chat``, ``/api/generate``, ``/api/tags``, …)
on top of ``emulator.common``, faithful to ``ollama-wire.md``.

- ``emulator``: ``OllamaEmulator`` (the server); ``app``: the router;
- ``inference``: chat and generate, one object or an NDJSON stream; ``generation``: the deltas of
  one answer; ``replies``: tool calls, structured output and thinking of the fake model;
- ``validation``: a body -> ``Request`` in Ollama's order of checks; ``requests``: the request
  bodies as Go types; ``gojson``: Go's JSON scanner, errors and bytes; ``gotypes``: Go's typed
  decoding; ``options``: ``options``
  as ``FromMap`` reads them; ``gotime``: timestamps and ``keep_alive`` durations;
- ``catalog``: the pulled models; ``names``: model names; ``models``: ``/api/tags``, ``/api/show``,
  ``/api/ps``; ``embed``: embeddings; ``fault_responses``: the faults in Ollama's shapes;
- ``wire``: content types, bodies, lines and error texts.
"""

from botticelli.emulator.ollama.catalog import DEFAULT_MODELS, OllamaModel
from botticelli.emulator.ollama.emulator import OllamaEmulator

__all__ = ["DEFAULT_MODELS", "OllamaEmulator", "OllamaModel"]
