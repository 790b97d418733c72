"""``OllamaState``: the shared ``State`` plus what only Ollama has, the pulled models and the
models in memory (``/api/ps``); ``reset`` forgets the loaded ones too."""

from __future__ import annotations

from botticelli.emulator.common.state import Settings, State
from botticelli.emulator.ollama.catalog import Catalog
from botticelli.emulator.ollama.models import LoadedModels


class OllamaState(State):
    def __init__(self, settings: Settings, catalog: Catalog) -> None:
        super().__init__(settings)
        self.catalog = catalog
        self.loaded = LoadedModels()

    def reset(self) -> None:
        super().reset()
        self.loaded.clear()
