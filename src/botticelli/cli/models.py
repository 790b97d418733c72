"""``botticelli models``: the model catalog shipped with the package, so it works offline."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import click

from . import output

if TYPE_CHECKING:
    from ..catalog import ModelInfo


@click.command(
    context_settings={"help_option_names": ["-h", "--help"]}, short_help="List Groq models and their limits."
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
def models(show_all: bool, plan: str, show_providers: bool) -> int:
    """List Groq models: status, context window, max completion and rate limits.

    Read from the catalog bundled with botticelli; no key or network needed.

    \b
    Examples:
      botticelli models
      botticelli models --all --plan developer
      botticelli models --providers
    """
    if show_providers:
        _print_plain(*_providers_table())
        return 0
    from .. import catalog

    entries = catalog.models("groq", include_retired=show_all)
    plans = sorted({name for m in entries for name in m.limits})
    if plan not in plans:
        raise output.usage_failure(f"--plan: expected one of {', '.join(plans)}, got {plan!r}")
    entries.sort(key=lambda m: (m.retired, m.kind != "chat", m.status != "production", m.id))
    if sys.stdout.isatty():
        _print_rich(*_table(entries, plan, show_all, commas=True), plan)
    else:  # plain columns of plain numbers: grep- and awk-friendly, never wrapped or truncated
        _print_plain(*_table(entries, plan, show_all, commas=False))
    return 0


def _table(
    entries: Sequence[ModelInfo], plan: str, show_all: bool, *, commas: bool
) -> tuple[list[str], list[list[str]]]:
    header = ["ID", "STATUS", "KIND", "CONTEXT", "MAX OUT", f"RPM ({plan})", f"TPM ({plan})"]
    if show_all:
        header += ["RETIRED", "REPLACEMENT"]
    number = "{:,}".format if commas else str
    rows = []
    for m in entries:
        limits = m.limits.get(plan)
        row = [
            m.id,
            m.status,
            m.kind,
            _cell(m.context_window, number),
            _cell(m.max_completion_tokens, number),
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
