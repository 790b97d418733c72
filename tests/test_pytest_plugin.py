"""The pytest plugin (``botticelli.testing``, entry point ``pytest11``) as a user meets it: a
test file in a fresh directory, run by pytest in its own process, with nothing but the fixtures."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

USER_TESTS = """
import asyncio

import pytest

from botticelli import GenerateRequest, GroqDriver, RateLimitError, driver
from botticelli.emulator import Fault


def test_one_server_per_session_and_a_fault(groq_emulator):
    groq_emulator.inject(Fault("rate_limit", retry_after=0.01, count=1))

    async def call():
        async with GroqDriver("openai/gpt-oss-20b", api_key=groq_emulator.test_key,
                              base_url=groq_emulator.base_url, max_retries=0) as groq:
            return await groq.generate(GenerateRequest.prompt("Hi", max_tokens=5))

    with pytest.raises(RateLimitError):
        asyncio.run(call())
    assert asyncio.run(call()).text


def test_the_next_test_starts_clean(groq_emulator):
    assert groq_emulator.pending_faults == [] and groq_emulator.requests == []
    assert groq_emulator.stats.requests == 0

{extra}
"""

ANTHROPIC = """
def test_anthropic(anthropic_emulator):
    async def call():
        async with driver("anthropic:claude-haiku-5-5", api_key=anthropic_emulator.test_key,
                          base_url=anthropic_emulator.base_url) as claude:
            return await claude.generate(GenerateRequest.prompt("Hi", max_tokens=5))

    assert asyncio.run(call()).text
"""

OLLAMA = """
def test_ollama(ollama_emulator):
    async def call():
        async with driver("ollama:llama3.2", base_url=ollama_emulator.base_url) as local:
            return await local.generate(GenerateRequest.prompt("Hi", max_tokens=5))

    assert asyncio.run(call()).text
"""


def test_the_fixtures_work_in_a_users_project(tmp_path: Path) -> None:
    (tmp_path / "test_app.py").write_text(textwrap.dedent(USER_TESTS.replace("{extra}", ANTHROPIC + OLLAMA)))
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_app.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "4 passed" in run.stdout


def test_the_plugin_is_registered() -> None:
    import importlib.metadata

    found = {e.name: e.value for e in importlib.metadata.entry_points(group="pytest11")}
    if not found:
        pytest.skip("botticelli's metadata is not installed (pip install -e .)")
    assert found.get("botticelli") == "botticelli.testing"
