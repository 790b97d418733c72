"""Where limits come from and which limiter a driver gets.

Order, first wins per limit: the ``limits=`` argument, ``botticelli.toml`` (one model on the
plan, one model on any plan, the plan, the provider), the catalog's numbers for the plan, and at
run time the server's rate-limit headers, as the provider's ``RateLimitSchema`` names them (which
replace catalog numbers and can only lower configured ones). For a provider with plans
(``Plans``, e.g. ``providers.groq_plans.GROQ_PLANS``) the plan: ``plan=``, else its environment
variable (``BOTTICELLI_GROQ_PLAN``), else the toml, else its default, only assumed (source
"default": requests are not refused for size on its numbers and messages say how to set it); its
unlimited plan means no catalog limits (and no limiter unless limits are set).

Drivers on the same (provider, server, key, model, configuration) share one limiter per process,
so two drivers on one key do not each spend the whole quota. Registry and Redis keys hold a short
hash of the base URL and key, never the key.

A limiter can name the limiter of another model on the same server, key, plan and Redis
(``Limiter.for_model``): a chat driver's audio uploads are counted against the speech model's own
limits (requests and audio seconds), not the chat model's. That one takes the plan, the toml and
the catalog for its model; of the explicit ``limits=`` only the model-independent settings
(``budget``, ``window_scale``) carry over, since the numbers were given for the driver's model.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

from .. import _defaults, catalog
from .._headers import OPENAI_RATE_LIMITS, RateLimitSchema
from ..config import Secret, config_table, load_config
from .limiter import Limiter
from .plans import ASSUMED, Plans
from .spec import ALL_KINDS, WINDOWS, LimitsLayer, RateLimits, layer_from_mapping, merge
from .state import SharedState, State

LimitsArg = Mapping[str, Any] | RateLimits | None

_registry: dict[tuple[Any, ...], Limiter] = {}
_registry_lock = threading.Lock()
_LIMIT_KEYS = (
    frozenset(ALL_KINDS)
    | {"concurrency", "max_concurrent", "budget", "window_scale"}
    | {f"{k}_multiplier" for k in ALL_KINDS}
)
#: The keys of ``limits=`` that hold for every model of a driver, not only its own.
_SHARED_KEYS = frozenset({"budget", "window_scale"} | {f"{k}_multiplier" for k in ALL_KINDS})


def fingerprint(base_url: str, api_key: str | None) -> str:
    """16 hex digits standing for (server, key): enough to tell quotas apart, useless to an attacker."""
    return hashlib.sha256(f"{base_url}\0{api_key or ''}".encode()).hexdigest()[:16]


def _toml_layer(table: Mapping[str, Any], source: str) -> LimitsLayer | None:
    picked = {k: v for k, v in table.items() if k in _LIMIT_KEYS}
    return layer_from_mapping(picked, source) if picked else None


def toml_layers(provider: str, model: str, plan: str | None) -> list[LimitsLayer]:
    """The toml's layers for one model, most specific first."""
    data = load_config()
    if not data:
        return []
    source = "botticelli.toml"
    prov = config_table(data, "providers", provider)
    tables: list[Mapping[str, Any]] = []
    if plan:
        plans = config_table(prov, "plans") or config_table(prov, "tiers")
        plan_table = config_table(plans, plan)
        tables.append(config_table(plan_table, "models", model))
    tables.append(config_table(prov, "models", model))
    if plan:
        tables.append(plan_table)
    tables.append(prov)
    layers = [layer for t in tables if (layer := _toml_layer(t, source)) is not None]
    budget = data.get("budget")
    if budget is not None:
        layers.append(layer_from_mapping({"budget": budget}, f"{source} [budget]"))
    return layers


def resolve_limits(
    provider: str, model: str, plan: str | None, limits: LimitsArg, *, plans: Plans | None = None
) -> tuple[RateLimits, dict[str, str]]:
    """The limits of one model, first wins per kind: ``limits``, the toml, the catalog's numbers
    for ``plan`` (through ``plans``; none without plans)."""
    layers: list[LimitsLayer] = []
    if limits is not None:
        layers.append(layer_from_mapping(limits, "limits="))
    layers.extend(toml_layers(provider, model, plan))
    plan_limits = plans.limits(plan, model) if plans is not None else None
    if plan_limits is not None:
        values = {k: getattr(plan_limits, k) for k in ALL_KINDS}
        layers.append(LimitsLayer(f"{plan} plan", {k: v for k, v in values.items() if v is not None}))
    return merge(layers)


def redis_url_for(provider: str, redis_url: str | None) -> str | None:
    """``redis_url=``, else ``BOTTICELLI_REDIS_URL``, else the toml (provider table, then
    ``[ratelimit]``); ``None``: in-process limits."""
    return redis_setting(provider, redis_url)[0]


def redis_setting(provider: str, redis_url: str | None) -> tuple[str | None, str]:
    """(the Redis URL or ``None``, the setting it came from), so an error can name the setting."""
    if redis_url:
        return redis_url, "redis_url="
    env = os.environ.get("BOTTICELLI_REDIS_URL")
    if env:
        return env, "BOTTICELLI_REDIS_URL"
    data = load_config()
    if not data:
        return None, ""
    found = config_table(data, "providers", provider).get("redis_url")
    if found:
        return str(found), f"botticelli.toml [providers.{provider}] redis_url"
    found = config_table(data, "ratelimit").get("redis_url")
    if found:
        return str(found), "botticelli.toml [ratelimit] redis_url"
    return None, ""


def limiter_for(
    provider: str,
    model: str,
    *,
    base_url: str,
    api_key: str | None,
    plan: str | None = None,
    limits: LimitsArg = None,
    redis_url: str | None = None,
    schema: RateLimitSchema = OPENAI_RATE_LIMITS,
    plans: Plans | None = None,
) -> Limiter | None:
    """The limiter for one driver, or ``None`` when nothing is limited (the unlimited plan, or a
    provider without plans and no configured limits): then the transport skips limiting at no cost.

    ``schema``: which response headers mean what (``NO_RATE_LIMITS``: none are read); ``plans``:
    the provider's plans and their catalog limits (``None``: it has none, ``plan`` is ignored).
    """
    plan_source: str | None = None
    if plans is not None:
        plan, plan_source = plans.resolve(plan)
        if plan == plans.unlimited and limits is None and not toml_layers(provider, model, None):
            return None
    else:
        plan = None
    resolved, sources = resolve_limits(provider, model, plan, limits, plans=plans)
    if resolved.empty:
        return None
    url, where = redis_setting(provider, redis_url)
    print_ = fingerprint(base_url, api_key)
    key = (provider, print_, model, plan, resolved, url, schema, plans)
    with _registry_lock:
        limiter = _registry.get(key)
        if limiter is not None:
            if limiter.plan_assumed and plan_source not in (None, ASSUMED):
                limiter.plan_source = plan_source  # someone chose the plan it only assumed
            return limiter
        state: State | None = None
        audio_state: State | None = None
        if url:
            from .redis_state import RedisState

            ttl = 2 * max(WINDOWS) * resolved.window_scale
            name = f"{_defaults.REDIS_KEY_PREFIX}{provider}:{print_}:{model}"
            label = f"{provider} {model}"
            state = SharedState(RedisState(url, name, ttl, where=where), label)
            if resolved.ash is not None or resolved.asd is not None:  # the same script, its own hash
                audio_state = SharedState(RedisState(url, name + ":audio", ttl, where=where), label)
        info = catalog.lookup(model, plans.provider) if plans is not None else None

        def resolver(new_plan: str | None) -> tuple[RateLimits, dict[str, str]]:
            return resolve_limits(provider, model, new_plan, limits, plans=plans)

        limiter = Limiter(
            provider=provider,
            model=model,
            limits=resolved,
            sources=sources,
            plan=plan,
            plan_source=plan_source,
            resolver=resolver if plans is not None else None,
            plans=plans,
            schema=schema,
            max_completion=info.max_completion_tokens if info is not None else None,
            context_window=info.context_window if info is not None else None,
            state=state,
            audio_state=audio_state,
        )
        limiter.siblings = _siblings(
            limiter,
            base_url=base_url,
            secret=Secret(api_key) if api_key else None,
            limits=_shared_limits(limits),
            redis_url=redis_url,
            schema=schema,
            plans=plans,
        )
        _registry[key] = limiter
        return limiter


def _shared_limits(limits: LimitsArg) -> dict[str, Any] | None:
    """What of ``limits=`` holds for the driver's other models too (budget, window scale)."""
    if limits is None:
        return None
    if isinstance(limits, RateLimits):
        shared: dict[str, Any] = {}
        if limits.window_scale != 1.0:
            shared["window_scale"] = limits.window_scale
        shares = limits.budget + limits.audio_budget
        if any(b != 1.0 for b in shares):
            shared["budget"] = dict(zip(ALL_KINDS, shares, strict=True))
        return shared or None
    return {k: v for k, v in limits.items() if k in _SHARED_KEYS} or None


def _siblings(
    limiter: Limiter,
    *,
    base_url: str,
    secret: Secret | None,
    limits: dict[str, Any] | None,
    redis_url: str | None,
    schema: RateLimitSchema,
    plans: Plans | None,
) -> Callable[[str], Limiter | None]:
    """``Limiter.for_model``'s look-up: the registry's limiter of another model with the same
    server, key (kept as a ``Secret``), plan (unless only assumed: then assumed again), Redis
    and shared settings."""

    def sibling(model: str) -> Limiter | None:
        plan = limiter.plan if limiter.plan_source != ASSUMED else None
        return limiter_for(
            limiter.provider,
            model,
            base_url=base_url,
            api_key=secret.reveal() if secret is not None else None,
            plan=plan,
            limits=limits,
            redis_url=redis_url,
            schema=schema,
            plans=plans,
        )

    return sibling


def clear_registry() -> None:
    """Forget every in-process limiter, closing their Redis clients (tests; a fork that wants
    fresh state)."""
    with _registry_lock:
        limiters = list(_registry.values())
        _registry.clear()
    for limiter in limiters:
        limiter.close()
