"""Drivers, one per provider, and ``driver("provider:model")`` to pick one by name."""

from __future__ import annotations

from typing import Any

from .base import Driver, ResponseStream

__all__ = ["Driver", "ResponseStream", "create", "providers"]

# provider name -> "module:Class", imported only when asked for
_PROVIDERS = {
    "groq": "botticelli.drivers.groq:GroqDriver",
    "openai-compatible": "botticelli.drivers.openai_compatible:OpenAICompatibleDriver",
    "local": "botticelli.drivers.local:LocalDriver",
}


def providers() -> list[str]:
    return sorted(_PROVIDERS)


def create(spec: str, **options: Any) -> Driver:
    """``create("groq:openai/gpt-oss-20b")``, ``create("local:smollm2")``; a bare model name means
    Groq. Options go to the driver's constructor."""
    from importlib import import_module

    from ..errors import ConfigurationError

    provider, sep, model = spec.partition(":")
    if not sep or provider not in _PROVIDERS:
        if sep and "/" not in provider:
            raise ConfigurationError(
                f"unknown provider {provider!r} in {spec!r}; known: {', '.join(providers())}"
            )
        provider, model = "groq", spec
    module_name, _, class_name = _PROVIDERS[provider].partition(":")
    cls = getattr(import_module(module_name), class_name)
    if not model:
        return cls(**options)  # type: ignore[no-any-return]
    return cls(model, **options)  # type: ignore[no-any-return]
