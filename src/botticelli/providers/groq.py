"""Groq: OpenAI chat completions at api.groq.com/openai/v1, with Groq's own readings of errors.

What is Groq's alone lives here: a 429's "Please try again in 7.66s" and "on tokens per minute
(TPM): Limit 6000" in the message (groq-wire.md §6), 498 for flex-tier capacity (a server error
that must fail fast, never retried), the request-per-day / token-per-minute header meaning and
the plans (``groq_plans.py``).
"""

from __future__ import annotations

import re

from .. import _defaults
from .._headers import GROQ_RATE_LIMITS
from ..codecs.base import ErrorFields
from ..errors import ModelsError, ServerError
from .base import Provider
from .openai_compatible import read_try_again

_WHICH_LIMIT = re.compile(r" on ([a-z ]+ per (?:minute|day) \(([RT]P[MD])\))")
_LIMIT_VALUE = re.compile(r"\(([RT]P[MD])\): Limit (\d+)")
FLEX_CAPACITY = 498


def read_error(status: int, fields: ErrorFields) -> type[ModelsError] | None:
    if status == FLEX_CAPACITY:
        fields.message += " (flex tier: no capacity now; retry later or use service_tier='on_demand')"
        return ServerError
    if status == 413:
        fields.message += " (one request larger than the per-minute token budget is not retried)"
        return None
    if status != 429:
        return None
    read_try_again(status, fields)
    message = fields.message
    which = _WHICH_LIMIT.search(message)
    if which:
        fields.limit = which.group(1)
        fields.daily = "per day" in fields.limit
        fields.limit_kind = which.group(2).lower()
    value = _LIMIT_VALUE.search(message)
    if value:
        fields.limit_kind = value.group(1).lower()
        fields.limit_value = int(value.group(2))
        fields.daily = fields.daily or fields.limit_kind.endswith("d")
    return None


GROQ = Provider(
    name="groq",
    title="Groq",
    base_url=_defaults.GROQ_BASE_URL,
    base_url_env="GROQ_BASE_URL",
    api_key_env=("GROQ_API_KEY",),
    key_required=True,
    key_prefix=_defaults.GROQ_KEY_PREFIX,
    keys_url=_defaults.GROQ_KEYS_URL,
    api_prefix=_defaults.GROQ_API_PREFIX,
    catalog="groq",
    rate_limits=GROQ_RATE_LIMITS,
    plans="botticelli.providers.groq_plans:GROQ_PLANS",
    read_error=read_error,
    no_retry=frozenset({FLEX_CAPACITY}),
    streams_json_schema=False,  # groq-wire.md: json_schema with stream=true is a 400
)
