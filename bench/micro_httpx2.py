"""Micro-benchmarks behind the profile's suggestions: alternative ways to drive httpx2 for one
chat-completions call or stream, and the cost of botticelli's own pure-Python steps.

    python bench/micro_httpx2.py            # about 40 s
    python bench/micro_httpx2.py --quick

Nothing in the library is patched: each "pattern" is a stand-alone coroutine that does what a
driver would do with httpx2 (or httpcore2) in a different way. Patterns run in the same process,
interleaved in rounds (so drift hits all alike), each on its own client and pooled connection;
the number is process CPU per call (median over rounds, min–max in brackets).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import time
import timeit
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpcore2
import httpx2
import orjson

from _harness import MAX_TOKENS, MODEL, PROMPT, api_key, emulator, wire_body

Pattern = Callable[[], Awaitable[str]]
StreamPattern = Callable[[], Awaitable[tuple[float, str]]]


def _headers() -> dict[str, str]:
    """What botticelli's OpenAICompatibleDriver sets on its client."""
    return {
        "accept": "application/json",
        "content-type": "application/json",
        "user-agent": "botticelli/0.1.0",
        "authorization": f"Bearer {api_key()}",
    }


def _botticelli_like_client(*, follow_redirects: bool = True) -> httpx2.AsyncClient:
    """The client botticelli's Transport builds (same headers, timeout, limits, redirects)."""
    return httpx2.AsyncClient(
        headers=_headers(),
        timeout=httpx2.Timeout(connect=5.0, read=60.0, write=30.0, pool=10.0),
        limits=httpx2.Limits(max_connections=100, max_keepalive_connections=20),
        follow_redirects=follow_redirects,
    )


class MinimalHTTP11:
    """A reference floor, not a production client: one keep-alive asyncio connection, prebuilt
    request head, ``Content-Length`` responses only. Shows what is left once every HTTP-library
    layer is gone (event loop, sockets, kernel loopback)."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        parsed = httpx2.URL(url)
        self.host, self.port = parsed.host, parsed.port or 80
        lines = [f"POST {parsed.raw_path.decode()} HTTP/1.1", f"host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.head = ("\r\n".join(lines) + "\r\n").encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes) -> bytes:
        if self.reader is None or self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(b"%scontent-length: %d\r\n\r\n%s" % (self.head, len(body), body))
        head = await self.reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(head[:40].decode())
        length = int(head.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
        return await self.reader.readexactly(length)

    async def aclose(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


def _text(data: Any) -> str:
    return str(data["choices"][0]["message"]["content"] or "")


class Patterns:
    """Non-streaming alternatives; each call returns the answer text."""

    def __init__(self, url: str, model: str) -> None:
        self.url = url + "/openai/v1/chat/completions"
        self.body = orjson.dumps(wire_body(stream=False, model=model))
        self.stream_body = orjson.dumps(wire_body(stream=True, model=model))
        self.clients: list[httpx2.AsyncClient] = []
        self.pools: list[httpcore2.AsyncConnectionPool] = []
        self.others: list[Any] = []  # aiohttp sessions, minimal clients

    def client(self, **options: Any) -> httpx2.AsyncClient:
        client = _botticelli_like_client(**options)
        self.clients.append(client)
        return client

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()
        for pool in self.pools:
            await pool.aclose()
        for other in self.others:
            await other.close() if hasattr(other, "closed") else await other.aclose()

    def non_streaming(self) -> dict[str, Pattern]:
        url, body = self.url, self.body
        plain = httpx2.AsyncClient(
            headers={"authorization": f"Bearer {api_key()}", "content-type": "application/json"}
        )
        self.clients.append(plain)
        current = self.client()
        no_redirects = self.client(follow_redirects=False)
        prebuilt = self.client()
        url_obj = httpx2.URL(url)
        headers_obj = httpx2.Headers(prebuilt.headers)
        extensions = {"timeout": prebuilt.timeout.as_dict()}
        transport_client = self.client()
        transport = transport_client._transport  # the AsyncHTTPTransport (private; measurement only)
        pool = httpcore2.AsyncConnectionPool(max_connections=100, max_keepalive_connections=20)
        self.pools.append(pool)
        raw_headers = [(k.encode(), v.encode()) for k, v in _headers().items()]
        core_extensions = {"timeout": {"connect": 5.0, "read": 60.0, "write": 30.0, "pool": 10.0}}

        async def post_json() -> str:  # run.py's floor
            response = await plain.post(url, content=body)
            return _text(response.json())

        async def post_orjson() -> str:
            response = await plain.post(url, content=body)
            return _text(orjson.loads(response.content))

        async def build_and_send() -> str:  # what botticelli's Transport.send does today
            request = current.build_request("POST", url, content=body)
            response = await current.send(request)
            return _text(orjson.loads(response.content))

        async def build_and_send_no_redirects() -> str:
            request = no_redirects.build_request("POST", url, content=body)
            response = await no_redirects.send(request)
            return _text(orjson.loads(response.content))

        async def request_prebuilt_parts() -> str:  # Request() from a parsed URL + Headers, then send
            request = httpx2.Request(
                "POST", url_obj, headers=headers_obj, content=body, extensions=extensions
            )
            response = await prebuilt.send(request)
            return _text(orjson.loads(response.content))

        async def transport_direct() -> str:  # skip AsyncClient.send (auth flow, redirects, cookies)
            request = httpx2.Request(
                "POST", url_obj, headers=headers_obj, content=body, extensions=extensions
            )
            response = await transport.handle_async_request(request)
            content = await response.aread()
            return _text(orjson.loads(content))

        async def httpcore2_direct() -> str:  # the connection pool underneath httpx2
            response = await pool.request(
                "POST", url, headers=raw_headers, content=body, extensions=core_extensions
            )
            return _text(orjson.loads(response.content))

        import aiohttp

        session = aiohttp.ClientSession(headers=_headers())
        minimal = MinimalHTTP11(url, _headers())
        self.others += [session, minimal]

        async def aiohttp_post() -> str:
            async with session.post(url, data=body) as response:
                return _text(orjson.loads(await response.read()))

        async def minimal_post() -> str:
            return _text(orjson.loads(await minimal.post(body)))

        return {
            "client.post + response.json() (run.py floor)": post_json,
            "client.post + orjson.loads": post_orjson,
            "build_request + send + orjson (botticelli today)": build_and_send,
            "  same, follow_redirects=False": build_and_send_no_redirects,
            "Request(parsed URL, Headers) + client.send": request_prebuilt_parts,
            "Request + transport.handle_async_request": transport_direct,
            "httpcore2 pool.request (no httpx2 layer)": httpcore2_direct,
            "aiohttp ClientSession.post (C parser; other stack)": aiohttp_post,
            "minimal asyncio HTTP/1.1 (reference floor)": minimal_post,
        }

    def streaming(self) -> dict[str, StreamPattern]:
        url, body = self.url, self.stream_body
        clients = {name: self.client() for name in ("sse-break", "sse", "lines", "bytes", "raw")}

        def content_of(data: bytes | str) -> str:
            payload = orjson.loads(data)
            choices = payload.get("choices")
            if choices:
                return str(choices[0].get("delta", {}).get("content") or "")
            return ""

        async def timed(
            client: httpx2.AsyncClient,
            events: Callable[[httpx2.Response], AsyncIterator[bytes | str]],
            *,
            drain: bool = True,
        ) -> tuple[float, str]:
            """One stream. With ``drain`` the body is read to its end after ``[DONE]`` (the
            terminating chunk follows at once), so httpcore2 puts the connection back in the
            pool; leaving the loop at ``[DONE]`` makes ``aclose()`` close the connection instead,
            and the next stream opens a new one."""
            started = time.perf_counter()
            first = 0.0
            parts: list[str] = []
            done = False
            request = client.build_request("POST", url, content=body)
            response = await client.send(request, stream=True)
            try:
                async for data in events(response):
                    if done:
                        continue
                    if data == "[DONE]" or data == b"[DONE]":
                        if not drain:
                            break
                        done = True
                        continue
                    text = content_of(data)
                    if text:
                        if not first:
                            first = time.perf_counter() - started
                        parts.append(text)
            finally:
                await response.aclose()
            return first, "".join(parts)

        async def event_source(response: httpx2.Response) -> AsyncIterator[str]:
            async for event in httpx2.EventSource(response):
                yield event.data

        async def lines(response: httpx2.Response) -> AsyncIterator[str]:
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    yield line[6:]

        async def split_frames(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
            """A bytes-level SSE splitter for servers that send ``data: ...\\n\\n`` frames (LF only;
            a production version must also accept CRLF, multi-line data and ``event:`` lines)."""
            buffer = b""
            async for chunk in chunks:
                buffer += chunk
                while True:
                    end = buffer.find(b"\n\n")
                    if end < 0:
                        break
                    frame, buffer = buffer[:end], buffer[end + 2 :]
                    if frame.startswith(b"data: "):
                        yield frame[6:]

        async def bytes_frames(response: httpx2.Response) -> AsyncIterator[bytes]:
            async for frame in split_frames(response.aiter_bytes()):
                yield frame

        async def raw_frames(response: httpx2.Response) -> AsyncIterator[bytes]:
            async for frame in split_frames(response.aiter_raw()):
                yield frame

        async def sse_break() -> tuple[float, str]:
            return await timed(clients["sse-break"], event_source, drain=False)

        async def sse() -> tuple[float, str]:
            return await timed(clients["sse"], event_source)

        async def by_lines() -> tuple[float, str]:
            return await timed(clients["lines"], lines)

        async def by_bytes() -> tuple[float, str]:
            return await timed(clients["bytes"], bytes_frames)

        async def by_raw() -> tuple[float, str]:
            return await timed(clients["raw"], raw_frames)

        import aiohttp

        session = aiohttp.ClientSession(headers=_headers())
        self.others.append(session)

        async def aiohttp_lines() -> tuple[float, str]:
            started = time.perf_counter()
            first = 0.0
            parts: list[str] = []
            done = False
            async with session.post(url, data=body) as response:
                async for line in response.content:  # one line at a time, to the end of the body
                    if done or not line.startswith(b"data: "):
                        continue
                    data = line[6:].rstrip(b"\r\n")
                    if data == b"[DONE]":
                        done = True
                        continue
                    text = content_of(data)
                    if text:
                        if not first:
                            first = time.perf_counter() - started
                        parts.append(text)
            return first, "".join(parts)

        return {
            "EventSource, leave at [DONE] (botticelli today)": sse_break,
            "EventSource, drained to the end (connection reused)": sse,
            "  aiter_lines + 'data: ' prefix, drained": by_lines,
            "  bytes splitter over aiter_bytes, drained": by_bytes,
            "  bytes splitter over aiter_raw, drained": by_raw,
            "aiohttp: response.content lines (other stack)": aiohttp_lines,
        }


async def measure(
    patterns: dict[str, Callable[[], Awaitable[Any]]], rounds: int, n: int, warmup: int
) -> dict[str, dict[str, list[float]]]:
    results: dict[str, dict[str, list[float]]] = {name: {"cpu": [], "ttft": []} for name in patterns}
    answers = {name: await fn() for name, fn in patterns.items()}
    texts = {a if isinstance(a, str) else a[1] for a in answers.values()}
    if len(texts) != 1 or not next(iter(texts)):
        raise SystemExit(f"patterns disagree: {answers}")
    for fn in patterns.values():
        for _ in range(warmup):
            await fn()
    names = list(patterns)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            fn = patterns[name]
            gc.collect()
            c0 = time.process_time()
            for _ in range(n):
                out = await fn()
                if isinstance(out, tuple):
                    results[name]["ttft"].append(out[0])
            results[name]["cpu"].append((time.process_time() - c0) / n)
    return results


def print_table(title: str, results: dict[str, dict[str, list[float]]], baseline: str) -> None:
    base = statistics.median(results[baseline]["cpu"])
    width = max(len(n) for n in results)
    has_ttft = any(v["ttft"] for v in results.values())
    print(f"\n{title}")
    header = f"  {'pattern':<{width}}  {'CPU µs/call':>22}  {'vs today':>9}"
    print(header + (f"  {'TTFT ms (median)':>16}" if has_ttft else ""))
    for name, values in results.items():
        cpu = values["cpu"]
        med = statistics.median(cpu)
        cell = f"{med * 1e6:.0f} [{min(cpu) * 1e6:.0f}–{max(cpu) * 1e6:.0f}]"
        line = f"  {name:<{width}}  {cell:>22}  {(med - base) * 1e6:+8.0f}"
        if has_ttft:
            line += f"  {statistics.median(values['ttft']) * 1e3:16.3f}"
        print(line)


def codec_costs(url: str, model: str, number: int) -> None:
    """botticelli's own per-call steps, timed with timeit on a real captured response."""
    from botticelli import GenerateRequest, Message
    from botticelli._headers import parse_rate_limit
    from botticelli.codecs import openai_chat as codec

    async def capture() -> tuple[httpx2.Response, list[str]]:
        async with _botticelli_like_client() as client:
            target = url + "/openai/v1/chat/completions"
            response = await client.post(target, content=orjson.dumps(wire_body(stream=False, model=model)))
            frames: list[str] = []
            request = client.build_request(
                "POST", target, content=orjson.dumps(wire_body(stream=True, model=model))
            )
            streamed = await client.send(request, stream=True)
            async for event in httpx2.EventSource(streamed):
                frames.append(event.data)
            await streamed.aclose()
            return response, frames

    response, frames = asyncio.run(capture())
    content, headers = response.content, response.headers
    plain = dict(headers.items())
    request = GenerateRequest((Message.user(PROMPT),), max_tokens=MAX_TOKENS)
    wire = codec.GROQ

    def per_call(stmt: Callable[[], object]) -> float:
        return min(timeit.repeat(stmt, number=number, repeat=5)) / number * 1e6

    def feed_all() -> None:
        decoder = wire.stream_decoder(provider="groq", model=model, request_id=None, rate_limit=None)
        for data in frames:
            decoder.feed(data)

    rows = [
        (
            "GenerateRequest((Message.user(...),), max_tokens=10)",
            lambda: GenerateRequest((Message.user(PROMPT),), max_tokens=MAX_TOKENS),
        ),
        (
            "codec.GROQ.encode (orjson)",
            lambda: wire.encode(request, model, stream=False),
        ),
        (
            "  same body with json.dumps().encode()",
            lambda: json.dumps(wire.body(request, model, stream=False)).encode(),
        ),
        ("orjson.loads(response body)", lambda: orjson.loads(content)),
        ("  json.loads(response body)", lambda: json.loads(content)),
        (
            "codec.GROQ.decode(data, httpx2.Headers)",
            lambda: wire.decode(orjson.loads(content), headers, provider="groq", model=model),
        ),
        (
            "  same with a plain dict of the headers",
            lambda: wire.decode(orjson.loads(content), plain, provider="groq", model=model),
        ),
        ("parse_rate_limit(httpx2.Headers)", lambda: parse_rate_limit(headers)),
        ("  parse_rate_limit(dict(headers.items()))", lambda: parse_rate_limit(dict(headers.items()))),
        ("  parse_rate_limit(plain dict)", lambda: parse_rate_limit(plain)),
        ("headers.get('x-request-id') on httpx2.Headers", lambda: headers.get("x-request-id")),
        (f"stream decoder feed × {len(frames)} frames (one stream)", feed_all),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"\nbotticelli's own steps (timeit, best of 5 × {number}; µs per operation)")
    for name, stmt in rows:
        print(f"  {name:<{width}}  {per_call(stmt):8.2f}")
    print(f"  (response had {len(headers)} headers; {len(content)} body bytes)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--url", help="an already running loopback server instead of the emulator")
    args = parser.parse_args()
    rounds, n, warmup = (4, 100, 50) if args.quick else (12, 200, 100)
    with emulator(url=args.url) as emu:

        async def run() -> None:
            patterns = Patterns(emu.url, args.model)
            try:
                calls = await measure(patterns.non_streaming(), rounds, n, warmup)
                print_table(
                    f"non-streaming call: process CPU per call ({rounds} rounds × {n} calls each)",
                    calls,
                    "build_request + send + orjson (botticelli today)",
                )
                streams = await measure(patterns.streaming(), rounds, n // 2, warmup // 2)
                print_table(
                    f"{MAX_TOKENS}-token stream: process CPU per stream "
                    f"({rounds} rounds × {n // 2} streams each)",
                    streams,
                    "EventSource, leave at [DONE] (botticelli today)",
                )
            finally:
                await patterns.aclose()

        asyncio.run(run())
        codec_costs(emu.url, args.model, 2000 if args.quick else 10000)


if __name__ == "__main__":
    main()
