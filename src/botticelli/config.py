"""Where settings come from: explicit argument > environment > ``.env`` in the working directory.

A ``.env`` file never overrides the environment, and python-dotenv is imported only when a value
is missing from the environment and a ``.env`` file exists.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from . import _defaults


def env_value(name: str, *, dotenv_dir: Path | None = None) -> str | None:
    """``name`` from the environment, else from ``./.env``; empty values count as unset."""
    value = os.environ.get(name)
    if value:
        return value
    path = (dotenv_dir or Path.cwd()) / ".env"
    if not path.is_file():
        return None
    from dotenv import dotenv_values  # lazy: only needed when the environment lacks the value

    found = dotenv_values(path).get(name)
    return found or None


class Secret:
    """An API key that never shows itself in ``repr``, ``str`` or logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> str | tuple[object, ...]:  # never pickled into a cache or a journal
        raise TypeError("a Secret cannot be pickled")


@dataclass(frozen=True, slots=True)
class Timeout:
    """Seconds to wait for a connection and for each read from the server."""

    read: float = _defaults.READ_TIMEOUT
    connect: float = _defaults.CONNECT_TIMEOUT
    write: float = _defaults.WRITE_TIMEOUT
    pool: float = _defaults.POOL_TIMEOUT

    @staticmethod
    def of(value: float | Timeout | None) -> Timeout:
        if value is None:
            return Timeout()
        if isinstance(value, Timeout):
            return value
        seconds = float(value)
        if seconds <= 0:
            raise ValueError(f"timeout: must be positive, got {value!r}")
        return Timeout(read=seconds, connect=min(seconds, _defaults.CONNECT_TIMEOUT), write=seconds)
