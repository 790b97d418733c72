"""What ``driver.rate_limit_status()`` and ``botticelli limits`` show: each limit, what is used,
where the number came from and when the bucket is full again."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LimitState:
    """One limit kind of one limiter."""

    kind: str  # "rpm" | "rpd" | "tpm" | "tpd" | "ash" | "asd" (audio seconds per hour / day)
    name: str  # "requests per minute (RPM)"
    limit: float  # what the limiter spends up to (the server's limit times the budget)
    server_limit: float  # the limit itself, before the budget
    used: float  # spent or reserved and not yet refilled (may exceed ``limit`` while callers queue)
    resets_in: float  # seconds until the bucket is full again
    source: str  # "free plan", "limits=", "botticelli.toml", "server headers", ...

    @property
    def remaining(self) -> float:
        return max(0.0, self.limit - self.used)


@dataclass(frozen=True, slots=True)
class RateLimitStatus:
    """The state of one limiter: ``print(driver.rate_limit_status())`` gives a small table."""

    provider: str
    model: str
    plan: str | None
    shared: str  # "in-process" or "redis"
    limits: tuple[LimitState, ...]
    concurrency: int | None
    in_flight: int
    blocked_for: float  # seconds a server's retry-after still holds every caller
    window_scale: float = 1.0
    #: the plan is only the default assumption (no plan=, environment or botticelli.toml, not
    #: confirmed by the server's headers); ``plan_hint`` says how to set it
    plan_assumed: bool = False
    plan_hint: str = ""
    #: how fresh the numbers are: "" when read now, else e.g. "shared state as of 2.1s ago"
    note: str = ""

    def __str__(self) -> str:
        plan = f", {self.plan} plan" if self.plan else ""
        if self.plan_assumed:
            plan += " (assumed)"
        lines = [f"{self.provider} {self.model}{plan}, {self.shared}"]
        if self.window_scale != 1.0:
            lines[0] += f", windows x{self.window_scale:g}"
        if self.note:
            lines[0] += f" ({self.note})"
        if self.plan_assumed and self.plan_hint:
            lines.append(f"  {self.plan_hint}")
        lines.append(f"  {'LIMIT':<28} {'MAX':>10} {'USED':>10} {'RESETS IN':>10}  SOURCE")
        for item in self.limits:
            lines.append(
                f"  {item.name:<28} {item.limit:>10,.0f} {item.used:>10,.0f} "
                f"{format_seconds(item.resets_in):>10}  {item.source}"
            )
        if self.concurrency is not None:
            lines.append(f"  {'concurrent requests':<28} {self.concurrency:>10} {self.in_flight:>10}")
        if self.blocked_for > 0:
            lines.append(f"  every caller waits {format_seconds(self.blocked_for)} (server retry-after)")
        return "\n".join(lines)


def format_seconds(seconds: float) -> str:
    """``0s``, ``4.2s``, ``2m59s``, ``23h58m``: short, for humans (headers use Go durations).
    Never raises: a value that is not a finite number shows as ``?``."""
    if not isinstance(seconds, (int, float)) or math.isnan(seconds):
        return "?"
    if math.isinf(seconds):
        return "?" if seconds > 0 else "0s"
    if seconds <= 0:
        return "0s"
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"
    minutes, secs = divmod(int(seconds + 0.5), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
