"""Options shared by the commands that send requests (``ask``, ``batch``): one definition each."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def env_default(name: str) -> Callable[[], str | None]:
    """A click default read lazily from the environment or ``./.env`` (converted by the type)."""

    def read() -> str | None:
        from ..config import env_value

        return env_value(name)

    return read


def http_options(function: F) -> F:
    """``--timeout`` and ``--retries`` (also from ``BOTTICELLI_TIMEOUT`` / ``BOTTICELLI_MAX_RETRIES``)."""
    function = click.option(
        "--retries",
        type=click.IntRange(min=0),
        default=env_default("BOTTICELLI_MAX_RETRIES"),
        metavar="N",
        help="Retries on 429, 5xx and connection errors (default 2). [env: BOTTICELLI_MAX_RETRIES]",
    )(function)
    return click.option(
        "--timeout",
        type=click.FloatRange(min=0, min_open=True),
        default=env_default("BOTTICELLI_TIMEOUT"),
        metavar="SECONDS",
        help="Give up when the server is silent this long (connect and each read). [env: BOTTICELLI_TIMEOUT]",
    )(function)


def driver_options(timeout: float | None, retries: int | None) -> dict[str, Any]:
    """Constructor options for an HTTP driver from ``--timeout`` / ``--retries``."""
    options: dict[str, Any] = {}
    if timeout is not None:
        options["timeout"] = timeout
    if retries is not None:
        options["max_retries"] = retries
    return options


def options_for(spec: str, options: dict[str, Any]) -> dict[str, Any]:
    """The shared options the provider of ``spec`` takes: the offline model (``local:``) has no
    HTTP timeouts or retries, so they are dropped for it; so for any plugin without them.
    ``ConfigurationError`` for an unknown provider or a plugin that fails to load."""
    from .. import plugins

    if not options:
        return {}
    return plugins.accepted_options(plugins.parse_spec(spec).provider, options)
