"""The models the emulator has "pulled": what ``/api/tags``, ``/api/show`` and ``/api/ps`` describe
and what a chat request's capability checks read.

The built-in entries carry the public facts of the real models (family, parameter size,
quantization, size on disk, context length, capabilities, Modelfile parameters); the
``llama3.2`` digest is the one in ollama-wire.md §8, the others are stable sha256 values of the
name (the real digests are not in the reference). Another tag of a built-in model (``qwen3:8b``)
is that model under the new name; any other name becomes a ``generic`` model that can chat and
call tools, so a test can "pull" whatever name its code expects.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

from botticelli.emulator.ollama.names import ModelName, parse_name

#: When the built-in models were "pulled" (``modified_at``); newest first in ``/api/tags``.
_PULLED = "2026-11-{day:02d}T09:{minute:02d}:41.{nanos}Z"

COMPLETION, TOOLS, THINKING, VISION, EMBEDDING, INSERT = (
    "completion",
    "tools",
    "thinking",
    "vision",
    "embedding",
    "insert",
)


@dataclass(frozen=True, slots=True)
class OllamaModel:
    """One pulled model. ``name`` is ``DisplayShortest`` (``llama3.2:latest``); ``parameters`` are
    the Modelfile's ``PARAMETER`` lines in order (a key may repeat, as ``stop`` does)."""

    name: str
    family: str
    parameter_size: str
    quantization_level: str
    size: int
    capabilities: tuple[str, ...]
    context_length: int
    embedding_length: int
    parameter_count: int
    parameters: tuple[tuple[str, object], ...] = ()
    template: str = "{{ .Prompt }}"
    license: str = ""
    digest: str = ""
    modified_at: str = ""
    families: tuple[str, ...] = ()
    format: str = "gguf"
    file_type: int = 15  # GGUF general.file_type of Q4_K_M
    extra_info: tuple[tuple[str, object], ...] = field(default=())

    def __post_init__(self) -> None:
        parsed = parse_name(self.name)
        if not parsed.valid:
            raise ValueError(f"invalid model name {self.name!r}")
        object.__setattr__(self, "name", parsed.shortest)
        if not self.digest:
            object.__setattr__(self, "digest", hashlib.sha256(parsed.key.encode()).hexdigest())
        if not self.families:
            object.__setattr__(self, "families", (self.family,))
        if not self.modified_at:
            object.__setattr__(self, "modified_at", _PULLED.format(day=1, minute=0, nanos="5"))

    @property
    def qualified(self) -> ModelName:
        return parse_name(self.name)

    def has(self, capability: str) -> bool:
        return capability in self.capabilities

    def option_defaults(self) -> dict[str, object]:
        """The Modelfile parameters as request options (``stop`` collected into a list)."""
        out: dict[str, object] = {}
        for key, value in self.parameters:
            if key == "stop":
                stops = out.setdefault("stop", [])
                assert isinstance(stops, list)
                stops.append(value)
            else:
                out[key] = value
        return out

    @classmethod
    def generic(
        cls, name: str, capabilities: Iterable[str] = (COMPLETION, TOOLS), *, family: str = "llama"
    ) -> OllamaModel:
        """A made-up model under any name (sizes derived from the name, so they stay stable)."""
        seed = int(hashlib.sha256(name.lower().encode()).hexdigest()[:8], 16)
        return cls(
            name=name,
            family=family,
            parameter_size="3.2B",
            quantization_level="Q4_K_M",
            size=2_000_000_000 + seed % 100_000_000,
            capabilities=tuple(capabilities),
            context_length=131072,
            embedding_length=3072,
            parameter_count=3_212_749_888,
            parameters=(("stop", "<|eot_id|>"),),
            template=_LLAMA_TEMPLATE,
        )


_LLAMA_TEMPLATE = """<|start_header_id|>system<|end_header_id|>

Cutting Knowledge Date: December 2023

{{ if .System }}{{ .System }}
{{- end }}
{{- if .Tools }}When you receive a tool call response, use the output to format an answer \
to the orginal user question.

You are a helpful assistant with tool calling capabilities.
{{- end }}<|eot_id|>
{{- range $i, $_ := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 }}
{{- if eq .Role "user" }}<|start_header_id|>user<|end_header_id|>

{{ .Content }}<|eot_id|>{{ if $last }}<|start_header_id|>assistant<|end_header_id|>

{{ end }}
{{- else if eq .Role "assistant" }}<|start_header_id|>assistant<|end_header_id|>
{{- if .ToolCalls }}
{{ range .ToolCalls }}{"name": "{{ .Function.Name }}", "parameters": {{ .Function.Arguments }}}{{ end }}
{{- else }}

{{ .Content }}
{{- end }}{{ if not $last }}<|eot_id|>{{ end }}
{{- else if eq .Role "tool" }}<|start_header_id|>ipython<|end_header_id|>

{{ .Content }}<|eot_id|>{{ if $last }}<|start_header_id|>assistant<|end_header_id|>

{{ end }}
{{- end }}
{{- end }}"""

_QWEN3_TEMPLATE = """{{- if .Messages }}
{{- if or .System .Tools }}<|im_start|>system
{{- if .System }}
{{ .System }}
{{- end }}
{{- if .Tools }}

# Tools

You may call one or more functions to assist with the user query.
{{- end }}<|im_end|>
{{ end }}
{{- range $i, $_ := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 -}}
{{- if eq .Role "user" }}<|im_start|>user
{{ .Content }}<|im_end|>
{{ else if eq .Role "assistant" }}<|im_start|>assistant
{{ if (and $.IsThinkSet (and .Thinking (or $last (gt $i $.LastUserIndex)))) -}}
<think>{{ .Thinking }}</think>
{{ end -}}
{{ .Content }}{{ if not $last }}<|im_end|>
{{ end }}
{{- else if eq .Role "tool" }}<|im_start|>user
<tool_response>
{{ .Content }}
</tool_response><|im_end|>
{{ end }}
{{- if and (ne .Role "assistant") $last }}<|im_start|>assistant
{{ if and $.IsThinkSet (not $.Think) -}}
<think>

</think>

{{ end -}}
{{ end }}
{{- end }}
{{- end }}"""

_GEMMA3_TEMPLATE = """{{- range $i, $_ := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 }}
{{- if or (eq .Role "user") (eq .Role "system") }}<start_of_turn>user
{{ .Content }}<end_of_turn>
{{ if $last }}<start_of_turn>model
{{ end }}
{{- else if eq .Role "assistant" }}<start_of_turn>model
{{ .Content }}{{ if not $last }}<end_of_turn>
{{ end }}
{{- end }}
{{- end }}"""

LLAMA32 = OllamaModel(
    name="llama3.2:latest",
    family="llama",
    parameter_size="3.2B",
    quantization_level="Q4_K_M",
    size=2019393189,
    digest="a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
    capabilities=(COMPLETION, TOOLS),
    context_length=131072,
    embedding_length=3072,
    parameter_count=3212749888,
    parameters=(("stop", "<|start_header_id|>"), ("stop", "<|end_header_id|>"), ("stop", "<|eot_id|>")),
    template=_LLAMA_TEMPLATE,
    license="LLAMA 3.2 COMMUNITY LICENSE AGREEMENT\nLlama 3.2 Version Release Date: September 25, 2024",
    modified_at=_PULLED.format(day=20, minute=14, nanos="706015396"),
    extra_info=(("llama.attention.head_count", 24), ("llama.block_count", 28)),
)

QWEN3 = OllamaModel(
    name="qwen3:latest",
    family="qwen3",
    parameter_size="8.2B",
    quantization_level="Q4_K_M",
    size=5225388164,
    capabilities=(COMPLETION, TOOLS, THINKING),
    context_length=40960,
    embedding_length=4096,
    parameter_count=8190735360,
    parameters=(
        ("repeat_penalty", 1),
        ("stop", "<|im_start|>"),
        ("stop", "<|im_end|>"),
        ("temperature", 0.6),
        ("top_k", 20),
        ("top_p", 0.95),
    ),
    template=_QWEN3_TEMPLATE,
    license="Apache License\nVersion 2.0, January 2004",
    modified_at=_PULLED.format(day=19, minute=3, nanos="118273645"),
    extra_info=(("qwen3.attention.head_count", 32), ("qwen3.block_count", 36)),
)

GEMMA3 = OllamaModel(
    name="gemma3:latest",
    family="gemma3",
    parameter_size="4.3B",
    quantization_level="Q4_K_M",
    size=3338801804,
    capabilities=(COMPLETION, VISION),
    context_length=131072,
    embedding_length=2560,
    parameter_count=4299915632,
    parameters=(("stop", "<end_of_turn>"), ("temperature", 1), ("top_k", 64), ("top_p", 0.95)),
    template=_GEMMA3_TEMPLATE,
    license="Gemma Terms of Use\nLast modified: February 21, 2024",
    modified_at=_PULLED.format(day=18, minute=41, nanos="90211004"),
    extra_info=(("gemma3.attention.head_count", 8), ("gemma3.block_count", 34)),
)

NOMIC_EMBED_TEXT = OllamaModel(
    name="nomic-embed-text:latest",
    family="nomic-bert",
    parameter_size="137M",
    quantization_level="F16",
    size=274302450,
    capabilities=(EMBEDDING,),
    context_length=2048,
    embedding_length=768,
    parameter_count=136727040,
    parameters=(("num_ctx", 8192),),
    template="{{ .Prompt }}",
    license="Apache License\nVersion 2.0, January 2004",
    modified_at=_PULLED.format(day=17, minute=27, nanos="512004"),
    file_type=1,
)

#: The built-in models by their shortest name.
BUILTIN: dict[str, OllamaModel] = {m.name: m for m in (LLAMA32, QWEN3, GEMMA3, NOMIC_EMBED_TEXT)}

#: What ``OllamaEmulator()`` has pulled when ``models`` is not given.
DEFAULT_MODELS = ("llama3.2", "qwen3", "gemma3", "nomic-embed-text")


def resolve(spec: str | OllamaModel) -> OllamaModel:
    """A model for ``spec``: itself, the built-in entry of that name, or a ``generic`` one."""
    if isinstance(spec, OllamaModel):
        return spec
    parsed = parse_name(spec)
    if not parsed.valid:
        raise ValueError(f"invalid model name {spec!r}")
    for model in BUILTIN.values():
        if model.qualified.key == parsed.key:
            return model
    for model in BUILTIN.values():  # another tag of a known model: the same model under that name
        known = model.qualified
        if (known.host, known.namespace, known.model) == (parsed.host, parsed.namespace, parsed.model):
            return replace(model, name=spec, digest="")
    return OllamaModel.generic(spec)


class Catalog:
    """The pulled models, looked up the way Ollama's ``getExistingName`` does (ignoring case)."""

    def __init__(self, models: Iterable[str | OllamaModel]) -> None:
        self._models: dict[str, OllamaModel] = {}
        for spec in models:
            model = resolve(spec)
            self._models[model.qualified.key] = model

    def lookup(self, name: ModelName) -> OllamaModel | None:
        return self._models.get(name.key)

    def __iter__(self) -> Iterator[OllamaModel]:
        return iter(self._models.values())

    def all(self) -> list[OllamaModel]:
        return list(self._models.values())
