"""The ``botticelli`` command group and ``main``, which turns every failure into one stderr line
and an exit code: a CLI in a pipe must never answer with a traceback."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import click

from .._version import __version__
from . import output

#: Each command's module, imported when the command runs (or help lists it): a one-shot
#: ``botticelli ask`` does not build the other commands.
_COMMANDS = {
    "ask": "ask",
    "batch": "batch",
    "cache": "cache",
    "limits": "limits",
    "models": "models",
    "serve": "serve",
    "speak": "audio",
    "transcribe": "audio",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*_COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = _COMMANDS.get(cmd_name)
        if module is None or cmd_name in self.commands:
            return super().get_command(ctx, cmd_name)
        import importlib

        command: click.Command = getattr(importlib.import_module(f"{__package__}.{module}"), cmd_name)
        return command


CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(cls=_LazyGroup, context_settings=CONTEXT_SETTINGS, invoke_without_command=True)
@click.version_option(__version__, "-V", "--version", prog_name=output.PROG, message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Fast LLM inference from the shell: Groq first, with an offline model when there is no key.

    \b
    Examples:
      botticelli ask "Why is the sky blue?"
      echo "Summarise this" | botticelli ask -m openai/gpt-oss-120b
      botticelli models
      botticelli models --providers
      botticelli batch questions.jsonl -o answers.jsonl
      botticelli limits
      botticelli cache stats
      botticelli serve --port 8000
      botticelli transcribe meeting.m4a
      botticelli speak "Hello" -o hello.wav

    Set GROQ_API_KEY (environment or ./.env) to use Groq; get a key at https://console.groq.com/keys.
    """
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code (the console script passes it to ``sys.exit``)."""
    output.install_warning_handler()
    args = list(argv) if argv is not None else sys.argv[1:]
    try:
        result = cli.main(args=args, prog_name=output.PROG, standalone_mode=False)
    except output.Failure as failure:
        output.error(failure.message)
        return failure.exit_code
    except click.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        output.error(exc.format_message() + hint)
        return output.EXIT_USAGE
    except click.ClickException as exc:
        output.error(exc.format_message())
        return exc.exit_code
    except (click.Abort, KeyboardInterrupt):
        return output.EXIT_INTERRUPTED
    except (output.StdoutClosed, BrokenPipeError):
        _silence_stdout()
        return output.EXIT_BROKEN_PIPE
    except Exception as exc:  # the last line of defence: one line, never a traceback
        from ..errors import BotticelliError

        if isinstance(exc, BotticelliError):
            output.error(str(exc))
            return output.EXIT_FAILURE
        if os.environ.get("BOTTICELLI_DEBUG"):
            raise
        output.error(f"unexpected {type(exc).__name__}: {exc} (set BOTTICELLI_DEBUG=1 for a traceback)")
        return output.EXIT_FAILURE
    return result if isinstance(result, int) else 0


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not complain about the
    reader that went away (``botticelli ask ... | head -c1``)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass
