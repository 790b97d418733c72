"""``botticelli cache stats`` / ``botticelli cache clear`` as real processes, on SQLite and Redis."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from botticelli import GenerateRequest, GroqDriver
from botticelli.cache import CachedDriver, open_cache
from botticelli.emulator import Emulator

from .conftest import TEST_KEY
from .test_cli import Run, check_hygiene, clean_env

# Registers the group itself until cli/app.py does, so these tests pass either way.
_MAIN = (
    "import sys; from botticelli.cli.app import cli, main; from botticelli.cli.cache import cache\n"
    "'cache' in cli.commands or cli.add_command(cache)\n"
    "sys.exit(main(sys.argv[1:]))"
)


def botticelli(*args: str, cwd: Path, **env: str) -> Run:
    done = subprocess.run(
        [sys.executable, "-c", _MAIN, *args],
        capture_output=True,
        text=True,
        env=clean_env(**env),
        cwd=cwd,
        timeout=20,
    )
    run = Run(done.returncode, done.stdout, done.stderr, 0.0)
    check_hygiene(run.stdout, run.stderr, TEST_KEY)
    return run


async def fill(url: str, emulator: Emulator, questions: int) -> None:
    store = open_cache(url)
    driver = CachedDriver(GroqDriver(api_key=TEST_KEY, base_url=emulator.base_url), store)
    for n in range(questions):
        request = GenerateRequest.prompt(f"Question {n}", temperature=0)
        await driver.generate(request)
        await driver.generate(request)
    await driver.aclose()
    await store.aclose()


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_stats_and_clear(
    backend: str, tmp_path: Path, emulator: Emulator, request: pytest.FixtureRequest
) -> None:
    url = str(tmp_path / "c.sqlite3") if backend == "sqlite" else request.getfixturevalue("redis_url")
    asyncio.run(fill(url, emulator, 3))
    env = {"BOTTICELLI_CACHE_URL": url}
    run = botticelli("cache", "stats", "--json", cwd=tmp_path, **env)
    assert run.returncode == 0 and run.stderr == "", run.stderr
    stats = orjson.loads(run.stdout)
    assert (stats["backend"], stats["entries"], stats["hits"], stats["misses"]) == (backend, 3, 3, 3)
    assert stats["bytes"] > 0 and stats["hit_rate"] == 0.5 and stats["location"] == url
    table = botticelli("cache", "stats", cwd=tmp_path, **env)
    assert table.returncode == 0
    lines = dict(line.split(None, 1) for line in table.stdout.splitlines() if not line.startswith("hit "))
    assert lines["entries"] == "3" and lines["hits"] == "3" and lines["backend"] == backend
    assert re.search(r"^hit rate +50\.0%$", table.stdout, re.MULTILINE)
    cleared = botticelli("cache", "clear", "--url", url, cwd=tmp_path)
    assert cleared.returncode == 0 and cleared.stdout == f"removed 3 cached answers from {url}\n"
    after = orjson.loads(botticelli("cache", "stats", "--json", cwd=tmp_path, **env).stdout)
    assert (after["entries"], after["bytes"], after["hits"], after["misses"]) == (0, 0, 0, 0)


def test_stats_of_a_cache_not_yet_made(tmp_path: Path) -> None:
    run = botticelli("cache", "stats", cwd=tmp_path, XDG_CACHE_HOME=str(tmp_path / "xdg"))
    assert run.returncode == 0 and re.search(r"^entries +0$", run.stdout, re.MULTILINE)
    assert str(tmp_path / "xdg" / "botticelli" / "responses.sqlite3") in run.stdout
    assert not (tmp_path / "xdg").exists()  # looking does not create it
    cleared = botticelli("cache", "clear", cwd=tmp_path, XDG_CACHE_HOME=str(tmp_path / "xdg"))
    assert cleared.returncode == 0 and cleared.stdout.startswith("removed 0 cached answers")


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("redis://:s3cretpass@127.0.0.1:{port}/0", "cannot"),
        ("ftp://somewhere/cache", "cache URL"),
    ],
    ids=["unreachable-redis", "bad-scheme"],
)
def test_failures_are_one_line(tmp_path: Path, unused_tcp_port: int, url: str, needle: str) -> None:
    run = botticelli("cache", "stats", "--url", url.format(port=unused_tcp_port), cwd=tmp_path)
    assert run.returncode == 1 and run.stdout == ""
    assert len(run.stderr.splitlines()) == 1 and run.stderr.startswith("botticelli: error: ")
    assert "s3cretpass" not in run.stderr and "Traceback" not in run.stderr


@pytest.mark.parametrize("command", ["stats", "clear"])
def test_an_unusable_file_is_one_line(tmp_path: Path, command: str) -> None:
    """A damaged cache file: one error line saying so (not a warning and an error), exit 1."""
    path = tmp_path / "c.sqlite3"
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 200)
    run = botticelli("cache", command, "--url", str(path), cwd=tmp_path)
    assert run.returncode == 1 and run.stdout == ""
    assert len(run.stderr.splitlines()) == 1 and run.stderr.startswith("botticelli: error: ")
    assert "unusable" in run.stderr and "Traceback" not in run.stderr


@pytest.mark.parametrize("reachable", [True, False])
def test_a_password_with_at_signs_is_never_printed(
    tmp_path: Path, redis_url: str, unused_tcp_port: int, reachable: bool
) -> None:
    """``redis://:p@ss@w0rd@host``: what stats and clear print (the location, or the error)
    names the server, never a fragment of the password."""
    server = redis_url if reachable else f"redis://127.0.0.1:{unused_tcp_port}/0"
    url = server.replace("redis://", "redis://:p@ss@w0rd@")
    for command in ("stats", "clear"):
        run = botticelli("cache", command, "--url", url, cwd=tmp_path)
        assert run.returncode == (0 if reachable else 1), run.stderr
        printed = run.stdout + run.stderr
        for fragment in ("p@ss", "ss@", "w0rd"):
            assert fragment not in printed
        assert "redis://***@127.0.0.1:" in printed
