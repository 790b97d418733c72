"""The default backend: a deterministic fake model that writes plausible English-looking words.

- Same messages + same seed -> the same text; with temperature ~0 the seed is ignored (greedy);
  without a seed the server picks a random one (and echoes it, as Groq does).
- One token = one word-ish piece with a leading space (the first piece has none); punctuation
  sticks to its word. Higher temperature / top_p draw from a wider slice of the vocabulary.
- Prompt tokens are estimated like OpenAI's rule of thumb: ceil(chars / 4) per message plus
  4 tokens of per-message overhead plus 3 for the reply primer.
- A reply is ``reply_tokens`` long (a random length within the range) unless ``max_tokens`` cuts it.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import AsyncIterator, Sequence

from botticelli.emulator.backend import Finish, Message, message_text, register_backend

_WORDS = """
    the of and to in is that it for as with was on be by this are from at or an which have not
    has but can all one more will their other also been they its were there when into only some
    these time would about new first than two after most what may used over such many system
    model data light water world people energy small large common early form way long between
    each river city number part process state history study group point language music field
    structure network signal value theory market design rate power level method result order
    space team line image design quiet bright simple careful gentle rapid steady ancient modern
    northern coastal golden silver green blue open clear local global natural human useful
    forest mountain valley garden harbor bridge island village library station journey morning
    evening season window letter story answer question reason pattern measure balance growth
    travel build write read learn grow share carry follow explain describe observe compare
    improve create connect support remain become provide include consider develop produce
"""
VOCABULARY: tuple[str, ...] = tuple(dict.fromkeys(_WORDS.split()))  # dedupe, keep order

_TINY_TEMPERATURE = 1e-3


class FakeBackend:
    """Deterministic word generator implementing the emulator's ``Backend`` protocol."""

    def __init__(self, *, reply_tokens: tuple[int, int] = (16, 48)) -> None:
        low, high = reply_tokens
        if not 1 <= low <= high:
            raise ValueError("reply_tokens must be (low, high) with 1 <= low <= high")
        self.reply_tokens = (low, high)

    def count_tokens(self, messages: Sequence[Message]) -> int:
        total = 3
        for message in messages:
            total += 4 + (len(message_text(message)) + 3) // 4
        return total

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int,
        temperature: float,
        top_p: float,
        seed: int,
        stop: Sequence[str],
    ) -> AsyncIterator[str | Finish]:
        digest = 0
        for message in messages:
            digest = zlib.crc32(str(message.get("role", "")).encode(), digest)
            digest = zlib.crc32(message_text(message).encode(), digest)
        greedy = temperature < _TINY_TEMPERATURE
        rng = random.Random(digest if greedy else (digest << 32) ^ seed)
        width = len(VOCABULARY) * min(1.0, 0.25 + 0.5 * temperature) * max(min(top_p, 1.0), 0.05)
        words = VOCABULARY[: max(8, int(width))]
        count = len(words)
        natural = rng.randint(*self.reply_tokens)
        length = min(max_tokens, natural)
        draw = rng.random
        sentence_left = 5 + int(draw() * 10)
        capital = True
        for i in range(length):
            word = words[int(draw() * count)]
            if capital:
                word = word.capitalize()
                capital = False
            sentence_left -= 1
            if sentence_left == 0 or i == natural - 1:
                word += "."
                capital = True
                sentence_left = 5 + int(draw() * 10)
            elif draw() < 0.08:
                word += ","
            yield word if i == 0 else " " + word


register_backend("fake", FakeBackend)
