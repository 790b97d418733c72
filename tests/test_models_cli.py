"""``botticelli models``: the bundled catalog per provider, and ``--live`` from a real server (the
emulators over HTTP), run as a process the way a user types it."""

from __future__ import annotations

from pathlib import Path

from botticelli.emulator import Emulator

from .test_cli import CliRunner


def test_catalog_per_provider(tmp_path: Path) -> None:
    cli = CliRunner(tmp_path, None)
    run = cli("models", "-p", "anthropic", key=None)
    assert run.returncode == 0
    assert run.stdout.splitlines()[0].split() == ["ID", "STATUS", "KIND", "CONTEXT", "MAX", "OUT"]
    assert "claude-sonnet-5-5" in run.stdout and "claude-opus-4-0" not in run.stdout  # retired: --all
    assert "claude-opus-4-0" in cli("models", "-p", "anthropic", "--all", key=None).stdout


def test_an_unknown_provider_is_a_usage_error(tmp_path: Path) -> None:
    run = CliRunner(tmp_path, None)("models", "-p", "nope", key=None)
    assert run.returncode == 2 and "anthropic" in run.stderr and "groq" in run.stderr
    assert len(run.stderr_lines) == 1


def test_live_groq(emulator: Emulator, tmp_path: Path) -> None:
    run = CliRunner(tmp_path, emulator.base_url)("models", "--live")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].split()[:3] == ["ID", "STATUS", "CREATED"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["openai/gpt-oss-20b"][1] == "active" and rows["openai/gpt-oss-20b"][3] == "131072"
    assert emulator.requests[-1].path == "/openai/v1/models"


def test_live_without_a_server_is_one_line(tmp_path: Path) -> None:
    run = CliRunner(tmp_path, "http://127.0.0.1:9")("models", "--live")
    assert run.returncode == 1 and len(run.stderr_lines) == 1 and "connect" in run.stderr.lower()


def test_live_ollama_lists_what_is_pulled(tmp_path: Path) -> None:
    from botticelli.emulator.ollama import OllamaEmulator

    with OllamaEmulator(models=["llama3.2", "qwen3:8b"]) as emu:
        run = CliRunner(tmp_path, None)(
            "models", "-p", "ollama", "--live", "--base-url", emu.base_url, key=None
        )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].split()[-1] == "SIZE"
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) == {"llama3.2:latest", "qwen3:8b"}
    assert rows["llama3.2:latest"][-1] == "GB"  # "2.0 GB": its size on disk


def test_live_ollama_without_a_server_says_how_to_start_it(tmp_path: Path) -> None:
    run = CliRunner(tmp_path, None)(
        "models", "-p", "ollama", "--live", "--base-url", "http://127.0.0.1:9", key=None
    )
    assert run.returncode == 1 and len(run.stderr_lines) == 1 and "ollama serve" in run.stderr
