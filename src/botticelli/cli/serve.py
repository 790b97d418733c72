"""``botticelli serve``: the Groq-compatible emulator in the foreground, for offline development
and for testing code that speaks Groq's API (point ``GROQ_BASE_URL`` at it)."""

from __future__ import annotations

import click

from . import output

INSTALL_HINT = "pip install 'botticelli[emulator]'"


@click.command(
    context_settings={"help_option_names": ["-h", "--help"]},
    short_help="Run a local Groq-compatible server (the emulator).",
)
@click.option("--host", metavar="HOST", help="Address to listen on (default 127.0.0.1).")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    metavar="PORT",
    help="Port to listen on; 0 (the default) picks a free one. The URL is printed on start.",
)
@click.option(
    "--backend",
    type=click.Choice(["fake", "local"]),
    help="fake: instant deterministic text (default); local: the bundled smollm2 model.",
)
@click.option("--enforce-limits", is_flag=True, help="Answer 429 like Groq when over the free plan's limits.")
@click.option(
    "--token-delay",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="Sleep this long per streamed token, to look like a real model.",
)
def serve(
    host: str | None, port: int | None, backend: str | None, enforce_limits: bool, token_delay: float | None
) -> int:
    """Run a local Groq-compatible server (the emulator) until Ctrl-C.

    It accepts any key starting with gsk_ and speaks Groq's wire format, errors and
    rate-limit headers included.

    \b
    Examples:
      botticelli serve --port 8000
      GROQ_BASE_URL=http://127.0.0.1:8000 GROQ_API_KEY=gsk_local botticelli ask "hi"
    """
    import importlib.util

    if importlib.util.find_spec("aiohttp") is None:
        raise output.Failure(f"the emulator needs aiohttp; install it with {INSTALL_HINT}")
    argv: list[str] = []
    if host is not None:
        argv += ["--host", host]
    if port is not None:
        argv += ["--port", str(port)]
    if backend is not None:
        argv += ["--backend", backend]
    if enforce_limits:
        argv.append("--enforce-limits")
    if token_delay is not None:
        argv += ["--token-delay", str(token_delay)]
    from ..emulator.__main__ import main as emulator_main

    return emulator_main(argv)
