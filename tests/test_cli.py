"""The ``botticelli`` command line, run as a real process against the in-process emulator.

Every run is checked for the two things a CLI must never do: print a traceback, or print the key.
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from botticelli import _defaults
from botticelli.cli.ask import LOCAL_MODEL, choose_model
from botticelli.emulator import Emulator, Fault

from .conftest import TEST_KEY

MODEL = "openai/gpt-oss-20b"
CLI = [sys.executable, "-m", "botticelli.cli"]


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def stderr_lines(self) -> list[str]:
        return self.stderr.splitlines()


def clean_env(**values: str) -> dict[str, str]:
    """The test process's environment without any Groq or botticelli setting, plus ``values``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GROQ_", "BOTTICELLI_"))}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(values)
    return env


def check_hygiene(stdout: str, stderr: str, key: str | None) -> None:
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    if key:
        assert key not in stdout and key not in stderr
        assert key[4:] not in stdout and key[4:] not in stderr  # not even without its prefix


@pytest.fixture
def cli(emulator: Emulator, tmp_path: Path) -> CliRunner:
    return CliRunner(tmp_path, emulator.base_url)


class CliRunner:
    """Runs ``python -m botticelli.cli`` in an empty working directory (no stray ``.env``)."""

    def __init__(self, cwd: Path, base_url: str | None) -> None:
        self.cwd = cwd
        self.base_url = base_url

    def env(self, key: str | None = TEST_KEY, **extra: str) -> dict[str, str]:
        values = dict(extra)
        if key is not None:
            values["GROQ_API_KEY"] = key
        if self.base_url is not None:
            values["GROQ_BASE_URL"] = self.base_url
        return clean_env(**values)

    def __call__(
        self,
        *args: str,
        key: str | None = TEST_KEY,
        stdin: str | None = None,
        timeout: float = 20,
        **extra_env: str,
    ) -> Run:
        started = time.perf_counter()
        done = subprocess.run(
            [*CLI, *args],
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            env=self.env(key, **extra_env),
            cwd=self.cwd,
            timeout=timeout,
        )
        run = Run(done.returncode, done.stdout, done.stderr, time.perf_counter() - started)
        check_hygiene(run.stdout, run.stderr, key)
        return run


def chat_bodies(emu: Emulator) -> list[dict[str, object]]:
    return [r.body for r in emu.requests if r.path.endswith("/chat/completions")]


def one_error_line(run: Run, *needles: str) -> str:
    """Exactly one stderr line, the error, containing every needle."""
    assert len(run.stderr_lines) == 1, run.stderr
    line = run.stderr_lines[0]
    assert line.startswith("botticelli: error: "), line
    for needle in needles:
        assert needle in line, line
    return line


# ---- answers ------------------------------------------------------------------------------------


def test_streamed_answer(cli: CliRunner, emulator: Emulator) -> None:
    run = cli("ask", "Why is the sky blue?")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() and run.stdout.endswith("\n") and not run.stdout.endswith("\n\n")
    assert run.stderr == ""
    (body,) = chat_bodies(emulator)
    assert body["stream"] is True and body["model"] == MODEL
    assert body["messages"] == [{"role": "user", "content": "Why is the sky blue?"}]


def test_no_stream_and_options_reach_the_wire(cli: CliRunner, emulator: Emulator) -> None:
    run = cli("ask", "--no-stream", "--max-tokens", "20", "--temperature", "0.5", "--seed", "7", "Hi")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() and run.stdout.endswith("\n")
    (body,) = chat_bodies(emulator)
    assert not body.get("stream")
    assert body["max_completion_tokens"] == 20 and body["temperature"] == 0.5 and body["seed"] == 7


@pytest.mark.parametrize("args", [["ask", "-"], ["ask"]], ids=["dash", "piped"])
def test_prompt_from_stdin(cli: CliRunner, emulator: Emulator, args: list[str]) -> None:
    run = cli(*args, stdin="What is in this file?\n")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip()
    (body,) = chat_bodies(emulator)
    assert body["messages"] == [{"role": "user", "content": "What is in this file?"}]


def test_system_message(cli: CliRunner, emulator: Emulator) -> None:
    run = cli("ask", "-s", "Answer in French.", "Hello")
    assert run.returncode == 0, run.stderr
    (body,) = chat_bodies(emulator)
    assert body["messages"] == [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "Hello"},
    ]


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "no-stream"])
def test_verbose_prints_stats_on_stderr(cli: CliRunner, stream: bool) -> None:
    run = cli("ask", "-v", "Hello", *([] if stream else ["--no-stream"]))
    assert run.returncode == 0, run.stderr
    assert "req_" not in run.stdout and "tokens/s" not in run.stdout  # stdout stays the answer
    stats = run.stderr
    assert f"groq/{MODEL}" in stats and re.search(r"request\s+req_", stats)
    assert " prompt, " in stats and " completion" in stats and "tokens/s" in stats
    assert "total" in stats
    assert ("first token" in stats) == stream


def test_model_from_environment(cli: CliRunner, emulator: Emulator) -> None:
    run = cli("ask", "Hi", BOTTICELLI_MODEL="openai/gpt-oss-120b")
    assert run.returncode == 0, run.stderr
    assert chat_bodies(emulator)[0]["model"] == "openai/gpt-oss-120b"
    run = cli("ask", "-m", MODEL, "Hi", BOTTICELLI_MODEL="openai/gpt-oss-120b")  # --model wins
    assert chat_bodies(emulator)[1]["model"] == MODEL


# ---- errors: one line, exit 1 -------------------------------------------------------------------


def test_bad_key(tmp_path: Path) -> None:
    with Emulator(api_keys={"gsk_the_right_one"}) as emu:
        run = CliRunner(tmp_path, emu.base_url)("ask", "Hi")
    assert run.returncode == 1 and run.stdout == ""
    one_error_line(run, f"groq/{MODEL}", "401", "invalid_api_key", "[request req_")


def test_no_key_with_explicit_groq_model(cli: CliRunner) -> None:
    run = cli("ask", "-m", MODEL, "Hi", key=None)
    assert run.returncode == 1
    one_error_line(run, "GROQ_API_KEY", "console.groq.com/keys")


def test_odd_key_warns_in_one_line(tmp_path: Path) -> None:
    with Emulator(api_keys={"gsk_the_right_one"}) as emu:
        run = CliRunner(tmp_path, emu.base_url)("ask", "Hi", key="not-a-groq-key-123456")
    assert run.returncode == 1
    warning, error = run.stderr_lines
    assert warning == "botticelli: warning: the Groq API key does not start with 'gsk_'; is it a Groq key?"
    assert error.startswith("botticelli: error: ") and "401" in error


def test_unknown_provider_is_a_configuration_error(cli: CliRunner) -> None:
    run = cli("ask", "-m", "nosuch:model", "Hi")
    assert run.returncode == 1
    one_error_line(run, "unknown provider", "nosuch")


def test_unknown_model(cli: CliRunner) -> None:
    run = cli("ask", "-m", "no-such-model", "Hi")
    assert run.returncode == 1 and run.stdout == ""
    one_error_line(run, "groq/no-such-model", "404", "model_not_found")


def test_retired_model_warns_then_fails(cli: CliRunner) -> None:
    run = cli("ask", "-m", "llama-3.1-8b-instant", "Hi")
    assert run.returncode == 1
    warning, error = run.stderr_lines
    assert warning.startswith("botticelli: warning: ") and "openai/gpt-oss-20b" in warning
    assert error.startswith("botticelli: error: groq/llama-3.1-8b-instant: ")


def test_rate_limit_after_retries(cli: CliRunner, emulator: Emulator) -> None:
    emulator.inject(Fault("rate_limit", retry_after=0.05, count=100))
    run = cli("ask", "--retries", "1", "Hi")
    assert run.returncode == 1 and run.stdout == ""
    one_error_line(run, "429", "rate_limit")
    assert len(chat_bodies(emulator)) == 2  # one try, one retry


def test_server_error_is_retried(cli: CliRunner, emulator: Emulator) -> None:
    emulator.inject(Fault("server_error", status=500, count=1))
    run = cli("ask", "Hi")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() and run.stderr == ""
    assert len(chat_bodies(emulator)) == 2


def test_dropped_connection(cli: CliRunner, emulator: Emulator) -> None:
    emulator.inject(Fault("drop", count=10))
    run = cli("ask", "--retries", "0", "Hi")
    assert run.returncode == 1 and run.stdout == ""
    one_error_line(run, f"groq/{MODEL}", "connection")


def test_hanging_server_times_out(cli: CliRunner, emulator: Emulator) -> None:
    emulator.inject(Fault("hang", count=10))
    run = cli("ask", "Hi", BOTTICELLI_TIMEOUT="0.5", BOTTICELLI_MAX_RETRIES="0")
    assert run.returncode == 1 and run.stdout == ""
    one_error_line(run, f"groq/{MODEL}", "timed out")
    assert run.seconds < 8


@pytest.mark.parametrize("kind", ["stream_error", "truncate"])
def test_mid_stream_failure_keeps_partial_text(cli: CliRunner, emulator: Emulator, kind: str) -> None:
    emulator.inject(Fault(kind, after_chunks=3, count=1))
    run = cli("ask", "--max-tokens", "50", "Tell me a story")
    assert run.returncode == 1
    assert run.stdout.strip() and run.stdout.endswith("\n")  # the partial answer, on its own line
    one_error_line(run, f"groq/{MODEL}")


def test_stream_error_before_any_text(cli: CliRunner, emulator: Emulator) -> None:
    emulator.inject(Fault("stream_error", after_chunks=0, count=1))
    run = cli("ask", "Hi")
    assert run.returncode == 1 and run.stdout == ""  # nothing streamed: no stray newline either
    one_error_line(run, f"groq/{MODEL}")


# ---- bad usage: one line, exit 2 ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["ask", "--temperature", "3", "Hi"], "temperature"),
        (["ask", "--max-tokens", "0", "Hi"], "max_tokens"),
        (["ask", "--max-tokens", "many", "Hi"], "--max-tokens"),
        (["ask", "--timeout", "-1", "Hi"], "--timeout"),
        (["ask", "   "], "empty"),
        (["ask", "-"], "empty"),
        (["ask", "--no-such-option", "Hi"], "--no-such-option"),
        (["nosuchcommand"], "nosuchcommand"),
    ],
)
def test_bad_usage(cli: CliRunner, emulator: Emulator, args: list[str], needle: str) -> None:
    run = cli(*args)
    assert run.returncode == 2 and run.stdout == ""
    one_error_line(run, needle)
    assert chat_bodies(emulator) == []


def test_bad_usage_from_environment(cli: CliRunner) -> None:
    run = cli("ask", "Hi", BOTTICELLI_TIMEOUT="soon")
    assert run.returncode == 2
    one_error_line(run, "--timeout")


# ---- process-level behaviour --------------------------------------------------------------------


def test_closed_stdout_pipe(cli: CliRunner) -> None:
    """``botticelli ask hi | head -c0``: the reader is gone before the first byte."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [*CLI, "ask", "Hi"],
            stdin=subprocess.DEVNULL,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env=cli.env(),
            cwd=cli.cwd,
            timeout=20,
        )
    finally:
        os.close(write_end)
    check_hygiene("", done.stderr, TEST_KEY)
    assert done.returncode == 141 and done.stderr == ""


def test_ctrl_c_exits_130_without_traceback(cli: CliRunner, emulator: Emulator) -> None:
    emulator.inject(Fault("hang", count=10))
    proc = subprocess.Popen(
        [*CLI, "ask", "Hi"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli.env(),
        cwd=cli.cwd,
    )
    try:
        deadline = time.monotonic() + 10
        while not chat_bodies(emulator) and time.monotonic() < deadline:  # the request is in flight
            time.sleep(0.02)
        assert chat_bodies(emulator)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=10)
    finally:
        proc.kill()
    check_hygiene(stdout, stderr, TEST_KEY)
    assert proc.returncode == 130
    assert stderr.strip() == ""


# ---- models, serve, help ------------------------------------------------------------------------


def test_models_lists_current_models_offline(tmp_path: Path) -> None:
    run = CliRunner(tmp_path, "http://127.0.0.1:9")("models", key=None)  # nothing listens on :9
    assert run.returncode == 0 and run.stderr == ""
    ids = [line.split()[0] for line in run.stdout.splitlines()[1:]]
    assert MODEL in ids and "openai/gpt-oss-120b" in ids
    assert "llama-3.1-8b-instant" not in ids and "retired" not in run.stdout
    row = next(line for line in run.stdout.splitlines() if line.startswith(MODEL + " "))
    assert row.split()[1:] == ["production", "chat", "131072", "65536", "30", "8000"]


def test_models_all_includes_retired_with_replacement(tmp_path: Path) -> None:
    run = CliRunner(tmp_path, None)("models", "--all", key=None)
    assert run.returncode == 0
    row = next(line for line in run.stdout.splitlines() if line.startswith("llama-3.1-8b-instant "))
    assert row.split()[1] == "retired" and row.split()[-2:] == ["2026-08-16", "openai/gpt-oss-20b"]


def test_models_plan(tmp_path: Path) -> None:
    runner = CliRunner(tmp_path, None)
    run = runner("models", "--plan", "developer", key=None)
    assert run.returncode == 0 and "RPM (developer)" in run.stdout
    row = next(line for line in run.stdout.splitlines() if line.startswith(MODEL + " "))
    assert row.split()[-2:] == ["1000", "250000"]
    run = runner("models", "--plan", "enterprise", key=None)
    assert run.returncode == 2
    one_error_line(run, "--plan", "developer")


def test_serve_runs_the_emulator(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [*CLI, "serve", "--port", "0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
        cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("botticelli emulator listening on http://127.0.0.1:"), line
        run = CliRunner(tmp_path, line.split()[-1])("ask", "Hi")
        assert run.returncode == 0 and run.stdout.strip()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        proc.communicate()


@pytest.mark.parametrize("command", [[], ["ask"], ["models"], ["serve"]])
def test_help(tmp_path: Path, command: Sequence[str]) -> None:
    run = CliRunner(tmp_path, None)(*command, "--help", key=None)
    assert run.returncode == 0 and run.stderr == ""
    assert run.stdout.startswith("Usage: botticelli") and "Examples:" in run.stdout


def test_version(tmp_path: Path) -> None:
    import botticelli

    run = CliRunner(tmp_path, None)("--version", key=None)
    assert run.returncode == 0 and run.stdout == f"botticelli {botticelli.__version__}\n"


# ---- the default model (issue 3) ----------------------------------------------------------------


@pytest.fixture
def no_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("GROQ_API_KEY", "BOTTICELLI_MODEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_choose_model_without_key_is_local_with_notice(no_config: Path) -> None:
    spec, notice = choose_model(None)
    assert spec == LOCAL_MODEL
    assert notice is not None and "GROQ_API_KEY" in notice and _defaults.GROQ_KEYS_URL in notice
    assert "\n" not in notice


def test_choose_model_with_key_is_groq_default(no_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROQ_API_KEY", TEST_KEY)
    assert choose_model(None) == (_defaults.GROQ_DEFAULT_MODEL, None)


def test_choose_model_reads_key_from_dotenv(no_config: Path) -> None:
    (no_config / ".env").write_text(f"GROQ_API_KEY={TEST_KEY}\n")
    assert choose_model(None) == (_defaults.GROQ_DEFAULT_MODEL, None)


def test_choose_model_explicit_and_env_win(no_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert choose_model("local:smollm2") == ("local:smollm2", None)  # explicit: no notice
    monkeypatch.setenv("BOTTICELLI_MODEL", "openai/gpt-oss-120b")
    assert choose_model(None) == ("openai/gpt-oss-120b", None)
    assert choose_model(MODEL) == (MODEL, None)


def test_no_key_without_local_extra_names_the_install(tmp_path: Path) -> None:
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "llama_cpp.py").write_text("raise ImportError('blocked by the test')\n")
    run = CliRunner(tmp_path, None)("ask", "Hi", key=None, PYTHONPATH=str(blocked))
    assert run.returncode == 1 and run.stdout == ""
    notice, error = run.stderr_lines
    assert notice.startswith("botticelli: no GROQ_API_KEY set")
    assert error.startswith("botticelli: error: ") and "pip install" in error


@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="needs the local extra")
def test_no_key_answers_with_the_local_model(tmp_path: Path) -> None:
    run = CliRunner(tmp_path, None)("ask", "--max-tokens", "16", "Say hello.", key=None, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip()
    assert run.stderr_lines[0].startswith("botticelli: no GROQ_API_KEY set; answering with the bundled")
    assert len([line for line in run.stderr_lines if "GROQ_API_KEY" in line]) == 1
