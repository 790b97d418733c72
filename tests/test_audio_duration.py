"""The length of an upload, read before it is sent (``botticelli.audio_duration``): exact for WAV
and FLAC, agreeing with the standard library's ``wave``; an over-estimate for anything else; and
never an exception, whatever the header claims (hypothesis feeds it hostile ones)."""

from __future__ import annotations

import io
import math
import struct
import wave

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from botticelli.audio_duration import (
    ESTIMATE_BYTES_PER_SECOND,
    MIN_BILLED_SECONDS,
    billed_seconds,
    flac_seconds,
    probe,
    wav_seconds,
)

HYPOTHESIS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def make_wav(frames: int, rate: int, *, channels: int = 1, width: int = 2) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(width)
        out.setframerate(rate)
        out.writeframes(b"\x01" * (frames * channels * width))
    return buffer.getvalue()


def riff(*chunks: tuple[bytes, bytes], sizes: dict[int, int] | None = None) -> bytes:
    """A RIFF/WAVE file of ``chunks`` (id, body); ``sizes`` overrides the declared size of some."""
    out = b""
    for index, (name, body) in enumerate(chunks):
        size = (sizes or {}).get(index, len(body))
        out += name + struct.pack("<I", size) + body + (b"\x00" if len(body) & 1 else b"")
    return b"RIFF" + struct.pack("<I", 4 + len(out)) + b"WAVE" + out


def fmt(
    tag: int = 1, channels: int = 1, rate: int = 16000, byte_rate: int = 32000, align: int = 2, bits: int = 16
) -> bytes:
    return struct.pack("<HHIIHH", tag, channels, rate, byte_rate, align, bits)


def make_flac(
    rate: int, total: int, *, frames: bytes = b"\xff\xf8" + b"\x00" * 64, id3: bytes = b""
) -> bytes:
    packed = (rate << 44) | (0 << 41) | (15 << 36) | total  # mono, 16 bit
    info = struct.pack(">HH", 4096, 4096) + b"\x00" * 6 + struct.pack(">Q", packed) + b"\x00" * 16
    return id3 + b"fLaC" + bytes([0x80]) + len(info).to_bytes(3, "big") + info + frames


def id3_tag(size: int) -> bytes:
    syncsafe = bytes([(size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F])
    return b"ID3\x04\x00\x00" + syncsafe + b"\x00" * size


# ---- WAV ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frames", "rate", "channels", "width"),
    [
        (32000, 16000, 1, 2),
        (44100 * 3, 44100, 2, 2),
        (8000, 8000, 1, 1),
        (12345, 22050, 2, 3),
        (0, 16000, 1, 2),
    ],
)
def test_wav_matches_the_wave_module(frames: int, rate: int, channels: int, width: int) -> None:
    data = make_wav(frames, rate, channels=channels, width=width)
    found = probe(data)
    assert found.exact and found.format == "wav"
    assert found.seconds == pytest.approx(frames / rate, abs=1e-9)


def test_wav_reads_the_decoded_rate_not_the_claimed_byte_rate() -> None:
    samples = b"\x00" * 32000  # one second of 16 kHz 16-bit mono
    honest = riff((b"fmt ", fmt()), (b"data", samples))
    lying = riff((b"fmt ", fmt(byte_rate=1)), (b"data", samples))  # a byte rate of 1 would mean 9 hours
    assert wav_seconds(honest) == wav_seconds(lying) == pytest.approx(1.0)


def test_wav_odd_but_valid_layouts() -> None:
    samples = b"\x00" * 16000  # half a second
    # extra chunks before, an odd-sized chunk (padded), fmt after data, a LIST chunk after
    layout = riff((b"JUNK", b"x" * 7), (b"data", samples), (b"fmt ", fmt()), (b"LIST", b"INFOtest"))
    assert wav_seconds(layout) == pytest.approx(0.5)
    # WAVE_FORMAT_EXTENSIBLE with a PCM sub-format
    extensible = fmt(tag=0xFFFE) + struct.pack("<HHI", 22, 16, 4) + struct.pack("<H", 1) + b"\x00" * 14
    assert wav_seconds(riff((b"fmt ", extensible), (b"data", samples))) == pytest.approx(0.5)
    # a streaming writer's placeholder size: every byte to the end counts
    for placeholder in (0, 0xFFFFFFFF):
        streamed = riff((b"fmt ", fmt()), (b"data", samples), sizes={1: placeholder})
        assert wav_seconds(streamed) == pytest.approx(0.5)
    # a data size larger than the file: only the bytes that are there
    truncated = riff((b"fmt ", fmt()), (b"data", samples), sizes={1: 10_000_000})
    assert wav_seconds(truncated) == pytest.approx(0.5)
    # μ-law (8 bit, block align 1), and a zero block align computed from channels x bits
    assert wav_seconds(
        riff((b"fmt ", fmt(7, 1, 8000, 8000, 1, 8)), (b"data", b"\x00" * 8000))
    ) == pytest.approx(1.0)
    assert wav_seconds(riff((b"fmt ", fmt(align=0)), (b"data", samples))) == pytest.approx(0.5)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"RIFF",
        b"RIFF\x00\x00\x00\x00WAVE",
        riff((b"data", b"\x00" * 100)),  # no fmt chunk
        riff((b"fmt ", b"\x01\x00")),  # fmt too short
        riff((b"fmt ", fmt(rate=0)), (b"data", b"\x00" * 100)),  # no sample rate
        riff((b"fmt ", fmt(channels=0, align=0, bits=0)), (b"data", b"\x00" * 100)),
        riff((b"fmt ", fmt(tag=0x55)), (b"data", b"\x00" * 100)),  # mp3 inside WAV: compressed
        riff((b"fmt ", fmt(tag=0xFFFE)), (b"data", b"\x00" * 100)),  # extensible without its extension
        riff(*[(b"JUNK", b"")] * 300, (b"fmt ", fmt()), (b"data", b"\x00" * 100)),  # too many chunks
    ],
)
def test_wav_that_cannot_be_read_falls_back_to_the_estimate(data: bytes) -> None:
    assert wav_seconds(data) is None
    found = probe(data)
    assert not found.exact and found.seconds == pytest.approx(len(data) / ESTIMATE_BYTES_PER_SECOND)


_u16 = st.integers(0, 0xFFFF)
_u32 = st.integers(0, 0xFFFFFFFF)


@st.composite
def hostile_wavs(draw: st.DrawFn) -> bytes:
    """RIFF files whose chunk sizes, order and fmt fields are whatever hypothesis likes."""
    chunks: list[bytes] = []
    for _ in range(draw(st.integers(0, 6))):
        name = draw(st.sampled_from([b"fmt ", b"data", b"LIST", b"fact", b"\x00\x00\x00\x00"]))
        if name == b"fmt ":
            tag = draw(st.sampled_from([1, 3, 6, 7, 0xFFFE]) | _u16)
            body = struct.pack("<HHIIHH", tag, draw(_u16), draw(_u32), draw(_u32), draw(_u16), draw(_u16))
            body += draw(st.binary(max_size=30))
            body = body[: draw(st.integers(0, len(body)))]
        else:
            body = draw(st.binary(max_size=200))
        size = draw(st.sampled_from([len(body), 0, 0xFFFFFFFF]) | _u32)
        chunks.append(name + struct.pack("<I", size) + body)
    data = b"RIFF" + struct.pack("<I", draw(_u32)) + b"WAVE" + b"".join(chunks)
    return data[: draw(st.integers(0, len(data)))]


@HYPOTHESIS
@given(hostile_wavs())
def test_hostile_wav_headers_never_raise(data: bytes) -> None:
    seconds = wav_seconds(data)
    assert seconds is None or (math.isfinite(seconds) and seconds >= 0)
    found = probe(data)
    assert math.isfinite(found.seconds) and found.seconds >= 0 and found.billed >= MIN_BILLED_SECONDS


@HYPOTHESIS
@given(
    frames=st.integers(0, 5000),
    rate=st.integers(1, 200_000),
    channels=st.integers(1, 4),
    width=st.integers(1, 4),
)
def test_any_wave_module_file_is_exact(frames: int, rate: int, channels: int, width: int) -> None:
    found = probe(make_wav(frames, rate, channels=channels, width=width))
    assert found.exact and found.seconds == pytest.approx(frames / rate, rel=1e-12, abs=1e-12)


# ---- FLAC -----------------------------------------------------------------------------------


def test_flac_streaminfo() -> None:
    assert flac_seconds(make_flac(16000, 16000 * 75)) == pytest.approx(75.0)
    assert flac_seconds(make_flac(44100, 441)) == pytest.approx(0.01)
    tagged = make_flac(48000, 48000 * 3, id3=id3_tag(100))
    found = probe(tagged)
    assert found.exact and found.format == "flac" and found.seconds == pytest.approx(3.0)


@pytest.mark.parametrize(
    "data",
    [
        b"fLaC",
        make_flac(16000, 0),  # total samples unknown (allowed by FLAC)
        make_flac(0, 1000),  # no sample rate
        make_flac(16000, 1000)[:20],  # cut inside STREAMINFO
        b"fLaC\x04" + make_flac(16000, 1000)[5:],  # first block is not STREAMINFO
        b"fLaC\x80\x00\x00\x10" + b"\x00" * 40,  # STREAMINFO shorter than 34 bytes
        id3_tag(10)[:6] + b"\xff\xff\xff\xff" + make_flac(16000, 1000),  # ID3 size not syncsafe
        id3_tag(5000)[:20],  # the tag says 5000 bytes follow; they do not
    ],
)
def test_flac_that_cannot_be_read_falls_back_to_the_estimate(data: bytes) -> None:
    assert flac_seconds(data) is None
    assert not probe(data).exact


@HYPOTHESIS
@given(st.binary(max_size=120), st.sampled_from([b"fLaC", b"ID3\x04\x00\x10", b"ID3", b""]))
def test_hostile_flac_headers_never_raise(tail: bytes, head: bytes) -> None:
    seconds = flac_seconds(head + tail)
    assert seconds is None or (math.isfinite(seconds) and seconds > 0)


# ---- other formats and billing ------------------------------------------------------------


@HYPOTHESIS
@given(st.binary(max_size=400))
def test_anything_else_is_estimated_never_raises(data: bytes) -> None:
    found = probe(data)
    assert math.isfinite(found.seconds) and found.seconds >= 0
    if not found.exact:
        assert found.seconds == len(data) / ESTIMATE_BYTES_PER_SECOND


def test_estimate_over_counts_common_speech_encodings() -> None:
    """One minute of audio at the lowest common speech bitrates is estimated at a minute or more."""
    for kbit in (16, 24, 32, 64, 128):
        size = kbit * 1000 // 8 * 60
        assert probe(b"ID3" + b"\x00" * size).seconds >= 60 * 0.999


def test_billed_seconds_rounds_up_with_a_minimum() -> None:
    assert billed_seconds(0.0) == MIN_BILLED_SECONDS == 10.0
    assert billed_seconds(9.99) == 10.0
    assert billed_seconds(12.001) == 12.01
    assert billed_seconds(12.0) == 12.0
    assert billed_seconds(math.nan) == billed_seconds(-1.0) == billed_seconds(math.inf) == 10.0
    assert probe(make_wav(16000 * 30, 16000)).billed == 30.0
