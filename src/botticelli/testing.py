"""A pytest plugin, in the way moto serves AWS users: one fixture per emulator.

Registered through the ``pytest11`` entry point, so installing botticelli is enough::

    def test_my_app(groq_emulator, monkeypatch):
        monkeypatch.setenv("GROQ_BASE_URL", groq_emulator.base_url)
        groq_emulator.inject(Fault("rate_limit", retry_after=1, count=1))
        ...

``groq_emulator``, ``anthropic_emulator`` and ``ollama_emulator`` are each one server per test
session on a free loopback port, reset (faults, counters, recorded requests, limits) before
every test that uses it, so tests neither pay a start-up each nor see each other's faults. Each
fixture also offers the key its emulator accepts as ``.test_key``. Nothing is imported before a
fixture is asked for: the plugin costs a pytest run that does not use it nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .emulator.common.server import EmulatorServer

#: The keys each emulator accepts by default (any key with the provider's prefix).
GROQ_TEST_KEY = "gsk_test_botticelli_fixture"
ANTHROPIC_TEST_KEY = "sk-ant-test-botticelli-fixture"


def _serve(server: EmulatorServer, key: str | None) -> Iterator[Any]:
    server.start()
    server.test_key = key  # type: ignore[attr-defined]  # a convenience for the test
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def _botticelli_groq_server() -> Iterator[Any]:
    from .emulator import Emulator

    yield from _serve(Emulator(), GROQ_TEST_KEY)


@pytest.fixture(scope="session")
def _botticelli_anthropic_server() -> Iterator[Any]:
    from .emulator.anthropic import AnthropicEmulator

    yield from _serve(AnthropicEmulator(), ANTHROPIC_TEST_KEY)


@pytest.fixture(scope="session")
def _botticelli_ollama_server() -> Iterator[Any]:
    from .emulator.ollama import OllamaEmulator

    yield from _serve(OllamaEmulator(), None)


@pytest.fixture
def groq_emulator(_botticelli_groq_server: Any) -> Any:
    """The Groq emulator (also OpenAI-compatible at ``.openai_base_url``), reset for this test."""
    _botticelli_groq_server.reset()
    return _botticelli_groq_server


@pytest.fixture
def anthropic_emulator(_botticelli_anthropic_server: Any) -> Any:
    """The Anthropic Messages API emulator, reset for this test."""
    _botticelli_anthropic_server.reset()
    return _botticelli_anthropic_server


@pytest.fixture
def ollama_emulator(_botticelli_ollama_server: Any) -> Any:
    """The Ollama emulator (``llama3.2`` and a few more pulled), reset for this test."""
    _botticelli_ollama_server.reset()
    return _botticelli_ollama_server
