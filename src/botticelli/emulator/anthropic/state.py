"""``AnthropicState``: the shared ``common.state.State`` plus Anthropic's own rate-limit buckets.

``State.limiter`` counts Groq's four kinds (RPM/RPD/TPM/TPD); the Messages API limits requests,
input and output tokens per minute, so the emulator keeps its own ``limits.Limiter`` and resets
it with everything else (the control plane's ``POST /_emulator/reset`` calls ``reset``).
"""

from __future__ import annotations

from botticelli.emulator.anthropic.limits import AnthropicLimits, Limiter
from botticelli.emulator.common.state import Settings, State


class AnthropicState(State):
    def __init__(self, settings: Settings, limits: AnthropicLimits, *, window_scale: float = 1.0) -> None:
        super().__init__(settings)
        self.limits = limits
        self.buckets = Limiter(window_scale=window_scale)
        self.limiter.window_scale = window_scale

    def reset(self) -> None:
        super().reset()
        self.buckets.reset()
