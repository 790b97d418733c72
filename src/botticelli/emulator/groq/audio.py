"""``POST /audio/transcriptions``, ``/audio/translations`` and ``/audio/speech`` (groq-wire.md §2).

Transcripts are deterministic fake words drawn from the audio bytes (or the ``url``), as many as
the audio's duration suggests (read from a WAV or FLAC header, else estimated from the size at
128 kbit/s); speech is a valid WAV file (RIFF, 16-bit PCM mono, or 8-bit μ-law for ``mulaw``)
holding a quiet tone as long as the input would take to say.

Rate limits (speech to text only): every valid upload is charged one request and its billed
seconds (its duration, at least ``MIN_BILLED_SECONDS``: assumed, see ``botticelli.audio_duration``)
against the model's RPM, RPD, ASH and ASD on the emulator's plan (catalog numbers; ``limits=``
overrides apply to RPM/RPD); with ``enforce_limits`` what does not fit is refused: 429 with
``retry-after`` in Groq's general rate-limit body ("… on audio seconds per hour (ASH): Limit 7200,
Used …, Requested …. Please try again in …"; the audio wording and the ``audio_seconds`` type are
inferred, NOT FOUND in the reference), or 413 for one file longer than a whole limit. No
``x-ratelimit-*`` headers are sent on audio endpoints: the reference does not know whether Groq
sends them (groq-wire.md §10). Text to speech is not limited here.

Exact texts: the speech ``response_format`` error is the observed one (livekit/agents-js#650).
The other refusals are NOT FOUND in the reference; they are 400 ``invalid_request_error`` (404
``model_not_found`` for an unknown model, as chat) with texts in the same style, and the SDKs
raise ``BadRequestError`` for them as for any 400.
"""

from __future__ import annotations

import math
import random
import struct
import zlib
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import BodyPartReader, web

from botticelli import catalog
from botticelli.audio_duration import MIN_BILLED_SECONDS, probe
from botticelli.catalog import ModelInfo
from botticelli.emulator.common.errors import WireError
from botticelli.emulator.common.limits import Denial, Limits
from botticelli.emulator.common.state import State
from botticelli.emulator.groq import wire
from botticelli.emulator.groq.http import accepted_key, denied, error_response
from botticelli.emulator.groq.wire import invalid_request
from botticelli.emulator.textgen import VOCABULARY

AUDIO_FORMATS = ("flac", "mp3", "mp4", "mpeg", "mpga", "m4a", "ogg", "wav", "webm")
TRANSCRIPT_FORMATS = ("json", "text", "verbose_json")
GRANULARITIES = ("word", "segment")
SPEECH_FORMATS = ("flac", "mp3", "mulaw", "ogg", "wav")
SAMPLE_RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
VOICES = {
    "canopylabs/orpheus-v1-english": ("autumn", "diana", "hannah", "austin", "daniel", "troy"),
    "canopylabs/orpheus-arabic-saudi": ("abdullah", "fahad", "sultan", "lulwa", "noura", "aisha"),
}
_LANGUAGES = {
    "en": "English",
    "fr": "French",
    "de": "German",
    "es": "Spanish",
    "ar": "Arabic",
    "it": "Italian",
}
_WORDS_PER_SECOND = 2.5
_MAX_SPEECH_SECONDS = 30.0


def _one_of(values: tuple[Any, ...]) -> str:
    return "[" + " ".join(str(v) for v in values) + "]"


def _model(model_id: Any, kind: str, endpoint: str) -> ModelInfo:
    if not isinstance(model_id, str) or not model_id:
        raise invalid_request("'model' : property 'model' is missing", "model")
    info = catalog.lookup(model_id)
    if info is None or (info.retired and info.server_error != "model_decommissioned"):
        raise wire.model_not_found(model_id)
    if info.retired:
        raise wire.model_decommissioned(model_id)
    if info.kind != kind:
        raise invalid_request(f"The model `{model_id}` does not support {endpoint}", "model")
    return info


# -- speech to text ---------------------------------------------------------------------------


async def _form(request: web.BaseRequest) -> tuple[dict[str, str], list[str], tuple[str, bytes] | None]:
    """The text fields, ``timestamp_granularities[]`` and the ``file`` (name, bytes) of a form.

    Read part by part: no 1 MiB cap (Groq takes files up to 25 MB on the free plan)."""
    if not request.content_type.startswith("multipart/form-data"):
        raise invalid_request("request Content-Type must be multipart/form-data")
    fields: dict[str, str] = {}
    granularities: list[str] = []
    upload: tuple[str, bytes] | None = None
    reader = await request.multipart()
    while True:
        part = await reader.next()
        if part is None:
            break
        if not isinstance(part, BodyPartReader):  # a nested multipart: not a form field
            continue
        name = part.name or ""
        if name == "file":
            upload = (part.filename or "", bytes(await part.read(decode=False)))
        elif name in ("timestamp_granularities[]", "timestamp_granularities"):
            granularities.append(await part.text())
        else:
            fields[name] = await part.text()
    return fields, granularities, upload


def _duration(data: bytes) -> float:
    """Seconds of audio, as the server decodes them: exact from a WAV or FLAC header
    (``audio_duration.probe``), else ~16 kB per second (a 128 kbit/s file)."""
    found = probe(data)
    if found.exact:
        return found.seconds
    return max(len(data) / 16000, 0.5)


def _words(source: bytes, prompt: str, count: int) -> list[str]:
    rng = random.Random(zlib.crc32(prompt.encode(), zlib.crc32(source)))
    words = [VOCABULARY[rng.randrange(len(VOCABULARY))] for _ in range(count)]
    if words:
        words[0] = words[0].capitalize()
        words[-1] += "."
    return words


@dataclass(frozen=True, slots=True)
class _Job:
    """A validated transcription form: the model, the audio (or the url's bytes) and its length."""

    info: ModelInfo
    fields: dict[str, str]
    granularities: list[str]
    data: bytes
    duration: float  # seconds, unrounded (what is billed)
    response_format: str
    language: str

    @property
    def billed(self) -> float:
        """The seconds the audio limits are charged (at least ``MIN_BILLED_SECONDS``)."""
        return max(self.duration, MIN_BILLED_SECONDS)


def transcription(
    fields: dict[str, str],
    granularities: list[str],
    upload: tuple[str, bytes] | None,
    *,
    translate: bool,
    req_id: str,
) -> tuple[str, bytes]:
    """The content type and body of a transcription (or translation) of a validated form."""
    return _render(_validated(fields, granularities, upload, translate=translate), translate, req_id)


def _validated(
    fields: dict[str, str], granularities: list[str], upload: tuple[str, bytes] | None, *, translate: bool
) -> _Job:
    """Check a transcription form (400 / 404 ``WireError`` for what Groq refuses)."""
    endpoint = "translations" if translate else "transcriptions"
    info = _model(fields.get("model"), "speech-to-text", endpoint)
    url = fields.get("url")
    if upload is None and not url:
        raise invalid_request("one of `file` or `url` must be provided", "file")
    if upload is not None and url:
        raise invalid_request("only one of `file` or `url` may be provided", "file")
    if upload is not None:
        filename, data = upload
        extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
        if extension not in AUDIO_FORMATS:
            raise invalid_request(
                f"file must be one of the following types: {_one_of(AUDIO_FORMATS)}", "file"
            )
        if not data:
            raise invalid_request("file is empty", "file")
    else:
        data = (url or "").encode()
    response_format = fields.get("response_format") or "json"
    if response_format not in TRANSCRIPT_FORMATS:
        raise invalid_request(
            f"response_format must be one of {_one_of(TRANSCRIPT_FORMATS)}", "response_format"
        )
    temperature = fields.get("temperature")
    if temperature not in (None, ""):
        try:
            value = float(temperature)
        except ValueError:
            raise invalid_request("'temperature' : value must be a number", "temperature") from None
        if not 0.0 <= value <= 1.0:
            raise invalid_request("'temperature' : number must be between 0 and 1", "temperature")
    language = fields.get("language") or ""
    if language and not translate and (len(language) != 2 or not language.isalpha()):
        raise invalid_request("'language' : must be an ISO-639-1 code, e.g. `en`", "language")
    for granularity in granularities:
        if granularity not in GRANULARITIES:
            raise invalid_request(
                f"timestamp_granularities must be one of {_one_of(GRANULARITIES)}", "timestamp_granularities"
            )
    if granularities and response_format != "verbose_json":
        raise invalid_request(
            "timestamp_granularities requires response_format `verbose_json`", "timestamp_granularities"
        )

    duration = _duration(data) if upload is not None else 5.0
    return _Job(info, fields, granularities, data, duration, response_format, language)


def _render(job: _Job, translate: bool, req_id: str) -> tuple[str, bytes]:
    """The content type and body answering a validated form."""
    fields, granularities, response_format = job.fields, job.granularities, job.response_format
    duration, language = round(job.duration, 2), job.language
    words = _words(job.data, fields.get("prompt", ""), max(1, min(400, round(duration * _WORDS_PER_SECOND))))
    text = " ".join(words)
    if response_format == "text":
        return "text/plain; charset=utf-8", text.encode()
    if response_format == "json":
        return wire.JSON, orjson.dumps({"text": text, "x_groq": {"id": req_id}})
    step = duration / len(words)
    body: dict[str, Any] = {
        "task": "translate" if translate else "transcribe",
        "language": "English" if translate else _LANGUAGES.get(language.lower(), "English"),
        "duration": duration,
        "text": text,
        "segments": _segments(words, step),
    }
    if "word" in granularities:
        body["words"] = [
            {"word": w.strip(".,"), "start": round(i * step, 2), "end": round((i + 1) * step, 2)}
            for i, w in enumerate(words)
        ]
    body["x_groq"] = {"id": req_id}
    return wire.JSON, orjson.dumps(body)


def _segments(words: list[str], step: float, size: int = 12) -> list[dict[str, Any]]:
    segments = []
    for index, first in enumerate(range(0, len(words), size)):
        chunk = words[first : first + size]
        segments.append(
            {
                "id": index,
                "seek": int(first * step * 100),
                "start": round(first * step, 2),
                "end": round((first + len(chunk)) * step, 2),
                "text": " " + " ".join(chunk),
                "tokens": [50365 + zlib.crc32(w.encode()) % 1000 for w in chunk],
                "temperature": 0.0,
                "avg_logprob": -0.21,
                "compression_ratio": 1.3,
                "no_speech_prob": 0.01,
            }
        )
    return segments


# -- text to speech ---------------------------------------------------------------------------


def speech(body: Any) -> tuple[str, bytes]:
    """The content type and the audio of a ``POST /audio/speech`` body."""
    if not isinstance(body, dict):
        raise invalid_request("We could not parse the JSON body of your request.")
    info = _model(body.get("model"), "text-to-speech", "speech")
    text = body.get("input")
    if not isinstance(text, str) or not text:
        raise invalid_request("'input' : property 'input' is missing", "input")
    voice = body.get("voice")
    voices = VOICES.get(info.id, ())
    if not isinstance(voice, str) or not voice:
        raise invalid_request("'voice' : property 'voice' is missing", "voice")
    if voices and voice not in voices:
        raise invalid_request(f"voice must be one of {_one_of(voices)}", "voice")
    # Unset: wav. [APIREF] says mp3 is the default, but also "Returns an audio file in `wav`
    # format" and the SDK asks for `Accept: audio/wav`; the SDK's behaviour wins.
    fmt = body.get("response_format") or "wav"
    if fmt not in SPEECH_FORMATS:
        raise invalid_request(f"response_format must be one of {_one_of(SPEECH_FORMATS)}", "response_format")
    rate = body.get("sample_rate", 48000)
    if rate is None:
        rate = 48000
    if isinstance(rate, bool) or rate not in SAMPLE_RATES:
        raise invalid_request(f"sample_rate must be one of {_one_of(SAMPLE_RATES)}", "sample_rate")
    speed = body.get("speed", 1.0)
    if speed is None:
        speed = 1.0
    if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not 0.5 <= speed <= 5:
        raise invalid_request("'speed' : number must be between 0.5 and 5", "speed")
    seconds = min(_MAX_SPEECH_SECONDS, max(0.25, 0.35 * len(text.split()) / speed))
    # The emulator writes no lossy codec: flac, mp3 and ogg come back as WAV (PCM), labelled so.
    return "audio/wav", wav(seconds, int(rate), mulaw=fmt == "mulaw")


def wav(seconds: float, rate: int, *, mulaw: bool = False) -> bytes:
    """A mono WAV file of a quiet ~220 Hz tone: 16-bit PCM, or 8-bit μ-law (format tag 7)."""
    count = int(seconds * rate)
    period = max(2, round(rate / 220))
    cycle = [int(3000 * math.sin(2 * math.pi * i / period)) for i in range(period)]
    if mulaw:
        table = bytes(_mulaw(s) for s in cycle)
        data = (table * (count // period + 1))[:count]
        fmt_chunk = struct.pack("<HHIIHH", 7, 1, rate, rate, 1, 8) + b"\x00\x00"  # cbSize 0
    else:
        table = struct.pack(f"<{period}h", *cycle)
        data = (table * (count // period + 1))[: count * 2]
        fmt_chunk = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    chunks = (
        b"fmt "
        + struct.pack("<I", len(fmt_chunk))
        + fmt_chunk
        + b"data"
        + struct.pack("<I", len(data))
        + data
    )
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def _mulaw(sample: int) -> int:
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), 32635) + 132
    exponent = max(0, magnitude.bit_length() - 8)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


# -- handlers -----------------------------------------------------------------------------------


async def handle_transcription(state: State, request: web.BaseRequest, *, translate: bool) -> web.Response:
    req_id = wire.request_id()
    headers = {"x-request-id": req_id}
    try:
        key = accepted_key(request, state.settings.api_keys)
        if key is None:
            raise wire.invalid_api_key()
        fields, granularities, upload = await _form(request)
        job = _validated(fields, granularities, upload, translate=translate)
        verdict = state.limiter.acquire(
            key,
            job.info.id,
            _audio_limits(state, job.info),
            0,
            enforce=state.settings.enforce_limits,
            seconds=job.billed,
        )
        if isinstance(verdict, Denial):
            return denied(state.settings, verdict, job.info.id, {"x-request-id": req_id})  # no rate headers
        content_type, body = _render(job, translate, req_id)
    except WireError as error:
        return error_response(error, headers)
    return web.Response(status=200, body=body, headers={**headers, "content-type": content_type})


def _audio_limits(state: State, info: ModelInfo) -> Limits:
    """The speech model's limits on the emulator's plan: RPM/RPD as chat's (overrides applied),
    ASH/ASD from the catalog's plan limits."""
    base = state.limits_for(info)
    plan = info.limits.get(state.settings.plan)
    return Limits(
        rpm=base.rpm,
        rpd=base.rpd,
        ash=plan.ash if plan is not None else None,
        asd=plan.asd if plan is not None else None,
    )


async def handle_speech(state: State, request: web.BaseRequest) -> web.Response:
    req_id = wire.request_id()
    headers = {"x-request-id": req_id}
    try:
        if accepted_key(request, state.settings.api_keys) is None:
            raise wire.invalid_api_key()
        raw = await request.content.read()
        try:
            body: Any = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        content_type, audio = speech(body)
    except WireError as error:
        return error_response(error, headers)
    return web.Response(status=200, body=audio, headers={**headers, "content-type": content_type})
