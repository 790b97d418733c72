"""Speech over real HTTP against the emulator: transcription, translation, text to speech, typed
errors, and the ``transcribe`` / ``speak`` commands run as processes."""

from __future__ import annotations

import asyncio
import io
import json
import struct
import wave
from pathlib import Path

import pytest

from botticelli import ConfigurationError, GroqDriver, InvalidRequestError, ModelNotFoundError
from botticelli.audio import Segment, Transcription, Word
from botticelli.emulator import Emulator

from .test_cli import CliRunner, one_error_line


def make_wav(seconds: float = 2.0, rate: int = 16000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(struct.pack("<h", 100) * int(seconds * rate))
    return buffer.getvalue()


def check_wav(data: bytes) -> float:
    """A valid RIFF/WAVE file with frames; its duration in seconds."""
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    with wave.open(io.BytesIO(data), "rb") as audio:
        frames = audio.getnframes()
        assert audio.getnchannels() == 1 and audio.getframerate() > 0 and frames > 0
        assert len(audio.readframes(frames)) == frames * audio.getsampwidth()
        return frames / audio.getframerate()


@pytest.fixture
def driver(emulator: Emulator, api_key: str) -> GroqDriver:
    return GroqDriver(api_key=api_key, base_url=emulator.base_url)


@pytest.fixture
def wav_file(tmp_path: Path) -> Path:
    path = tmp_path / "speech.wav"
    path.write_bytes(make_wav())
    return path


def audio_requests(emu: Emulator) -> list[str]:
    return [r.path for r in emu.requests if "/audio/" in r.path]


# ---- transcription --------------------------------------------------------------------------


async def test_transcribe_path_bytes_and_file_object(
    driver: GroqDriver, emulator: Emulator, wav_file: Path
) -> None:
    by_path = await driver.transcribe(wav_file)
    assert isinstance(by_path, Transcription) and by_path.text.strip()
    assert by_path.request_id and by_path.request_id.startswith("req_")
    by_str = await driver.transcribe(str(wav_file))
    data = await asyncio.to_thread(wav_file.read_bytes)
    by_bytes = await driver.transcribe(data)  # name sniffed: RIFF → .wav
    with wav_file.open("rb") as handle:
        by_object = await driver.transcribe(handle)
    assert by_path.text == by_str.text == by_bytes.text == by_object.text  # deterministic
    assert by_path.segments == () and by_path.words == () and by_path.duration is None
    (request, *_) = [r for r in emulator.requests if r.path.endswith("/audio/transcriptions")]
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert request.headers["authorization"].startswith("Bearer gsk_")


async def test_transcribe_text_format(driver: GroqDriver, wav_file: Path) -> None:
    plain = await driver.transcribe(wav_file, response_format="text")
    as_json = await driver.transcribe(wav_file, response_format="json")
    assert plain.text == as_json.text and "\n" not in plain.text


async def test_verbose_json_with_segments_and_words(driver: GroqDriver, wav_file: Path) -> None:
    result = await driver.transcribe(
        wav_file,
        model="whisper-large-v3",
        language="fr",
        prompt="A talk about painting.",
        temperature=0.0,
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    assert result.language == "French" and result.task == "transcribe"
    assert result.duration == pytest.approx(2.0)
    assert result.segments and all(isinstance(s, Segment) for s in result.segments)
    assert result.segments[0].id == 0 and result.segments[0].start == 0.0
    assert result.segments[-1].end == pytest.approx(2.0, abs=0.05)
    assert result.words and all(isinstance(w, Word) for w in result.words)
    assert [w.word for w in result.words] == [w.strip(".,") for w in result.text.split()]
    assert all(w.end >= w.start for w in result.words)
    data = result.to_dict()
    assert data["text"] == result.text and len(data["words"]) == len(result.words)
    json.dumps(data)


async def test_translate(driver: GroqDriver, emulator: Emulator, wav_file: Path) -> None:
    result = await driver.translate(wav_file, response_format="verbose_json")
    assert result.text and result.task == "translate" and result.language == "English"
    again = await driver.transcribe(wav_file, translate=True, model="whisper-large-v3")
    assert again.text == result.text
    assert audio_requests(emulator) == ["/openai/v1/audio/translations"] * 2
    with pytest.raises(InvalidRequestError, match="language"):
        await driver.transcribe(wav_file, translate=True, language="fr")


async def test_filename_decides_the_format(driver: GroqDriver, emulator: Emulator) -> None:
    data = make_wav(1.0)
    ok = await driver.transcribe(data, filename="clip.wav")
    assert ok.text
    with pytest.raises(InvalidRequestError, match="file must be one of"):
        await driver.transcribe(data, filename="notes.txt")


# ---- typed errors ---------------------------------------------------------------------------


async def test_chat_model_on_audio_endpoints(driver: GroqDriver, wav_file: Path) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        await driver.transcribe(wav_file, model="openai/gpt-oss-20b")
    assert caught.value.status == 400
    with pytest.raises(InvalidRequestError):
        await driver.speak("Hello", model="openai/gpt-oss-20b")
    with pytest.raises(InvalidRequestError):  # a speech model cannot transcribe
        await driver.transcribe(wav_file, model="canopylabs/orpheus-v1-english")


async def test_unknown_model(driver: GroqDriver, wav_file: Path) -> None:
    with pytest.raises(ModelNotFoundError):
        await driver.transcribe(wav_file, model="whisper-nonexistent")
    with pytest.raises(ModelNotFoundError):
        await driver.speak("Hello", model="nobody/tts-0")


async def test_unreadable_file_sends_nothing(driver: GroqDriver, emulator: Emulator, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read"):
        await driver.transcribe(tmp_path / "missing.wav")
    with pytest.raises(ConfigurationError, match="cannot read"):
        await driver.transcribe(tmp_path)  # a directory
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(ConfigurationError, match="empty"):
        await driver.transcribe(empty)
    (tmp_path / "t.wav").write_text("RIFF")
    with (tmp_path / "t.wav").open("r") as text_mode, pytest.raises(ConfigurationError, match="binary"):
        await driver.transcribe(text_mode)  # type: ignore[arg-type]
    closed = io.BytesIO(b"RIFF")
    closed.close()
    with pytest.raises(ConfigurationError):
        await driver.transcribe(closed)
    with pytest.raises(ConfigurationError):
        await driver.transcribe(12)  # type: ignore[arg-type]
    assert audio_requests(emulator) == []


async def test_bad_parameters_are_typed(driver: GroqDriver, wav_file: Path) -> None:
    with pytest.raises(InvalidRequestError, match="verbose_json"):
        await driver.transcribe(wav_file, timestamp_granularities=["word"])
    with pytest.raises(InvalidRequestError, match="voice"):
        await driver.speak("Hello", voice="nobody")
    with pytest.raises(InvalidRequestError, match="speed"):
        await driver.speak("Hello", speed=9)
    with pytest.raises(InvalidRequestError, match="empty"):
        await driver.speak("  ")


# ---- text to speech -------------------------------------------------------------------------


async def test_speak_returns_a_valid_wav(driver: GroqDriver, emulator: Emulator) -> None:
    audio = await driver.speak("Hello from Florence, where the light is golden.")
    assert check_wav(audio) > 0.5
    (request,) = [r for r in emulator.requests if r.path.endswith("/audio/speech")]
    assert request.headers["accept"] == "audio/wav"
    assert request.headers["content-type"] == "application/json"
    mulaw = await driver.speak("Hello", response_format="mulaw")
    assert mulaw[:4] == b"RIFF" and struct.unpack("<H", mulaw[20:22])[0] == 7  # μ-law format tag


async def test_speak_options(driver: GroqDriver, emulator: Emulator) -> None:
    slow = await driver.speak("one two three four", voice="troy", speed=0.5, sample_rate=16000)
    fast = await driver.speak("one two three four", voice="troy", speed=2.0, sample_rate=16000)
    assert check_wav(slow) > check_wav(fast)
    with wave.open(io.BytesIO(slow)) as audio:
        assert audio.getframerate() == 16000
    # the default voice follows the model: "autumn" would be refused by the Arabic model
    arabic = await driver.speak("marhaba", model="canopylabs/orpheus-arabic-saudi")
    check_wav(arabic)
    with pytest.raises(InvalidRequestError, match="voice"):
        await driver.speak("marhaba", model="canopylabs/orpheus-arabic-saudi", voice="autumn")


async def test_speech_roundtrip(driver: GroqDriver) -> None:
    audio = await driver.speak("a few words to hear back")
    heard = await driver.transcribe(audio, response_format="verbose_json")
    assert heard.text and heard.duration == pytest.approx(check_wav(audio), abs=0.05)


async def test_audio_counts_against_the_limiter(emulator: Emulator, api_key: str, wav_file: Path) -> None:
    driver = GroqDriver(api_key=api_key, base_url=emulator.base_url, limits={"rpm": 20})
    try:
        await driver.transcribe(wav_file)
        await driver.speak("Hi")
        status = driver.rate_limit_status()
        assert status is not None
        (rpm,) = [limit for limit in status.limits if limit.kind == "rpm"]
        assert rpm.used == pytest.approx(2, abs=0.1)
    finally:
        await driver.aclose()


# ---- the CLI --------------------------------------------------------------------------------


@pytest.fixture
def cli(emulator: Emulator, tmp_path: Path) -> CliRunner:
    return CliRunner(tmp_path, emulator.base_url)


def test_cli_transcribe(cli: CliRunner, emulator: Emulator, tmp_path: Path) -> None:
    (tmp_path / "in.wav").write_bytes(make_wav())
    run = cli("transcribe", "in.wav")
    assert run.returncode == 0, run.stderr
    assert run.stderr == "" and run.stdout.strip() and run.stdout.count("\n") == 1
    verbose = cli(
        "transcribe", "in.wav", "--format", "verbose_json", "--language", "de", "--timestamps", "word"
    )
    assert verbose.returncode == 0, verbose.stderr
    data = json.loads(verbose.stdout)
    assert data["text"] == run.stdout.strip() and data["language"] == "German"
    assert data["segments"] and data["words"]
    as_json = cli("transcribe", "-m", "whisper-large-v3", "--format", "json", "in.wav")
    assert json.loads(as_json.stdout)["text"] == run.stdout.strip()
    piped = cli("transcribe", "-", stdin=None)
    assert piped.returncode != 0  # empty stdin: nothing to send
    one_error_line(piped, "empty")


def test_cli_transcribe_errors(cli: CliRunner, emulator: Emulator, tmp_path: Path) -> None:
    missing = cli("transcribe", "nope.wav")
    assert missing.returncode == 1
    one_error_line(missing, "nope.wav")
    (tmp_path / "in.wav").write_bytes(make_wav())
    chat = cli("transcribe", "-m", "openai/gpt-oss-20b", "in.wav")
    assert chat.returncode == 1
    one_error_line(chat, "gpt-oss-20b")
    unknown = cli("transcribe", "-m", "whisper-zero", "in.wav")
    assert unknown.returncode == 1
    one_error_line(unknown, "whisper-zero")
    no_key = cli("transcribe", "in.wav", key=None)
    assert no_key.returncode == 1
    one_error_line(no_key, "GROQ_API_KEY")
    usage = cli("transcribe", "--format", "srt", "in.wav")
    assert usage.returncode == 2
    one_error_line(usage, "srt")


def test_cli_speak(cli: CliRunner, emulator: Emulator, tmp_path: Path) -> None:
    run = cli("speak", "Hello from the command line", "-o", "out.wav")
    assert run.returncode == 0, run.stderr
    assert run.stdout == "" and run.stderr == ""
    check_wav((tmp_path / "out.wav").read_bytes())
    slow = cli("speak", "one two three four", "-o", "slow.wav", "--voice", "daniel", "--speed", "0.5")
    fast = cli("speak", "one two three four", "-o", "fast.wav", "--voice", "daniel", "--speed", "2")
    assert slow.returncode == 0 and fast.returncode == 0, slow.stderr + fast.stderr
    assert check_wav((tmp_path / "slow.wav").read_bytes()) > check_wav((tmp_path / "fast.wav").read_bytes())
    mulaw = cli("speak", "Hi", "-o", "hi.mulaw")  # format from the extension
    assert mulaw.returncode == 0, mulaw.stderr
    assert struct.unpack("<H", (tmp_path / "hi.mulaw").read_bytes()[20:22])[0] == 7


def test_cli_speak_errors(cli: CliRunner, tmp_path: Path) -> None:
    bad_voice = cli("speak", "Hi", "-o", "x.wav", "--voice", "nobody")
    assert bad_voice.returncode == 1
    one_error_line(bad_voice, "voice")
    assert not (tmp_path / "x.wav").exists()
    chat = cli("speak", "Hi", "-o", "x.wav", "-m", "openai/gpt-oss-20b")
    assert chat.returncode == 1
    one_error_line(chat, "gpt-oss-20b")
    unwritable = cli("speak", "Hi", "-o", str(tmp_path / "no" / "such" / "dir.wav"))
    assert unwritable.returncode == 1
    one_error_line(unwritable, "cannot write")
    no_output = cli("speak", "Hi")
    assert no_output.returncode == 2
    one_error_line(no_output, "-o")
    empty = cli("speak", "   ", "-o", "x.wav")
    assert empty.returncode == 2
    one_error_line(empty, "empty")
