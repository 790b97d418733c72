"""``python -m botticelli.emulator [--wire groq|anthropic|ollama]``: serve an emulator until
SIGINT/SIGTERM.

Prints exactly one line, ``botticelli emulator listening on http://HOST:PORT``, once it accepts
connections, so a parent process started with ``--port 0`` can read the URL. For Groq (the
default) the options map one to one onto ``ServeOptions`` and ``serve`` does the rest (as for
``botticelli serve``); ``--wire anthropic`` and ``--wire ollama`` take the options their wire
has (``--plan``, ``--batch-step`` and the per-day limits are Groq's).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from botticelli.emulator.backend import backend_names
from botticelli.emulator.common.state import DEFAULT_BATCH_STEP
from botticelli.emulator.groq.emulator import PLANS, ServeOptions, serve

WIRES = ("groq", "anthropic", "ollama")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m botticelli.emulator",
        description="An emulator of a provider's wire (Groq by default) for tests and benchmarks.",
    )
    parser.add_argument("--wire", choices=WIRES, default="groq", help="which API to serve (default groq)")
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


def _serve_wire(args: argparse.Namespace) -> int:
    """Anthropic's or Ollama's emulator in the foreground, with ``serve``'s exit codes."""
    import asyncio

    from botticelli.emulator.backend import make_backend
    from botticelli.emulator.common.server import EmulatorServer, serve_until_signalled
    from botticelli.errors import BotticelliError

    try:
        backend = make_backend(args.backend)
        if args.reply_tokens is not None:
            from botticelli.emulator.textgen import FakeBackend

            if not isinstance(backend, FakeBackend) or args.reply_tokens < 1:
                raise ValueError(
                    f"--reply-tokens: needs the fake backend and N >= 1, got {args.reply_tokens}"
                )
            backend.reply_tokens = (args.reply_tokens, args.reply_tokens)
        emulator: EmulatorServer
        if args.wire == "anthropic":
            from botticelli.emulator.anthropic import AnthropicEmulator

            limits = {"rpm": args.rpm} if args.rpm is not None else None
            emulator = AnthropicEmulator(
                host=args.host,
                port=args.port,
                api_keys=tuple(args.api_keys) if args.api_keys is not None else None,
                enforce_limits=args.enforce_limits,
                limits=limits,
                token_delay=args.token_delay,
                backend=backend,
                window_scale=args.window_scale,
            )
        else:
            from botticelli.emulator.ollama import OllamaEmulator

            emulator = OllamaEmulator(
                host=args.host, port=args.port, token_delay=args.token_delay, backend=backend
            )
        asyncio.run(serve_until_signalled(emulator))
    except (ValueError, OSError, BotticelliError) as exc:
        print(f"botticelli emulator: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.wire != "groq":
        return _serve_wire(args)
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
