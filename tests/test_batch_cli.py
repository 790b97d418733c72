"""``botticelli batch``, run as a real process against the emulator: ordering, per-item errors,
bad input lines, exit codes, and resuming after SIGKILL without redoing finished work."""

from __future__ import annotations

import contextlib
import io
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from botticelli.cli.app import cli as cli_group
from botticelli.emulator import Emulator, Fault

from .conftest import TEST_KEY
from .test_cli import Run, check_hygiene, clean_env

MODEL = "openai/gpt-oss-20b"
# Until the command is registered in cli/app.py, run it through the same ``main`` with it added.
_SHIM = (
    "import sys; from botticelli.cli.app import cli, main; from botticelli.cli.batch import batch; "
    "cli.commands.setdefault('batch', batch); sys.exit(main(sys.argv[1:]))"
)
CLI = (
    [sys.executable, "-m", "botticelli.cli"]
    if "batch" in cli_group.commands
    else [sys.executable, "-c", _SHIM]
)


class BatchRunner:
    """``botticelli batch ...`` in ``cwd`` with the test key and the emulator's URL; no
    client-side rate limiting (the emulator enforces none)."""

    def __init__(self, cwd: Path, base_url: str) -> None:
        self.cwd = cwd
        self.base_url = base_url

    def env(self, key: str | None = TEST_KEY) -> dict[str, str]:
        values = {"GROQ_BASE_URL": self.base_url, "BOTTICELLI_GROQ_PLAN": "unlimited"}
        if key is not None:
            values["GROQ_API_KEY"] = key
        return clean_env(**values)

    def command(self, *args: str) -> list[str]:
        return [*CLI, "batch", *args]

    def __call__(self, *args: str, key: str | None = TEST_KEY, timeout: float = 30) -> Run:
        started = time.perf_counter()
        done = subprocess.run(
            self.command(*args),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=self.env(key),
            cwd=self.cwd,
            timeout=timeout,
        )
        run = Run(done.returncode, done.stdout, done.stderr, time.perf_counter() - started)
        check_hygiene(run.stdout, run.stderr, key)
        return run


@pytest.fixture
def batch(emulator: Emulator, tmp_path: Path) -> BatchRunner:
    return BatchRunner(tmp_path, emulator.base_url)


def write_input(path: Path, *records: Any) -> Path:
    path.write_bytes(b"".join(r if isinstance(r, bytes) else orjson.dumps(r) + b"\n" for r in records))
    return path


def questions(n: int, **params: Any) -> list[dict[str, Any]]:
    return [{"id": f"q{i}", "prompt": f"question q{i}", **params} for i in range(n)]


def results(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def sent_ids(emu: Emulator) -> Counter[str]:
    """How many chat requests the emulator received per item id (the prompt names the item)."""
    bodies = [r.body for r in emu.requests if r.path.endswith("/chat/completions")]
    return Counter(b["messages"][-1]["content"].split()[-1] for b in bodies)


def summary_line(run: Run) -> str:
    line = run.stderr_lines[-1]
    assert line.startswith("botticelli: batch: "), run.stderr
    return line


# ---- runs ---------------------------------------------------------------------------------------


def test_one_result_per_line_in_input_order(batch: BatchRunner, emulator: Emulator, tmp_path: Path) -> None:
    records: list[Any] = questions(15, max_tokens=30)
    records[3] = {
        "id": "q3",
        "prompt": "question q3",
        "system": "Be brief.",
        "max_tokens": 7,
        "temperature": 0,
    }
    records[7] = {"id": 7, "messages": [{"role": "user", "content": "question 7"}], "seed": 5}
    source = write_input(tmp_path / "in.jsonl", *records)
    run = batch(str(source), "-o", "out.jsonl", "-c", "4")
    assert run.returncode == 0, run.stderr
    assert run.stdout == "" and len(run.stderr_lines) == 1
    assert "15/15 results in out.jsonl (15 ok, 0 errors); 0 bad lines" in summary_line(run)
    lines = results(tmp_path / "out.jsonl")
    assert [line["id"] for line in lines] == [r["id"] for r in records]
    for line in lines:
        assert line["text"] and line["model"] == MODEL and line["request_id"].startswith("req_")
        assert line["usage"]["total_tokens"] > 0 and "error" not in line
    bodies = {b["messages"][-1]["content"]: b for b in (r.body for r in emulator.requests)}
    assert bodies["question q3"]["messages"][0] == {"role": "system", "content": "Be brief."}
    assert bodies["question q3"]["max_completion_tokens"] == 7 and bodies["question 7"]["seed"] == 5
    assert emulator.stats.completions == 15


def test_errors_are_results_and_retry_errors_reruns_only_them(
    batch: BatchRunner, emulator: Emulator, tmp_path: Path
) -> None:
    source = write_input(tmp_path / "in.jsonl", *questions(8))
    emulator.inject(Fault("status", status=400, count=2, message="bad field", code="invalid_field"))
    run = batch(str(source), "-o", "out.jsonl", "-c", "1", "--retries", "0")
    assert run.returncode == 0, run.stderr  # every line has a result; some results are errors
    assert "(6 ok, 2 errors)" in summary_line(run)
    lines = results(tmp_path / "out.jsonl")
    errors = [line for line in lines if "error" in line]
    assert [line["id"] for line in errors] == ["q0", "q1"]
    assert errors[0]["error"]["class"] == "InvalidRequestError" and errors[0]["error"]["status"] == 400
    assert errors[0]["error"]["code"] == "invalid_field" and "bad field" in errors[0]["error"]["message"]
    assert errors[0]["error"]["request_id"].startswith("req_") and set(errors[0]) == {"id", "error"}

    again = batch(str(source), "-o", "out.jsonl")  # errors count as finished: nothing to send
    assert again.returncode == 0 and emulator.stats.requests == 8

    retried = batch(str(source), "-o", "out.jsonl", "--retry-errors")
    assert retried.returncode == 0, retried.stderr
    assert sent_ids(emulator) == Counter({"q0": 2, "q1": 2, **{f"q{i}": 1 for i in range(2, 8)}})
    lines = results(tmp_path / "out.jsonl")
    assert [line["id"] for line in lines] == [f"q{i}" for i in range(8)]  # each id once, in order
    assert all("text" in line for line in lines)
    assert "(8 ok, 0 errors), 6 from an earlier run" in summary_line(retried)


def test_bad_lines_are_reported_and_skipped(batch: BatchRunner, tmp_path: Path) -> None:
    source = write_input(
        tmp_path / "in.jsonl",
        {"id": "a", "prompt": "fine"},
        b"{oops\n",
        {"id": "b"},
        b"\n",
        {"id": "a", "prompt": "again"},
        {"id": "c", "prompt": "fine too", "temperature": -1},
        {"id": "d", "messages": [{"role": "user", "content": "fine"}]},
    )
    run = batch(str(source), "-o", "out.jsonl")
    assert run.returncode == 0, run.stderr
    warnings = run.stderr_lines[:-1]
    assert [w.split(": ", 3)[2] for w in warnings] == [f"{source}:{n}" for n in (2, 3, 5, 6)]
    assert warnings[0].startswith("botticelli: warning: ") and "not valid JSON" in warnings[0]
    assert 'needs exactly one of "prompt"' in warnings[1] and 'duplicate id "a"' in warnings[2]
    assert "temperature" in warnings[3]
    assert "2/2 results" in summary_line(run) and "4 bad lines" in summary_line(run)
    assert [line["id"] for line in results(tmp_path / "out.jsonl")] == ["a", "d"]

    nothing = write_input(tmp_path / "bad.jsonl", b"nope\n", b"[]\n")
    run = batch(str(nothing), "-o", "out2.jsonl")
    assert run.returncode == 1
    assert run.stderr_lines[-1].startswith("botticelli: error: ") and "no usable request lines" in run.stderr
    assert not (tmp_path / "out2.jsonl").exists()


def test_resume_after_sigkill(tmp_path: Path) -> None:
    """Kill -9 mid-run, run again: every id ends up in OUT exactly once; finished items were sent
    exactly once; only items in flight at the kill (at most --concurrency) were sent twice."""
    n, concurrency = 60, 4
    source = write_input(tmp_path / "in.jsonl", *questions(n, max_tokens=10))
    out = tmp_path / "out.jsonl"
    with Emulator(token_delay=0.01) as emu:  # ~0.1 s per request: the kill lands mid-run
        runner = BatchRunner(tmp_path, emu.base_url)
        proc = subprocess.Popen(
            runner.command(str(source), "-o", str(out), "-c", str(concurrency)),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=runner.env(),
            cwd=tmp_path,
        )
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and (not out.exists() or out.read_bytes().count(b"\n") < 12):
                time.sleep(0.01)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            proc.kill()
            assert proc.stderr is not None
            proc.stderr.close()
        assert proc.returncode == -signal.SIGKILL
        finished = {line["id"] for line in results_tolerant(out)}
        sent_before = set(sent_ids(emu))
        in_flight = sent_before - finished
        assert 12 <= len(finished) < n
        assert len(in_flight) <= concurrency

        run = runner(str(source), "-o", str(out), "-c", str(concurrency))
        assert run.returncode == 0, run.stderr
        assert f"resuming: {len(finished)} of {n} results already in" in run.stderr
        counts = sent_ids(emu)

    lines = results(out)
    assert [line["id"] for line in lines] == [f"q{i}" for i in range(n)]  # every id exactly once
    assert all("text" in line for line in lines)
    assert all(counts[i] == 1 for i in finished)  # finished work was not redone
    twice = {i for i, c in counts.items() if c == 2}
    assert twice <= in_flight and len(twice) <= concurrency and max(counts.values()) <= 2
    assert sum(counts.values()) == n + len(twice)


def results_tolerant(path: Path) -> list[dict[str, Any]]:
    """Result lines of a file a killed run left behind (a torn last line is not a result)."""
    found = []
    for line in path.read_bytes().split(b"\n"):
        with contextlib.suppress(orjson.JSONDecodeError):
            found.append(orjson.loads(line))
    return found


def test_torn_last_line_is_cut_off_and_redone(batch: BatchRunner, emulator: Emulator, tmp_path: Path) -> None:
    source = write_input(tmp_path / "in.jsonl", *questions(3))
    assert batch(str(source), "-o", "out.jsonl").returncode == 0
    out = tmp_path / "out.jsonl"
    whole = out.read_bytes().split(b"\n")
    out.write_bytes(b"\n".join(whole[:2]) + b"\n" + whole[2][:25])  # as a kill mid-write leaves it
    run = batch(str(source), "-o", "out.jsonl")
    assert run.returncode == 0, run.stderr
    assert "cut off a partial last line" in run.stderr
    assert [line["id"] for line in results(out)] == ["q0", "q1", "q2"]
    assert sent_ids(emulator) == Counter({"q0": 1, "q1": 1, "q2": 2})


def test_ctrl_c_stops_cleanly_and_the_rerun_finishes(tmp_path: Path) -> None:
    source = write_input(tmp_path / "in.jsonl", *questions(40, max_tokens=10))
    out = tmp_path / "out.jsonl"
    with Emulator(token_delay=0.01) as emu:
        runner = BatchRunner(tmp_path, emu.base_url)
        proc = subprocess.Popen(
            runner.command(str(source), "-o", str(out), "-c", "2"),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=runner.env(),
            cwd=tmp_path,
        )
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and (not out.exists() or out.read_bytes().count(b"\n") < 4):
                time.sleep(0.01)
            proc.send_signal(signal.SIGINT)
            stdout, stderr = proc.communicate(timeout=10)
        finally:
            proc.kill()
        check_hygiene(stdout, stderr, TEST_KEY)
        assert proc.returncode == 130, stderr
        assert stderr.strip().splitlines()[-1].startswith("botticelli: batch: interrupted with ")
        kept = results(out)  # no torn line after a Ctrl-C
        assert 4 <= len(kept) < 40
        run = runner(str(source), "-o", str(out))
        assert run.returncode == 0, run.stderr
    assert [line["id"] for line in results(out)] == [f"q{i}" for i in range(40)]


# ---- failures: exit codes and one line ----------------------------------------------------------


def test_usage_errors_exit_2(batch: BatchRunner, tmp_path: Path) -> None:
    source = write_input(tmp_path / "in.jsonl", *questions(1))
    cases = [
        ((str(source),), "Missing option '-o'"),
        (("missing.jsonl", "-o", "out.jsonl"), "does not exist"),
        ((str(source), "-o", str(source)), "must not be IN.jsonl"),
        ((str(source), "-o", str(tmp_path)), "is a directory"),
        ((str(source), "-o", "out.jsonl", "--batch-id", "batch_1"), "--batch-id goes with --remote"),
        ((str(source), "-o", "out.jsonl", "--poll-interval", "1"), "--poll-interval goes with --remote"),
        ((str(source), "-o", "out.jsonl", "-c", "0"), "--concurrency"),
    ]
    for args, needle in cases:
        run = batch(*args)
        assert run.returncode == 2, (args, run.stderr)
        assert len(run.stderr_lines) == 1 and run.stderr.startswith("botticelli: error: "), run.stderr
        assert needle in run.stderr, run.stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_no_key_exits_1_before_creating_the_output(batch: BatchRunner, tmp_path: Path) -> None:
    source = write_input(tmp_path / "in.jsonl", *questions(2))
    run = batch(str(source), "-o", "out.jsonl", key=None)
    assert run.returncode == 1
    assert len(run.stderr_lines) == 1 and "GROQ_API_KEY" in run.stderr and "local:smollm2" in run.stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_bad_key_stops_the_batch_instead_of_filling_out_with_errors(tmp_path: Path) -> None:
    source = write_input(tmp_path / "in.jsonl", *questions(30))
    with Emulator(api_keys={"gsk_the_right_one"}) as emu:
        run = BatchRunner(tmp_path, emu.base_url)(str(source), "-o", "out.jsonl", "-c", "3")
        sent = sum(sent_ids(emu).values())
    assert run.returncode == 1
    assert len(run.stderr_lines) == 1 and "401" in run.stderr and "run the same command again" in run.stderr
    assert 1 <= sent <= 3
    assert not (tmp_path / "out.jsonl").exists()  # no error lines that would count as done


def test_per_line_model_override(batch: BatchRunner, emulator: Emulator, tmp_path: Path) -> None:
    source = write_input(
        tmp_path / "in.jsonl",
        {"id": "a", "prompt": "question a"},
        {"id": "b", "prompt": "question b", "model": "openai/gpt-oss-120b"},
        {"id": "c", "prompt": "question c", "model": "no-such-model"},
    )
    run = batch(str(source), "-o", "out.jsonl")
    assert run.returncode == 0, run.stderr
    by_id = {line["id"]: line for line in results(tmp_path / "out.jsonl")}
    assert by_id["a"]["model"] == MODEL and by_id["b"]["model"] == "openai/gpt-oss-120b"
    assert by_id["c"]["error"]["class"] == "ModelNotFoundError"  # that line's problem only


def test_remote_runs_through_the_batch_api(batch: BatchRunner, emulator: Emulator, tmp_path: Path) -> None:
    import importlib.util

    source = write_input(tmp_path / "in.jsonl", *questions(5), b"oops\n")
    if importlib.util.find_spec("botticelli.batch.remote") is None:
        run = batch(str(source), "-o", "out.jsonl", "--remote")
        assert run.returncode == 2 and "--remote is not available yet" in run.stderr
        return
    run = batch(str(source), "-o", "out.jsonl", "--remote", "--poll-interval", "0.05")
    assert run.returncode == 0, run.stderr
    assert "5/5 results in out.jsonl (5 ok, 0 errors); 1 bad line; remote batch batch_" in summary_line(run)
    assert " completed, " in summary_line(run)
    lines = results(tmp_path / "out.jsonl")
    assert [line["id"] for line in lines] == [f"q{i}" for i in range(5)] and all(x["text"] for x in lines)
    assert not any(r.path.endswith("/chat/completions") for r in emulator.requests)  # not live
    assert not (tmp_path / "out.jsonl.batch").exists()
    local = batch(str(source), "-o", "out2.jsonl", "--remote", "-m", "local:smollm2")
    assert local.returncode == 2 and "--remote needs a Groq model" in local.stderr


def test_help(batch: BatchRunner) -> None:
    run = batch("--help")
    assert run.returncode == 0 and run.stderr == ""
    assert run.stdout.startswith("Usage: botticelli batch") and "Examples:" in run.stdout
    assert "--concurrency" in run.stdout and "--retry-errors" in run.stdout and "--remote" in run.stdout


# ---- progress display (in-process) --------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal_and_lines_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    from botticelli.batch import BatchProgress
    from botticelli.cli import batch as batch_cli

    snapshot = BatchProgress(done=5, total=10, failed=1, rate_limited=3, tokens=1234, elapsed=2.0)
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    display = batch_cli._Display.create(True, offset=90)
    assert type(display).__name__ == "_RichDisplay"
    display.update(snapshot)
    display.close()
    shown = terminal.getvalue()
    assert "95/100" in shown and "2.5/s" in shown and "3 429s" in shown and "1,234 tokens" in shown

    pipe = io.StringIO()
    monkeypatch.setattr(sys, "stderr", pipe)
    lines = batch_cli._Display.create(True, offset=0)
    assert isinstance(lines, batch_cli._LineDisplay)
    lines.next_at = 0  # due now
    lines.update(snapshot)
    lines.update(snapshot)  # not again until the interval has passed
    assert pipe.getvalue() == "botticelli: batch: 5/10, 2.5/s, ETA 2.0 s, 1 error, 3 429s, 1,234 tokens\n"
    assert type(batch_cli._Display.create(False, offset=0)) is batch_cli._Display
