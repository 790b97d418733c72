"""What makes a vendor a vendor, apart from its wire format: a small, declarative configuration.

A new vendor on an existing wire format is one ``Provider`` (and a catalog file); the generic
HTTP driver reads everything else from its codec.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .._headers import OPENAI_RATE_LIMITS, RateLimitSchema
from ..errors import InvalidRequestError, ModelsError
from ..types import GenerateRequest

if TYPE_CHECKING:
    from ..codecs.base import ErrorFields

#: Reads a provider's own meaning into an error body's fields (e.g. Groq's "try again in 7.66s"),
#: and may name the class the status alone would not give (Groq's 498: capacity, a server error).
ErrorReader = Callable[[int, "ErrorFields"], "type[ModelsError] | None"]


@dataclass(frozen=True, slots=True)
class ParameterRanges:
    """What the provider accepts for the neutral sampling parameters (checked before sending)."""

    temperature: tuple[float, float] = (0.0, 2.0)
    top_p: tuple[float, float] = (0.0, 1.0)
    max_stop: int | None = 4  # stop sequences per request; None: no limit


@dataclass(frozen=True, slots=True)
class Provider:
    """One vendor: where it lives, how it is authenticated, its limits and its readings."""

    name: str
    title: str = ""  # the name people write ("Groq"); default: name
    base_url: str | None = None  # None: the user must give one
    base_url_env: str | None = None
    api_key_env: tuple[str, ...] = ()
    key_required: bool = False
    key_prefix: str | None = None  # a key not starting so gets a warning
    keys_url: str | None = None  # where to get a key, for the "no key" message
    api_prefix: str = ""  # added to the base URL (Groq: /openai/v1, as its SDK does)
    catalog: str | None = None  # the catalog naming its models (retirements, limits, capabilities)
    rate_limits: RateLimitSchema = OPENAI_RATE_LIMITS
    plans: str | None = None  # "module:NAME" of its ratelimit.plans.Plans, imported when limiting
    read_error: ErrorReader | None = None
    no_retry: frozenset[int] = frozenset()  # statuses never retried whatever the generic policy says
    ranges: ParameterRanges = field(default_factory=ParameterRanges)
    streams_json_schema: bool = True  # False: a JSON schema with stream=true is refused (Groq)
    connect_hint: str | None = None  # added to "connection failed" when no server answered (Ollama)

    def __post_init__(self) -> None:
        if not self.title:
            object.__setattr__(self, "title", self.name)

    def check(self, request: GenerateRequest, model: str, *, stream: bool = False) -> None:
        """Refuse, before any request, what this provider is documented to reject."""
        fmt = request.response_format
        if stream and not self.streams_json_schema and fmt is not None and fmt.type == "json_schema":
            raise InvalidRequestError(
                f"{self.title} does not stream answers shaped by a JSON schema: call generate() "
                "or generate_json() instead of streaming",
                provider=self.name,
                model=model,
                code="unsupported_parameter",
            )
        ranges = self.ranges
        for name, value, (low, high) in (
            ("temperature", request.temperature, ranges.temperature),
            ("top_p", request.top_p, ranges.top_p),
        ):
            if value is not None and not low <= value <= high:
                span = f"{low:g} to {high:g}" if math.isfinite(high) else f"at least {low:g}"
                raise InvalidRequestError(
                    f"{name}: {self.name} accepts {span}, got {value!r}", provider=self.name, model=model
                )
        if request.stop is not None and ranges.max_stop is not None and len(request.stop) > ranges.max_stop:
            raise InvalidRequestError(
                f"stop: {self.name} accepts at most {ranges.max_stop} stop sequences, "
                f"got {len(request.stop)}",
                provider=self.name,
                model=model,
            )
