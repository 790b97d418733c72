"""``botticelli transcribe FILE`` and ``botticelli speak "text" -o out.wav``: Groq's audio
endpoints from the shell. Only click is imported until a command runs."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from . import output
from .options import driver_options, http_options

if TYPE_CHECKING:
    from ..drivers.groq import GroqDriver

T = TypeVar("T")

_SPEECH_FORMATS = ("flac", "mp3", "mulaw", "ogg", "wav")


def _model_id(model: str) -> str:
    """A Groq model id; ``groq:`` in front is tolerated, another provider is a usage error."""
    provider, sep, rest = model.partition(":")
    if sep and "/" not in provider:
        if provider != "groq":
            raise output.usage_failure(f"--model: audio is Groq's only; {model!r} is not a Groq model")
        return rest
    return model


def _run(options: dict[str, Any], call: Callable[[GroqDriver], Awaitable[T]]) -> T:
    """Run ``call`` with a Groq driver; every botticelli error becomes one error line."""
    import asyncio

    from ..errors import BotticelliError

    async def go() -> T:
        from ..drivers.groq import GroqDriver

        output.forward_limiter_notices()
        driver = GroqDriver(**options)
        try:
            return await call(driver)
        finally:
            await driver.aclose()

    try:
        return asyncio.run(go())
    except BotticelliError as exc:
        raise output.Failure(str(exc)) from None


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("file", metavar="FILE")
@click.option(
    "-m",
    "--model",
    metavar="MODEL",
    default="whisper-large-v3-turbo",
    show_default=True,
    help="A Whisper model.",
)
@click.option(
    "--language", metavar="CODE", help="The spoken language, ISO-639-1 (e.g. en); default: detected."
)
@click.option("--prompt", metavar="TEXT", help="Text to guide the style or spelling of the transcript.")
@click.option(
    "-f",
    "--format",
    "response_format",
    type=click.Choice(["text", "json", "verbose_json"]),
    default="text",
    show_default=True,
    help="text: the transcript alone; json / verbose_json (segments, words): JSON.",
)
@click.option(
    "--timestamps",
    type=click.Choice(["segment", "word"]),
    multiple=True,
    help="Timestamp granularity for verbose_json (repeatable).",
)
@click.option("--temperature", type=click.FloatRange(0, 1), metavar="T", help="Sampling temperature, 0 to 1.")
@click.option("--translate", is_flag=True, help="Translate the speech into English (/audio/translations).")
@http_options
def transcribe(
    file: str,
    model: str,
    language: str | None,
    prompt: str | None,
    response_format: str,
    timestamps: tuple[str, ...],
    temperature: float | None,
    translate: bool,
    timeout: float | None,
    retries: int | None,
) -> int:
    """Transcribe an audio file (flac, mp3, mp4, m4a, ogg, wav, webm) and print the text.

    FILE is the audio; use - to read it from stdin.

    \b
    Examples:
      botticelli transcribe meeting.m4a
      botticelli transcribe --language fr --format verbose_json interview.mp3
      botticelli transcribe --translate -m whisper-large-v3 discorso.wav
    """
    source: Any = file
    filename: str | None = None
    if file == "-":
        stdin = sys.stdin
        if stdin is None:
            raise output.usage_failure("FILE is '-' but there is no standard input")
        source = stdin.buffer.read()
        filename = None
    if timestamps and response_format != "verbose_json":
        response_format = "verbose_json"  # timestamps only exist there
    model_id = _model_id(model)

    async def call(driver: GroqDriver) -> Any:
        return await driver.transcribe(
            source,
            model=model_id,
            language=language,
            prompt=prompt,
            response_format=response_format,  # type: ignore[arg-type]
            temperature=temperature,
            timestamp_granularities=list(timestamps) or None,  # type: ignore[arg-type]
            translate=translate,
            filename=filename,
        )

    result = _run(driver_options(timeout, retries), call)
    if response_format == "text":
        _write(result.text + "\n")
    else:
        import json

        _write(json.dumps(result.to_dict(), ensure_ascii=False, indent=2) + "\n")
    return 0


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("text", metavar="TEXT")
@click.option(
    "-o", "--output", "path", required=True, metavar="PATH", help="Where to write the audio (- for stdout)."
)
@click.option(
    "-m",
    "--model",
    metavar="MODEL",
    default="canopylabs/orpheus-v1-english",
    show_default=True,
    help="A text-to-speech model.",
)
@click.option("--voice", metavar="NAME", help="The voice (default: autumn; Arabic model: its first voice).")
@click.option(
    "-f",
    "--format",
    "response_format",
    type=click.Choice(_SPEECH_FORMATS),
    help="Audio format. Default: from the output's extension, else wav.",
)
@click.option(
    "--speed", type=click.FloatRange(0.5, 5), metavar="X", help="Speaking speed, 0.5 to 5 (default 1)."
)
@http_options
def speak(
    text: str,
    path: str,
    model: str,
    voice: str | None,
    response_format: str | None,
    speed: float | None,
    timeout: float | None,
    retries: int | None,
) -> int:
    """Say TEXT and write the audio file (wav by default).

    TEXT is what to say; use - to read it from stdin.

    \b
    Examples:
      botticelli speak "Hello from Florence" -o hello.wav
      botticelli speak --voice troy "Good morning" -o morning.wav
    """
    if text == "-":
        stdin = sys.stdin
        if stdin is None:
            raise output.usage_failure("TEXT is '-' but there is no standard input")
        text = stdin.read().strip()
    if not text.strip():
        raise output.usage_failure('the text is empty: try botticelli speak "Hello" -o hello.wav')
    if response_format is None:
        extension = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
        response_format = extension if extension in _SPEECH_FORMATS else "wav"
    model_id = _model_id(model)
    chosen = response_format

    async def call(driver: GroqDriver) -> bytes:
        return await driver.speak(
            text,
            model=model_id,
            voice=voice,
            response_format=chosen,  # type: ignore[arg-type]
            speed=speed,
        )

    audio = _run(driver_options(timeout, retries), call)
    if path == "-":
        try:
            sys.stdout.buffer.write(audio)
            sys.stdout.buffer.flush()
        except BrokenPipeError:
            raise output.StdoutClosed() from None
        return 0
    try:
        with open(path, "wb") as handle:
            handle.write(audio)
    except OSError as exc:
        raise output.Failure(f"cannot write {path!r}: {exc.strerror or exc}") from None
    return 0


def _write(text: str) -> None:
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        raise output.StdoutClosed() from None
