"""``OllamaEmulator``: an Ollama-compatible server (the native ``/api`` wire) for tests.

>>> with OllamaEmulator() as emu:
...     client = ollama.Client(host=emu.base_url)

Like a local Ollama it has no keys and no rate limits; a fault (``emu.inject(Fault(...))``, the
``x-emulator-fault`` header or ``POST /_emulator/faults``) is the way to see a 429 or a 5xx.
"""

from __future__ import annotations

from collections.abc import Iterable

from botticelli.emulator.backend import Backend
from botticelli.emulator.common.server import EmulatorServer, Handler
from botticelli.emulator.common.state import Settings
from botticelli.emulator.ollama.app import OllamaApp
from botticelli.emulator.ollama.catalog import DEFAULT_MODELS, Catalog, OllamaModel
from botticelli.emulator.ollama.state import OllamaState
from botticelli.emulator.textgen import FakeBackend


class OllamaEmulator(EmulatorServer):
    """An Ollama server with fault injection, on ``host:port`` (0 picks a free port).

    - ``models``: what is "pulled": names (``"llama3.2"``, ``"qwen3:8b"``) or ``OllamaModel``
      values. Known names get the real model's capabilities (``llama3.2``: tools; ``qwen3``: tools
      and thinking; ``gemma3``: vision; ``nomic-embed-text``: embedding only); any other name a
      model that chats and calls tools. Default: ``DEFAULT_MODELS``.
    - ``token_delay``: seconds per generated token (streams sleep between lines).
    - ``backend``: the model (``Backend`` protocol); a deterministic ``FakeBackend`` by default.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        models: Iterable[str | OllamaModel] | None = None,
        token_delay: float = 0.0,
        backend: Backend | None = None,
    ) -> None:
        if token_delay < 0:
            raise ValueError("token_delay must be >= 0")
        if isinstance(models, str):
            models = [models]
        catalog = Catalog(DEFAULT_MODELS if models is None else models)
        settings = Settings(
            backend=backend if backend is not None else FakeBackend(), token_delay=token_delay
        )
        self._ollama_state = OllamaState(settings, catalog)
        super().__init__(host=host, port=port, state=self._ollama_state)

    def handler(self) -> Handler:
        return OllamaApp(self._ollama_state)

    @property
    def base_url(self) -> str:
        """``http://host:port``: what ``ollama.Client(host=...)`` takes (the API is under ``/api``)."""
        return super().base_url

    @property
    def models(self) -> list[OllamaModel]:
        """The pulled models, in the order given."""
        return self._ollama_state.catalog.all()

    @property
    def loaded_models(self) -> list[str]:
        """The names of the models in memory now (what ``/api/ps`` lists)."""
        return [entry.model.name for entry in self._ollama_state.loaded.current()]

    def __repr__(self) -> str:
        where = self.base_url if self._port is not None else "not running"
        return f"<{type(self).__name__} {where} models={len(self.models)}>"
