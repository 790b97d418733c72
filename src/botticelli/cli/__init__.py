"""The ``botticelli`` command line: ``ask``, ``models``, ``serve``.

Only click is imported at startup; drivers, asyncio, rich and the emulator are imported inside
the command that needs them, so ``botticelli --help`` and the first token stay fast.
"""

from __future__ import annotations

from .app import cli, main

__all__ = ["cli", "main"]
