"""What the fake model thinks, and the ``signature`` that lets a client pass a thinking block back.

The real API signs each thinking block and refuses a block whose signature does not match when
it comes back in a later turn (§3: "must be passed back unchanged"). The emulator signs with a
keyed hash of the thinking text under a fixed key, so a block survives a restart of the emulator
and a tampered one is refused. With ``display: "omitted"`` the text is withheld but the signature
is still sent (the 2.x SDK's ``display`` docstring); such a block comes back with an empty
``thinking`` and is accepted on the form of its signature alone.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

_KEY = b"botticelli-emulator-anthropic-thinking"
_MARK = b"\x12\x08EMU1"  # starts every signature, so ours are recognisable
_DIGEST = 48  # bytes of hash kept; real signatures are a few hundred base64 characters


def sign(text: str) -> str:
    mac = hashlib.blake2b(text.encode(), key=_KEY, digest_size=_DIGEST).digest()
    return base64.b64encode(_MARK + mac).decode()


def verify(text: str, signature: str) -> bool:
    """Whether ``signature`` is one the emulator made for ``text`` (any of ours when ``text`` is
    empty: an omitted block)."""
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    if not raw.startswith(_MARK) or len(raw) != len(_MARK) + _DIGEST:
        return False
    return text == "" or hmac.compare_digest(signature, sign(text))


def thinking_text(question: str) -> str:
    """A deterministic chain of thought about the last user turn."""
    words = question.split()[:10]
    topic = " ".join(words) or "the conversation so far"
    return (
        f"The user asks about {topic!r}. Let me think about what they need. "
        "A short, direct answer fits best; I will keep it plain and accurate."
    )


def tokens(text: str) -> int:
    """Output tokens a thinking text costs (~4 characters a token)."""
    return max(1, (len(text) + 3) // 4)
