"""Stream framing decoded without I/O: bytes in, events out. Server-sent events by the WHATWG
rules (and newline-delimited JSON, at the end).

Ours rather than the HTTP library's because the spec's edges decide whether an answer is right:
a UTF-8 BOM before the first field, CR / LF / CRLF line ends split across reads, blocks with no
``data`` (``event: ping``, ``id: 7``, ``retry: 3000``) that must not be dispatched, and the body
is UTF-8 whatever ``charset`` the content type claims. Lines split on the bytes CR and LF, which
never occur inside a multi-byte UTF-8 sequence, so decoding line by line cannot cut a character.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import _defaults

#: The largest event we accept: large enough for any real frame (a 5 MB tool-call argument),
#: small enough that a server cannot make us buffer without end.
MAX_EVENT_BYTES = _defaults.MAX_EVENT_BYTES

_BOM = b"\xef\xbb\xbf"


@dataclass(slots=True)
class Event:
    data: str
    event: str = "message"
    id: str | None = None


class EventTooLarge(Exception):
    """An event (or a line) grew past ``MAX_EVENT_BYTES``."""


class SSEDecoder:
    """Feed raw body bytes; get the events they complete. ``retry`` holds the last ``retry:``."""

    __slots__ = ("_buffer", "_data", "_event", "_id", "_pending_cr", "_size", "_started", "retry")

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self._size = 0
        self._started = False  # the BOM is stripped once, at the very start
        self._pending_cr = False  # a chunk ended in CR: a following LF belongs to it
        self.retry: int | None = None

    def feed(self, chunk: bytes) -> list[Event]:
        if not chunk:
            return []
        if self._pending_cr:
            self._pending_cr = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        buffer = self._buffer + chunk if self._buffer else chunk
        if not self._started:
            if len(buffer) < len(_BOM) and _BOM.startswith(buffer):
                self._buffer = buffer
                return []
            self._started = True
            if buffer.startswith(_BOM):
                buffer = buffer[len(_BOM) :]
        events: list[Event] = []
        if b"\r" not in buffer:  # the usual case: LF line ends only, split in one C call
            lines = buffer.split(b"\n")
            rest = lines.pop()  # what follows the last LF: an incomplete line, or b""
            for raw in lines:
                event = self._line(raw)
                if event is not None:
                    events.append(event)
            if len(rest) + self._size > MAX_EVENT_BYTES:
                raise EventTooLarge(f"an event larger than {MAX_EVENT_BYTES} bytes")
            self._buffer = rest
            return events
        start = 0
        length = len(buffer)
        while start < length:
            lf = buffer.find(b"\n", start)
            cr = buffer.find(b"\r", start, lf if lf >= 0 else length)
            if cr >= 0:
                end, step = cr, 1
                if cr + 1 < length:
                    if buffer[cr + 1 : cr + 2] == b"\n":
                        step = 2
                else:
                    self._pending_cr = True
            elif lf >= 0:
                end, step = lf, 1
            else:
                break
            event = self._line(buffer[start:end])
            if event is not None:
                events.append(event)
            start = end + step
        rest = buffer[start:]
        if len(rest) + self._size > MAX_EVENT_BYTES:
            raise EventTooLarge(f"an event larger than {MAX_EVENT_BYTES} bytes")
        self._buffer = rest
        return events

    def flush(self) -> list[Event]:
        """At the end of the body: a last line without its line end still counts, and an event
        whose blank line never came is dispatched (the spec drops it; the official OpenAI SDK
        keeps it, and a cut frame still fails to decode, so nothing wrong gets through)."""
        events: list[Event] = []
        if self._buffer:
            line, self._buffer = self._buffer, b""
            self._line(line)
        event = self._dispatch()
        if event is not None:
            events.append(event)
        return events

    def _line(self, raw: bytes) -> Event | None:
        if not raw:
            return self._dispatch()
        if raw[:1] == b":":
            return None  # a comment
        self._size += len(raw)
        if self._size > MAX_EVENT_BYTES:
            raise EventTooLarge(f"an event larger than {MAX_EVENT_BYTES} bytes")
        if raw.startswith(b"data: "):  # the usual line, without the partition below
            self._data.append(raw[6:].decode("utf-8", "replace"))
            return None
        line = raw.decode("utf-8", "replace")
        name, colon, value = line.partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\x00" not in value:
                self._id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)
        return None

    def _dispatch(self) -> Event | None:
        self._size = 0
        if not self._data:
            self._event = ""  # a block without data is not dispatched (ping, id-only, retry)
            return None
        data = self._data[0] if len(self._data) == 1 else "\n".join(self._data)
        event = Event(data, self._event or "message", self._id)
        self._data = []
        self._event = ""
        return event


class NDJSONDecoder:
    """Newline-delimited JSON (Ollama's streams) with the same interface: each non-blank line
    is one event's data. CRLF is tolerated; a line is capped like an SSE event."""

    __slots__ = ("_buffer", "retry")

    def __init__(self) -> None:
        self._buffer = b""
        self.retry: int | None = None

    def feed(self, chunk: bytes) -> list[Event]:
        buffer = self._buffer + chunk if self._buffer else chunk
        *lines, rest = buffer.split(b"\n")
        if len(rest) > MAX_EVENT_BYTES:
            raise EventTooLarge(f"a line larger than {MAX_EVENT_BYTES} bytes")
        self._buffer = rest
        return [Event(line.decode("utf-8", "replace")) for raw in lines if (line := raw.strip())]

    def flush(self) -> list[Event]:
        line, self._buffer = self._buffer.strip(), b""
        return [Event(line.decode("utf-8", "replace"))] if line else []
