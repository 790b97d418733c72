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
    from .. import emulator

    defaults = emulator.ServeOptions()
    return emulator.serve(
        emulator.ServeOptions(
            host=defaults.host if host is None else host,
            port=defaults.port if port is None else port,
            backend=defaults.backend if backend is None else backend,
            enforce_limits=enforce_limits,
            token_delay=defaults.token_delay if token_delay is None else token_delay,
        )
    )
