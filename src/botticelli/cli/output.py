"""Everything the CLI writes: one-line errors and warnings on stderr, streamed text on stdout.

Errors are a single ``botticelli: error: ...`` line because the CLI is used in pipes and scripts,
where a traceback is noise and a stable prefix is something to grep for.
"""

from __future__ import annotations

import sys
import warnings
from typing import TextIO

PROG = "botticelli"

#: exit codes: 1 a request or configuration failed, 2 bad usage, 130 Ctrl-C, 141 closed stdout
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141


class Failure(Exception):
    """Stop the command: print ``message`` as one error line and exit with ``exit_code``."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class StdoutClosed(Exception):
    """The reader of stdout went away (``botticelli ask ... | head -c1``). Not an OSError on
    purpose: click would turn a broken pipe into a silent exit 1."""


def usage_failure(message: str) -> Failure:
    return Failure(message, EXIT_USAGE)


def _one_line(text: str) -> str:
    """Collapse whitespace so a multi-line message still prints as one line."""
    from ..errors import redact  # small module; keeps keys out of everything printed

    return redact(" ".join(str(text).split()))


def error(message: str) -> None:
    _write_stderr(f"{PROG}: error: {_one_line(message)}\n")


def warning(message: str) -> None:
    _write_stderr(f"{PROG}: warning: {_one_line(message)}\n")


_limiter_notices = False


def forward_limiter_notices() -> None:
    """Show the rate limiter's notices ("waiting 12 s for ...") as one ``botticelli:`` line each.
    Called by the commands that send requests, so ``--help`` never imports the limiter."""
    global _limiter_notices
    if not _limiter_notices:
        from ..ratelimit import notices_to

        notices_to(notice)
        _limiter_notices = True


def notice(message: str) -> None:
    _write_stderr(f"{PROG}: {_one_line(message)}\n")


def _write_stderr(text: str) -> None:
    stream = sys.stderr
    if stream is None:  # started without a stderr (pythonw, some daemons)
        return
    try:
        stream.write(text)
        stream.flush()
    except (OSError, ValueError):  # stderr closed: nothing sensible left to do
        pass


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    warning(str(message))


def install_warning_handler() -> None:
    """Print every Python warning as one ``botticelli: warning:`` line, without file and line."""
    warnings.showwarning = _show_warning


class TextSink:
    """Writes streamed text to stdout, flushing each piece, and remembers where the line stands
    so the answer always ends with exactly one newline (also after a mid-stream error)."""

    __slots__ = ("_at_line_start", "_out", "broken", "wrote")

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out if out is not None else sys.stdout
        self._at_line_start = True
        self.broken = False
        self.wrote = False

    def write(self, text: str) -> None:
        if not text:
            return
        try:
            self._out.write(text)
            self._out.flush()
        except BrokenPipeError:
            self.broken = True
            raise StdoutClosed from None
        self.wrote = True
        self._at_line_start = text.endswith("\n")

    def end_line(self) -> None:
        """Finish the answer with a newline unless it already ends with one."""
        if self.broken or self._at_line_start:
            return
        self.write("\n")
