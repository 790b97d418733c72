"""Structured output: ``await driver.generate_json(request, schema=Model)``.

The schema (a pydantic model, a dataclass, a TypedDict, any type pydantic's ``TypeAdapter``
takes, or a raw JSON schema dict) becomes the request's ``response_format``, strict where the
driver's capability profile says the model decodes strictly; the answer is validated into an
instance. pydantic is the optional extra ``botticelli[json]``, imported here only: without it
dataclasses and TypedDicts are checked by botticelli's own small validator.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from .errors import ConfigurationError, OutputValidationError
from .tools import Invalid, convert, json_schema, strict_schema
from .types import GenerateRequest, ResponseFormat

if TYPE_CHECKING:
    from .drivers.base import Driver

__all__ = ["generate_json", "response_format_for", "schema_of", "validate_json"]

_NAME = re.compile(r"[^A-Za-z0-9_-]")
_FENCE = re.compile(r"^```[A-Za-z0-9_-]*\s*\n?(.*?)\n?```$", re.DOTALL)


def _pydantic() -> Any:
    try:
        import pydantic
    except ImportError:
        return None
    return pydantic


def schema_of(schema: Any) -> dict[str, Any]:
    """The JSON schema of ``schema`` (pydantic's when pydantic is installed)."""
    if isinstance(schema, Mapping):
        return dict(schema)
    adapter = _adapter(schema)
    if adapter is not None:
        result: dict[str, Any] = adapter.json_schema()
        return result
    return json_schema(schema)


def _own(schema: Any) -> bool:
    """Whether botticelli's own validator can take ``schema`` (a dataclass or a TypedDict)."""
    return dataclasses.is_dataclass(schema) or (
        isinstance(schema, type) and issubclass(schema, dict) and hasattr(schema, "__required_keys__")
    )


_adapters: dict[Any, Any] = {}


def _adapter(schema: Any) -> Any:
    """pydantic's ``TypeAdapter`` for ``schema``, built once per schema (building one costs far
    more than validating with it); ``None`` without pydantic, or for what pydantic refuses and
    botticelli's own validator takes (``typing.TypedDict`` before Python 3.12)."""
    if _pydantic() is None:
        return None
    try:
        return _adapters[schema]
    except (KeyError, TypeError):
        pass
    adapter = _new_adapter(schema)
    try:
        if len(_adapters) < 1024:
            _adapters[schema] = adapter
    except TypeError:  # an unhashable schema: not kept
        pass
    return adapter


def _new_adapter(schema: Any) -> Any:
    pyd = _pydantic()
    if pyd is None:
        return None
    try:
        return pyd.TypeAdapter(schema)
    except pyd.PydanticUserError as exc:
        if _own(schema):
            return None
        raise TypeError(f"cannot describe {schema!r} as JSON schema: {exc}") from None


def _schema_name(schema: Any) -> str:
    raw = getattr(schema, "__name__", None) if not isinstance(schema, Mapping) else schema.get("title")
    name = _NAME.sub("_", str(raw or "response"))[:64]
    return name or "response"


def response_format_for(schema: Any, *, strict: bool = False) -> ResponseFormat:
    """The ``ResponseFormat`` asking for ``schema`` (strict: every field required, no others)."""
    document = schema_of(schema)
    if strict:
        document = strict_schema(document)
    return ResponseFormat.json_schema(document, name=_schema_name(schema), strict=True if strict else None)


def _strip(text: str) -> str:
    text = text.strip()
    fenced = _FENCE.match(text)
    return fenced.group(1).strip() if fenced else text


def validate_json(text: str, schema: Any) -> Any:
    """``text`` parsed and validated as ``schema``; ``ValueError`` with ``.errors`` (pydantic's
    shape) if it does not fit. A raw JSON schema dict only checks that the text is JSON."""
    body = _strip(text)
    if isinstance(schema, Mapping):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise Invalid((), f"not JSON: {exc}", "json_invalid") from None
    adapter = _adapter(schema)
    if adapter is not None:
        pyd = _pydantic()
        try:
            return adapter.validate_json(body)
        except pyd.ValidationError as exc:
            error = ValueError(str(exc))
            error.errors = [  # type: ignore[attr-defined]
                {"loc": tuple(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                for e in exc.errors()
            ]
            raise error from None
    if not _own(schema):
        raise ConfigurationError(
            f"validating into {getattr(schema, '__name__', schema)!r} needs pydantic: "
            "pip install 'botticelli[json]' (dataclasses and TypedDicts work without it)"
        )
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Invalid((), f"not JSON: {exc}", "json_invalid") from None
    return convert(value, schema)


def _strict(driver: Any) -> bool:
    try:
        caps = getattr(driver, "capabilities", None)
    except Exception:  # a driver whose profile cannot be read: ask for no more than best effort
        return False
    return bool(caps is not None and getattr(caps, "strict_json_schema", False))


async def generate_json(driver: Driver, request: GenerateRequest, *, schema: Any) -> Any:
    """Ask for an answer shaped by ``schema`` and return it validated (see ``Driver.generate_json``)."""
    fmt = response_format_for(schema, strict=_strict(driver))
    response = await driver.generate(dataclasses.replace(request, response_format=fmt))
    text = response.text
    try:
        return validate_json(text, schema)
    except ConfigurationError:
        raise
    except ValueError as exc:
        errors = getattr(exc, "errors", None) or [{"loc": (), "msg": str(exc), "type": "value_error"}]
        count = len(errors)
        raise OutputValidationError(
            f"the answer does not fit {_schema_name(schema)} ({count} error{'s' if count != 1 else ''}): "
            f"{_first(errors)}",
            raw_text=text,
            errors=list(errors),
            response=response,
            provider=response.provider or driver.provider_name,
            model=response.model or driver.model_name,
            request_id=response.request_id,
        ) from None


def _first(errors: list[dict[str, Any]]) -> str:
    error = errors[0]
    where = ".".join(str(p) for p in error.get("loc", ())) or "the answer"
    return f"{where}: {error.get('msg', '')}"
