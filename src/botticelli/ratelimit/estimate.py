"""How many prompt tokens a request will be billed, before it is sent, from the request itself.

Counting the encoded body's bytes (the old rule) charges base64 image data as text (a 30 kB JPEG
looked like 10,000 tokens) and under-counts CJK text (three UTF-8 bytes, but about one token per
character). So text is counted per character class and every non-text input at a fixed cost.
The numbers are deliberately a little high: a reservation that is too large is settled down to
the real usage after the response, one that is too small lets a 429 through.
"""

from __future__ import annotations

import functools
import json
import math
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..types import GenerateRequest, Input

#: Tokens per character, by script. ASCII (English, code, JSON): about 4 characters per token.
ASCII_PER_CHAR = 0.25
#: Accented Latin letters split words into more pieces than plain ASCII.
LATIN_PER_CHAR = 0.4
#: CJK ideographs, Kana, Hangul (and fullwidth forms): about one token per character.
CJK_PER_CHAR = 1.0
#: Other scripts (Cyrillic, Greek, Arabic, Hebrew, Indic, Thai...): in between.
OTHER_PER_CHAR = 0.5
#: Characters outside the Basic Multilingual Plane (emoji, rare scripts): a token or more each.
ASTRAL_PER_CHAR = 1.0
#: Role and separators of every message, and the priming of the reply (OpenAI-style templates).
MESSAGE_OVERHEAD = 4
REPLY_OVERHEAD = 3
#: groq-wire.md has no source for how Groq bills images (NOT FOUND there), so every image costs a
#: fixed amount whatever its byte size: about what dynamic-resolution vision encoders (Qwen-VL:
#: one token per 28x28 pixels) spend on a ~1-megapixel image. Audio and binary documents alike:
#: their length cannot be known without decoding them.
IMAGE_TOKENS = 1_500
AUDIO_TOKENS = 1_500
DOCUMENT_TOKENS = 1_500


@functools.cache
def _classes() -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    """The character classes, compiled at the first non-ASCII text (compiling these Unicode
    ranges costs ~4 ms, which a one-shot ``botticelli ask`` in ASCII should not pay)."""
    cjk = re.compile(
        "["
        "\u1100-\u11ff"  # Hangul Jamo
        "\u2e80-\u2fdf"  # CJK radicals, Kangxi radicals
        "\u3000-\u303f"  # CJK symbols and punctuation
        "\u3040-\u30ff"  # Hiragana, Katakana
        "\u3100-\u31ff"  # Bopomofo, Hangul compatibility Jamo, Katakana extensions
        "\u3200-\u4dbf"  # enclosed CJK, compatibility, extension A
        "\u4e00-\u9fff"  # CJK unified ideographs
        "\ua960-\ua97f"  # Hangul Jamo extended A
        "\uac00-\ud7ff"  # Hangul syllables, Jamo extended B
        "\uf900-\ufaff"  # CJK compatibility ideographs
        "\uff00-\uffef"  # halfwidth and fullwidth forms
        "\U00020000-\U0003ffff"  # CJK extensions B and later
        "]"
    )
    latin = re.compile("[\u0080-\u024f\u1e00-\u1eff]")
    # Outside the BMP but not CJK (emoji, historic scripts); CJK extensions are in ``cjk``.
    astral = re.compile("[\U00010000-\U0001ffff\U00040000-\U0010ffff]")
    return cjk, latin, astral


_TEXT_MIME = re.compile(r"^(text/|application/(json|xml|x-ndjson|csv)$|.*\+(json|xml)$)")


def text_tokens(text: str) -> float:
    """Tokens of ``text`` by character class (a float: callers add up, then round up)."""
    length = len(text)
    if text.isascii():
        return length * ASCII_PER_CHAR
    ascii_count = len(text.encode("ascii", "ignore"))
    cjk_class, latin_class, astral_class = _classes()
    cjk = cjk_class.subn("", text)[1]
    latin = latin_class.subn("", text)[1]
    astral = astral_class.subn("", text)[1]
    other = length - ascii_count - cjk - latin - astral
    return (
        ascii_count * ASCII_PER_CHAR
        + latin * LATIN_PER_CHAR
        + cjk * CJK_PER_CHAR
        + astral * ASTRAL_PER_CHAR
        + other * OTHER_PER_CHAR
    )


def input_tokens(item: Input) -> float:
    """Tokens of one message part: text by script, everything else at its fixed cost."""
    if item.kind == "text":
        return text_tokens(item.text_value or "")
    if item.kind == "image":
        return IMAGE_TOKENS
    if item.kind == "audio":
        return AUDIO_TOKENS
    if item.data is not None and _TEXT_MIME.match(item.mime_type or ""):
        return text_tokens(item.data.decode("utf-8", "replace"))  # a text document is its text
    return DOCUMENT_TOKENS


def _json_tokens(value: object) -> float:
    """Tool definitions, response formats and other JSON sent as is: its length / 4."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        text = repr(value)
    return text_tokens(text)


def prompt_tokens(request: GenerateRequest) -> int:
    """Prompt tokens the provider will count for ``request`` (an estimate that errs high)."""
    total = float(REPLY_OVERHEAD)
    for message in request.messages:
        total += MESSAGE_OVERHEAD
        for item in message.content:
            total += input_tokens(item)
        for call in message.tool_calls:
            total += MESSAGE_OVERHEAD + text_tokens(call.name) + text_tokens(call.arguments)
        if message.tool_call_id is not None:
            total += text_tokens(message.tool_call_id)
    for stop in request.stop or ():
        total += text_tokens(stop)
    if request.extra:
        total += _json_tokens(dict(request.extra))
    return math.ceil(total)
