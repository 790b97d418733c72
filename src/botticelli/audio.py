"""Speech: transcription and translation (Whisper) and text to speech (Orpheus), over Groq's
``/audio/transcriptions``, ``/audio/translations`` and ``/audio/speech`` (groq-wire.md §2).

Every request goes through the driver's ``request``: the same key, retries, deadline, typed
errors and rate limiter as chat (``limited=True``). A file that cannot be read is a
``ConfigurationError`` before anything is sent; the server's refusals are typed as usual
(``InvalidRequestError`` for a chat model on an audio endpoint, ``ModelNotFoundError`` for an
unknown model).

Speech to text also respects the model's audio seconds per hour and per day (ASH / ASD): before
sending, one request and the upload's length (``audio_duration.probe``: exact for WAV and FLAC,
an over-estimate otherwise; at least 10 s billed) are reserved together in the limiter of the
speech model on the same key (``Limiter.reserve_audio``, against its RPM, RPD, ASH and ASD),
waiting until they fit; a file longer than the whole hourly limit is refused unsent, a used-up
daily quota fails fast, and a failed call gives its seconds back. A chat driver's uploads are
counted there, not against the chat model's limits (Groq limits per model).

``GroqDriver.transcribe`` / ``translate`` / ``speak`` call these; so does the CLI
(``botticelli transcribe FILE``, ``botticelli speak "text" -o out.wav``).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, Union

import orjson

from .audio_duration import probe
from .errors import ConfigurationError, InvalidRequestError, ModelsError, ResponseError

if TYPE_CHECKING:
    from ._transport import Reply
    from .drivers.http import HTTPDriver
    from .ratelimit import Limiter

__all__ = [
    "AUDIO_FORMATS",
    "DEFAULT_SPEECH_MODEL",
    "DEFAULT_TRANSCRIPTION_MODEL",
    "DEFAULT_TRANSLATION_MODEL",
    "DEFAULT_VOICE",
    "SPEECH_FORMATS",
    "VOICES",
    "AudioFile",
    "Segment",
    "Transcription",
    "Word",
    "speak",
    "transcribe",
    "translate",
]

DEFAULT_TRANSCRIPTION_MODEL = "whisper-large-v3-turbo"
DEFAULT_TRANSLATION_MODEL = "whisper-large-v3"  # the only one Groq documents for translations
DEFAULT_SPEECH_MODEL = "canopylabs/orpheus-v1-english"
DEFAULT_VOICE = "autumn"
VOICES: dict[str, tuple[str, ...]] = {
    "canopylabs/orpheus-v1-english": ("autumn", "diana", "hannah", "austin", "daniel", "troy"),
    "canopylabs/orpheus-arabic-saudi": ("abdullah", "fahad", "sultan", "lulwa", "noura", "aisha"),
}
TranscriptFormat = Literal["json", "text", "verbose_json"]
SpeechFormat = Literal["flac", "mp3", "mulaw", "ogg", "wav"]
Granularity = Literal["word", "segment"]
SPEECH_FORMATS: tuple[str, ...] = ("flac", "mp3", "mulaw", "ogg", "wav")

# What Groq accepts for transcription, with the MIME type sent for each.
_MIME = {
    "flac": "audio/flac",
    "mp3": "audio/mpeg",
    "mp4": "audio/mp4",
    "mpeg": "audio/mpeg",
    "mpga": "audio/mpeg",
    "m4a": "audio/mp4",
    "ogg": "audio/ogg",
    "wav": "audio/wav",
    "webm": "audio/webm",
}
AUDIO_FORMATS: tuple[str, ...] = tuple(_MIME)

AudioFile = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes]]
"""A path, the audio's bytes, or a file object opened in binary mode."""


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of the transcript with its times in seconds (``verbose_json``)."""

    id: int
    start: float
    end: float
    text: str
    avg_logprob: float | None = None
    no_speech_prob: float | None = None
    compression_ratio: float | None = None
    temperature: float | None = None


@dataclass(frozen=True, slots=True)
class Word:
    """One word and its times in seconds (``verbose_json`` with ``timestamp_granularities=["word"]``)."""

    word: str
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class Transcription:
    """What the server heard. ``language``, ``duration``, ``segments`` and ``words`` are filled
    only by ``response_format="verbose_json"`` (words only with word timestamps)."""

    text: str
    language: str | None = None
    duration: float | None = None
    segments: tuple[Segment, ...] = ()
    words: tuple[Word, ...] = ()
    task: str | None = None
    request_id: str | None = None
    model: str = field(default="", compare=False)

    def __str__(self) -> str:
        return self.text

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the fields that are set."""
        data: dict[str, Any] = {"text": self.text}
        if self.task is not None:
            data["task"] = self.task
        if self.language is not None:
            data["language"] = self.language
        if self.duration is not None:
            data["duration"] = self.duration
        if self.segments:
            data["segments"] = [
                {k: getattr(s, k) for k in Segment.__slots__ if getattr(s, k) is not None}
                for s in self.segments
            ]
        if self.words:
            data["words"] = [{"word": w.word, "start": w.start, "end": w.end} for w in self.words]
        if self.request_id is not None:
            data["request_id"] = self.request_id
        return data


# -- the file ---------------------------------------------------------------------------------


def _sniff(data: bytes) -> str | None:
    """The audio format from its first bytes, for bytes given without a file name."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    if data[:4] == b"fLaC":
        return "flac"
    if data[:4] == b"OggS":
        return "ogg"
    if data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        return "mp3"
    if data[4:8] == b"ftyp":
        return "m4a"
    if data[:4] == b"\x1a\x45\xdf\xa3":
        return "webm"
    return None


def _read(file: AudioFile, filename: str | None) -> tuple[str, bytes]:
    """The file name and the bytes of ``file``; ``ConfigurationError`` when it cannot be read."""
    name: str | None = filename
    if isinstance(file, (bytes, bytearray, memoryview)):
        data = bytes(file)
    elif isinstance(file, (str, os.PathLike)):
        path = Path(file)
        try:
            data = path.read_bytes()
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise ConfigurationError(f"file: cannot read {str(path)!r}: {reason}") from None
        name = name or path.name
    elif hasattr(file, "read"):
        try:
            read = file.read()
        except (OSError, ValueError) as exc:  # ValueError: a closed file
            raise ConfigurationError(f"file: cannot read the file object: {exc}") from None
        if not isinstance(read, (bytes, bytearray, memoryview)):
            raise ConfigurationError("file: the file object must be opened in binary mode ('rb')")
        data = bytes(read)
        given = getattr(file, "name", None)
        if not name and isinstance(given, str):
            name = os.path.basename(given)
    else:
        raise ConfigurationError(
            f"file: expected a path, bytes or a binary file object, not {type(file).__name__}"
        )
    if not data:
        raise ConfigurationError(f"file: {name or 'the audio'} is empty")
    if not name:
        name = "audio." + (_sniff(data) or "wav")
    return name, data


def _mime(filename: str, given: str | None) -> str:
    if given:
        return given
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    return _MIME.get(extension, "application/octet-stream")


def _header_value(text: str) -> str:
    return text.replace('"', "_").replace("\r", "_").replace("\n", "_")


def _multipart(
    fields: Sequence[tuple[str, str]], filename: str, content_type: str, data: bytes
) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body with text ``fields`` and the ``file``; its content type."""
    boundary = "botticelli-" + secrets.token_hex(16)
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields
    ]
    safe_name = _header_value(filename)
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{safe_name}"\r\n'
        f"Content-Type: {_header_value(content_type)}\r\n\r\n"
    )
    body = "".join(parts).encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


# -- speech to text ---------------------------------------------------------------------------


async def transcribe(
    driver: HTTPDriver,
    file: AudioFile,
    *,
    model: str = DEFAULT_TRANSCRIPTION_MODEL,
    language: str | None = None,
    prompt: str | None = None,
    response_format: TranscriptFormat = "json",
    temperature: float | None = None,
    timestamp_granularities: Sequence[Granularity] | None = None,
    translate: bool = False,
    filename: str | None = None,
    content_type: str | None = None,
) -> Transcription:
    """Transcribe ``file`` (a path, bytes or a binary file object), or with ``translate=True``
    translate it into English. ``filename`` / ``content_type`` default to the path's (bytes:
    sniffed from the content). ``timestamp_granularities`` (``"word"``, ``"segment"``) needs
    ``response_format="verbose_json"``."""
    if translate and language:
        raise InvalidRequestError(
            "language: translations are always into English; leave language unset",
            provider=driver.provider_name,
            model=model,
        )
    name, data = _read(file, filename)
    fields: list[tuple[str, str]] = [("model", model)]
    if language:
        fields.append(("language", language))
    if prompt:
        fields.append(("prompt", prompt))
    fields.append(("response_format", response_format))
    if temperature is not None:
        fields.append(("temperature", repr(float(temperature))))
    for granularity in timestamp_granularities or ():
        fields.append(("timestamp_granularities[]", granularity))
    body, form_type = _multipart(fields, name, _mime(name, content_type), data)
    accept = "text/plain, */*" if response_format == "text" else "application/json"
    reply = await _send_audio(
        driver,
        model,
        data,
        "/audio/translations" if translate else "/audio/transcriptions",
        body,
        {"content-type": form_type, "accept": accept},
    )
    request_id = reply.headers.get(driver.codec.request_id_header)
    if response_format == "text" and not reply.headers.get("content-type", "").startswith("application/json"):
        return Transcription(
            text=reply.content.decode("utf-8", "replace").strip(), request_id=request_id, model=model
        )
    found = driver.parse_json(reply.content, reply.headers, reply.status)
    if not isinstance(found, dict) or not isinstance(found.get("text"), str):
        raise ResponseError(
            "the transcription answer has no text",
            provider=driver.provider_name,
            model=model,
            status=reply.status,
            request_id=request_id,
            body=found,
        )
    return _transcription(found, request_id, model)


def _speech_limiter(driver: HTTPDriver, model: str) -> Limiter | None:
    """The limiter of the speech model on the driver's key: the driver's own when it is that
    model, else its sibling (``Limiter.for_model``); ``None`` when nothing is limited (no
    limiter: the unlimited plan)."""
    own = driver.limiter
    return own.for_model(model) if own is not None else None


async def _send_audio(
    driver: HTTPDriver, model: str, data: bytes, path: str, body: bytes, headers: dict[str, str]
) -> Reply:
    """Send one upload within the speech model's limits: a request and its seconds reserved
    first (a wait, or a refusal before sending); the seconds come back when the call fails, and
    a 429 naming an audio-seconds limit empties that budget. The transport's limiter counts the
    upload too when it is the speech model's own (its concurrency, retry-after and headers);
    a chat model's limiter leaves it alone. Without an audio budget (no ASH/ASD known for the
    model, or the unlimited plan) the driver's limiter counts it as a request, as before."""
    speech = _speech_limiter(driver, model)
    if speech is None or not speech.audio_limited:
        return await driver.request("POST", path, content=body, headers=headers, limited=True)
    length = probe(data)
    reserved = await speech.reserve_audio(length.billed, exact=length.exact)
    try:
        return await driver.request(
            "POST", path, content=body, headers=headers, limited=speech is driver.limiter
        )
    except BaseException as exc:
        await asyncio.shield(_failed(speech, reserved, exc))
        raise


async def _failed(speech: Limiter, reserved: float, error: BaseException) -> None:
    await speech.refund_audio(reserved)  # the server billed nothing for a failed call
    if isinstance(error, ModelsError):
        await speech.audio_rejected(error)


async def translate(
    driver: HTTPDriver,
    file: AudioFile,
    *,
    model: str = DEFAULT_TRANSLATION_MODEL,
    prompt: str | None = None,
    response_format: TranscriptFormat = "json",
    temperature: float | None = None,
    timestamp_granularities: Sequence[Granularity] | None = None,
    filename: str | None = None,
    content_type: str | None = None,
) -> Transcription:
    """Translate the speech in ``file`` into English text (``/audio/translations``)."""
    return await transcribe(
        driver,
        file,
        model=model,
        prompt=prompt,
        response_format=response_format,
        temperature=temperature,
        timestamp_granularities=timestamp_granularities,
        translate=True,
        filename=filename,
        content_type=content_type,
    )


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _transcription(data: dict[str, Any], request_id: str | None, model: str) -> Transcription:
    segments = tuple(
        Segment(
            id=s["id"] if isinstance(s.get("id"), int) else index,
            start=_number(s.get("start")) or 0.0,
            end=_number(s.get("end")) or 0.0,
            text=s["text"] if isinstance(s.get("text"), str) else "",
            avg_logprob=_number(s.get("avg_logprob")),
            no_speech_prob=_number(s.get("no_speech_prob")),
            compression_ratio=_number(s.get("compression_ratio")),
            temperature=_number(s.get("temperature")),
        )
        for index, s in enumerate(data.get("segments") or ())
        if isinstance(s, dict)
    )
    words = tuple(
        Word(
            word=w["word"] if isinstance(w.get("word"), str) else "",
            start=_number(w.get("start")) or 0.0,
            end=_number(w.get("end")) or 0.0,
        )
        for w in data.get("words") or ()
        if isinstance(w, dict)
    )
    groq = data.get("x_groq")
    if isinstance(groq, dict) and isinstance(groq.get("id"), str):
        request_id = groq["id"]
    language = data.get("language")
    task = data.get("task")
    return Transcription(
        text=data["text"],
        language=language if isinstance(language, str) else None,
        duration=_number(data.get("duration")),
        segments=segments,
        words=words,
        task=task if isinstance(task, str) else None,
        request_id=request_id,
        model=model,
    )


# -- text to speech ---------------------------------------------------------------------------


def default_voice(model: str) -> str:
    """The voice used when none is given: ``autumn``, or the model's first known voice."""
    voices = VOICES.get(model)
    return DEFAULT_VOICE if voices is None or DEFAULT_VOICE in voices else voices[0]


async def speak(
    driver: HTTPDriver,
    text: str,
    *,
    model: str = DEFAULT_SPEECH_MODEL,
    voice: str | None = None,
    response_format: SpeechFormat = "wav",
    speed: float | None = None,
    sample_rate: int | None = None,
) -> bytes:
    """The audio file (``response_format``: wav by default) of ``text`` said by ``voice``
    (default ``autumn``; for the Arabic model its first voice). ``speed``: 0.5 to 5."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidRequestError(
            "input: the text to speak is empty", provider=driver.provider_name, model=model
        )
    body: dict[str, Any] = {
        "model": model,
        "input": text,
        "voice": voice or default_voice(model),
        "response_format": response_format,
    }
    if speed is not None:
        body["speed"] = speed
    if sample_rate is not None:
        body["sample_rate"] = sample_rate
    reply = await driver.request(
        "POST",
        "/audio/speech",
        content=orjson.dumps(body),
        headers={"accept": "audio/wav" if response_format == "wav" else "*/*"},
        limited=True,
    )
    request_id = reply.headers.get(driver.codec.request_id_header)
    kind = reply.headers.get("content-type", "").lower()
    if not reply.content or kind.startswith(("application/json", "text/")):
        raise ResponseError(
            f"the speech answer is not audio (content type {kind or 'none'}, {len(reply.content)} bytes)",
            provider=driver.provider_name,
            model=model,
            status=reply.status,
            request_id=request_id,
        )
    return reply.content
