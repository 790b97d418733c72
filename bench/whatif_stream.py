"""What one proposed library change would buy: a stream that reads the body to its end after
``data: [DONE]`` instead of leaving the loop there.

    python bench/whatif_stream.py          # about 20 s
    python bench/whatif_stream.py --quick

Today ``OpenAICompatibleDriver._stream`` breaks out of its ``EventSource`` loop at ``[DONE]`` and
then closes the response. The chunked body's terminating ``0\\r\\n\\r\\n`` is still unread, so
httpcore2 cannot return the connection to the pool and closes it: every stream opens a new TCP
connection (against api.groq.com, a new TLS handshake too). ``DrainingGroqDriver`` below is a
bench-side subclass, not a change to the library: the same ``_stream`` with the ``break``
replaced by "ignore what follows [DONE] and let the loop end". Both drivers run in the same
process, interleaved in rounds; the numbers are medians over rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
from collections.abc import AsyncGenerator
from typing import Any

import httpx2

from _harness import MAX_TOKENS, MODEL, PROMPT, TEMPERATURE, api_key, emulator
from botticelli import GenerateRequest, GroqDriver, Message
from botticelli._headers import parse_rate_limit
from botticelli.codecs import openai_chat as codec
from botticelli.errors import ResponseError
from botticelli.types import StreamChunk


class DrainingGroqDriver(GroqDriver):
    """GroqDriver whose stream reads the body to its end (the proposed fix). A copy of
    ``OpenAICompatibleDriver._stream`` as of commit 7325773 with one change; the mapping of
    transport errors is left out (it does not run on the success path)."""

    async def _stream(self, body: bytes) -> AsyncGenerator[StreamChunk, None]:
        response = await self._transport.send("POST", self._chat_url, content=body, stream=True)
        headers = response.headers
        decoder = codec.StreamDecoder(
            provider=self.provider_name,
            model=self.model_name,
            request_id=headers.get("x-request-id"),
            rate_limit=parse_rate_limit(headers),
        )
        self.last_rate_limit = decoder.rate_limit
        try:
            if "text/event-stream" not in headers.get("content-type", ""):
                raise await self._not_a_stream(response, decoder.request_id)
            async for event in httpx2.EventSource(response):
                if decoder.done:
                    continue  # the change: read on to the end of the body instead of `break`
                chunk = decoder.feed(event.data, event.event)
                if chunk is not None:
                    yield chunk
        finally:
            await response.aclose()
        if not decoder.done:
            raise ResponseError("the stream ended before [DONE]", provider=self.provider_name)
        yield StreamChunk(
            is_final=True,
            finish_reason=decoder.finish_reason,
            usage=decoder.usage,
            request_id=decoder.request_id,
            rate_limit=decoder.rate_limit,
            tool_calls=decoder.tool_calls(),
        )


async def one_stream(driver: GroqDriver) -> tuple[float, float, str]:
    started = time.perf_counter()
    request = GenerateRequest((Message.user(PROMPT),), max_tokens=MAX_TOKENS, temperature=TEMPERATURE)
    first = 0.0
    parts = []
    async for chunk in driver.generate_stream(request):
        if chunk.text:
            if not first:
                first = time.perf_counter()
            parts.append(chunk.text)
    return first - started, time.perf_counter() - started, "".join(parts)


async def run(url: str, rounds: int, n: int, warmup: int) -> dict[str, dict[str, Any]]:
    drivers: dict[str, GroqDriver] = {
        "GroqDriver today (leaves the loop at [DONE])": GroqDriver(MODEL, api_key=api_key(), base_url=url),
        "DrainingGroqDriver (reads to the end)": DrainingGroqDriver(MODEL, api_key=api_key(), base_url=url),
    }
    loop = asyncio.get_running_loop()
    original = loop.create_connection
    opened = {"count": 0}

    async def counting(*args: Any, **kwargs: Any) -> Any:
        opened["count"] += 1
        return await original(*args, **kwargs)

    loop.create_connection = counting  # type: ignore[method-assign]
    results: dict[str, dict[str, Any]] = {
        name: {"cpu": [], "ttft": [], "total": [], "connections": 0} for name in drivers
    }
    try:
        texts = {(await one_stream(d))[2] for d in drivers.values()}
        if len(texts) != 1 or not next(iter(texts)):
            raise SystemExit(f"the drivers disagree: {texts}")
        for driver in drivers.values():
            for _ in range(warmup):
                await one_stream(driver)
        names = list(drivers)
        for r in range(rounds):
            for name in names[r % 2 :] + names[: r % 2]:
                gc.collect()
                before = opened["count"]
                c0 = time.process_time()
                for _ in range(n):
                    ttft, total, _ = await one_stream(drivers[name])
                    results[name]["ttft"].append(ttft)
                    results[name]["total"].append(total)
                results[name]["cpu"].append((time.process_time() - c0) / n)
                results[name]["connections"] += opened["count"] - before
    finally:
        for driver in drivers.values():
            await driver.aclose()
    for values in results.values():
        values["connections"] = 100 * values["connections"] / (rounds * n)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--url", help="an already running loopback server instead of the emulator")
    args = parser.parse_args()
    rounds, n, warmup = (4, 100, 20) if args.quick else (10, 200, 50)
    with emulator(url=args.url) as emu:
        results = asyncio.run(run(emu.url, rounds, n, warmup))
    width = max(len(name) for name in results)
    print(f"{MAX_TOKENS}-token streams, {rounds} rounds × {n} per driver (medians)")
    print(f"  {'driver':<{width}}  {'CPU µs/stream':>13}  {'TTFT ms':>8}  {'end ms':>7}  {'conns/100':>9}")
    for name, v in results.items():
        print(
            f"  {name:<{width}}  {statistics.median(v['cpu']) * 1e6:13.0f}  "
            f"{statistics.median(v['ttft']) * 1e3:8.3f}  {statistics.median(v['total']) * 1e3:7.3f}  "
            f"{v['connections']:9.1f}"
        )


if __name__ == "__main__":
    main()
