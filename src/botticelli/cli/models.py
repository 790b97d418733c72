"""``botticelli models``: the model catalog shipped with the package, so it works offline."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import click

from . import output

if TYPE_CHECKING:
    from ..catalog import ModelInfo
    from ..types import ModelListing


@click.command(
    context_settings={"help_option_names": ["-h", "--help"]},
    short_help="List models: the bundled catalog, or --live from the server.",
)
@click.option("--all", "show_all", is_flag=True, help="Include retired models, with date and replacement.")
@click.option(
    "--plan",
    default="free",
    show_default=True,
    metavar="PLAN",
    help="Which plan's rate limits to show (free, developer).",
)
@click.option(
    "--providers",
    "show_providers",
    is_flag=True,
    help="List the providers instead: built-ins and installed plugins (the PROVIDER in provider:model).",
)
@click.option(
    "-p",
    "--provider",
    default="groq",
    show_default=True,
    metavar="NAME",
    help="Whose models: groq, anthropic, ollama, ... (see --providers).",
)
@click.option(
    "--live",
    is_flag=True,
    help="Ask the provider's server what it serves now (needs its key; Ollama: a running server).",
)
@click.option("--base-url", metavar="URL", help="With --live: the server to ask (default: the provider's).")
def models(
    show_all: bool, plan: str, show_providers: bool, provider: str, live: bool, base_url: str | None
) -> int:
    """List Groq models: status, context window, max completion and rate limits.

    Read from the catalog bundled with botticelli; no key or network needed.

    \b
    Examples:
      botticelli models
      botticelli models --all --plan developer
      botticelli models --providers
      botticelli models -p anthropic --live
    """
    if show_providers:
        _print_plain(*_providers_table())
        return 0
    from .. import plugins

    known = plugins.names()
    if provider not in known:
        raise output.usage_failure(f"--provider: expected one of {', '.join(known)}, got {provider!r}")
    if live:
        _print_plain(*_live_table(provider, base_url, show_all))
        return 0
    from .. import catalog

    entries = catalog.models(provider, include_retired=show_all)  # none bundled: an empty table
    plans = sorted({name for m in entries for name in m.limits})
    if not plans:  # a provider without plans: no limit columns
        _print_plain(*_table(entries, None, show_all, commas=False))
        return 0
    if plan not in plans:
        raise output.usage_failure(f"--plan: expected one of {', '.join(plans)}, got {plan!r}")
    entries.sort(key=lambda m: (m.retired, m.kind != "chat", m.status != "production", m.id))
    if sys.stdout.isatty():
        _print_rich(*_table(entries, plan, show_all, commas=True), plan)
    else:  # plain columns of plain numbers: grep- and awk-friendly, never wrapped or truncated
        _print_plain(*_table(entries, plan, show_all, commas=False))
    return 0


def _live_table(provider: str, base_url: str | None, show_all: bool) -> tuple[list[str], list[list[str]]]:
    """The provider's own list, asked over HTTP through its driver (key, retries, typed errors)."""
    import asyncio

    from ..plugins import create

    options = {"base_url": base_url} if base_url else {}

    async def ask() -> list[ModelListing]:
        driver = create(f"{provider}:", **options)
        lister = getattr(driver, "list_models", None)
        if lister is None:
            raise output.usage_failure(f"--live: the {provider} driver cannot list its server's models")
        async with driver:
            listed: list[ModelListing] = await lister()
            return listed

    listed = asyncio.run(ask())
    if not show_all:
        listed = [m for m in listed if m.status != "retired"]
    header = ["ID", "STATUS", "CREATED", "CONTEXT", "MAX OUT", "DEPRECATED", "RETIRES"]
    rows = [
        [
            m.id,
            m.status or "-",
            (m.created or "-")[:10],
            _cell(m.context_window, str),
            _cell(m.max_output_tokens, str),
            (m.deprecated_at or "-")[:10],
            (m.retires_at or "-")[:10],
        ]
        for m in listed
    ]
    if any(m.size for m in listed):  # a local server: what each model takes on disk
        header.append("SIZE")
        for row, m in zip(rows, listed, strict=True):
            row.append(f"{m.size / 1e9:.1f} GB" if m.size else "-")
    return header, rows


def _table(
    entries: Sequence[ModelInfo], plan: str | None, show_all: bool, *, commas: bool
) -> tuple[list[str], list[list[str]]]:
    header = ["ID", "STATUS", "KIND", "CONTEXT", "MAX OUT"]
    if plan is not None:
        header += [f"RPM ({plan})", f"TPM ({plan})"]
    if show_all:
        header += ["RETIRED", "REPLACEMENT"]
    number = "{:,}".format if commas else str
    rows = []
    for m in entries:
        row = [
            m.id,
            m.status,
            m.kind,
            _cell(m.context_window, number),
            _cell(m.max_completion_tokens, number),
        ]
        if plan is not None:
            limits = m.limits.get(plan)
            row += [
                _cell(limits.rpm if limits else None, number),
                _cell(limits.tpm if limits else None, number),
            ]
        if show_all:
            row += [m.retired_on or "", m.replacement or ""] if m.retired else ["", ""]
        rows.append(row)
    return header, rows


def _providers_table() -> tuple[list[str], list[list[str]]]:
    """Every provider ``-m provider:model`` accepts, where it comes from, without importing any."""
    from .. import plugins

    rows = [[p.name, p.target, p.origin] for p in plugins.providers()]
    return ["PROVIDER", "DRIVER", "FROM"], rows


def _cell(value: int | None, number: Callable[[int], str]) -> str:
    return number(value) if value is not None else "-"


def _print_plain(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = (
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]
    )
    try:
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:  # `botticelli models | head -3`
        raise output.StdoutClosed from None


def _print_rich(header: list[str], rows: list[list[str]], plan: str) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # rich is the optional `cli` extra
        _print_plain(header, rows)
        return
    numeric = {"CONTEXT", "MAX OUT", f"RPM ({plan})", f"TPM ({plan})"}
    table = Table(box=None, header_style="bold", pad_edge=False)
    for name in header:
        table.add_column(name, justify="right" if name in numeric else "left", no_wrap=name == "ID")
    for row in rows:
        style = "dim" if row[1] == "retired" else None
        table.add_row(*row, style=style)
    Console().print(table)
