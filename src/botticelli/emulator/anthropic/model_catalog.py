"""The Claude models the emulator serves, and the model object ``/v1/models`` describes (§8).

Which ids exist, their status, retirement dates and the sampling parameters they refuse come
from the project catalog (``data/anthropic_models.json``). The ids of §8.2 the catalog does not
list (the Fable and Mythos 5.x lines and Opus 4.6) are added here with the profile of their
nearest catalogued sibling, and the dated ids of §8.2 (``claude-haiku-4-5-20251001``,
``claude-opus-4-5-20251101``) are the canonical ids of their aliases: ``/v1/models`` lists the
dated id and a message answers with it (§4: ``model`` echoes the id actually used).

Decided here because the reference has NOT FOUND (§8.1 calls its values illustrative, §10):
release dates other than Opus 5's (2026-07-24) and Opus 5.5's (~2026-09-24), ordered to match
the SDK Literal's newest-first order; context and output limits (1,000,000 / 128,000 for
generation 5 and Opus 4.6+, as in the §8.1 example; 200,000 / 64,000 for the other 4.x models);
``deprecated_at`` (60 days before the retirement date); and that ``thinking.type: enabled`` is
refused by exactly the models that refuse ``temperature`` (Opus 4.7+ per §3 and generation 5,
whose §8.1 capabilities show ``enabled: false``).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from typing import Any

from botticelli import catalog
from botticelli.catalog import ModelInfo

PROVIDER = "anthropic"
LINES = ("haiku", "sonnet", "opus", "fable", "mythos")

#: id -> release date (RFC 3339 date); see the module doc.
_RELEASED: dict[str, str] = {
    "claude-fable-5-2": "2026-11-25",
    "claude-mythos-5-2": "2026-11-24",
    "claude-haiku-5-5": "2026-10-28",
    "claude-sonnet-5-5": "2026-10-21",
    "claude-fable-5-1": "2026-10-14",
    "claude-opus-5-5": "2026-09-24",
    "claude-mythos-5-1": "2026-09-10",
    "claude-sonnet-5": "2026-08-20",
    "claude-fable-5": "2026-08-06",
    "claude-mythos-5": "2026-07-30",
    "claude-opus-5": "2026-07-24",
    "claude-opus-4-8": "2026-05-12",
    "claude-opus-4-7": "2026-04-16",
    "claude-mythos-preview": "2026-04-07",
    "claude-sonnet-4-6": "2026-02-17",
    "claude-opus-4-6": "2026-02-05",
    "claude-opus-4-5-20251101": "2025-11-24",
    "claude-haiku-4-5-20251001": "2025-10-15",
    "claude-opus-4-1": "2025-08-05",
    "claude-opus-4-0": "2025-05-22",
    "claude-sonnet-4-0": "2025-05-22",
    "claude-3-5-sonnet-20241022": "2024-10-22",
    "claude-3-opus-20240229": "2024-02-29",
    "claude-3-sonnet-20240229": "2024-02-29",
    "claude-2.1": "2023-11-21",
}

#: ids of §8.2 missing from the catalog -> the catalogued model whose profile they share.
_EXTRA: dict[str, str] = {
    "claude-fable-5-2": "claude-opus-5-5",
    "claude-mythos-5-2": "claude-opus-5-5",
    "claude-fable-5-1": "claude-opus-5-5",
    "claude-mythos-5-1": "claude-opus-5-5",
    "claude-fable-5": "claude-opus-5",
    "claude-mythos-5": "claude-opus-5",
    "claude-opus-4-6": "claude-sonnet-4-6",
}

#: catalog id (an alias) -> the dated canonical id (§8.2 lists both).
_DATED: dict[str, str] = {
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "claude-opus-4-5": "claude-opus-4-5-20251101",
}

_LARGE_WINDOW = frozenset({"claude-opus-4-6", "claude-opus-4-7", "claude-opus-4-8", "claude-mythos-preview"})
_DEPRECATION_NOTICE = timedelta(days=60)


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One model: its catalog entry (capabilities) plus what ``/v1/models`` reports."""

    id: str
    info: ModelInfo
    aliases: tuple[str, ...]
    display_name: str
    created_at: str  # RFC 3339
    max_input_tokens: int
    max_tokens: int
    line: str | None
    lifecycle: str  # active | deprecated | retired

    @property
    def generation(self) -> int:
        match = re.match(r"claude-(?:[a-z]+-)?(\d+)", self.id)
        return int(match.group(1)) if match else 0

    @property
    def retired(self) -> bool:
        return self.lifecycle == "retired"

    def rejects(self, parameter: str) -> bool:
        """Whether the model answers 400 to ``parameter`` (``temperature`` etc., §1.1)."""
        return self.info.capabilities.rejects(parameter)

    @property
    def rejects_enabled_thinking(self) -> bool:
        """Opus 4.7+ and generation 5 refuse ``thinking.type: enabled`` (see the module doc)."""
        return self.rejects("temperature")

    @property
    def refuses_mixed_sampling(self) -> bool:
        """4.x models that refuse ``temperature`` and ``top_p`` together (§1.1)."""
        return self.generation == 4 and not self.rejects("temperature")

    @property
    def retires_at(self) -> str | None:
        if self.lifecycle == "active" or not self.info.retired_on:
            return None
        return f"{self.info.retired_on}T00:00:00Z"

    @property
    def deprecated_at(self) -> str | None:
        if self.lifecycle == "active" or not self.info.retired_on:
            return None
        when = date.fromisoformat(self.info.retired_on) - _DEPRECATION_NOTICE
        return f"{when.isoformat()}T00:00:00Z"

    def wire(self) -> dict[str, Any]:
        """The model object of §8.1. ``lifecycle``, ``deprecated_at``, ``retires_at`` and ``line``
        exist in the 2.x SDK types only; both API versions get them, since older SDKs ignore
        unknown fields and whether 2026-10-21 changes responses is NOT FOUND (§10)."""
        caps = self.info.capabilities
        efforts = caps.reasoning_efforts
        tools = caps.builtin_tools

        def yes(flag: bool) -> dict[str, bool]:
            return {"supported": flag}

        def effort(level: str) -> dict[str, bool]:
            return yes(caps.reasoning and (efforts is None or level in efforts))

        return {
            "type": "model",
            "id": self.id,
            "display_name": self.display_name,
            "created_at": self.created_at,
            "max_input_tokens": self.max_input_tokens,
            "max_tokens": self.max_tokens,
            "lifecycle": self.lifecycle,
            "deprecated_at": self.deprecated_at,
            "retires_at": self.retires_at,
            "line": self.line,
            "capabilities": {
                "batch": yes(True),
                "citations": yes(True),
                "code_execution": yes("code_execution" in tools),
                "context_management": {
                    "supported": True,
                    "clear_thinking_20251015": yes(caps.reasoning),
                    "clear_tool_uses_20250919": yes(caps.tools),
                    "compact_20260112": yes(self.generation >= 5),
                },
                "effort": {
                    "supported": caps.reasoning and efforts != (),
                    "low": effort("low"),
                    "medium": effort("medium"),
                    "high": effort("high"),
                    "xhigh": effort("xhigh"),
                    "max": effort("max"),
                },
                "image_input": yes(caps.vision),
                "pdf_input": yes(caps.document_input),
                "server_tools": {
                    "supported": bool(tools),
                    "code_execution": yes("code_execution" in tools),
                    "web_search": yes("web_search" in tools),
                },
                "structured_outputs": yes(caps.json_schema),
                "thinking": {
                    "supported": caps.reasoning,
                    "types": {
                        "adaptive": yes(caps.reasoning),
                        "between_tools": yes(caps.reasoning),
                        "disabled": yes(True),
                        "enabled": yes(caps.reasoning and not self.rejects_enabled_thinking),
                    },
                },
            },
        }


def display_name(model_id: str) -> str:
    """``claude-opus-4-5-20251101`` -> ``Claude Opus 4.5``; ``claude-3-5-sonnet-…`` -> ``Claude
    Sonnet 3.5``; ``claude-mythos-preview`` -> ``Claude Mythos Preview``."""
    parts = [p for p in model_id.split("-")[1:] if not re.fullmatch(r"\d{8}", p)]
    words = [p.capitalize() for p in parts if not re.fullmatch(r"[\d.]+", p)]
    numbers = [p for p in parts if re.fullmatch(r"[\d.]+", p)]
    version = ".".join(n for n in numbers if n != "0" or len(numbers) == 1)
    return " ".join(["Claude", *words, *([version] if version else [])])


def _limits(model_id: str, generation: int) -> tuple[int, int]:
    if generation >= 5 or any(model_id.startswith(m) for m in _LARGE_WINDOW):
        return 1_000_000, 128_000
    if generation == 4:
        return 200_000, 64_000
    return 200_000, 4_096


def _spec(model_id: str, info: ModelInfo, aliases: tuple[str, ...]) -> ModelSpec:
    generation_match = re.match(r"claude-(?:[a-z]+-)?(\d+)", model_id)
    generation = int(generation_match.group(1)) if generation_match else 0
    window, output = _limits(model_id, generation)
    lifecycle = {"retired": "retired", "deprecated": "deprecated"}.get(info.status, "active")
    return ModelSpec(
        id=model_id,
        info=info,
        aliases=aliases,
        display_name=display_name(model_id),
        created_at=f"{_RELEASED.get(model_id, '2026-01-01')}T00:00:00Z",
        max_input_tokens=info.context_window or window,
        max_tokens=info.max_completion_tokens or output,
        line=next((part for part in model_id.split("-") if part in LINES), None),
        lifecycle=lifecycle,
    )


@cache
def all_models() -> tuple[ModelSpec, ...]:
    """Every model, retired ones included, newest first (the order ``/v1/models`` lists)."""
    specs: list[ModelSpec] = []
    infos = {info.id: info for info in catalog.models(PROVIDER, include_retired=True)}
    for info in infos.values():
        canonical = _DATED.get(info.id)
        if canonical is not None:
            specs.append(_spec(canonical, dataclasses.replace(info, id=canonical), (info.id,)))
        else:
            specs.append(_spec(info.id, info, ()))
    for model_id, sibling in _EXTRA.items():
        base = infos.get(sibling)
        if base is not None and model_id not in infos:
            specs.append(_spec(model_id, dataclasses.replace(base, id=model_id), ()))
    return tuple(sorted(specs, key=lambda s: (s.created_at, s.id), reverse=True))


@cache
def _index() -> dict[str, ModelSpec]:
    index: dict[str, ModelSpec] = {}
    for spec in all_models():
        index[spec.id] = spec
        for alias in spec.aliases:
            index[alias] = spec
    return index


def lookup(model_id: str) -> ModelSpec | None:
    """The model ``model_id`` (an id or an alias) names, retired or not; ``None``: unknown."""
    return _index().get(model_id)
