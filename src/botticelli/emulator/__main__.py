"""``python -m botticelli.emulator``: serve the emulator until SIGINT/SIGTERM.

Prints exactly one line, ``botticelli emulator listening on http://HOST:PORT``, once it accepts
connections, so a parent process started with ``--port 0`` can read the URL. The options map one
to one onto ``ServeOptions``; ``serve`` does the rest (as for ``botticelli serve``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from botticelli.emulator.backend import backend_names
from botticelli.emulator.common.state import DEFAULT_BATCH_STEP
from botticelli.emulator.groq.emulator import PLANS, ServeOptions, serve


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m botticelli.emulator",
        description="A Groq-compatible emulator for tests and benchmarks.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 (default) picks a free port")
    parser.add_argument("--plan", choices=PLANS, default="free", help="whose per-model limits to apply")
    parser.add_argument("--enforce-limits", action="store_true", help="answer 429/413 when over a limit")
    for name in ("rpm", "rpd", "tpm", "tpd"):
        parser.add_argument(f"--{name}", type=int, metavar="N", help=f"override the plan's {name.upper()}")
    parser.add_argument("--token-delay", type=float, default=0.0, metavar="SECONDS", help="sleep per token")
    parser.add_argument(
        "--window-scale",
        type=float,
        default=1.0,
        metavar="FACTOR",
        help="multiply every limit window (0.1: a 6 s minute), for quick limit tests",
    )
    parser.add_argument(
        "--batch-step",
        type=float,
        default=DEFAULT_BATCH_STEP,
        metavar="SECONDS",
        help=f"pause between Batch API job phases (default {DEFAULT_BATCH_STEP})",
    )
    parser.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        metavar="KEY",
        help="accept only these keys (repeatable); default: any key starting with gsk_",
    )
    parser.add_argument(
        "--reply-tokens",
        type=int,
        metavar="N",
        help="fake backend: every reply N tokens long unless max_tokens cuts it (default 16-48)",
    )
    parser.add_argument(
        "--backend", default="fake", help=f"model backend (known: {', '.join(backend_names())})"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return serve(
        ServeOptions(
            host=args.host,
            port=args.port,
            plan=args.plan,
            enforce_limits=args.enforce_limits,
            rpm=args.rpm,
            rpd=args.rpd,
            tpm=args.tpm,
            tpd=args.tpd,
            token_delay=args.token_delay,
            window_scale=args.window_scale,
            batch_step=args.batch_step,
            api_keys=tuple(args.api_keys) if args.api_keys is not None else None,
            backend=args.backend,
            reply_tokens=args.reply_tokens,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
