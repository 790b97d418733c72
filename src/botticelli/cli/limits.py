"""``botticelli limits``: the client-side rate limits in force, what is used, when each resets."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from . import output

if TYPE_CHECKING:
    from .._headers import RateLimitSchema
    from ..types import RateLimitInfo


@click.command(
    context_settings={"help_option_names": ["-h", "--help"]},
    short_help="Show rate limits: configured, used, and when each resets.",
)
@click.option(
    "-m",
    "--model",
    "models",
    multiple=True,
    metavar="MODEL",
    help="Model to show (repeatable); default: BOTTICELLI_MODEL or openai/gpt-oss-20b.",
)
@click.option(
    "--plan",
    default=None,
    metavar="PLAN",
    help="free, developer or unlimited; default: BOTTICELLI_GROQ_PLAN, botticelli.toml, else free (assumed).",
)
@click.option(
    "--probe",
    is_flag=True,
    help="Send one 1-token request first, so the server's live limits and usage show (costs one request).",
)
def limits(models: tuple[str, ...], plan: str | None, probe: bool) -> int:
    """Show the client-side rate limits of Groq models: the limit, what is used, when the bucket
    is full again and where each number comes from (plan, botticelli.toml, limits, server).

    Usage is this process's own unless limits are shared through Redis (BOTTICELLI_REDIS_URL or
    botticelli.toml), where every process on the key adds to it; --probe asks the server.

    \b
    Examples:
      botticelli limits
      botticelli limits -m openai/gpt-oss-120b --plan developer
      BOTTICELLI_REDIS_URL=redis://localhost:6379/0 botticelli limits
    """
    from .. import _defaults
    from .._headers import GROQ_RATE_LIMITS
    from ..config import config_path, env_value
    from ..errors import BotticelliError, redact
    from ..providers.groq_plans import GROQ_PLANS
    from ..ratelimit import limiter_for
    from ..ratelimit.plans import ASSUMED

    try:
        chosen, where = GROQ_PLANS.resolve(plan)
    except BotticelliError as exc:
        raise output.usage_failure(str(exc)) from None
    names = models or (env_value("BOTTICELLI_MODEL") or _defaults.GROQ_DEFAULT_MODEL,)
    key = env_value("GROQ_API_KEY")
    root = (env_value("GROQ_BASE_URL") or _defaults.GROQ_BASE_URL).rstrip("/")
    if root.endswith(_defaults.GROQ_API_PREFIX):
        root = root[: -len(_defaults.GROQ_API_PREFIX)]
    path = config_path()
    if where == ASSUMED:  # nobody chose it: say so, and how to choose
        other = GROQ_PLANS.alternative(chosen)
        where = (
            f"assumed, not set by --plan, {GROQ_PLANS.env} or botticelli.toml; set "
            f"{GROQ_PLANS.env}={other} or pass --plan {other} if your organisation is on it"
        )
    click.echo(f"plan: {chosen} ({where}); config: {path or 'no botticelli.toml'}")
    for name in names:
        try:
            seen = _probe(name, plan) if probe else None
            limiter = limiter_for(
                "groq",
                name,
                base_url=root,
                api_key=key,
                plan=plan,
                schema=GROQ_RATE_LIMITS,
                plans=GROQ_PLANS,
            )
        except BotticelliError as exc:  # e.g. a malformed BOTTICELLI_REDIS_URL (credentials hidden)
            raise output.Failure(redact(str(exc))) from None
        if limiter is None:
            click.echo(f"groq {name}: no client-side limits (plan unlimited)")
            continue
        click.echo(redact(str(limiter.status())))
        if seen is not None:
            click.echo(server_line(seen, GROQ_RATE_LIMITS))
    return 0


def server_line(info: RateLimitInfo, schema: RateLimitSchema) -> str:
    """What the server's headers said, each family over the window the provider's ``schema``
    gives it: ``server: 14,370 of 14,400 requests per day left (full in 2m59s); ...``."""
    from ..ratelimit import format_seconds

    parts = []
    for what, limit, remaining, reset, window in (
        (
            "requests",
            info.requests_limit,
            info.requests_remaining,
            info.requests_reset,
            schema.requests_window,
        ),
        ("tokens", info.tokens_limit, info.tokens_remaining, info.tokens_reset, schema.tokens_window),
    ):
        if limit is None:
            continue
        left = f"{remaining:,} of " if remaining is not None else ""
        full = f" (full in {format_seconds(reset)})" if reset is not None else ""
        parts.append(f"{left}{limit:,} {what} per {window} left{full}")
    return "  server: " + ("; ".join(parts) if parts else "no rate-limit headers")


def _probe(model: str, plan: str | None) -> RateLimitInfo | None:
    """One tiny request through a driver, so the limiter learns the server's headers; returns
    what they said (``None`` if nothing)."""
    import asyncio

    from ..drivers.groq import GroqDriver
    from ..types import GenerateRequest, Message

    driver = GroqDriver(model, plan=plan)

    async def run() -> RateLimitInfo | None:
        try:
            response = await driver.generate(GenerateRequest((Message.user("hi"),), max_tokens=1))
        finally:
            await driver.aclose()
        return response.rate_limit

    return asyncio.run(run())
