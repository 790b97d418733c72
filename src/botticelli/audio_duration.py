"""How many seconds of audio an upload holds, for Groq's audio-seconds limits (ASH / ASD,
groq-wire.md §5.2), read before it is sent.

- **WAV** (RIFF/WAVE, PCM, IEEE float, A-law, μ-law, and their WAVE_FORMAT_EXTENSIBLE forms):
  exact, from the ``fmt`` chunk (sample rate x block align, what a decoder uses; the declared
  byte rate is only a claim) and the ``data`` chunk's size, capped at the bytes actually there;
  a streaming writer's placeholder size (0 or 0xFFFFFFFF) counts every byte to the end.
- **FLAC**: exact, from STREAMINFO (total samples / sample rate), after an optional ID3v2 tag.
- **Everything else** (mp3, m4a/mp4, ogg, webm, compressed WAV, a header that does not parse or
  claims nonsense): an over-estimate from the size, as if the file were 16 kbit/s
  (``ESTIMATE_BYTES_PER_SECOND``), below nearly every speech encoding (voice-note Opus runs
  16-32 kbit/s, mp3 and AAC 32-128). Over-counting only makes the client wait longer than needed;
  under-counting would earn 429s. An estimate is never used to refuse a file (``exact=False``).

Parsing never raises on what a file holds: every read is bounds-checked, chunk walks are capped,
and anything odd falls back to the estimate.

Billing: the reference documents no minimum billed length per request (groq-wire.md: NOT FOUND).
Groq is commonly said to bill at least 10 s per request, so ``billed_seconds`` charges
``MIN_BILLED_SECONDS`` at least: the conservative side, since over-counting cannot cause a 429.
The emulator bills the same way.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

__all__ = [
    "ESTIMATE_BYTES_PER_SECOND",
    "MIN_BILLED_SECONDS",
    "AudioDuration",
    "billed_seconds",
    "estimate_seconds",
    "flac_seconds",
    "probe",
    "wav_seconds",
]

#: The shortest length a request is counted as (assumed: the reference does not say; see above).
MIN_BILLED_SECONDS = 10.0
#: 16 kbit/s: what an upload of unknown format is assumed to hold per second (an over-estimate).
ESTIMATE_BYTES_PER_SECOND = 2000.0

#: WAV format tags whose samples are a fixed size (so rate x block align is the byte rate).
_PCM_TAGS = frozenset({0x0001, 0x0003, 0x0006, 0x0007})
_EXTENSIBLE = 0xFFFE
_PLACEHOLDER_SIZES = (0, 0xFFFFFFFF)
#: Chunks looked at in a WAV file before giving up (a real one has a handful).
_MAX_CHUNKS = 256


@dataclass(frozen=True, slots=True)
class AudioDuration:
    """``seconds`` of audio; ``exact``: read from the file's header (WAV, FLAC), else an
    over-estimate from the size. ``format``: "wav", "flac", or "estimate"."""

    seconds: float
    exact: bool
    format: str

    @property
    def billed(self) -> float:
        """What the audio-seconds limits are charged: ``billed_seconds(self.seconds)``."""
        return billed_seconds(self.seconds)


def billed_seconds(seconds: float) -> float:
    """Seconds a request is counted as: rounded up to 0.01 s, at least ``MIN_BILLED_SECONDS``."""
    if not math.isfinite(seconds) or seconds < 0:
        return MIN_BILLED_SECONDS
    return max(MIN_BILLED_SECONDS, math.ceil(seconds * 100 - 1e-9) / 100)


def probe(data: bytes) -> AudioDuration:
    """The duration of an upload: exact for WAV and FLAC, else ``estimate_seconds``. Never raises."""
    seconds = wav_seconds(data)
    if seconds is not None:
        return AudioDuration(seconds, True, "wav")
    seconds = flac_seconds(data)
    if seconds is not None:
        return AudioDuration(seconds, True, "flac")
    return AudioDuration(estimate_seconds(len(data)), False, "estimate")


def estimate_seconds(size: int) -> float:
    """An over-estimate of the seconds in ``size`` bytes of compressed speech (16 kbit/s)."""
    return max(0, size) / ESTIMATE_BYTES_PER_SECOND


def wav_seconds(data: bytes) -> float | None:
    """Seconds of a PCM-like RIFF/WAVE file; ``None`` when it is not one or the header is not
    believable (then estimate instead)."""
    try:
        return _wav(data)
    except (struct.error, ValueError, OverflowError, ZeroDivisionError):  # pragma: no cover - belt and braces
        return None


def _wav(data: bytes) -> float | None:
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    rate: float | None = None
    size: int | None = None
    pos = 12
    for _ in range(_MAX_CHUNKS):
        if pos + 8 > len(data):
            break
        chunk = data[pos : pos + 4]
        declared = int.from_bytes(data[pos + 4 : pos + 8], "little")
        body = pos + 8
        available = len(data) - body
        if chunk == b"fmt " and rate is None:
            if declared < 16 or available < 16:
                return None
            rate = _pcm_byte_rate(data, body, min(declared, available))
            if rate is None:
                return None  # compressed or nonsense: the header's numbers are not a duration
        elif chunk == b"data" and size is None:
            size = available if declared in _PLACEHOLDER_SIZES or declared > available else declared
            if rate is not None:
                break
        pos = body + declared + (declared & 1)
    if rate is None or size is None:
        return None
    return size / rate


def _pcm_byte_rate(data: bytes, body: int, length: int) -> float | None:
    """Bytes per second a decoder reads for a fixed-size-sample format, or ``None``."""
    values: tuple[int, ...] = struct.unpack_from("<HHIIHH", data, body)
    tag, channels, sample_rate, _, block_align, bits = values
    if tag == _EXTENSIBLE:
        if length < 26:  # cbSize, valid bits, channel mask, then the sub-format GUID's tag
            return None
        tag = int.from_bytes(data[body + 24 : body + 26], "little")
    if tag not in _PCM_TAGS or sample_rate <= 0:
        return None
    if block_align <= 0:
        block_align = channels * ((bits + 7) // 8)
    if block_align <= 0:
        return None
    return float(sample_rate) * block_align


def flac_seconds(data: bytes) -> float | None:
    """Seconds of a FLAC file from its STREAMINFO block (after an optional ID3v2 tag); ``None``
    when it is not FLAC or the total is unknown (0 samples, which FLAC allows)."""
    try:
        return _flac(data)
    except (struct.error, ValueError, OverflowError, ZeroDivisionError):  # pragma: no cover - belt and braces
        return None


def _flac(data: bytes) -> float | None:
    start = 0
    if data[:3] == b"ID3" and len(data) >= 10:
        sizes = data[6:10]
        if any(b & 0x80 for b in sizes):
            return None
        tag = (sizes[0] << 21) | (sizes[1] << 14) | (sizes[2] << 7) | sizes[3]
        start = 10 + tag + (10 if data[5] & 0x10 else 0)  # a footer, when flagged
    if data[start : start + 4] != b"fLaC":
        return None
    header = start + 4
    if header + 4 + 18 > len(data) or data[header] & 0x7F != 0:  # STREAMINFO must come first
        return None
    length = int.from_bytes(data[header + 1 : header + 4], "big")
    if length < 34:
        return None
    fields = int.from_bytes(data[header + 14 : header + 22], "big")
    sample_rate = fields >> 44
    total = fields & 0xFFFFFFFFF
    if sample_rate <= 0 or total <= 0:
        return None
    return total / sample_rate
