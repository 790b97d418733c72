"""The model catalog: which models exist, their limits per plan, and which are retired.

Kept as a package data file (``data/groq_models.json``) so it can be refreshed without code
changes; loaded once, lazily, on first lookup.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any


@dataclass(frozen=True, slots=True)
class PlanLimits:
    """Per-model limits of one plan; ``None`` means the plan sets no such limit."""

    rpm: int | None = None
    rpd: int | None = None
    tpm: int | None = None
    tpd: int | None = None


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str
    status: str  # "production" | "preview" | "retired"
    context_window: int | None = None
    max_completion_tokens: int | None = None
    owned_by: str = ""
    created: int = 0
    kind: str = "chat"
    retired_on: str | None = None
    replacement: str | None = None
    server_error: str | None = None  # what the server answers for a retired id
    limits: dict[str, PlanLimits] = field(default_factory=dict)

    @property
    def retired(self) -> bool:
        return self.status == "retired"

    def retirement_notice(self) -> str:
        """One sentence naming the retirement date and the replacement."""
        text = f"Groq retired the model `{self.id}`"
        if self.retired_on:
            text += f" on {self.retired_on}"
        if self.replacement:
            return f"{text}; use `{self.replacement}` instead."
        return f"{text}; it has no direct replacement (see https://console.groq.com/docs/deprecations)."


def _parse(entry: dict[str, Any]) -> ModelInfo:
    limits = {plan: PlanLimits(**values) for plan, values in (entry.get("limits") or {}).items()}
    return ModelInfo(
        id=entry["id"],
        status=entry["status"],
        context_window=entry.get("context_window"),
        max_completion_tokens=entry.get("max_completion_tokens"),
        owned_by=entry.get("owned_by", ""),
        created=entry.get("created", 0),
        kind=entry.get("kind", "chat"),
        retired_on=entry.get("retired_on"),
        replacement=entry.get("replacement"),
        server_error=entry.get("server_error"),
        limits=limits,
    )


@cache
def _catalog(provider: str) -> dict[str, ModelInfo]:
    try:
        raw = resources.files("botticelli.data").joinpath(f"{provider}_models.json").read_bytes()
    except FileNotFoundError:
        return {}
    return {entry["id"]: _parse(entry) for entry in json.loads(raw)["models"]}


def lookup(model: str, provider: str = "groq") -> ModelInfo | None:
    """The catalog entry for ``model``, or ``None`` when the catalog does not know it."""
    return _catalog(provider).get(model)


def models(provider: str = "groq", *, include_retired: bool = False) -> list[ModelInfo]:
    return [m for m in _catalog(provider).values() if include_retired or not m.retired]
