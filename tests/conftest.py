"""Shared fixtures: a real Groq emulator on a free loopback port, per test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from botticelli.emulator import Emulator

# Fixtures that live in their own module: ``redis_process`` (a redis-server a test may kill).
pytest_plugins = ["tests.redis_process"]

# Tests never read the developer's real configuration; api-marked tests get the real key explicitly.
REAL_GROQ_API_KEY = os.environ.pop("GROQ_API_KEY", None)
for _name in (
    "GROQ_BASE_URL",
    "BOTTICELLI_REDIS_URL",
    "BOTTICELLI_MODEL",
    "BOTTICELLI_CACHE_URL",
    "BOTTICELLI_CACHE_DIR",
    "BOTTICELLI_CONFIG",
):
    os.environ.pop(_name, None)
# Every test talks to its own emulator with one shared fake key: no client-side limiting unless a
# test asks for a plan or limits explicitly (the rate-limit tests do).
os.environ["BOTTICELLI_GROQ_PLAN"] = "unlimited"

TEST_KEY = "gsk_test_0123456789abcdefghijklmnop"


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """A fresh emulator (limits not enforced, no faults) serving on 127.0.0.1."""
    with Emulator() as emu:
        yield emu


@pytest.fixture
def api_key() -> str:
    return TEST_KEY


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free loopback port for the whole session (``./run tests`` installs
    it). Missing binary: skipped on a developer machine, a failure under CI."""
    import shutil
    import socket
    import subprocess
    import time

    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed; ./run tests installs it with apt-get")
        pytest.skip("redis-server is not installed (./run tests installs it)")
    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"redis-server did not start on port {port}")
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """The session's Redis, emptied before each test."""
    import redis

    client = redis.Redis.from_url(redis_server)
    client.flushall()
    client.close()
    return redis_server
