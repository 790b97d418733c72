"""Where settings come from: explicit argument > environment > ``.env`` in the working directory >
``botticelli.toml`` (rate limits, plan, Redis; see ``load_config``).

A ``.env`` file never overrides the environment, and python-dotenv is imported only when a value
is missing from the environment and a ``.env`` file exists.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import _defaults
from .errors import ConfigurationError


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
    """Bounds, in seconds, on every call.

    ``connect``, ``read``, ``write`` and ``pool`` bound each phase of one attempt; a server that
    sends one byte a second never trips ``read``, so ``total`` bounds the whole call (rate-limit
    waits, every attempt and back-off, the body) and ``stall`` the wait for each next piece of a
    stream (a stream's first piece must also arrive within ``total``). A number, as in
    ``timeout=10``, sets every one of them (connect at most ``CONNECT_TIMEOUT``).
    """

    read: float = _defaults.READ_TIMEOUT
    connect: float = _defaults.CONNECT_TIMEOUT
    write: float = _defaults.WRITE_TIMEOUT
    pool: float = _defaults.POOL_TIMEOUT
    total: float = _defaults.TOTAL_TIMEOUT
    stall: float = _defaults.STALL_TIMEOUT

    def __post_init__(self) -> None:
        for name in ("read", "connect", "write", "pool", "total", "stall"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1e9:
                raise ValueError(f"timeout.{name}: must be a positive number of seconds, got {value!r}")

    @staticmethod
    def of(value: float | Timeout | None) -> Timeout:
        if value is None:
            return Timeout()
        if isinstance(value, Timeout):
            return value
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"timeout: expected a number of seconds, got {value!r}") from None
        if not 0 < seconds < 1e9:
            raise ValueError(f"timeout: must be a positive number of seconds, got {value!r}")
        return Timeout(
            read=seconds,
            connect=min(seconds, _defaults.CONNECT_TIMEOUT),
            write=seconds,
            pool=seconds,
            total=seconds,
            stall=seconds,
        )


# ---- botticelli.toml --------------------------------------------------------------------------

CONFIG_FILE = "botticelli.toml"

_toml_cache: dict[Path, tuple[float, dict[str, Any]]] = {}


def config_path() -> Path | None:
    """The ``botticelli.toml`` in force: ``$BOTTICELLI_CONFIG`` (must exist), else
    ``./botticelli.toml``, else ``$XDG_CONFIG_HOME/botticelli/botticelli.toml`` (default
    ``~/.config/botticelli/botticelli.toml``); ``None`` when there is none."""
    explicit = os.environ.get("BOTTICELLI_CONFIG")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigurationError(f"BOTTICELLI_CONFIG points at {explicit!r}, which is not a file")
        return path
    local = Path.cwd() / CONFIG_FILE
    if local.is_file():
        return local
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    user = Path(base) / "botticelli" / CONFIG_FILE
    return user if user.is_file() else None


def load_config(path: Path | None = None) -> dict[str, Any]:
    """The parsed ``botticelli.toml`` (``{}`` when there is none); re-read only when it changes.

    The format, every table optional::

        [ratelimit]
        redis_url = "redis://localhost:6379/0"   # share limits across processes and hosts

        [budget]                                 # use a share of every limit (all providers)
        rpm_multiplier = 0.8                     # or: budget = 0.8 in a provider table
        rpd_multiplier = 0.5

        [providers.groq]
        plan = "developer"                       # free | developer | unlimited
        budget = 0.8                             # every kind; or a table {rpm = 0.8, tpd = 0.5}
        concurrency = 16                         # requests in flight per process

        [providers.groq.plans.free]              # overrides for every model on one plan
        tpd = 150000

        [providers.groq.plans.free.models."openai/gpt-oss-120b"]   # one model on one plan
        tpm = 6000

        [providers.groq.models."openai/gpt-oss-20b"]               # one model, any plan
        rpm = 20

    Limit keys: ``rpm``, ``rpd``, ``tpm``, ``tpd`` (numbers, as the server counts them),
    ``concurrency``, ``budget``. ``tiers`` is accepted for ``plans``, as in the original.
    """
    if path is None:
        path = config_path()
    if path is None:
        return {}
    try:
        mtime = path.stat().st_mtime
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from None
    cached = _toml_cache.get(path)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    import tomllib  # only when a file exists: most runs never pay for the import

    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from None
    _toml_cache[path] = (mtime, data)
    return data


def config_table(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    """``data[k1][k2]...`` when every step is a table, else ``{}``."""
    node: Any = data
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
        if node is None:
            return {}
    return node if isinstance(node, dict) else {}
