"""The one protocol every provider implements, and the stream object drivers return."""

from __future__ import annotations

import abc
import time
from collections.abc import AsyncGenerator, AsyncIterator
from types import TracebackType
from typing import TYPE_CHECKING

from ..types import (
    GenerateRequest,
    GenerateResponse,
    Output,
    ReasoningOutput,
    StreamChunk,
    TextOutput,
    ToolCallOutput,
    Usage,
)

if TYPE_CHECKING:
    from ..blocking import BlockingDriver


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
            while True:
                try:
                    chunk = await self.__anext__()
                except StopAsyncIteration:
                    return
                yield chunk
        finally:
            await self._agen.aclose()

    async def __anext__(self) -> StreamChunk:
        chunk = await self._agen.__anext__()
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
        return chunk

    def _finish(self, final: StreamChunk) -> None:
        latency = time.perf_counter() - self._started
        final.time_to_first_token = self._first if self._first is not None else latency
        final.latency = latency
        outputs: list[Output] = []
        if self._reasoning:
            outputs.append(ReasoningOutput("".join(self._reasoning)))
        if self._parts:
            outputs.append(TextOutput("".join(self._parts)))
        outputs.extend(ToolCallOutput(c) for c in final.tool_calls)
        self.time_to_first_token = final.time_to_first_token
        self.response = GenerateResponse(
            outputs=outputs,
            finish_reason=final.finish_reason,
            model=self.model,
            provider=self.provider,
            request_id=final.request_id,
            usage=final.usage if final.usage is not None else Usage(),
            rate_limit=final.rate_limit,
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
    """``await driver.generate(request)`` and ``async for chunk in driver.generate_stream(request)``."""

    provider_name: str = ""
    model_name: str = ""

    @property
    def model(self) -> str:
        return self.model_name

    @abc.abstractmethod
    async def generate(self, request: GenerateRequest) -> GenerateResponse: ...

    @abc.abstractmethod
    def generate_stream(self, request: GenerateRequest) -> ResponseStream: ...

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
