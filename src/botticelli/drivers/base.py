"""The one protocol every provider implements, the stream object drivers return, and the one
function that turns a stream's pieces into a response (``assemble_response``)."""

from __future__ import annotations

import abc
import functools
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, overload

from ..types import (
    GenerateRequest,
    GenerateResponse,
    Output,
    RateLimitInfo,
    ReasoningOutput,
    StreamChunk,
    TextOutput,
    ToolCall,
    ToolCallOutput,
    Usage,
)

if TYPE_CHECKING:
    from ..blocking import BlockingDriver
    from ..catalog import Capabilities
    from ..ratelimit import Limiter, RateLimitStatus

__all__ = ["Driver", "ResponseStream", "assemble_response", "stream_outputs"]

R = TypeVar("R", bound=GenerateResponse)
_Schema = TypeVar("_Schema")


def stream_outputs(
    text: str, reasoning: str, tool_calls: Iterable[ToolCall] = (), signature: str | None = None
) -> list[Output]:
    """The outputs of a streamed answer: its reasoning (with the provider's signature, if any),
    its text, then its tool calls; a part that is empty is left out."""
    outputs: list[Output] = []
    if reasoning or signature is not None:
        outputs.append(ReasoningOutput(reasoning, signature=signature))
    if text:
        outputs.append(TextOutput(text))
    outputs.extend(ToolCallOutput(c) for c in tool_calls)
    return outputs


def assemble_response(
    texts: Iterable[str],
    reasoning: Iterable[str],
    final: StreamChunk,
    *,
    model: str,
    provider: str,
    into: type[R],
    signature: str | None = None,
    latency: float = 0.0,
    time_to_first_token: float | None = None,
) -> R:
    """The response a stream amounts to: the delta chunks' ``texts`` and ``reasoning`` in order,
    and the ``final`` chunk (its own text and reasoning, if any, come last; its finish reasons,
    usage, request id, rate limit and tool calls are the response's). ``signature``: the
    reasoning signature the deltas carried (the final chunk's wins). ``into``: the response class
    (``GenerateResponse``, or the cache's ``CachedResponse``). ``ResponseStream`` and the cache's
    stored streams both build their responses here, so a replay is the answer that was stored."""
    text = "".join(texts) + final.text
    thought = "".join(reasoning) + final.reasoning
    if final.reasoning_signature is not None:
        signature = final.reasoning_signature
    return into(
        outputs=stream_outputs(text, thought, final.tool_calls, signature),
        finish_reason=final.finish_reason,
        model=model,
        provider=provider,
        request_id=final.request_id,
        usage=final.usage if final.usage is not None else Usage(),
        rate_limit=final.rate_limit,
        latency=latency,
        time_to_first_token=time_to_first_token,
        raw_finish_reason=final.raw_finish_reason,
    )


class ResponseStream:
    """An async iterator of ``StreamChunk``. Leaving the loop early, cancelling the task, or
    ``await stream.aclose()`` closes the HTTP response; ``async with`` closes it deterministically.

    Drivers hand it an async generator of delta chunks ending with one ``is_final`` chunk; the
    stream measures time to first token and latency, stamps them on the final chunk, and keeps
    the whole answer in ``response``. The generator must not refer back to the stream: a cycle
    would keep an abandoned stream (and its connection) alive until the cyclic GC runs.
    """

    __slots__ = (
        "_agen",
        "_first",
        "_parts",
        "_reasoning",
        "_signature",
        "_started",
        "model",
        "provider",
        "response",
        "time_to_first_token",
    )

    def __init__(
        self,
        source: AsyncGenerator[StreamChunk, None],
        *,
        model: str = "",
        provider: str = "",
    ) -> None:
        self._started = time.perf_counter()
        self._first: float | None = None
        self._parts: list[str] = []
        self._reasoning: list[str] = []
        self._signature: str | None = None
        self.model = model
        self.provider = provider
        self.time_to_first_token: float | None = None
        self.response: GenerateResponse | None = None
        self._agen = source

    def __aiter__(self) -> AsyncIterator[StreamChunk]:
        # A fresh generator per loop, referenced by the loop alone: leaving the loop drops it,
        # and its finaliser closes the response even while a variable still holds the stream.
        return self._iterate()

    async def _iterate(self) -> AsyncGenerator[StreamChunk, None]:
        try:
            async for chunk in self._agen:
                yield self._seen(chunk)  # inline, not through __anext__: one frame less per chunk
        finally:
            await self._agen.aclose()

    async def __anext__(self) -> StreamChunk:
        return self._seen(await self._agen.__anext__())

    def _seen(self, chunk: StreamChunk) -> StreamChunk:
        if chunk.is_final:
            if chunk.latency is None:
                self._finish(chunk)
            return chunk
        if self._first is None:
            self._first = time.perf_counter() - self._started
        if chunk.text:
            self._parts.append(chunk.text)
        if chunk.reasoning:
            self._reasoning.append(chunk.reasoning)
        if chunk.reasoning_signature is not None:
            self._signature = chunk.reasoning_signature
        return chunk

    def _finish(self, final: StreamChunk) -> None:
        latency = time.perf_counter() - self._started
        final.time_to_first_token = self._first if self._first is not None else latency
        final.latency = latency
        self.time_to_first_token = final.time_to_first_token
        self.response = assemble_response(
            self._parts,
            self._reasoning,
            final,
            model=self.model,
            provider=self.provider,
            into=GenerateResponse,
            signature=self._signature,
            latency=latency,
            time_to_first_token=final.time_to_first_token,
        )

    async def aclose(self) -> None:
        await self._agen.aclose()

    async def __aenter__(self) -> ResponseStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._agen.aclose()

    async def collect(self) -> GenerateResponse:
        """Read the whole stream; return it as one response."""
        async for _ in self:
            pass
        assert self.response is not None
        return self.response


class Driver(abc.ABC):
    """``await driver.generate(request)`` and ``async for chunk in driver.generate_stream(request)``.

    Every driver has these, with the defaults below (a driver that wraps another, like the
    cache, passes them all through: ``drivers.wrapper.WrapperDriver``):

    * ``provider_name``, ``model_name``: which provider and model it talks to;
    * ``limiter``: the client-side rate limiter (``botticelli.ratelimit.Limiter``), ``None`` when
      nothing is limited; ``rate_limit_status()``: its state, ``None`` without one;
    * ``last_rate_limit``: the rate-limit headers of the latest response (``None``: none yet, or
      the provider sends none);
    * ``capabilities``: what the model accepts, from the catalog
      (``catalog.capabilities(model_name, provider_name)``), unless the driver sets its own;
    * ``endpoint``: where the answers come from (the server's base URL, credentials and all, or
      the local model file), which tells two drivers of one provider and model apart;
    * ``aclose()``: release connections and other resources.
    """

    provider_name: str = ""
    model_name: str = ""
    last_rate_limit: RateLimitInfo | None = None

    @property
    def model(self) -> str:
        return self.model_name

    @property
    def limiter(self) -> Limiter | None:
        """The client-side rate limiter; ``None``: this driver limits nothing."""
        return None

    def rate_limit_status(self) -> RateLimitStatus | None:
        """Configured limits, what is used and when each resets; ``None``: no limiter."""
        limiter = self.limiter
        return limiter.status() if limiter is not None else None

    @functools.cached_property
    def capabilities(self) -> Capabilities:
        """The model's capability profile from the catalog (the provider's default profile for
        a model it does not list). Read once; a driver may assign its own."""
        from .. import catalog

        return catalog.capabilities(self.model_name, self.provider_name)

    @property
    def endpoint(self) -> str | None:
        """Where answers come from: an HTTP driver's base URL (as given: redact it before
        showing it), the local driver's model file; ``None`` for drivers with neither."""
        return None

    @abc.abstractmethod
    async def generate(self, request: GenerateRequest) -> GenerateResponse: ...

    @abc.abstractmethod
    def generate_stream(self, request: GenerateRequest) -> ResponseStream: ...

    @overload
    async def generate_json(self, request: GenerateRequest, *, schema: type[_Schema]) -> _Schema: ...

    @overload
    async def generate_json(self, request: GenerateRequest, *, schema: object) -> Any: ...

    async def generate_json(self, request: GenerateRequest, *, schema: Any) -> Any:
        """The answer as a validated instance of ``schema``: a pydantic model, a dataclass, a
        TypedDict (or anything pydantic's ``TypeAdapter`` takes; a raw JSON schema dict gives
        the parsed JSON). Sets ``response_format`` to the schema, strict where
        ``capabilities.strict_json_schema`` says so (every field is then required).
        ``OutputValidationError`` (keeping ``raw_text``) when the answer does not fit;
        validating needs the ``json`` extra (pydantic), except for dataclasses and TypedDicts."""
        from ..structured import generate_json

        return await generate_json(self, request, schema=schema)

    def check(self, request: GenerateRequest) -> None:
        """Raise ``InvalidRequestError`` for what this provider or model is documented to refuse,
        before anything is sent (``generate`` checks too; the CLI calls it to report bad usage)."""
        return None

    async def aclose(self) -> None:
        """Release pooled connections (also done when the driver is garbage collected)."""
        return None

    async def __aenter__(self) -> Driver:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def blocking(self) -> BlockingDriver:
        """The same driver for plain scripts: ``driver.blocking().generate(request)``."""
        from ..blocking import BlockingDriver

        return BlockingDriver(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model_name!r})"
