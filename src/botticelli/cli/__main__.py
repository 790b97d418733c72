"""``python -m botticelli.cli``: the same as the ``botticelli`` script."""

from __future__ import annotations

from . import main

raise SystemExit(main())
