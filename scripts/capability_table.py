"""Print the README's table of providers x capabilities, built from the model catalog.

    python scripts/capability_table.py           # print the markdown table
    python scripts/capability_table.py --write   # rewrite the README section between the markers

A cell reads "✓" when every current (not retired) model of the provider has the capability,
"some models" when some do, "—" when none does. A provider whose catalog lists no models (an
OpenAI-compatible server of unknown make) is described by its default profile, which refuses
nothing: its cells read "not checked". ``tests/test_capabilities.py`` fails when the README
differs from what this prints.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from botticelli import catalog
from botticelli.catalog import Capabilities

README = Path(__file__).resolve().parent.parent / "README.md"
START = "<!-- capabilities:start -->"
END = "<!-- capabilities:end -->"

Check = Callable[[Capabilities], bool]

COLUMNS: tuple[tuple[str, Check], ...] = (
    ("Tools", lambda c: c.tools),
    ("Parallel tool calls", lambda c: c.parallel_tool_calls),
    ("JSON mode", lambda c: c.json_object),
    ("JSON schema", lambda c: c.json_schema),
    ("Strict schema", lambda c: c.strict_json_schema),
    ("Vision", lambda c: c.vision),
    ("Audio in", lambda c: c.audio_input),
    ("Documents", lambda c: c.document_input),
    ("Speech-to-text", lambda c: c.speech_to_text),
    ("Text-to-speech", lambda c: c.text_to_speech),
    ("Reasoning", lambda c: c.reasoning),
    ("`reasoning_effort`", lambda c: c.reasoning_efforts is None or bool(c.reasoning_efforts)),
    ("Built-in tools", lambda c: bool(c.builtin_tools)),
    ("Streaming", lambda c: c.streaming),
    ("Rejects parameters", lambda c: bool(c.rejected_parameters)),
)


def _cell(profiles: Sequence[Capabilities], check: Check) -> str:
    having = sum(1 for p in profiles if check(p))
    if having == 0:
        return "—"
    return "✓" if having == len(profiles) else "some models"


def _tokens(values: Sequence[int | None]) -> str:
    known = [v for v in values if v is not None]
    return f"{max(known):,}" if known else "—"


def _unlisted(default: Capabilities) -> str:
    if default.reasoning_efforts is None or default.tools:
        return "not checked"
    return "text chat only"


def table() -> str:
    header = [
        "Provider",
        "Models",
        *(name for name, _ in COLUMNS),
        "Max context",
        "Max output",
        "Unlisted models",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for provider in catalog.providers():
        current = catalog.models(provider)
        default = catalog.default_capabilities(provider)
        profiles = [m.capabilities for m in current]
        name = f"{catalog.provider_name(provider)} (`{provider}`)"
        if profiles:
            cells = [_cell(profiles, check) for _, check in COLUMNS]
            count = str(len(profiles))
        else:
            cells = ["not checked" if check(default) else "—" for _, check in COLUMNS]
            count = "0"
        row = [
            name,
            count,
            *cells,
            _tokens([p.context_window for p in profiles]),
            _tokens([p.max_output_tokens for p in profiles]),
            _unlisted(default),
        ]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def section(text: str) -> str:
    """The README text between the markers, stripped; raises if the markers are missing."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"the README has no section between {START} and {END}")
    return text[start + len(START) : end].strip()


def write(readme: Path = README) -> bool:
    """Rewrite the section; True when the README changed."""
    text = readme.read_text(encoding="utf-8")
    section(text)  # the markers must be there
    start, end = text.index(START) + len(START), text.index(END)
    new = text[:start] + "\n" + table() + "\n" + text[end:]
    if new == text:
        return False
    readme.write_text(new, encoding="utf-8")
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"rewrite the section of {README.name}")
    parser.add_argument("--readme", type=Path, default=README, help="the README to rewrite (--write)")
    args = parser.parse_args(argv)
    if args.write:
        changed = write(args.readme)
        print(f"{args.readme}: {'updated' if changed else 'already up to date'}", file=sys.stderr)
    else:
        sys.stdout.write(table() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
