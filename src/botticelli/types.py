"""Provider-neutral request and response types.

Plain slotted dataclasses rather than pydantic models: they import in microseconds and cost
about a microsecond to build, which matters on the per-call hot path. Builders validate once, at
construction, and name the offending field.
"""

from __future__ import annotations

import base64
import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "GenerateRequest",
    "GenerateRequestBuilder",
    "GenerateResponse",
    "Input",
    "Message",
    "MessageBuilder",
    "Output",
    "RateLimitInfo",
    "ReasoningOutput",
    "Role",
    "StreamChunk",
    "TextOutput",
    "ToolCall",
    "ToolCallOutput",
    "Usage",
]


class Role(enum.StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"  # the result of a tool call, sent back to the model


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
    def image(url: str | None = None, *, data: bytes | None = None, mime_type: str = "image/png") -> Input:
        _one_source("Input.image", url, data)
        return Input("image", url=url, data=data, mime_type=mime_type)

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
        return f"data:{self.mime_type};base64,{base64.b64encode(self.data).decode('ascii')}"

    def __str__(self) -> str:
        if self.kind == "text":
            return self.text_value or ""
        return f"<{self.kind} {self.mime_type}>"


def _one_source(what: str, url: str | None, data: bytes | None) -> None:
    if (url is None) == (data is None):
        raise ValueError(f"{what} needs exactly one of url= or data=")


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as the model produced it


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: tuple[Input, ...]
    tool_call_id: str | None = None  # for Role.TOOL: which call this answers
    tool_calls: tuple[ToolCall, ...] = ()  # for Role.ASSISTANT: calls the model made

    def __post_init__(self) -> None:
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
        return Message(Role.SYSTEM, (Input.text(text),))

    @staticmethod
    def user(text: str) -> Message:
        return Message(Role.USER, (Input.text(text),))

    @staticmethod
    def assistant(text: str) -> Message:
        return Message(Role.ASSISTANT, (Input.text(text),))

    @staticmethod
    def tool(text: str, *, tool_call_id: str) -> Message:
        return Message(Role.TOOL, (Input.text(text),), tool_call_id=tool_call_id)

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
    """What to generate. ``extra`` passes provider-specific fields (e.g. ``response_format``,
    ``tools``, ``reasoning_effort``) straight into the wire body."""

    messages: tuple[Message, ...]
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] | None = None
    seed: int | None = None
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
        _check_range("temperature", self.temperature, 0.0, 2.0)
        _check_range("top_p", self.top_p, 0.0, 1.0)
        if self.stop is not None:
            stop = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)
            if not 1 <= len(stop) <= 4 or not all(isinstance(s, str) and s for s in stop):
                raise ValueError("stop: one to four non-empty strings")
            object.__setattr__(self, "stop", stop)
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise ValueError(f"seed: must be an integer, got {self.seed!r}")

    @staticmethod
    def builder() -> GenerateRequestBuilder:
        return GenerateRequestBuilder()

    @staticmethod
    def prompt(text: str, *, system: str | None = None, **params: Any) -> GenerateRequest:
        """A one-turn request: an optional system message and one user message."""
        messages = [Message.system(system)] if system else []
        messages.append(Message.user(text))
        return GenerateRequest(tuple(messages), **params)


def _check_range(name: str, value: float | None, low: float, high: float) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
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

    def extra(self, **fields: Any) -> GenerateRequestBuilder:
        self._fields.setdefault("extra", {}).update(fields)
        return self

    def build(self) -> GenerateRequest:
        return GenerateRequest(
            self._fields.get("messages", ()), **{k: v for k, v in self._fields.items() if k != "messages"}
        )


# ---- responses ---------------------------------------------------------------------------------


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
    """The ``x-ratelimit-*`` headers of one response, resets in seconds.

    On Groq the ``requests_*`` fields count requests per **day** and ``tokens_*`` tokens per
    **minute** (``requests_window`` / ``tokens_window`` say so); other providers may differ.
    """

    requests_limit: int | None = None
    requests_remaining: int | None = None
    requests_reset: float | None = None
    tokens_limit: int | None = None
    tokens_remaining: int | None = None
    tokens_reset: float | None = None
    retry_after: float | None = None
    requests_window: str = "day"
    tokens_window: str = "minute"


@dataclass(frozen=True, slots=True)
class TextOutput:
    text: str
    kind: Literal["text"] = "text"

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class ReasoningOutput:
    """The model's visible reasoning (e.g. gpt-oss ``message.reasoning``)."""

    text: str
    kind: Literal["reasoning"] = "reasoning"

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
    finish_reason: str | None
    model: str
    provider: str = ""
    id: str | None = None
    request_id: str | None = None
    usage: Usage = field(default_factory=Usage)
    rate_limit: RateLimitInfo | None = None
    latency: float = 0.0  # seconds, measured by the client from send to parsed response
    time_to_first_token: float | None = None  # streams only

    @property
    def text(self) -> str:
        return "".join(o.text for o in self.outputs if o.kind == "text")

    @property
    def reasoning(self) -> str:
        return "".join(o.text for o in self.outputs if o.kind == "reasoning")

    @property
    def tool_calls(self) -> list[ToolCall]:
        return [o.call for o in self.outputs if o.kind == "tool_call"]


@dataclass(slots=True)
class StreamChunk:
    """One piece of a stream. ``text`` is the new text only. The final chunk has
    ``is_final=True`` and carries ``finish_reason``, ``usage``, timings and rate-limit info."""

    text: str = ""
    is_final: bool = False
    reasoning: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None
    request_id: str | None = None
    rate_limit: RateLimitInfo | None = None
    time_to_first_token: float | None = None
    latency: float | None = None
    tool_calls: tuple[ToolCall, ...] = ()
