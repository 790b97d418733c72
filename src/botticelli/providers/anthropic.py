"""Anthropic: where it lives, how keys are found, its rate-limit headers (anthropic-wire.md)."""

from __future__ import annotations

from .._headers import ANTHROPIC_RATE_LIMITS
from .base import ParameterRanges, Provider

ANTHROPIC = Provider(
    name="anthropic",
    title="Anthropic",
    base_url="https://api.anthropic.com",
    base_url_env="ANTHROPIC_BASE_URL",
    api_key_env=("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"),
    key_required=True,
    keys_url="https://console.anthropic.com/settings/keys",
    api_prefix="/v1",
    catalog="anthropic",
    rate_limits=ANTHROPIC_RATE_LIMITS,
    # temperature 0-1 (§3); no documented cap on the number of stop sequences.
    ranges=ParameterRanges(temperature=(0.0, 1.0), max_stop=None),
)

__all__ = ["ANTHROPIC"]
