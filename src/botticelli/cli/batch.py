"""``botticelli batch IN.jsonl -o OUT.jsonl``: many requests, one result line each, resumable.

OUT.jsonl is also the journal: each result is appended the moment its item finishes, so a run
that is interrupted (Ctrl-C, SIGKILL, a reboot) is finished by running the same command again.
Results stream through ``batch.iter_batch`` straight into the journal, so however big the input,
no more than ``--concurrency`` responses are held at once; ``Journal.finish`` puts the file in
input order at the end.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from .. import _defaults
from . import output
from .ask import choose_model
from .options import driver_options, http_options, options_for

if TYPE_CHECKING:
    from ..batch import BadLine, BatchItem, BatchProgress, Journal
    from ..drivers.base import Driver

#: bad input lines printed one by one; beyond this only their number is given
MAX_BAD_LINES_SHOWN = 50
#: seconds between plain progress lines when stderr is not a terminal
PROGRESS_LINE_INTERVAL = 10.0

NO_KEY = (
    "no Groq API key: set GROQ_API_KEY (get a key at https://console.groq.com/keys), "
    "or pass --model local:smollm2 to run the batch offline"
)


@click.command(
    context_settings={"help_option_names": ["-h", "--help"]},
    short_help="Run a JSONL file of requests; resumable.",
)
@click.argument(
    "input_path", metavar="IN.jsonl", type=click.Path(exists=True, dir_okay=False, allow_dash=True)
)
@click.option(
    "-o",
    "--output",
    "output_path",
    required=True,
    metavar="OUT.jsonl",
    type=click.Path(dir_okay=False),
    help="Where results go, one JSON line per request. Also the journal: rerun to resume.",
)
@click.option(
    "-m",
    "--model",
    metavar="MODEL",
    help="A Groq model id, or provider:model. Default: $BOTTICELLI_MODEL, else openai/gpt-oss-20b. "
    'A line\'s own "model" overrides it.',
)
@click.option(
    "-c",
    "--concurrency",
    type=click.IntRange(1, 1024),
    default=_defaults.BATCH_CONCURRENCY,
    show_default=True,
    metavar="N",
    help="Requests in flight at once (the rate limiter still paces them).",
)
@click.option(
    "--retry-errors", is_flag=True, help="Also rerun requests whose result in OUT.jsonl is an error."
)
@http_options
@click.option("--no-progress", is_flag=True, help="No progress bar or progress lines; only the summary.")
# ---- remote: Groq's Batch API (botticelli.batch.remote) ------------------------------------------
@click.option(
    "--remote",
    is_flag=True,
    help="Send the batch through Groq's Batch API (cheaper, done within a window) instead of live.",
)
@click.option(
    "--batch-id",
    metavar="ID",
    help="With --remote: pick up an already submitted Groq batch (e.g. after a restart).",
)
@click.option(
    "--poll-interval",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="With --remote: first pause between status checks (default 5, growing to 60).",
)
def batch(
    input_path: str,
    output_path: str,
    model: str | None,
    concurrency: int,
    retry_errors: bool,
    timeout: float | None,
    retries: int | None,
    no_progress: bool,
    remote: bool,
    batch_id: str | None,
    poll_interval: float | None,
) -> int:
    """Run every request in IN.jsonl and write one result per line to OUT.jsonl.

    \b
    Each line of IN.jsonl is one request, in a simple or a chat form:
      {"id": "q1", "prompt": "Why is the sky blue?", "system": "Be brief", "max_tokens": 200}
      {"id": "q2", "messages": [{"role": "user", "content": "Hi"}], "temperature": 0.5}
    Each line of OUT.jsonl carries the same "id" and either "text" (with "usage") or "error".

    OUT.jsonl doubles as the journal: if the run stops (Ctrl-C, kill, crash), run the same
    command again and it finishes the rest without redoing finished requests. Bad input lines
    are reported with their line number and skipped. Exit 0 once every good line has a result,
    errors included (use --retry-errors to rerun those).

    \b
    Examples:
      botticelli batch questions.jsonl -o answers.jsonl
      botticelli batch questions.jsonl -o answers.jsonl -m openai/gpt-oss-120b -c 16
      botticelli batch questions.jsonl -o answers.jsonl --retry-errors
    """
    if not remote and (batch_id is not None or poll_interval is not None):
        flag = "--batch-id" if batch_id is not None else "--poll-interval"
        raise output.usage_failure(f"{flag} goes with --remote")
    if input_path != "-" and os.path.realpath(input_path) == os.path.realpath(output_path):
        raise output.usage_failure("OUT.jsonl must not be IN.jsonl: the output is also the journal")
    if os.path.exists(output_path) and not os.path.isfile(output_path):
        raise output.usage_failure(f"{output_path} is not a regular file; OUT.jsonl is also the journal")
    items = _read_input(input_path)
    spec, notice = choose_model(model)
    if notice:  # no key and nothing chosen: `ask` would fall back to the offline model, a batch won't
        raise output.Failure(NO_KEY)
    options = driver_options(timeout, retries)
    plan = _Plan(
        input_name=_display_name(input_path),
        output_path=output_path,
        items=items.good,
        bad=len(items.bad),
        spec=spec,
        options=options,
        concurrency=concurrency,
        retry_errors=retry_errors,
        progress=not no_progress,
    )
    if remote:
        return _run_remote(plan, batch_id, poll_interval)
    return _run(plan)


# ---- input -------------------------------------------------------------------------------------


@dataclass
class _Input:
    good: list[BatchItem]
    bad: list[BadLine]


def _display_name(path: str) -> str:
    return "<stdin>" if path == "-" else path


def _read_input(path: str) -> _Input:
    """Parse IN.jsonl; print one warning per bad line (up to a cap). Fails only when nothing in
    the file is usable, since a batch of zero requests out of a non-empty file is a mistake."""
    from ..batch import parse_jsonl

    try:
        good, bad = parse_jsonl(path)
    except OSError as exc:
        raise output.Failure(f"cannot read {path}: {exc.strerror or exc}") from None
    name = _display_name(path)
    for entry in bad[:MAX_BAD_LINES_SHOWN]:
        output.warning(f"{name}:{entry.line}: {entry.reason}")
    if len(bad) > MAX_BAD_LINES_SHOWN:
        output.warning(f"{name}: {len(bad) - MAX_BAD_LINES_SHOWN} more bad lines not shown")
    if bad and not good:
        raise output.Failure(f"{name}: no usable request lines ({_plural(len(bad), 'bad line')})")
    return _Input(good, bad)


# ---- running -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    input_name: str
    output_path: str
    items: list[BatchItem]
    bad: int
    spec: str
    options: dict[str, Any]
    concurrency: int
    retry_errors: bool
    progress: bool


@dataclass
class _Outcome:
    total: int
    earlier: int = 0  # results already in OUT.jsonl that this run kept
    ran: int = 0
    errors: int = 0  # error results in OUT.jsonl at the end
    rate_limited: int = 0
    tokens: int = 0
    elapsed: float = 0.0
    complete: bool = False
    last: BatchProgress | None = field(default=None, repr=False)


def _run(plan: _Plan) -> int:
    import asyncio

    from ..batch import BatchAborted, Journal, JournalError
    from ..batch.journal import remove_if_empty

    outcome = _Outcome(total=len(plan.items))
    started = time.perf_counter()
    pool = _DriverPool(plan.spec, plan.options)  # before the journal: no key, no empty OUT file
    existed = os.path.exists(plan.output_path)
    journal = Journal(plan.output_path)
    try:
        journal.open()
    except JournalError as exc:
        raise output.Failure(str(exc)) from None
    try:
        asyncio.run(_execute(plan, outcome, pool, journal))
    except BaseException as exc:
        if not existed and journal.appended == 0:  # a run that wrote nothing leaves no file
            remove_if_empty(plan.output_path)
        done = outcome.earlier + outcome.ran
        if isinstance(exc, BatchAborted):
            raise output.Failure(
                f"{exc.error}; stopped with {done} of {outcome.total} results in {plan.output_path}: "
                "fix the cause and run the same command again to finish the rest"
            ) from None
        if isinstance(exc, KeyboardInterrupt):
            output.notice(
                f"batch: interrupted with {done} of {outcome.total} results in {plan.output_path}; "
                "run the same command again to finish the rest"
            )
        raise
    outcome.elapsed = time.perf_counter() - started
    _summary(plan, outcome)
    return 0 if outcome.complete else output.EXIT_FAILURE


async def _execute(plan: _Plan, outcome: _Outcome, pool: _DriverPool, journal: Journal) -> None:
    try:
        async with journal:
            await _journaled(plan, outcome, pool, journal)
    finally:
        await pool.aclose()


async def _journaled(plan: _Plan, outcome: _Outcome, pool: _DriverPool, journal: Journal) -> None:
    """Run what OUT.jsonl lacks, appending each result as it comes; tidy the file at the end."""
    import contextlib

    from ..batch import iter_batch

    _report_journal(plan, journal)
    pending = journal.pending(plan.items, retry_errors=plan.retry_errors)
    outcome.earlier = outcome.total - len(pending)
    if outcome.earlier and pending:
        output.notice(
            f"batch: resuming: {outcome.earlier} of {outcome.total} results already in "
            f"{plan.output_path}; running the other {len(pending)}"
        )
    display = _Display.create(plan.progress and bool(pending), offset=outcome.earlier)

    def on_progress(snapshot: BatchProgress) -> None:
        outcome.ran = snapshot.done
        outcome.last = snapshot
        display.update(snapshot)

    results = iter_batch(
        pool.default,
        pending,
        concurrency=plan.concurrency,
        on_progress=on_progress,
        stop_on=_fatal,
        driver_for=pool.for_item if any(i.model for i in pending) else None,
    )
    try:
        async with contextlib.aclosing(results):
            async for result in results:
                journal.append(result)  # before the worker takes another item
    finally:
        display.close()
    outcome.complete = journal.finish([item.id for item in plan.items])
    outcome.errors = sum(1 for item in plan.items if journal.status(item.id) is False)
    if outcome.last is not None:
        outcome.rate_limited = outcome.last.rate_limited
        outcome.tokens = outcome.last.tokens


def _report_journal(plan: _Plan, journal: Journal) -> None:
    name = plan.output_path
    if journal.torn:
        output.notice(f"batch: {name}: cut off a partial last line left by an interrupted run")
    for number in journal.bad_lines[:MAX_BAD_LINES_SHOWN]:
        output.warning(f"{name}:{number}: not a result line; it is dropped when the batch completes")
    unknown = journal.unknown_ids(plan.items)
    if unknown:
        output.warning(
            f"{name} holds {_plural(unknown, 'result')} for ids not in {plan.input_name}; they are kept"
        )


def _fatal(item: BatchItem, error: Exception) -> bool:
    """Errors that every other item would hit too: stop rather than fill OUT.jsonl with them
    (they would then count as finished). A per-line model's missing model stays that line's."""
    from ..errors import AuthenticationError, ModelNotFoundError, RateLimitError

    if isinstance(error, AuthenticationError):
        return True
    if isinstance(error, RateLimitError):
        return error.daily  # a daily quota: waiting in-process will not help, a later rerun will
    return isinstance(error, ModelNotFoundError) and item.model is None


class _DriverPool:
    """The default driver, plus one per model named by a line's ``"model"``, made on first use.
    A model whose driver cannot be made (unknown provider) fails its own lines only."""

    def __init__(self, spec: str, options: dict[str, Any]) -> None:
        from ..drivers import create

        self._create = create
        self._options = options
        output.forward_limiter_notices()
        self.default = create(spec, **options_for(spec, self._options))
        self._drivers: dict[str, Driver | Exception] = {}

    def for_item(self, item: BatchItem) -> Driver:
        if item.model is None:
            return self.default
        found = self._drivers.get(item.model)
        if found is None:
            try:
                found = self._create(item.model, **options_for(item.model, self._options))
            except Exception as exc:
                found = exc
            self._drivers[item.model] = found
        if isinstance(found, Exception):
            raise found
        return found

    async def aclose(self) -> None:
        for driver in [self.default, *self._drivers.values()]:
            if not isinstance(driver, Exception):
                await driver.aclose()


# ---- progress and summary ------------------------------------------------------------------------


class _Display:
    """Progress on stderr: a rich bar on a terminal, a plain line every few seconds otherwise."""

    def __init__(self, offset: int) -> None:
        self.offset = offset

    @staticmethod
    def create(enabled: bool, *, offset: int) -> _Display:
        stream = sys.stderr
        if not enabled or stream is None:
            return _Display(offset)
        if stream.isatty():
            try:
                return _RichDisplay(offset)
            except ImportError:  # rich is the `cli` extra; without it, plain lines
                pass
        return _LineDisplay(offset)

    def update(self, snapshot: BatchProgress) -> None:
        return None

    def close(self) -> None:
        return None


class _LineDisplay(_Display):
    def __init__(self, offset: int, interval: float = PROGRESS_LINE_INTERVAL) -> None:
        super().__init__(offset)
        self.interval = interval
        self.next_at = time.monotonic() + interval

    def update(self, snapshot: BatchProgress) -> None:
        now = time.monotonic()
        if now < self.next_at or snapshot.done == snapshot.total:
            return
        self.next_at = now + self.interval
        done = self.offset + snapshot.done
        total = "?" if snapshot.total is None else self.offset + snapshot.total
        output.notice(f"batch: {done}/{total}, {progress_stats(snapshot)}")


class _RichDisplay(_Display):
    def __init__(self, offset: int) -> None:
        super().__init__(offset)
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("batch"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[stats]}"),
            console=Console(stderr=True),
            refresh_per_second=5,
        )
        self.task = self.progress.add_task("batch", total=None, completed=offset, stats="")
        self.last = 0.0
        self.progress.start()

    def update(self, snapshot: BatchProgress) -> None:
        now = time.monotonic()
        if now - self.last < 0.1 and snapshot.done != snapshot.total:
            return  # the bar redraws 5 times a second; no need to feed it every item
        self.last = now
        self.progress.update(
            self.task,
            total=None if snapshot.total is None else self.offset + snapshot.total,
            completed=self.offset + snapshot.done,
            stats=progress_stats(snapshot),
        )

    def close(self) -> None:
        self.progress.stop()


def progress_stats(snapshot: BatchProgress) -> str:
    """Rate, time left, errors, 429s and tokens of this run: what tells a stuck batch from a
    throttled one."""
    eta = snapshot.eta
    parts = [
        f"{snapshot.rate:.1f}/s",
        f"ETA {_duration(eta)}" if eta is not None else "ETA -",
        _plural(snapshot.failed, "error"),
        f"{snapshot.rate_limited} 429s",
        f"{snapshot.tokens:,} tokens",
    ]
    return ", ".join(parts)


def _summary(plan: _Plan, outcome: _Outcome) -> None:
    results = outcome.earlier + outcome.ran
    ok = results - outcome.errors
    text = f"batch: {results}/{outcome.total} results in {plan.output_path}"
    text += f" ({ok} ok, {_plural(outcome.errors, 'error')})"
    if outcome.earlier:
        text += f", {outcome.earlier} from an earlier run"
    text += f"; {_plural(plan.bad, 'bad line')}"
    text += f"; this run: {outcome.ran} sent, {outcome.rate_limited} 429s, {outcome.tokens:,} tokens"
    text += f", {_duration(outcome.elapsed)}"
    output.notice(text)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


# ---- remote ------------------------------------------------------------------------------------


def _run_remote(plan: _Plan, batch_id: str | None, poll_interval: float | None) -> int:
    """``--remote``: the same input and journal, run by Groq's Batch API through
    ``botticelli.batch.remote`` (imported only here)."""
    import asyncio

    from .. import plugins
    from ..batch.remote import run_remote
    from ..drivers.http import HTTPDriver
    from ..errors import ConfigurationError

    try:
        spec = plugins.parse_spec(plan.spec)
    except ConfigurationError as exc:
        raise output.usage_failure(str(exc)) from None
    if spec.provider != "groq":  # the Batch API is Groq's
        raise output.usage_failure(f"--remote needs a Groq model, not {plan.spec}")
    driver = plugins.create(spec, **plan.options)
    if not isinstance(driver, HTTPDriver):  # no pool is opened before the first request
        raise output.usage_failure(f"--remote needs a Groq model, not {plan.spec}")
    options: dict[str, Any] = {"batch_id": batch_id, "retry_errors": plan.retry_errors}
    if poll_interval is not None:
        options.update(poll_interval=poll_interval, max_poll_interval=max(poll_interval, 60.0))
    if plan.progress:
        options["on_status"] = lambda found: output.notice(
            f"batch: remote batch {found.id}: {found.status}, {found.completed}/{found.total} done, "
            f"{found.failed} failed"
        )

    async def go() -> Any:
        async with driver:
            return await run_remote(driver, plan.items, plan.output_path, **options)

    started = time.perf_counter()
    try:
        summary = asyncio.run(go())
    except KeyboardInterrupt:
        output.notice(
            "batch: stopped waiting; a submitted remote batch runs on: run the same command again "
            "to collect its results"
        )
        raise
    results, errors = _results_in(plan)
    text = f"batch: {results}/{len(plan.items)} results in {plan.output_path}"
    text += f" ({results - errors} ok, {_plural(errors, 'error')})"
    if summary.earlier:
        text += f", {summary.earlier} from an earlier run"
    text += f"; {_plural(plan.bad, 'bad line')}"
    if summary.batch_id:
        text += f"; remote batch {summary.batch_id} {summary.status}"
        if summary.missing:
            text += f", {summary.missing} without a result"
    text += f", {_duration(time.perf_counter() - started)}"
    output.notice(text)
    return 0 if summary.complete else output.EXIT_FAILURE


def _results_in(plan: _Plan) -> tuple[int, int]:
    """Results and error results for this input's ids in OUT.jsonl (read back: the remote
    run wrote it)."""
    from ..batch.journal import read_results
    from ..batch.lines import journal_id

    try:
        found = read_results(plan.output_path)
    except OSError:
        return 0, 0
    keys = (journal_id(item.id) for item in plan.items)
    outcomes = [found[key] for key in keys if key in found]
    return len(outcomes), outcomes.count(False)
