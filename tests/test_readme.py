"""The README's capability examples, run as a user would: each block in its own process, with
the key and base URL of a live emulator in the environment."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from botticelli.emulator import Emulator

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python readme-example\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_the_readme_has_examples() -> None:
    assert len(BLOCKS) >= 3


@pytest.fixture(scope="module")
def other_wires() -> Iterator[dict[str, str]]:
    """The Anthropic and Ollama emulators, as the environment of a user who has both set up."""
    from botticelli.emulator import AnthropicEmulator, OllamaEmulator

    with AnthropicEmulator() as claude, OllamaEmulator() as ollama:
        yield {
            "ANTHROPIC_API_KEY": "sk-ant-readme-example",
            "ANTHROPIC_BASE_URL": claude.base_url,
            "OLLAMA_HOST": ollama.base_url,
        }


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(
    emulator: Emulator, api_key: str, index: int, tmp_path: Path, other_wires: dict[str, str]
) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GROQ_", "BOTTICELLI_", "ANTHROPIC_", "OLLAMA_"))
    }
    env.update(GROQ_API_KEY=api_key, GROQ_BASE_URL=emulator.base_url, BOTTICELLI_GROQ_PLAN="unlimited")
    env.update(other_wires)
    run = subprocess.run(
        [sys.executable, "-c", BLOCKS[index]],
        env=env,
        cwd=tmp_path,  # examples write files (speech) where they run
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip(), "an example prints what it shows"
