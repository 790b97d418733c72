"""The one interface a wire format implements: pure functions, no I/O.

The generic HTTP driver (``drivers/http.py``) runs the lifecycle and asks its codec for
everything that differs between wire formats: where to send, how to authenticate, how a request
and a response look, how a stream is framed and what ends it, and what an error body says.
Provider-specific readings (Groq's "try again in 7.66s") are the provider's, not the codec's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from ..types import GenerateRequest, GenerateResponse, RateLimitInfo, StreamChunk

Framing = Literal["sse", "ndjson"]


@dataclass(slots=True)
class ErrorFields:
    """What an error body says, read by the codec; the status → class table
    (``_status.error_for``) and the provider's hook turn it into an exception."""

    message: str
    code: str | None = None
    type: str | None = None
    param: str | None = None
    retry_after: float | None = None  # a wait the body itself asks for (e.g. Gemini RetryInfo)
    limit: str | None = None  # which limit a 429 names, in the provider's words
    limit_kind: str | None = None  # "rpm" | "rpd" | "tpm" | "tpd", where it can be told
    limit_value: int | None = None
    daily: bool = False
    failed_generation: str | None = None  # the model's output the provider could not use


class StreamDecoder(Protocol):
    """Frames of one stream in, chunks out. ``done`` once the format's end marker arrived;
    ``final()`` is then the last chunk (finish reason, usage, tool calls) without timings."""

    done: bool
    request_id: str | None
    rate_limit: RateLimitInfo | None

    def feed(self, data: str, event: str = "message") -> StreamChunk | None: ...

    def final(self) -> StreamChunk: ...


class Codec(Protocol):
    """One wire format, configured for one server family (e.g. OpenAI chat as Groq speaks it)."""

    @property
    def framing(self) -> Framing:
        """A stream's framing: ``text/event-stream`` or newline-delimited JSON."""
        ...

    @property
    def request_id_header(self) -> str:
        """The response header carrying the request id."""
        ...

    @property
    def end_marker(self) -> str:
        """What the format calls the end of a stream, for "the stream ended before ..." messages."""
        ...

    def url(self, base_url: str, model: str, *, stream: bool) -> str: ...

    def auth_headers(self, api_key: str | None) -> dict[str, str]: ...

    def encode(self, request: GenerateRequest, model: str, *, stream: bool, provider: str = "") -> bytes: ...

    def decode(
        self, data: Any, headers: Mapping[str, str], *, provider: str, model: str
    ) -> GenerateResponse: ...

    def is_error(self, data: Any) -> bool:
        """Whether a body sent with a success status is in fact an error object."""
        ...

    def stream_decoder(
        self, *, provider: str, model: str, request_id: str | None, rate_limit: RateLimitInfo | None
    ) -> StreamDecoder: ...

    def error_fields(self, status: int, data: Any) -> ErrorFields: ...
