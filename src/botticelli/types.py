"""Provider-neutral request and response types.

Plain slotted dataclasses rather than pydantic models: they import in microseconds and cost
about a microsecond to build, which matters on the per-call hot path. Builders validate once, at
construction, and name the offending field.
"""

from __future__ import annotations

import enum
import math
import mimetypes
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "ExecutedTool",
    "FinishReason",
    "GenerateRequest",
    "GenerateRequestBuilder",
    "GenerateResponse",
    "Input",
    "Message",
    "MessageBuilder",
    "ModelListing",
    "Output",
    "RateLimitInfo",
    "ReasoningOutput",
    "ResponseFormat",
    "Role",
    "StreamChunk",
    "TextOutput",
    "Tool",
    "ToolCall",
    "ToolCallOutput",
    "ToolChoice",
    "Usage",
]


class Role(enum.StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"  # the result of a tool call, sent back to the model


# An enum member read from its class goes through a descriptor; the constructors read these.
_SYSTEM, _USER, _ASSISTANT, _TOOL = Role.SYSTEM, Role.USER, Role.ASSISTANT, Role.TOOL


InputKind = Literal["text", "image", "audio", "document"]


@dataclass(frozen=True, slots=True)
class Input:
    """One piece of message content. Build with ``Input.text(...)``, ``Input.image(...)``..."""

    kind: InputKind
    text_value: str | None = None
    data: bytes | None = None
    url: str | None = None
    mime_type: str | None = None
    name: str | None = None

    @staticmethod
    def text(text: str) -> Input:
        if not isinstance(text, str):
            raise TypeError(f"Input.text expects a str, got {type(text).__name__}")
        return Input("text", text_value=text)

    @staticmethod
    def image(
        source: str | os.PathLike[str] | bytes | None = None,
        *,
        data: bytes | None = None,
        mime_type: str | None = None,
    ) -> Input:
        """An image from a URL (``https://...`` or ``data:...``), a file path or bytes; sent as
        a base64 ``data:`` URL with its MIME type (read from the bytes, else the file name)."""
        url: str | None = None
        if isinstance(source, bytes):
            data, source = source, None
        if isinstance(source, str) and source.startswith(("http://", "https://", "data:")):
            url = source
        elif source is not None:
            path = os.fspath(source)
            try:
                with open(path, "rb") as handle:
                    data = handle.read()
            except OSError as exc:
                raise ValueError(f"Input.image: cannot read {path!r} ({exc.strerror or exc})") from None
            mime_type = mime_type or _image_type(data) or mimetypes.guess_type(path)[0]
        _one_source("Input.image", url, data)
        if data is not None:
            mime_type = mime_type or _image_type(data)
            if mime_type is None:
                raise ValueError("Input.image: the bytes are not PNG, JPEG, GIF or WebP; pass mime_type=")
        return Input("image", url=url, data=data, mime_type=mime_type or "image/png")

    @staticmethod
    def audio(data: bytes | None = None, *, url: str | None = None, mime_type: str = "audio/wav") -> Input:
        _one_source("Input.audio", url, data)
        return Input("audio", url=url, data=data, mime_type=mime_type)

    @staticmethod
    def document(
        data: bytes | None = None,
        *,
        url: str | None = None,
        mime_type: str = "application/pdf",
        name: str | None = None,
    ) -> Input:
        _one_source("Input.document", url, data)
        return Input("document", url=url, data=data, mime_type=mime_type, name=name)

    def data_url(self) -> str:
        """The content as a URL: the given one, or a ``data:`` URL of the bytes."""
        if self.url is not None:
            return self.url
        assert self.data is not None
        import base64

        return f"data:{self.mime_type};base64,{base64.b64encode(self.data).decode('ascii')}"

    def __str__(self) -> str:
        if self.kind == "text":
            return self.text_value or ""
        return f"<{self.kind} {self.mime_type}>"


def _image_type(data: bytes) -> str | None:
    """The MIME type of image bytes, from their signature."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _one_source(what: str, url: str | None, data: bytes | None) -> None:
    if (url is None) == (data is None):
        raise ValueError(f"{what} needs exactly one of url= or data=")


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as the model produced it

    @property
    def args(self) -> dict[str, Any]:
        """``arguments`` parsed (a new dict on each access; empty text is ``{}``).
        ``ToolArgumentsError`` if they are not a JSON object."""
        from .tools import parse_arguments

        return parse_arguments(self)


@dataclass(frozen=True, slots=True)
class Tool:
    """A function the model may call: ``parameters`` is a JSON schema of its arguments (an
    object schema). ``strict`` asks for arguments that match the schema exactly, where the
    model's profile supports it. Each codec encodes tools in its own wire shape."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool | None = None
    #: ``"function"``: ours to run; ``"builtin"``: a tool the provider runs itself (Groq's
    #: ``browser_search``, ``code_interpreter`` on gpt-oss), see ``Tool.builtin``.
    kind: Literal["function", "builtin"] = "function"

    @staticmethod
    def builtin(name: str) -> Tool:
        """A tool the provider runs server-side; its runs come back in ``executed_tools``."""
        return Tool(name, kind="builtin")

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"tool name: expected a non-empty string, got {self.name!r}")
        if not isinstance(self.parameters, Mapping):
            raise ValueError(f"tool {self.name!r}: parameters must be a JSON schema object")

    @staticmethod
    def from_function(
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        strict: bool | None = None,
    ) -> Tool:
        """A tool from a Python function: its name, the docstring's first paragraph, and a JSON
        schema of its parameters from the signature, type hints (``Annotated[X, "what it is"]``,
        ``Literal``, ``Enum``, ``TypedDict``, dataclasses, pydantic models...) and defaults,
        with per-parameter descriptions from an ``Args:`` docstring section. ``run_tools``
        executes the tool it returns. ``*args`` / ``**kwargs`` are refused (``TypeError``)."""
        from .tools import tool_from_function

        return tool_from_function(fn, name=name, description=description, strict=strict)

    @staticmethod
    def from_model(
        model: type[Any],
        *,
        name: str | None = None,
        description: str | None = None,
        strict: bool | None = None,
    ) -> Tool:
        """A tool whose arguments are a pydantic model's fields: the model's name, its docstring's
        first paragraph, its JSON schema (references inlined). Needs pydantic."""
        from .tools import tool_from_model

        return tool_from_model(model, name=name, description=description, strict=strict)


ToolChoiceMode = Literal["auto", "none", "required", "tool"]
ReasoningFormat = Literal["hidden", "raw", "parsed"]
ServiceTier = Literal["auto", "on_demand", "flex", "performance"]
REASONING_FORMATS: tuple[str, ...] = ("hidden", "raw", "parsed")
SERVICE_TIERS: tuple[str, ...] = ("auto", "on_demand", "flex", "performance")


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """Whether and which tool the model must call: ``"auto"``, ``"none"``, ``"required"``, or one
    tool by name (``ToolChoice.tool("get_weather")``). ``GenerateRequest`` also takes those
    strings, a tool's name, a ``Tool``, or ``{"name": ...}``."""

    mode: ToolChoiceMode
    name: str | None = None

    @staticmethod
    def tool(name: str) -> ToolChoice:
        return ToolChoice("tool", name)

    @staticmethod
    def of(value: object) -> ToolChoice:
        if isinstance(value, ToolChoice):
            choice = value
        elif isinstance(value, Tool):
            choice = ToolChoice("tool", value.name)
        elif value in ("auto", "none", "required"):
            choice = ToolChoice(value)
        elif isinstance(value, str) and value:
            choice = ToolChoice("tool", value)  # any other word names a tool
        elif isinstance(value, Mapping) and isinstance(value.get("name"), str):
            choice = ToolChoice("tool", value["name"])
        else:
            raise ValueError(
                f"tool_choice: expected 'auto', 'none', 'required', a Tool or ToolChoice.tool(name), "
                f"got {value!r}"
            )
        if choice.mode == "tool" and not choice.name:
            raise ValueError("tool_choice: naming a tool needs its name")
        return choice


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    """The shape of the answer: ``ResponseFormat.json()`` (any JSON object) or
    ``ResponseFormat.json_schema(schema, name=...)``; ``strict`` where the profile supports it."""

    type: Literal["text", "json_object", "json_schema"]
    schema: Mapping[str, Any] | None = None
    name: str = "response"
    strict: bool | None = None

    def __post_init__(self) -> None:
        if self.type not in ("text", "json_object", "json_schema"):
            raise ValueError(f"response_format: unknown type {self.type!r}")
        if self.type == "json_schema" and not isinstance(self.schema, Mapping):
            raise ValueError("response_format: a json_schema format needs the schema (a JSON object)")

    @staticmethod
    def json() -> ResponseFormat:
        return ResponseFormat("json_object")

    @staticmethod
    def json_schema(
        schema: Mapping[str, Any], *, name: str = "response", strict: bool | None = None
    ) -> ResponseFormat:
        return ResponseFormat("json_schema", schema=schema, name=name, strict=strict)


@dataclass(frozen=True, slots=True)
class ModelListing:
    """One model as the provider's server lists it now (``driver.list_models()``, ``botticelli
    models --live``), not as the bundled catalog remembers it. ``status``: the provider's word
    (Anthropic's lifecycle ``active`` / ``deprecated`` / ``retired``; ``None`` when not said);
    dates as the server wrote them (ISO 8601); ``size``: bytes on disk (local servers)."""

    id: str
    display_name: str | None = None
    status: str | None = None
    created: str | None = None
    context_window: int | None = None
    max_output_tokens: int | None = None
    deprecated_at: str | None = None
    retires_at: str | None = None
    owned_by: str | None = None
    size: int | None = None


@dataclass(frozen=True, slots=True)
class ExecutedTool:
    """A built-in tool the provider ran while answering (Groq's ``executed_tools``)."""

    type: str  # e.g. "browser_search", "code_interpreter"
    arguments: str = ""  # JSON text
    output: str | None = None
    index: int = 0
    results: Any = None  # the provider's structured results (search hits, code output), as sent


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: tuple[Input, ...]
    tool_call_id: str | None = None  # for Role.TOOL: which call this answers
    tool_calls: tuple[ToolCall, ...] = ()  # for Role.ASSISTANT: calls the model made
    #: For Role.ASSISTANT: its reasoning as the provider sent it; signed reasoning (Anthropic's
    #: thinking) goes back unchanged with the next turn of a tool loop, as the provider requires.
    reasoning: tuple[ReasoningOutput, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.reasoning, tuple):
            object.__setattr__(self, "reasoning", tuple(self.reasoning))
        if not isinstance(self.role, Role):
            object.__setattr__(self, "role", _role(self.role))
        if not isinstance(self.content, tuple):
            object.__setattr__(self, "content", tuple(self.content))
        if not self.content and not self.tool_calls:
            raise ValueError("content: a message needs at least one Input")
        for item in self.content:
            if not isinstance(item, Input):
                raise ValueError(f"content: expected Input items, got {type(item).__name__}")

    @staticmethod
    def builder() -> MessageBuilder:
        return MessageBuilder()

    @staticmethod
    def system(text: str) -> Message:
        return Message(_SYSTEM, (Input.text(text),))

    @staticmethod
    def user(text: str) -> Message:
        return Message(_USER, (Input.text(text),))

    @staticmethod
    def assistant(text: str) -> Message:
        return Message(_ASSISTANT, (Input.text(text),))

    @staticmethod
    def tool(text: str, *, tool_call_id: str) -> Message:
        return Message(_TOOL, (Input.text(text),), tool_call_id=tool_call_id)

    @property
    def text(self) -> str:
        return "".join(i.text_value or "" for i in self.content if i.kind == "text")


def _role(value: object) -> Role:
    try:
        return Role(value)  # type: ignore[arg-type]  # anything else is the ValueError below
    except ValueError:
        raise ValueError(f"role: expected one of {[r.value for r in Role]}, got {value!r}") from None


class MessageBuilder:
    """``Message.builder().role(Role.USER).content([Input.text("Hi")]).build()``"""

    __slots__ = ("_content", "_role", "_tool_call_id")

    def __init__(self) -> None:
        self._role: Role | None = None
        self._content: list[Input] = []
        self._tool_call_id: str | None = None

    def role(self, role: Role | str) -> MessageBuilder:
        self._role = _role(role)
        return self

    def content(self, content: Iterable[Input]) -> MessageBuilder:
        self._content = list(content)
        return self

    def text(self, text: str) -> MessageBuilder:
        self._content.append(Input.text(text))
        return self

    def tool_call_id(self, tool_call_id: str) -> MessageBuilder:
        self._tool_call_id = tool_call_id
        return self

    def build(self) -> Message:
        if self._role is None:
            raise ValueError("role: a message needs a role")
        return Message(self._role, tuple(self._content), tool_call_id=self._tool_call_id)


@dataclass(frozen=True, slots=True)
class GenerateRequest:
    """What to generate, provider-neutral: each codec encodes it, and the provider's profile
    checks what its models accept (e.g. temperature up to 2 on Groq, 1 on Anthropic) before any
    request. ``extra`` passes genuinely provider-only fields (e.g. ``reasoning_effort``) straight
    into the wire body."""

    messages: tuple[Message, ...]
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] | None = None
    seed: int | None = None
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    #: How hard a reasoning model thinks (``"low"``, ``"medium"``, ``"high"``; which values a
    #: model takes is its catalog profile's ``reasoning_efforts``).
    reasoning_effort: str | None = None
    #: Groq's form of the reasoning: ``"hidden"``, ``"raw"`` (in the text) or ``"parsed"`` (apart).
    reasoning_format: ReasoningFormat | None = None
    #: Groq's switch for the reasoning of models that take no ``reasoning_format`` (gpt-oss).
    include_reasoning: bool | None = None
    #: Groq's tier: ``"auto"``, ``"on_demand"``, ``"flex"`` (fails fast with 498 when full) or
    #: ``"performance"``.
    service_tier: ServiceTier | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        messages = self.messages
        if isinstance(messages, (str, Message)):
            raise ValueError("messages: expected a list of Message")
        if not isinstance(messages, tuple):
            messages = tuple(messages)
            object.__setattr__(self, "messages", messages)
        if not messages:
            raise ValueError("messages: at least one message is required")
        for m in messages:
            if not isinstance(m, Message):
                raise ValueError(f"messages: expected Message items, got {type(m).__name__}")
        if self.max_tokens is not None and (
            isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int) or self.max_tokens < 1
        ):
            raise ValueError(f"max_tokens: must be an integer >= 1, got {self.max_tokens!r}")
        # Only what no provider accepts is refused here; each provider's own ranges are its
        # profile's to check (drivers do, before sending).
        if self.temperature is not None:
            _check_range("temperature", self.temperature, 0.0, math.inf)
        if self.top_p is not None:
            _check_range("top_p", self.top_p, 0.0, 1.0)
        if self.stop is not None:
            stop = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)
            if not stop or not all(isinstance(s, str) and s for s in stop):
                raise ValueError("stop: one or more non-empty strings")
            object.__setattr__(self, "stop", stop)
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise ValueError(f"seed: must be an integer, got {self.seed!r}")
        if type(self.tools) is not tuple or self.tools or self.tool_choice is not None:
            self._check_tools()
        if self.parallel_tool_calls is not None and not isinstance(self.parallel_tool_calls, bool):
            raise ValueError(f"parallel_tool_calls: must be a bool, got {self.parallel_tool_calls!r}")
        if self.response_format is not None and not isinstance(self.response_format, ResponseFormat):
            raise ValueError("response_format: expected a ResponseFormat (ResponseFormat.json() ...)")
        if self.reasoning_effort is not None and (
            not isinstance(self.reasoning_effort, str) or not self.reasoning_effort
        ):
            raise ValueError(f"reasoning_effort: expected a non-empty string, got {self.reasoning_effort!r}")
        if self.reasoning_format is not None:
            _check_choice("reasoning_format", self.reasoning_format, REASONING_FORMATS)
        if self.service_tier is not None:
            _check_choice("service_tier", self.service_tier, SERVICE_TIERS)
        if self.include_reasoning is not None:
            if not isinstance(self.include_reasoning, bool):
                raise ValueError(f"include_reasoning: must be a bool, got {self.include_reasoning!r}")
            if self.reasoning_format is not None:
                raise ValueError(
                    "include_reasoning: cannot be combined with reasoning_format (they are mutually "
                    "exclusive); use one"
                )

    def _check_tools(self) -> None:
        tools = self.tools
        if not isinstance(tools, tuple):
            if isinstance(tools, (str, Tool)):
                raise ValueError("tools: expected a list of Tool")
            tools = tuple(tools)
            object.__setattr__(self, "tools", tools)
        names = set()
        for tool in tools:
            if not isinstance(tool, Tool):
                raise ValueError(f"tools: expected Tool items, got {type(tool).__name__}")
            if tool.name in names:
                raise ValueError(f"tools: {tool.name!r} is defined twice")
            names.add(tool.name)
        if self.tool_choice is not None:
            choice = ToolChoice.of(self.tool_choice)
            object.__setattr__(self, "tool_choice", choice)
            if choice.mode == "tool" and choice.name not in names:
                raise ValueError(f"tool_choice: names {choice.name!r}, which is not in tools")
            if choice.mode in ("required", "tool") and not tools:
                raise ValueError(f"tool_choice: {choice.mode!r} needs tools")

    @staticmethod
    def builder() -> GenerateRequestBuilder:
        return GenerateRequestBuilder()

    @staticmethod
    def prompt(text: str, *, system: str | None = None, **params: Any) -> GenerateRequest:
        """A one-turn request: an optional system message and one user message."""
        messages = [Message.system(system)] if system else []
        messages.append(Message.user(text))
        return GenerateRequest(tuple(messages), **params)


def _check_choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value is not None and value not in allowed:
        raise ValueError(f"{name}: expected one of {', '.join(allowed)}, got {value!r}")


def _check_range(name: str, value: float | None, low: float, high: float) -> None:
    if value is None:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not low <= value <= high
        or not math.isfinite(value)
    ):
        if math.isinf(high):
            raise ValueError(f"{name}: must be a finite number >= {low:g}, got {value!r}")
        raise ValueError(f"{name}: must be between {low:g} and {high:g}, got {value!r}")


class GenerateRequestBuilder:
    """``GenerateRequest.builder().messages([...]).max_tokens(100).temperature(0.7).build()``"""

    __slots__ = ("_fields",)

    def __init__(self) -> None:
        self._fields: dict[str, Any] = {}

    def messages(self, messages: Sequence[Message]) -> GenerateRequestBuilder:
        self._fields["messages"] = tuple(messages)
        return self

    def max_tokens(self, value: int | None) -> GenerateRequestBuilder:
        self._fields["max_tokens"] = value
        return self

    def temperature(self, value: float | None) -> GenerateRequestBuilder:
        self._fields["temperature"] = value
        return self

    def top_p(self, value: float | None) -> GenerateRequestBuilder:
        self._fields["top_p"] = value
        return self

    def stop(self, value: str | Sequence[str] | None) -> GenerateRequestBuilder:
        self._fields["stop"] = value
        return self

    def seed(self, value: int | None) -> GenerateRequestBuilder:
        self._fields["seed"] = value
        return self

    def tools(self, tools: Sequence[Tool]) -> GenerateRequestBuilder:
        self._fields["tools"] = tuple(tools)
        return self

    def tool_choice(self, value: ToolChoice | str | None) -> GenerateRequestBuilder:
        self._fields["tool_choice"] = value
        return self

    def response_format(self, value: ResponseFormat | None) -> GenerateRequestBuilder:
        self._fields["response_format"] = value
        return self

    def extra(self, **fields: Any) -> GenerateRequestBuilder:
        self._fields.setdefault("extra", {}).update(fields)
        return self

    def build(self) -> GenerateRequest:
        return GenerateRequest(
            self._fields.get("messages", ()), **{k: v for k, v in self._fields.items() if k != "messages"}
        )


# ---- responses ---------------------------------------------------------------------------------


class FinishReason(enum.StrEnum):
    """Why generation ended, the same for every provider; the provider's own word is kept
    beside it (``raw_finish_reason``). A ``StrEnum``: ``reason == "length"`` still works."""

    STOP = "stop"  # a natural end or a stop sequence
    LENGTH = "length"  # max_tokens (or the context) ran out: the answer is cut
    TOOL_CALLS = "tool_calls"  # the model wants tools called
    CONTENT_FILTER = "content_filter"  # a safety system stopped or refused it
    PAUSED = "paused"  # the provider paused a long turn (Anthropic pause_turn): send it back to go on
    CANCELLED = "cancelled"  # the caller stopped it (local model)
    ERROR = "error"  # the provider reported an error in place of an end
    OTHER = "other"  # a reason this version does not know; see raw_finish_reason

    @classmethod
    def of(cls, raw: str | None, table: Mapping[str, FinishReason] | None = None) -> FinishReason | None:
        """The neutral reason for a provider's word (``table`` maps its own words first)."""
        if raw is None:
            return None
        if table is not None:
            found = table.get(raw)
            if found is not None:
                return found
        member = cls._value2member_map_.get(raw)  # what cls(raw) looks up, without its machinery
        return member if isinstance(member, FinishReason) else cls.OTHER


@dataclass(slots=True)
class Usage:
    """Token counts, plus Groq's server-side timings in seconds where the provider sends them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    queue_time: float | None = None
    prompt_time: float | None = None
    completion_time: float | None = None
    total_time: float | None = None
    reasoning_tokens: int | None = None
    cached_tokens: int | None = None


@dataclass(slots=True)
class RateLimitInfo:
    """A response's rate-limit headers, read by its provider's schema; resets in seconds.

    ``requests_window`` / ``tokens_window`` say what the counts are per: on Groq ``requests_*``
    count requests per **day** and ``tokens_*`` tokens per **minute**; on OpenAI-style servers
    both are per minute.
    """

    requests_limit: int | None = None
    requests_remaining: int | None = None
    requests_reset: float | None = None
    tokens_limit: int | None = None
    tokens_remaining: int | None = None
    tokens_reset: float | None = None
    retry_after: float | None = None
    requests_window: str = "minute"
    tokens_window: str = "minute"


@dataclass(frozen=True, slots=True)
class TextOutput:
    text: str
    kind: Literal["text"] = "text"

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class ReasoningOutput:
    """The model's visible reasoning (e.g. gpt-oss ``message.reasoning``). ``signature``: the
    provider's proof of it (Anthropic's thinking signature, Gemini's ``thoughtSignature``), which
    must be sent back unchanged with the next turn of a tool loop."""

    text: str
    kind: Literal["reasoning"] = "reasoning"
    signature: str | None = None

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class ToolCallOutput:
    call: ToolCall
    kind: Literal["tool_call"] = "tool_call"

    def __str__(self) -> str:
        return f"{self.call.name}({self.call.arguments})"


Output = TextOutput | ReasoningOutput | ToolCallOutput


@dataclass(slots=True)
class GenerateResponse:
    outputs: list[Output]
    finish_reason: FinishReason | None
    model: str
    provider: str = ""
    id: str | None = None
    request_id: str | None = None
    usage: Usage = field(default_factory=Usage)
    rate_limit: RateLimitInfo | None = None
    latency: float = 0.0  # seconds, measured by the client from send to parsed response
    time_to_first_token: float | None = None  # streams only
    raw_finish_reason: str | None = None  # the provider's own word for finish_reason
    executed_tools: list[ExecutedTool] = field(default_factory=list)  # built-in tools the server ran

    @property
    def text(self) -> str:
        return "".join(o.text for o in self.outputs if o.kind == "text")

    @property
    def reasoning(self) -> str:
        return "".join(o.text for o in self.outputs if o.kind == "reasoning")

    @property
    def tool_calls(self) -> list[ToolCall]:
        return [o.call for o in self.outputs if o.kind == "tool_call"]


class Later:
    """A value read on first access, then kept: a response's rate-limit headers, which most
    callers never look at, are parsed only when ``response.rate_limit`` (or the driver's
    ``last_rate_limit``) is read. ``read`` must not raise."""

    __slots__ = ("_read", "_value")

    def __init__(self, read: Callable[[], Any]) -> None:
        self._read: Callable[[], Any] | None = read
        self._value: Any = None

    def get(self) -> Any:
        if self._read is not None:
            self._value = self._read()
            self._read = None
        return self._value


def _read_later(cls: type, name: str) -> None:
    """Make the slot ``name`` of ``cls`` resolve a ``Later`` it holds on first access, so
    ``repr``, ``==``, ``dataclasses.replace`` and pickling all see the value."""
    slot = cls.__dict__[name]

    def get(self: Any) -> Any:
        value = slot.__get__(self, cls)
        if type(value) is Later:
            value = value.get()
            slot.__set__(self, value)
        return value

    setattr(cls, name, property(get, slot.__set__, doc=f"{cls.__name__}.{name}, read on first access"))


_read_later(GenerateResponse, "rate_limit")


@dataclass(slots=True)
class StreamChunk:
    """One piece of a stream. ``text`` is the new text only. The final chunk has
    ``is_final=True`` and carries ``finish_reason``, ``usage``, timings and rate-limit info."""

    text: str = ""
    is_final: bool = False
    reasoning: str = ""
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    request_id: str | None = None
    rate_limit: RateLimitInfo | None = None
    time_to_first_token: float | None = None
    latency: float | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    raw_finish_reason: str | None = None
    reasoning_signature: str | None = None
