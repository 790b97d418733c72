"""The SSE framing decoder on its own (bytes in, events out), for every framing edge: line ends
CR / LF / CRLF (also split between reads), UTF-8 split between reads, comments, ``retry:``,
fields without data, the BOM, multi-line data, and 5 MB lines."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from botticelli import _sse
from botticelli._sse import Event, EventTooLarge, SSEDecoder


def decode(*chunks: bytes) -> list[Event]:
    decoder = SSEDecoder()
    events: list[Event] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    return events + decoder.flush()


def in_pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


STREAM = (
    "\ufeffevent: delta\r\n"
    'data: {"a": "héllo 世界 🎉"}\r\n'
    "id: 7\r\n"
    "\r\n"
    ": a comment, ignored\n"
    "retry: 3000\n"
    "\n"
    "data: line one\r"
    "data: line two\r"
    "\r"
    "event: ping\n"
    "\n"
    "data:no space\n"
    "data\n"
    "\n"
    "data: [DONE]\n\n"
).encode()

EXPECTED = [
    Event('{"a": "héllo 世界 🎉"}', "delta", "7"),
    Event("line one\nline two", "message", "7"),
    Event("no space\n", "message", "7"),
    Event("[DONE]", "message", "7"),
]


def test_every_framing_edge_in_one_stream() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(STREAM) + decoder.flush() == EXPECTED
    assert decoder.retry == 3000


@given(cuts=st.lists(st.integers(0, len(STREAM)), max_size=12))
def test_any_split_between_reads_gives_the_same_events(cuts: list[int]) -> None:
    # Splits fall anywhere: inside CRLF, inside the BOM, inside a multi-byte UTF-8 character.
    assert decode(*in_pieces(STREAM, cuts)) == EXPECTED


def test_one_byte_at_a_time() -> None:
    assert decode(*(STREAM[i : i + 1] for i in range(len(STREAM)))) == EXPECTED


@pytest.mark.parametrize("end", [b"\n", b"\r", b"\r\n"])
def test_each_line_end_alone(end: bytes) -> None:
    assert decode(b"data: x" + end + end + b"data: y" + end + end) == [Event("x"), Event("y")]


def test_crlf_split_exactly_between_cr_and_lf_is_one_line_end() -> None:
    # A CR ending one read and an LF starting the next are one line end, not an empty line.
    assert decode(b"data: a\r", b"\ndata: b\r\n\r\n") == [Event("a\nb")]


def test_a_character_split_between_reads_is_not_replaced() -> None:
    text = "é世🎉"
    raw = f"data: {text}\n\n".encode()
    for cut in range(len(raw) + 1):
        assert decode(raw[:cut], raw[cut:]) == [Event(text)]


def test_invalid_utf8_is_replaced_not_raised() -> None:
    assert decode(b"data: \xff\xfe\n\n") == [Event("\ufffd\ufffd")]


def test_comments_and_blocks_without_data_are_not_dispatched() -> None:
    assert decode(b": keep-alive\n\nevent: ping\n\nid: 9\n\nretry: 10\n\n") == []
    assert decode(b":\n:\n\ndata: x\n\n") == [Event("x")]


def test_retry_takes_only_digits() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"retry: 2500\n\nretry: soon\n\nretry: 12a\n\n" + "retry: ٣\n\n".encode())
    assert decoder.retry == 2500


def test_an_id_with_nul_is_ignored() -> None:
    assert decode(b"id: 1\nid: a\x00b\ndata: x\n\n") == [Event("x", "message", "1")]


def test_bom_only_at_the_very_start() -> None:
    assert decode(b"\xef\xbb", b"\xbfdata: x\n\n") == [Event("x")]
    # A BOM later is part of a field name, so the line is an unknown field.
    assert decode(b"data: x\n\n\xef\xbb\xbfdata: y\n\n") == [Event("x")]


def test_last_event_without_its_blank_line_is_dispatched_at_flush() -> None:
    assert decode(b"data: x\ndata: y") == [Event("x\ny")]


def test_a_5_mb_line_across_many_reads() -> None:
    value = "x" * (5 * 1024 * 1024)
    raw = f"data: {value}\n\n".encode()
    chunks = [raw[i : i + 65536] for i in range(0, len(raw), 65536)]
    events = decode(*chunks)
    assert len(events) == 1 and events[0].data == value


def test_an_event_past_the_cap_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_sse, "MAX_EVENT_BYTES", 1024 * 1024)
    decoder = SSEDecoder()
    with pytest.raises(EventTooLarge):  # one endless line
        for _ in range(40):
            decoder.feed(b"y" * 65536)
    decoder = SSEDecoder()
    with pytest.raises(EventTooLarge):  # many lines of one event
        for _ in range(40):
            decoder.feed(b"data: " + b"z" * 65536 + b"\n")
