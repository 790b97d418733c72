"""Shared fixtures: a real Groq emulator on a free loopback port, per test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from botticelli.emulator import Emulator

# Tests never read the developer's real configuration; api-marked tests get the real key explicitly.
REAL_GROQ_API_KEY = os.environ.pop("GROQ_API_KEY", None)
for _name in ("GROQ_BASE_URL", "BOTTICELLI_GROQ_PLAN", "BOTTICELLI_REDIS_URL", "BOTTICELLI_MODEL"):
    os.environ.pop(_name, None)

TEST_KEY = "gsk_test_0123456789abcdefghijklmnop"


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """A fresh emulator (limits not enforced, no faults) serving on 127.0.0.1."""
    with Emulator() as emu:
        yield emu


@pytest.fixture
def api_key() -> str:
    return TEST_KEY
