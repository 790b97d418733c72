"""Refusing, before anything is sent, what a model's capability profile (the catalog) says it
cannot do: one check for every driver, so the local model and an HTTP provider refuse alike."""

from __future__ import annotations

from ..catalog import Capabilities
from ..errors import InvalidRequestError
from ..types import GenerateRequest

#: The neutral request fields a model may reject outright (e.g. temperature on newer Claude models).
PARAMETERS = ("max_tokens", "temperature", "top_p", "stop", "seed")


def check_capabilities(
    request: GenerateRequest,
    caps: Capabilities,
    *,
    who: str,
    model: str,
    provider: str,
    limit: Capabilities | None = None,
) -> None:
    """Raise ``InvalidRequestError`` (code ``unsupported_parameter`` / ``unsupported_input``)
    for typed fields or inputs ``caps`` does not grant; ``who`` names the model in the message
    ("the local model 'smollm2'"), ``limit`` is what the driver itself can do at most."""
    if (
        request.tools
        or request.tool_choice is not None
        or request.response_format is not None
        or request.reasoning_effort is not None
        or request.reasoning_format is not None
        or request.include_reasoning is not None
    ):  # a plain request (most calls) skips the feature checks: none of them could refuse it
        _check_features(request, caps, who=who, model=model, provider=provider, limit=limit)
    if caps.rejected_parameters:
        for name in PARAMETERS:
            if getattr(request, name) is not None and caps.rejects(name):
                raise _refuse(f"{name} is not accepted by {who}", model, provider)
    for message in request.messages:
        for item in message.content:
            if item.kind != "text" and not (
                caps.accepts_input(item.kind) and (limit is None or limit.accepts_input(item.kind))
            ):
                raise _refuse(
                    f"{item.kind} inputs are not supported by {who}", model, provider, "unsupported_input"
                )


def _refuse(
    message: str, model: str, provider: str, code: str = "unsupported_parameter"
) -> InvalidRequestError:
    return InvalidRequestError(message, provider=provider, model=model, code=code)


def _check_features(
    request: GenerateRequest,
    caps: Capabilities,
    *,
    who: str,
    model: str,
    provider: str,
    limit: Capabilities | None,
) -> None:
    """Tools, response formats and reasoning options against what ``caps`` (and ``limit``) grant."""

    def granted(feature: str) -> bool:
        return bool(getattr(caps, feature)) and (limit is None or bool(getattr(limit, feature)))

    def refuse(message: str) -> InvalidRequestError:
        return _refuse(message, model, provider)

    for tool in request.tools:
        if tool.kind == "builtin" and tool.name not in caps.builtin_tools:
            offered = ", ".join(caps.builtin_tools) or "none"
            raise refuse(
                f"the built-in tool {tool.name!r} is not offered by {who} (built-in tools: {offered})"
            )
    choice = request.tool_choice
    if (request.tools or (choice is not None and choice.mode != "none")) and not granted("tools"):
        raise refuse(f"tools are not supported by {who} (its profile has no tool use)")
    if request.tools and request.parallel_tool_calls and not granted("parallel_tool_calls"):
        raise refuse(f"parallel_tool_calls is not supported by {who} (its profile has no parallel tool use)")
    fmt = request.response_format
    if fmt is not None and fmt.type != "text":
        feature = "strict_json_schema" if fmt.type == "json_schema" and fmt.strict else fmt.type
        if not granted(feature):
            raise refuse(
                f"response_format {fmt.type!r}{' (strict)' if fmt.strict else ''} is not supported by "
                f"{who} (its profile has no {feature.replace('_', ' ')} mode)"
            )
    effort = request.reasoning_effort
    if effort is not None and not (granted("reasoning") and caps.accepts_effort(effort)):
        allowed = ", ".join(caps.reasoning_efforts or ()) if caps.reasoning else ""
        raise refuse(
            f"reasoning_effort {effort!r} is not accepted by {who}"
            + (f" (it takes {allowed})" if allowed else " (it does not reason)")
        )
    if request.reasoning_format is not None and not granted("reasoning_format"):
        hint = "; use include_reasoning" if caps.include_reasoning else ""
        raise refuse(f"reasoning_format is not accepted by {who}{hint}")
    if request.include_reasoning is not None and not granted("include_reasoning"):
        hint = "; use reasoning_format" if caps.reasoning_format else ""
        raise refuse(f"include_reasoning is not accepted by {who}{hint}")
