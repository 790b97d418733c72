"""Checks of a ``POST /v1/messages`` (or ``count_tokens``) body, with Anthropic's texts (§3, §1.1).

``validate`` turns a parsed JSON body into ``MessageParams`` or raises ``WireError``; nothing else
escapes it. Order: JSON object -> required fields -> each field's schema (pydantic's texts, see
``errors``) -> fields the endpoint or version does not know -> the model (404) -> what the model
refuses -> ``max_tokens`` -> thinking rules -> the context window.

Texts quoted by the reference or seen in public error reports are used verbatim; the others
(NOT FOUND) follow pydantic's style and say so where they are made. Version 2026-10-21 removed
``temperature``/``top_p``/``top_k`` from the schema (§1.1), so they get pydantic's unknown-field
error there ("Extra inputs are not permitted"; the exact text is NOT FOUND).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from botticelli.emulator.anthropic import content, wire
from botticelli.emulator.anthropic import errors as e
from botticelli.emulator.anthropic.content import Conversation
from botticelli.emulator.anthropic.model_catalog import ModelSpec, lookup
from botticelli.emulator.backend import Backend

SAMPLING = ("temperature", "top_p", "top_k")
_COMMON_FIELDS = (
    "model",
    "messages",
    "system",
    "tools",
    "tool_choice",
    "thinking",
    "output_config",
    "cache_control",
    "speed",
    "context_management",
)
CREATE_FIELDS = (
    *_COMMON_FIELDS,
    "max_tokens",
    "stream",
    "stop_sequences",
    "metadata",
    "service_tier",
    "container",
    "inference_geo",
    "diagnostics",
)
COUNT_FIELDS = _COMMON_FIELDS
TOOL_CHOICES = ("auto", "any", "tool", "none")
THINKING_TYPES = ("enabled", "disabled", "adaptive", "between_tools")  # the 2.x SDK's union
DISPLAYS = ("summarized", "omitted")
EFFORTS = ("low", "medium", "high", "xhigh", "max")
SERVICE_TIERS = ("auto", "standard_only")
#: Server-tool ``type``s (§3's examples, and their other versions of the same families).
SERVER_TOOL = re.compile(
    r"^(web_search|web_fetch|code_execution|bash|text_editor|memory|computer|"
    r"tool_search_tool_bm25|tool_search_tool_regex)_\d{8}$"
)
SERVER_TOOL_EXAMPLES = (
    "web_search_20260318",
    "web_fetch_20260318",
    "code_execution_20260521",
    "bash_20250124",
    "text_editor_20250728",
    "memory_20250818",
    "tool_search_tool_bm25_20251119",
)
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
CUSTOM_TOOL_FIELDS = (
    "type",
    "name",
    "description",
    "input_schema",
    "cache_control",
    "strict",
    "input_examples",
    "defer_loading",
    "eager_input_streaming",
    "allowed_callers",
)
MIN_BUDGET = 1024


@dataclass(frozen=True, slots=True)
class Thinking:
    type: str  # "enabled" | "adaptive"
    budget_tokens: int | None
    display: str  # "summarized" | "omitted"


@dataclass(slots=True)
class MessageParams:
    """A validated request: what the fake model is asked and what the answer reports."""

    model: ModelSpec
    version: str
    convo: Conversation
    prompt_tokens: int
    max_tokens: int = 0
    stream: bool = False
    stop_sequences: tuple[str, ...] = ()
    temperature: float = 1.0
    top_p: float = 1.0
    tools: tuple[dict[str, Any], ...] = ()  # the client (custom) tools offered
    tool_choice: dict[str, Any] = field(default_factory=lambda: {"type": "auto"})
    thinking: Thinking | None = None
    output_schema: dict[str, Any] | None = None  # output_config.format.schema
    effort: str | None = None

    @property
    def parallel_tool_use(self) -> bool:
        return self.tool_choice.get("disable_parallel_tool_use") is not True


def validate(body: Any, version: str, backend: Backend, *, count_only: bool = False) -> MessageParams:
    """The parameters of ``body`` (``count_only``: a ``count_tokens`` body, no ``max_tokens``)."""
    if not isinstance(body, dict):
        raise wire.invalid("Input should be a valid dictionary or object to extract fields from")
    needed = ("model", "messages") if count_only else ("model", "max_tokens", "messages")
    for name in needed:
        if name not in body:
            raise e.required(name)
    model_id = e.string(body["model"], "model")
    max_tokens = 0
    if not count_only:
        max_tokens = e.integer(body["max_tokens"], "max_tokens")
        if max_tokens < 0:  # 0 is allowed: it pre-warms the prompt cache (§3)
            raise e.at_least("max_tokens", 0)
    system = content.system_text(body["system"], version) if body.get("system") is not None else ""
    convo = content.conversation(body["messages"], system, version)
    stream = False
    if not count_only and body.get("stream") is not None:
        stream = e.boolean(body["stream"], "stream")
    stops = () if count_only else _stop_sequences(body.get("stop_sequences"))
    sampling = _sampling(body, version)
    tools = _tools(body.get("tools"))
    tool_choice = _tool_choice(body.get("tool_choice"))
    thinking_config = _thinking(body.get("thinking"))
    schema, effort = _output_config(body.get("output_config"))
    if not count_only:
        _metadata(body.get("metadata"))
        tier = body.get("service_tier")
        if tier is not None and tier not in SERVICE_TIERS:
            raise e.one_of("service_tier", SERVICE_TIERS)
    speed = body.get("speed")
    if speed is not None and speed not in ("standard", "fast"):
        raise e.one_of("speed", ("standard", "fast"))
    allowed = COUNT_FIELDS if count_only else CREATE_FIELDS
    if version != wire.LATEST_VERSION and not count_only:
        allowed = (*allowed, *SAMPLING)
    for name in body:
        if name not in allowed:
            raise e.extra(name)

    spec = lookup(model_id)
    if spec is None or spec.retired:  # retired ids answer 404 (§8.3)
        raise wire.model_not_found(model_id)
    _model_sampling(spec, sampling)
    if max_tokens > spec.max_tokens:
        raise wire.invalid(
            f"max_tokens: {max_tokens} > {spec.max_tokens}, which is the maximum allowed number of "
            f"output tokens for {spec.id}"
        )
    custom = tuple(t for t in tools if t.get("type") in (None, "custom"))
    _choice_against_tools(tool_choice, tools)
    if thinking_config is not None:
        _thinking_rules(spec, thinking_config, tool_choice, sampling, max_tokens, count_only)
    if schema is not None and not spec.info.capabilities.json_schema:
        # NOT FOUND: every current model supports structured outputs.
        raise wire.invalid("output_config.format: structured outputs are not supported for this model")
    efforts = spec.info.capabilities.reasoning_efforts
    if effort is not None and efforts is not None and effort not in efforts:
        raise wire.invalid(f"output_config.effort: {effort!r} is not supported for this model")  # NOT FOUND

    prompt_tokens = backend.count_tokens(convo.turns) + convo.extra_tokens + _tool_tokens(tools)
    if prompt_tokens > spec.max_input_tokens:
        raise wire.invalid(f"prompt is too long: {prompt_tokens} tokens > {spec.max_input_tokens} maximum")
    return MessageParams(
        model=spec,
        version=version,
        convo=convo,
        prompt_tokens=prompt_tokens,
        max_tokens=max_tokens,
        stream=stream,
        stop_sequences=stops,
        temperature=float(sampling.get("temperature", 1.0)),
        top_p=float(sampling.get("top_p", 1.0)),
        tools=custom,
        tool_choice=tool_choice or {"type": "auto"},
        thinking=thinking_config,
        output_schema=schema,
        effort=effort,
    )


def _stop_sequences(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = e.array(value, "stop_sequences")
    return tuple(e.string(item, e.loc("stop_sequences", i)) for i, item in enumerate(items))


def _sampling(body: dict[str, Any], version: str) -> dict[str, float]:
    """``temperature`` (0-1), ``top_p`` (0-1), ``top_k`` (>= 0) as given; on 2026-10-21 they are
    unknown fields (the caller reports them)."""
    if version == wire.LATEST_VERSION:
        return {}
    out: dict[str, float] = {}
    for name in SAMPLING:
        value = body.get(name)
        if value is None:
            continue
        number = float(e.integer(value, name)) if name == "top_k" else e.number(value, name)
        if number < 0:
            raise e.at_least(name, 0)
        if name != "top_k" and number > 1:
            raise e.at_most(name, 1)
        out[name] = number
    return out


def _model_sampling(spec: ModelSpec, sampling: dict[str, float]) -> None:
    for name in SAMPLING:
        if name in sampling and spec.rejects(name):
            # §1.1 quotes the text for temperature; top_p/top_k follow it (NOT FOUND).
            raise wire.invalid(f"`{name}` is deprecated for this model.")
    if "temperature" in sampling and "top_p" in sampling and spec.refuses_mixed_sampling:
        raise wire.invalid(
            "`temperature` and `top_p` cannot both be specified for this model. Please use only one."
        )


def _metadata(value: Any) -> None:
    if value is None:
        return
    meta = e.dictionary(value, "metadata")
    e.check_keys(meta, "metadata", ("user_id",))
    if meta.get("user_id") is not None:
        e.string(meta["user_id"], "metadata.user_id")


def _tools(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    tools = e.array(value, "tools")
    names: set[str] = set()
    out = []
    for i, tool in enumerate(tools):
        where = e.loc("tools", i)
        tool = e.dictionary(tool, where)
        kind = tool.get("type")
        if kind in (None, "custom"):
            _custom_tool(tool, e.loc(where, "custom"))
        elif isinstance(kind, str) and SERVER_TOOL.match(kind):
            e.check_keys(tool, e.loc(where, kind), tool.keys(), ("name",))
            e.string(tool["name"], e.loc(where, kind, "name"))
        else:
            raise e.bad_tag(where, kind, ("custom", *SERVER_TOOL_EXAMPLES))
        name = str(tool["name"])
        if name in names:
            raise wire.invalid("tools: Tool names must be unique.")  # observed (§6 issues)
        names.add(name)
        out.append(tool)
    return out


def _custom_tool(tool: dict[str, Any], where: str) -> None:
    e.check_keys(tool, where, CUSTOM_TOOL_FIELDS, ("name", "input_schema"))
    name = e.string(tool["name"], e.loc(where, "name"))
    if not TOOL_NAME.match(name):
        raise wire.invalid(f"{where}.name: String should match pattern '{TOOL_NAME.pattern}'")
    if tool.get("description") is not None:
        e.string(tool["description"], e.loc(where, "description"))
    if tool.get("strict") is not None:
        e.boolean(tool["strict"], e.loc(where, "strict"))
    schema = e.dictionary(tool["input_schema"], e.loc(where, "input_schema"))
    if "type" not in schema:
        raise e.required(e.loc(where, "input_schema", "type"))
    if schema["type"] != "object":
        raise e.one_of(e.loc(where, "input_schema", "type"), ("object",))


def _tool_choice(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    choice = e.dictionary(value, "tool_choice")
    kind = choice.get("type")
    if kind not in TOOL_CHOICES:
        raise e.bad_tag("tool_choice", kind, TOOL_CHOICES)
    where = e.loc("tool_choice", str(kind))
    if kind == "none":
        e.check_keys(choice, where, ("type",))
    elif kind == "tool":
        e.check_keys(choice, where, ("type", "name", "disable_parallel_tool_use"), ("name",))
        e.string(choice["name"], e.loc(where, "name"))
    else:
        e.check_keys(choice, where, ("type", "disable_parallel_tool_use"))
    if choice.get("disable_parallel_tool_use") is not None:
        e.boolean(choice["disable_parallel_tool_use"], e.loc(where, "disable_parallel_tool_use"))
    return choice


def _choice_against_tools(choice: dict[str, Any], tools: list[dict[str, Any]]) -> None:
    kind = choice.get("type")
    if kind in ("any", "tool") and not tools:
        raise wire.invalid("tool_choice may only be specified while providing tools.")  # NOT FOUND
    if kind == "tool" and choice["name"] not in {t["name"] for t in tools}:
        raise wire.invalid(
            f"tool_choice.tool.name: Tool '{choice['name']}' not found in `tools`"
        )  # NOT FOUND


def _thinking(value: Any) -> Thinking | None:
    if value is None:
        return None
    config = e.dictionary(value, "thinking")
    kind = config.get("type")
    if kind not in THINKING_TYPES:
        raise e.bad_tag("thinking", kind, THINKING_TYPES)
    where = e.loc("thinking", str(kind))
    if kind in ("disabled", "between_tools"):
        e.check_keys(config, where, ("type",))
        return None
    fields = ("type", "budget_tokens", "display") if kind == "enabled" else ("type", "display")
    e.check_keys(config, where, fields, ("budget_tokens",) if kind == "enabled" else ())
    display = config.get("display") or "summarized"
    if display not in DISPLAYS:
        raise e.one_of(e.loc(where, "display"), DISPLAYS)
    budget = None
    if kind == "enabled":
        budget = e.integer(config["budget_tokens"], e.loc(where, "budget_tokens"))
        if budget < MIN_BUDGET:
            raise e.at_least(e.loc(where, "budget_tokens"), MIN_BUDGET)
    return Thinking(str(kind), budget, str(display))


def _thinking_rules(
    spec: ModelSpec,
    config: Thinking,
    choice: dict[str, Any],
    sampling: dict[str, float],
    max_tokens: int,
    count_only: bool,
) -> None:
    """The rules for thinking. Texts from public error reports (mastra-ai/mastra#7507,
    ProfSynapse/nexus#17); the Opus 4.7+ refusal of ``budget_tokens`` (§3,
    Metaculus/forecasting-tools#321) and the sampling texts are NOT FOUND verbatim."""
    if config.type == "enabled" and spec.rejects_enabled_thinking:
        raise wire.invalid(
            '"thinking.type.enabled" is not supported for this model. Use "thinking.type.adaptive" '
            'and "output_config.effort" to control thinking behavior.'
        )
    if config.budget_tokens is not None and not count_only and config.budget_tokens >= max_tokens:
        raise wire.invalid(
            "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our "
            f"documentation at {wire.THINKING_DOCS}#max-tokens-and-context-window-size"
        )
    if choice.get("type") in ("any", "tool"):
        raise wire.invalid("Thinking may not be enabled when tool_choice forces tool use.")
    compatibility = f"Please consult our documentation at {wire.THINKING_DOCS}#feature-compatibility"
    if sampling.get("temperature", 1.0) != 1.0:
        raise wire.invalid(f"`temperature` may only be set to 1 when thinking is enabled. {compatibility}")
    if "top_k" in sampling:
        raise wire.invalid(f"`top_k` must be unset when thinking is enabled. {compatibility}")
    if sampling.get("top_p", 1.0) < 0.95:
        raise wire.invalid(
            "`top_p` must be greater than or equal to 0.95 or unset when thinking is enabled. "
            + compatibility
        )


def _output_config(value: Any) -> tuple[dict[str, Any] | None, str | None]:
    if value is None:
        return None, None
    config = e.dictionary(value, "output_config")
    e.check_keys(config, "output_config", ("effort", "format"))
    effort = config.get("effort")
    if effort is not None and effort not in EFFORTS:
        raise e.one_of("output_config.effort", EFFORTS)
    fmt = config.get("format")
    if fmt is None:
        return None, effort
    fmt = e.dictionary(fmt, "output_config.format")
    if fmt.get("type") != "json_schema":
        raise e.bad_tag("output_config.format", fmt.get("type"), ("json_schema",))
    e.check_keys(fmt, "output_config.format.json_schema", ("type", "schema"), ("schema",))
    schema = e.dictionary(fmt["schema"], "output_config.format.json_schema.schema")
    return schema, effort


def _tool_tokens(tools: list[dict[str, Any]]) -> int:
    """Tool definitions count as prompt tokens (~4 characters a token of their JSON)."""
    if not tools:
        return 0
    return (len(orjson.dumps(tools)) + 3) // 4
