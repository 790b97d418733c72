"""A hostile HTTP server for the fault suite: it answers each request with exactly the bytes a test
scripts, at the pace the test scripts, so we can send what no well-behaved server would.

``HostileServer()`` runs on a free 127.0.0.1 port in a thread. ``server.script(fn)`` sets the
answer: ``fn(request)`` returns raw bytes, or a list whose items are bytes (sent as they are) or
floats (seconds to pause; ``CLOSE`` closes the connection). ``request`` has ``.method``,
``.path``, ``.headers`` (lower-cased) and ``.body``, so a script can echo the caller's key back.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import orjson

Part = bytes | float
Script = Callable[["Request"], bytes | Sequence[Part]]

CLOSE = -1.0  # as a part: close the connection there

FAKE_KEY = "together-FAKE-7f3a9c21e5b04d68a1f2c3d4e5f60718"  # not shaped like gsk_/sk-/hf_


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def key(self) -> str:
        """The bearer token the client sent (the thing a hostile server echoes)."""
        return self.headers.get("authorization", "").removeprefix("Bearer ")


@dataclass(repr=False)
class HostileServer:
    requests: list[Request] = field(default_factory=list)
    connections: int = 0
    open_connections: int = 0

    def __post_init__(self) -> None:
        self._script: Script = lambda r: response(200, completion("hello"))
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def script(self, fn: Script) -> None:
        self._script = fn

    def __repr__(self) -> str:
        return f"HostileServer({self.base_url})"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                request = Request(method, path, headers, body)
                self.requests.append(request)
                answer = self._script(request)
                for part in [answer] if isinstance(answer, bytes) else answer:
                    if isinstance(part, bytes):
                        writer.write(part)
                        await writer.drain()
                    elif part == CLOSE:
                        return
                    else:
                        await asyncio.sleep(part)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            self.open_connections -= 1
            writer.close()

    def close(self) -> None:
        async def stop() -> None:
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> HostileServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---- building answers ------------------------------------------------------------------------


def response(
    status: int,
    body: bytes | str | object = b"",
    headers: dict[str, str] | None = None,
    *,
    reason: str = "X",
    content_type: str = "application/json",
) -> bytes:
    """One complete HTTP/1.1 response with a content length (keep-alive)."""
    if not isinstance(body, bytes):
        body = body.encode() if isinstance(body, str) else orjson.dumps(body)
    head = [f"HTTP/1.1 {status} {reason}", f"content-length: {len(body)}"]
    if content_type:
        head.append(f"content-type: {content_type}")
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def stream_head(headers: dict[str, str] | None = None, content_type: str = "text/event-stream") -> bytes:
    """The head of a chunked streaming response; follow with ``chunk(...)`` parts and ``END``."""
    head = ["HTTP/1.1 200 OK", "transfer-encoding: chunked", f"content-type: {content_type}"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n" if data else b""


END = b"0\r\n\r\n"


def completion(text: str, **extra: object) -> dict[str, object]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        **extra,
    }


def delta(text: str) -> dict[str, object]:
    return {"id": "c", "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}


def sse(*frames: object, done: bool = True) -> bytes:
    """SSE bytes: each frame is JSON-encoded (bytes and str pass through) as one ``data:`` event."""
    out = []
    for frame in frames:
        data = (
            frame
            if isinstance(frame, bytes)
            else (frame.encode() if isinstance(frame, str) else orjson.dumps(frame))
        )
        out.append(b"data: " + data + b"\n\n")
    if done:
        out.append(b"data: [DONE]\n\n")
    return b"".join(out)


def streamed(
    body: bytes, headers: dict[str, str] | None = None, content_type: str = "text/event-stream"
) -> list[Part]:
    return [stream_head(headers, content_type), chunk(body), END]


def every_string(value: object, seen: set[int] | None = None, depth: int = 0) -> Iterator[str]:
    """Every string reachable from an object: its str and repr, args, attributes, containers."""
    seen = seen if seen is not None else set()
    if id(value) in seen or depth > 6:
        return
    seen.add(id(value))
    if isinstance(value, str):
        yield value
        return
    if isinstance(value, bytes):
        yield value.decode("utf-8", "replace")
        return
    if isinstance(value, int | float | bool) or value is None:
        return
    if isinstance(value, dict):
        for k, v in value.items():
            yield from every_string(k, seen, depth + 1)
            yield from every_string(v, seen, depth + 1)
        return
    if isinstance(value, list | tuple | set | frozenset):
        for v in value:
            yield from every_string(v, seen, depth + 1)
        return
    yield str(value)
    yield repr(value)
    if isinstance(value, BaseException):
        yield from every_string(list(value.args), seen, depth + 1)
    attributes = dict(getattr(value, "__dict__", {}))
    for slot in getattr(type(value), "__slots__", ()):
        if hasattr(value, slot):
            attributes[slot] = getattr(value, slot)
    for v in attributes.values():
        yield from every_string(v, seen, depth + 1)
