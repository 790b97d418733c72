"""Groq: the generic HTTP driver with the OpenAI chat codec and Groq's provider configuration."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from .. import _defaults
from ..codecs.openai_chat import GROQ as GROQ_CODEC
from ..config import Timeout
from ..errors import BotticelliWarning
from ..providers.groq import GROQ
from .http import HTTPDriver

if TYPE_CHECKING:
    import ssl

    import aiohttp

    from ..audio import AudioFile, Transcription
    from ..ratelimit import RateLimits

__all__ = ["BotticelliWarning", "GroqDriver"]


class GroqDriver(HTTPDriver):
    """``GroqDriver("openai/gpt-oss-20b")``: key from the argument, ``GROQ_API_KEY`` or ``./.env``;
    base URL (scheme://host[:port]) from the argument, ``GROQ_BASE_URL`` or api.groq.com.

    Client-side rate limits keep requests under the organisation's limits instead of collecting
    429s. ``plan``: ``"free"``, ``"developer"`` or ``"unlimited"`` (no limiting), else
    ``BOTTICELLI_GROQ_PLAN``, else ``botticelli.toml``, else ``"free"``; corrected from the
    response headers. ``limits``: overrides such as ``{"rpm": 20, "budget": 0.8}``. ``redis_url``
    (or ``BOTTICELLI_REDIS_URL``) shares the limits with other processes. See
    ``botticelli.ratelimit`` and ``rate_limit_status()``. HTTP client options: see ``HTTPDriver``."""

    def __init__(
        self,
        model: str = _defaults.GROQ_DEFAULT_MODEL,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | Timeout | None = None,
        max_retries: int | None = None,
        plan: str | None = None,
        limits: Mapping[str, Any] | RateLimits | None = None,
        redis_url: str | None = None,
        headers: Mapping[str, str] | None = None,
        verify: bool | str | ssl.SSLContext | None = None,
        proxy: str | None = None,
        trust_env: bool = True,
        http_client: aiohttp.ClientSession | None = None,
        connector: aiohttp.BaseConnector | None = None,
    ) -> None:
        super().__init__(
            model,
            provider=GROQ,
            codec=GROQ_CODEC,
            base_url=base_url,
            api_key=api_key,
            timeout=timeout,
            max_retries=max_retries,
            headers=headers,
            plan=plan,
            limits=limits,
            redis_url=redis_url,
            verify=verify,
            proxy=proxy,
            trust_env=trust_env,
            http_client=http_client,
            connector=connector,
        )

    @classmethod
    def with_api_key(
        cls, api_key: str, model: str = _defaults.GROQ_DEFAULT_MODEL, **options: object
    ) -> GroqDriver:
        return cls(model, api_key=api_key, **options)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"GroqDriver(model={self.model_name!r}, base_url={self.root_url!r})"

    async def transcribe(
        self,
        file: AudioFile,
        *,
        model: str = "whisper-large-v3-turbo",
        language: str | None = None,
        prompt: str | None = None,
        response_format: Literal["json", "text", "verbose_json"] = "json",
        temperature: float | None = None,
        timestamp_granularities: Sequence[Literal["word", "segment"]] | None = None,
        translate: bool = False,
        filename: str | None = None,
        content_type: str | None = None,
    ) -> Transcription:
        """Speech to text (``/audio/transcriptions``; ``translate=True``: into English, via
        ``/audio/translations``). ``file``: a path, bytes or a binary file object. See
        ``botticelli.audio.transcribe``."""
        from .. import audio

        return await audio.transcribe(
            self,
            file,
            model=model,
            language=language,
            prompt=prompt,
            response_format=response_format,
            temperature=temperature,
            timestamp_granularities=timestamp_granularities,
            translate=translate,
            filename=filename,
            content_type=content_type,
        )

    async def translate(
        self,
        file: AudioFile,
        *,
        model: str = "whisper-large-v3",
        prompt: str | None = None,
        response_format: Literal["json", "text", "verbose_json"] = "json",
        temperature: float | None = None,
        timestamp_granularities: Sequence[Literal["word", "segment"]] | None = None,
        filename: str | None = None,
        content_type: str | None = None,
    ) -> Transcription:
        """Speech in any language to English text (``/audio/translations``)."""
        from .. import audio

        return await audio.translate(
            self,
            file,
            model=model,
            prompt=prompt,
            response_format=response_format,
            temperature=temperature,
            timestamp_granularities=timestamp_granularities,
            filename=filename,
            content_type=content_type,
        )

    async def speak(
        self,
        text: str,
        *,
        model: str = "canopylabs/orpheus-v1-english",
        voice: str | None = None,
        response_format: Literal["flac", "mp3", "mulaw", "ogg", "wav"] = "wav",
        speed: float | None = None,
        sample_rate: int | None = None,
    ) -> bytes:
        """Text to speech (``/audio/speech``): the audio file's bytes (wav by default; voice
        default ``autumn``). See ``botticelli.audio.speak``."""
        from .. import audio

        return await audio.speak(
            self,
            text,
            model=model,
            voice=voice,
            response_format=response_format,
            speed=speed,
            sample_rate=sample_rate,
        )
