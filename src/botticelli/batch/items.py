"""What a batch is made of: items in (an id and a request), results out (a response or an error).

Kept free of I/O so the in-process runner, the JSONL journal and the remote Batch API client all
share one definition of an item and one JSON shape of a result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..types import GenerateRequest, GenerateResponse, Usage

__all__ = ["BatchId", "BatchItem", "BatchResult", "error_json", "response_json"]

#: An item's id: a non-empty string or an integer, kept as given so output joins back on input.
BatchId = str | int


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One request of a batch. ``line`` is its line in the input file (for messages), ``model``
    a per-item model override (``provider:model`` or a Groq model id), ``None`` for the default."""

    id: BatchId
    request: GenerateRequest
    line: int | None = None
    model: str | None = None


@dataclass(frozen=True, slots=True)
class BatchResult:
    """The outcome of one item: exactly one of ``response`` and ``error`` is set. ``error`` is
    the typed exception the call raised (a ``ModelsError`` subclass in practice)."""

    id: BatchId
    response: GenerateResponse | None = None
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        """The result as one JSON object: ``{"id", "text", "finish_reason", "usage", "model",
        "request_id"}`` (plus ``"reasoning"`` / ``"tool_calls"`` when present) or
        ``{"id", "error": {"class", "message", "status", "code", "request_id"}}``."""
        if self.error is not None:
            return {"id": self.id, "error": error_json(self.error)}
        assert self.response is not None
        return {"id": self.id, **response_json(self.response)}


def usage_json(usage: Usage) -> dict[str, Any]:
    """Token counts always; Groq's timings and detail counts only when the server sent them."""
    data: dict[str, Any] = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }
    for name in (
        "queue_time",
        "prompt_time",
        "completion_time",
        "total_time",
        "reasoning_tokens",
        "cached_tokens",
    ):
        value = getattr(usage, name)
        if value is not None:
            data[name] = value
    return data


def response_json(response: GenerateResponse) -> dict[str, Any]:
    data: dict[str, Any] = {
        "text": response.text,
        "finish_reason": response.finish_reason,
        "usage": usage_json(response.usage),
        "model": response.model,
        "request_id": response.request_id,
    }
    reasoning = response.reasoning
    if reasoning:
        data["reasoning"] = reasoning
    calls = response.tool_calls
    if calls:
        data["tool_calls"] = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in calls]
    return data


def error_json(error: BaseException) -> dict[str, Any]:
    """Class name and message always; status, code and request id as a ``ModelsError`` has them
    (``None`` for other errors), so a consumer can tell a 429 from a 400 without parsing text."""
    return {
        "class": type(error).__name__,
        "message": str(error),
        "status": getattr(error, "status", None),
        "code": getattr(error, "code", None),
        "request_id": getattr(error, "request_id", None),
    }
