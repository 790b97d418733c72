"""Providers are plugins: the registry behind ``botticelli.driver("provider:model")``.

A provider is an entry point in the group ``botticelli.providers``: its name is the provider's,
its object a driver factory (a ``Driver`` subclass or any callable) called as
``factory(model, **options)``, or ``factory(**options)`` for the provider's default model. The
built-in providers register the same way in botticelli's own ``pyproject.toml``; a third-party
package adds one line to its own::

    [project.entry-points."botticelli.providers"]
    myprov = "myprov_plugin:MyDriver"

``BUILTINS`` repeats the built-ins for a source tree run without installed metadata, so they
always resolve. Nothing here runs at ``import botticelli``: the entry points are read the first
time a provider is asked for, then cached (``refresh()`` forgets them), and a provider's module
is imported only when that provider is used.

The ``provider:model`` string is parsed here and nowhere else (``parse_spec``).
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import ConfigurationError

if TYPE_CHECKING:
    from .drivers.base import Driver

__all__ = [
    "BUILTINS",
    "DEFAULT_PROVIDER",
    "GROUP",
    "DriverFactory",
    "ProviderPlugin",
    "Spec",
    "accepted_options",
    "create",
    "get",
    "load",
    "names",
    "parse_spec",
    "providers",
    "refresh",
]

GROUP = "botticelli.providers"
DEFAULT_PROVIDER = "groq"  # a bare model name is a Groq model
DISTRIBUTION = "botticelli"

# The built-ins as registered in pyproject.toml (a test keeps the two equal).
BUILTINS: Mapping[str, str] = {
    "groq": "botticelli.drivers.groq:GroqDriver",
    "openai-compatible": "botticelli.drivers.openai_compatible:OpenAICompatibleDriver",
    "local": "botticelli.drivers.local:LocalDriver",
    "anthropic": "botticelli.drivers.anthropic:AnthropicDriver",
    "ollama": "botticelli.drivers.ollama:OllamaDriver",
}

DriverFactory = Callable[..., "Driver"]


@dataclass(frozen=True, slots=True)
class Spec:
    """A parsed ``provider:model``; ``model`` is ``""`` for the provider's default model."""

    provider: str
    model: str

    def __str__(self) -> str:
        return f"{self.provider}:{self.model}"


@dataclass(frozen=True, slots=True)
class ProviderPlugin:
    """One registered provider: ``target`` is ``"module:attribute"``; ``distribution`` names the
    package that registered it (``None``: the built-in fallback table, no metadata found)."""

    name: str
    target: str
    distribution: str | None = None

    @property
    def builtin(self) -> bool:
        return self.name in BUILTINS and self.distribution in (None, DISTRIBUTION)

    @property
    def origin(self) -> str:
        if self.distribution is None:
            return "built-in (no package metadata)"
        return self.distribution


_lock = threading.Lock()
_registry: dict[str, ProviderPlugin] | None = None
_loaded: dict[str, DriverFactory] = {}


def _scan() -> dict[str, ProviderPlugin]:
    """The fallback table, then every entry point of the group. A built-in name stays
    botticelli's own; otherwise the first registration of a name wins (in metadata order)."""
    from importlib.metadata import entry_points

    found = {name: ProviderPlugin(name, target) for name, target in BUILTINS.items()}
    claimed: set[str] = set()
    for point in entry_points(group=GROUP):
        dist = point.dist.name if point.dist is not None else None
        own = dist is not None and dist.lower() == DISTRIBUTION
        if point.name in claimed or (point.name in BUILTINS and not own):
            continue
        claimed.add(point.name)
        found[point.name] = ProviderPlugin(point.name, point.value, dist)
    return found


def _providers_table() -> dict[str, ProviderPlugin]:
    global _registry
    registry = _registry
    if registry is None:
        with _lock:
            if _registry is None:
                _registry = _scan()
            registry = _registry
    return registry


def refresh() -> None:
    """Forget the cached entry points and loaded factories (after installing a plugin in-process)."""
    global _registry
    with _lock:
        _registry = None
        _loaded.clear()


def names() -> list[str]:
    """The known provider names, sorted."""
    return sorted(_providers_table())


def providers() -> list[ProviderPlugin]:
    """Every registered provider, sorted by name."""
    table = _providers_table()
    return [table[name] for name in sorted(table)]


def _unknown(provider: str, spec: str | None = None) -> ConfigurationError:
    where = f" in {spec!r}" if spec is not None else ""
    return ConfigurationError(f"unknown provider {provider!r}{where}; known: {', '.join(names())}")


def _builtin(name: str) -> ProviderPlugin | None:
    """A built-in provider without reading any package metadata (a built-in name is always
    botticelli's own): ``botticelli ask -m groq:...`` never pays for the entry-point scan."""
    if _registry is None and name in BUILTINS:
        return ProviderPlugin(name, BUILTINS[name], DISTRIBUTION)
    return None


def get(name: str) -> ProviderPlugin:
    """The registered provider ``name``; ``ConfigurationError`` naming the known ones if none."""
    found = _builtin(name) or _providers_table().get(name)
    if found is None:
        raise _unknown(name)
    return found


def parse_spec(spec: str) -> Spec:
    """``"groq:openai/gpt-oss-20b"`` → ``Spec("groq", "openai/gpt-oss-20b")``.

    A bare model name is a Groq model (``"openai/gpt-oss-20b"``). Model ids may hold ``/`` and
    ``:`` (``"ollama:llama3.2:3b"``, ``"local:smollm2"``): the provider is what precedes the first
    ``:`` when that is a known provider's name; text before it holding a ``/`` belongs to a bare
    model id; anything else is an unknown provider (``ConfigurationError`` naming the known ones).
    """
    if not isinstance(spec, str):
        raise ConfigurationError(f"model: expected 'provider:model' as a string, got {spec!r}")
    prefix, sep, rest = spec.partition(":")
    if not sep:
        return Spec(DEFAULT_PROVIDER, spec)
    if prefix in BUILTINS or prefix in _providers_table():
        return Spec(prefix, rest)
    if "/" in prefix:
        return Spec(DEFAULT_PROVIDER, spec)
    raise _unknown(prefix, spec)


def load(name: str) -> DriverFactory:
    """The driver factory of provider ``name``, imported on first use and cached. A plugin that
    fails to import is a one-line ``ConfigurationError`` naming it and the cause."""
    factory = _loaded.get(name)
    if factory is not None:
        return factory
    provider = get(name)
    module_name, _, attribute = provider.target.partition(":")
    plugin = f"provider plugin {name!r} ({provider.target}, from {provider.origin})"
    from importlib import import_module

    try:
        value: Any = import_module(module_name.strip())
        for part in attribute.strip().split(".") if attribute.strip() else []:
            value = getattr(value, part)
    except ConfigurationError:
        raise
    except Exception as exc:  # any failure of a third-party module: its name and cause, one line
        cause = " ".join(str(exc).split()) or "no message"
        raise ConfigurationError(f"{plugin} failed to load: {type(exc).__name__}: {cause}") from exc
    if not callable(value):
        raise ConfigurationError(f"{plugin} is not a driver class or factory: {value!r}")
    _loaded[name] = value
    return value  # type: ignore[no-any-return]


def accepted_options(provider: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The part of ``options`` that provider's factory takes (all of them if it takes
    ``**kwargs``): shared CLI options such as ``timeout`` go only to drivers that have them."""
    factory = load(provider)
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # no signature to read: hand everything over
        return dict(options)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return dict(options)
    keywords = {
        p.name
        for p in parameters
        if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    }
    return {k: v for k, v in options.items() if k in keywords}


def create(spec: str | Spec, **options: Any) -> Driver:
    """The driver for ``spec`` (``"provider:model"``, a bare Groq model, or a ``Spec``); options
    go to the provider's factory."""
    from .drivers.base import Driver

    parsed = spec if isinstance(spec, Spec) else parse_spec(spec)
    factory = load(parsed.provider)
    made = factory(parsed.model, **options) if parsed.model else factory(**options)
    if not isinstance(made, Driver):
        raise ConfigurationError(
            f"provider plugin {parsed.provider!r} returned {type(made).__name__}, not a botticelli Driver"
        )
    return made
