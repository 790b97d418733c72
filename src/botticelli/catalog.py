"""The model catalog: which models exist, what each can do, their limits per plan, retirements.

One package data file per provider (``data/<provider>_models.json``), so it can be refreshed
without code changes; each file is read once, lazily, on first use, and every answer after that
is a dict look-up. A file holds:

* ``provider``, ``provider_name`` (as people write it, for messages), ``deprecations_url``;
* ``default_capabilities``: the profile of a model the file does not list (Groq: a conservative
  text chat; an unknown OpenAI-compatible server: permissive, so nothing is refused up front);
* ``profiles``: named capability sets that entries share (``"profile": "gpt-oss"``);
* ``models``: one entry per model id, with status, limits, plan limits, ``profile`` and/or
  ``capabilities`` (fields over the named profile), retirement date and replacement.

``capabilities(model, provider)`` answers with a :class:`Capabilities`; the local driver's
refusals, the README's capability table (``scripts/capability_table.py``) and the CLI read it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

__all__ = [
    "Capabilities",
    "CatalogError",
    "ModelInfo",
    "PlanLimits",
    "capabilities",
    "default_capabilities",
    "lookup",
    "models",
    "parse_capabilities",
    "provider_name",
    "providers",
]


@dataclass(frozen=True, slots=True)
class PlanLimits:
    """Per-model limits of one plan; ``None`` means the plan sets no such limit. ``ash`` / ``asd``:
    audio seconds per hour / per day (speech-to-text models; groq-wire.md §5.2)."""

    rpm: int | None = None
    rpd: int | None = None
    tpm: int | None = None
    tpd: int | None = None
    ash: int | None = None
    asd: int | None = None


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What one model accepts. The defaults describe a plain text chat model that streams.

    ``reasoning_efforts``: the ``reasoning_effort`` values the model accepts, ``()`` when it takes
    none, ``None`` when they are not known (any value is passed on). ``rejected_parameters``:
    request fields the model answers 400 to (e.g. ``temperature`` on newer Claude models).
    ``context_window`` / ``max_output_tokens``: tokens, ``None`` when not known."""

    chat: bool = True  # generates text from messages (False: speech-to-text, text-to-speech)
    streaming: bool = True
    tools: bool = False
    parallel_tool_calls: bool = False
    json_object: bool = False  # "any JSON object" mode
    json_schema: bool = False  # an answer shaped by a JSON schema, best effort
    strict_json_schema: bool = False  # constrained decoding: the answer always matches
    vision: bool = False  # image inputs
    audio_input: bool = False
    document_input: bool = False  # PDF / binary document inputs
    speech_to_text: bool = False
    text_to_speech: bool = False
    reasoning: bool = False  # the model reasons before answering
    reasoning_efforts: tuple[str, ...] | None = ()
    reasoning_format: bool = False  # Groq's reasoning_format (hidden / raw / parsed)
    include_reasoning: bool = False  # Groq's include_reasoning
    builtin_tools: tuple[str, ...] = ()  # server-side tools, e.g. browser_search
    rejected_parameters: tuple[str, ...] = ()
    exclusive_parameters: tuple[str, ...] = ()  # of these the model takes one at most (temperature, top_p)
    context_window: int | None = None
    max_output_tokens: int | None = None

    def accepts_input(self, kind: str) -> bool:
        """Whether a message may carry an ``Input`` of ``kind`` (``text``, ``image``, ...)."""
        if kind == "text":
            return self.chat
        return {"image": self.vision, "audio": self.audio_input, "document": self.document_input}.get(
            kind, False
        )

    def accepts_effort(self, effort: str) -> bool:
        return self.reasoning_efforts is None or effort in self.reasoning_efforts

    def rejects(self, parameter: str) -> bool:
        return parameter in self.rejected_parameters


_CAPABILITY_FIELDS = {f.name: f for f in dataclasses.fields(Capabilities)}
_LIMIT_FIELDS = ("context_window", "max_output_tokens")  # taken from the entry, not its profile


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str
    status: str  # "production" | "preview" | "deprecated" | "retired"
    context_window: int | None = None
    max_completion_tokens: int | None = None
    owned_by: str = ""
    created: int = 0
    kind: str = "chat"
    retired_on: str | None = None  # retired: the date it went; deprecated: the date it goes
    replacement: str | None = None
    server_error: str | None = None  # what the server answers for a retired id
    limits: dict[str, PlanLimits] = field(default_factory=dict)
    capabilities: Capabilities = field(default_factory=Capabilities)
    provider: str = "groq"

    @property
    def retired(self) -> bool:
        return self.status == "retired"

    def retirement_notice(self) -> str:
        """One sentence naming the provider, the retirement date and the replacement."""
        text = f"{provider_name(self.provider)} retired the model `{self.id}`"
        if self.retired_on:
            text += f" on {self.retired_on}"
        if self.replacement:
            return f"{text}; use `{self.replacement}` instead."
        url = _catalog(self.provider).deprecations_url
        return f"{text}; it has no direct replacement" + (f" (see {url})." if url else ".")


@dataclass(frozen=True, slots=True)
class _Catalog:
    provider: str
    name: str
    deprecations_url: str
    default: Capabilities
    entries: dict[str, ModelInfo]


class CatalogError(ValueError):
    """A catalog file that does not parse; names the file and the entry."""


def parse_capabilities(
    values: Mapping[str, Any],
    *,
    base: Capabilities | None = None,
    where: str = "capabilities",
    limits: Mapping[str, Any] | None = None,
) -> Capabilities:
    """A profile from its JSON form: ``base`` (a plain text chat by default) with ``values`` over
    it. Unknown names, non-booleans, lists that are not of non-empty strings and limits that are
    not positive integers raise ``CatalogError``; keys starting with ``_`` are comments."""
    changes: dict[str, Any] = {}
    for key, value in values.items():
        if key.startswith("_"):  # a comment: "_note", "_source"
            continue
        spec = _CAPABILITY_FIELDS.get(key)
        if spec is None or key in _LIMIT_FIELDS:
            raise CatalogError(f"{where}: unknown capability {key!r}")
        changes[key] = _checked(key, value, where)
    for key, value in (limits or {}).items():
        changes[key] = _checked(key, value, where)
    return dataclasses.replace(base if base is not None else Capabilities(), **changes)


def _checked(key: str, value: Any, where: str) -> Any:
    if key in _LIMIT_FIELDS:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise CatalogError(f"{where}: {key} must be a positive integer or null, got {value!r}")
        return value
    if key in ("reasoning_efforts", "builtin_tools", "rejected_parameters", "exclusive_parameters"):
        if value is None and key == "reasoning_efforts":
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise CatalogError(f"{where}: {key} must be a list of non-empty strings, got {value!r}")
        return tuple(value)
    if not isinstance(value, bool):
        raise CatalogError(f"{where}: {key} must be true or false, got {value!r}")
    return value


_ENTRY_FIELDS = {
    "id",
    "status",
    "context_window",
    "max_completion_tokens",
    "owned_by",
    "created",
    "kind",
    "retired_on",
    "replacement",
    "server_error",
    "limits",
    "profile",
    "capabilities",
    "note",
}


def _parse(
    entry: Mapping[str, Any], *, provider: str, profiles: Mapping[str, Capabilities], where: str
) -> ModelInfo:
    unknown = {key for key in entry if not key.startswith("_")} - _ENTRY_FIELDS
    if unknown:
        raise CatalogError(f"{where}: unknown fields {sorted(unknown)}")
    if not isinstance(entry.get("id"), str) or not isinstance(entry.get("status"), str):
        raise CatalogError(f"{where}: every entry needs a string id and status")
    name = entry.get("profile")
    if name is not None and name not in profiles:
        raise CatalogError(f"{where}: unknown profile {name!r}")
    base = profiles[name] if name is not None else Capabilities()
    context, output = entry.get("context_window"), entry.get("max_completion_tokens")
    caps = parse_capabilities(
        entry.get("capabilities") or {},
        base=base,
        where=where,
        limits={"context_window": context, "max_output_tokens": output},
    )
    limits = {plan: PlanLimits(**values) for plan, values in (entry.get("limits") or {}).items()}
    return ModelInfo(
        id=entry["id"],
        status=entry["status"],
        context_window=context,
        max_completion_tokens=output,
        owned_by=entry.get("owned_by", ""),
        created=entry.get("created", 0),
        kind=entry.get("kind", "chat"),
        retired_on=entry.get("retired_on"),
        replacement=entry.get("replacement"),
        server_error=entry.get("server_error"),
        limits=limits,
        capabilities=caps,
        provider=provider,
    )


#: The catalog files, read from the package directory (``importlib.resources`` and what it
#: imports cost ~7 ms of a one-shot ``botticelli ask``); a package imported from a zip falls
#: back to it.
_DATA = Path(__file__).parent / "data"


def _data_files() -> Any:
    if _DATA.is_dir():
        return _DATA
    from importlib import resources

    return resources.files("botticelli.data")


def _read(provider: str) -> Mapping[str, Any] | None:
    try:
        raw = _data_files().joinpath(f"{provider}_models.json").read_bytes()
    except FileNotFoundError:
        return None
    data: Mapping[str, Any] = json.loads(raw)
    return data


@cache
def _catalog(provider: str) -> _Catalog:
    data = _read(provider)
    if data is None:
        return _Catalog(provider, provider, "", Capabilities(), {})
    where = f"data/{provider}_models.json"
    profiles: dict[str, Capabilities] = {}
    for name, values in (data.get("profiles") or {}).items():
        profiles[name] = parse_capabilities(values, base=Capabilities(), where=f"{where} profile {name!r}")
    default = parse_capabilities(
        data.get("default_capabilities") or {}, base=Capabilities(), where=f"{where} default_capabilities"
    )
    entries: dict[str, ModelInfo] = {}
    for i, entry in enumerate(data.get("models") or ()):
        info = _parse(entry, provider=provider, profiles=profiles, where=f"{where} models[{i}]")
        if info.id in entries:
            raise CatalogError(f"{where}: {info.id!r} is listed twice")
        entries[info.id] = info
    return _Catalog(
        provider=provider,
        name=data.get("provider_name") or provider,
        deprecations_url=data.get("deprecations_url") or "",
        default=default,
        entries=entries,
    )


def lookup(model: str, provider: str = "groq") -> ModelInfo | None:
    """The catalog entry for ``model``, or ``None`` when the catalog does not know it."""
    return _catalog(provider).entries.get(model)


def models(provider: str = "groq", *, include_retired: bool = False) -> list[ModelInfo]:
    return [m for m in _catalog(provider).entries.values() if include_retired or not m.retired]


def capabilities(model: str, provider: str = "groq") -> Capabilities:
    """The profile of ``model``, else the provider's default for models it does not list."""
    catalog = _catalog(provider)
    info = catalog.entries.get(model)
    return info.capabilities if info is not None else catalog.default


def default_capabilities(provider: str) -> Capabilities:
    """What ``capabilities`` answers for a model the provider's catalog does not list."""
    return _catalog(provider).default


def provider_name(provider: str) -> str:
    """The provider as people write it ("Groq", "Hugging Face"); the id when there is no file."""
    return _catalog(provider).name


@cache
def providers() -> tuple[str, ...]:
    """Every provider with a catalog file, sorted."""
    suffix = "_models.json"
    names: Iterable[str] = (p.name for p in _data_files().iterdir())
    return tuple(sorted(n[: -len(suffix)] for n in names if n.endswith(suffix)))
