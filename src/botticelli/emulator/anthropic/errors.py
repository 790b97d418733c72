"""The texts of Anthropic's schema-validation errors, in one place.

The API validates request bodies with pydantic and reports the first failure as
``<location>: <pydantic message>``, the location joined with dots and holding the tag of each
discriminated union on the way (observed: ``messages.65.content.1.tool_use.text: Extra inputs are
not permitted``, ``system.1.cache_control.ephemeral.scope: Extra inputs are not permitted``,
``max_tokens: Field required``). These helpers produce those texts as 400 ``WireError``s.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from botticelli.emulator.anthropic.wire import invalid
from botticelli.emulator.common.errors import WireError


def loc(*parts: str | int) -> str:
    return ".".join(str(p) for p in parts)


def required(where: str) -> WireError:
    return invalid(f"{where}: Field required")


def extra(where: str) -> WireError:
    return invalid(f"{where}: Extra inputs are not permitted")


def wrong_type(where: str, kind: str) -> WireError:
    """``kind``: ``string``, ``integer``, ``number``, ``boolean``, ``list``, ``dictionary``."""
    return invalid(f"{where}: Input should be a valid {kind}")


def one_of(where: str, options: Iterable[str]) -> WireError:
    """pydantic's literal error: ``Input should be 'a', 'b' or 'c'``."""
    quoted = [f"'{o}'" for o in options]
    text = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
    return invalid(f"{where}: Input should be {text}")


def bad_tag(where: str, tag: Any, expected: Iterable[str]) -> WireError:
    """pydantic's discriminated-union error for an unknown ``type``."""
    if not isinstance(tag, str):
        return invalid(f"{where}: Unable to extract tag using discriminator 'type'")
    tags = ", ".join(f"'{t}'" for t in expected)
    return invalid(
        f"{where}: Input tag '{tag}' found using 'type' does not match any of the expected tags: {tags}"
    )


def at_least(where: str, minimum: float) -> WireError:
    return invalid(f"{where}: Input should be greater than or equal to {_number(minimum)}")


def at_most(where: str, maximum: float) -> WireError:
    return invalid(f"{where}: Input should be less than or equal to {_number(maximum)}")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def check_keys(
    obj: Mapping[str, Any], where: str, allowed: Iterable[str], needed: Iterable[str] = ()
) -> None:
    """Missing ``needed`` keys first, then keys outside ``allowed`` (both in pydantic's words)."""
    for key in needed:
        if key not in obj:
            raise required(loc(where, key) if where else key)
    allowed_set = set(allowed)
    for key in obj:
        if key not in allowed_set:
            raise extra(loc(where, key) if where else key)


def string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise wrong_type(where, "string")
    return value


def integer(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)  # pydantic accepts 5.0 for an int field
        raise wrong_type(where, "integer")
    return value


def number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise wrong_type(where, "number")
    return float(value)


def boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise wrong_type(where, "boolean")
    return value


def dictionary(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise wrong_type(where, "dictionary")
    return value


def array(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise wrong_type(where, "list")
    return value
