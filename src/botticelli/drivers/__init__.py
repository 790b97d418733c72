"""Drivers, one per provider, and ``create("provider:model")`` to pick one by name.

Providers are plugins (``botticelli.plugins``): the built-ins here register through the same
entry-point group, ``botticelli.providers``, as third-party ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import Driver, ResponseStream

if TYPE_CHECKING:
    from ..plugins import Spec

__all__ = ["Driver", "ResponseStream", "create", "providers"]


def providers() -> list[str]:
    """The known provider names (built-ins and installed plugins), sorted."""
    from .. import plugins

    return plugins.names()


def create(spec: str | Spec, **options: Any) -> Driver:
    """``create("groq:openai/gpt-oss-20b")``, ``create("local:smollm2")``; a bare model name means
    Groq. Options go to the driver's constructor (the provider's factory)."""
    from .. import plugins

    return plugins.create(spec, **options)
