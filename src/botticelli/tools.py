"""Tools from Python functions, and the loop that runs them.

``Tool.from_function(fn)`` reads ``fn``'s signature, type hints and docstring into a JSON schema;
``Tool.from_model(Model)`` takes a pydantic model's. ``await run_tools(driver, request,
tools=[fn, ...])`` sends the request with the tools, runs the functions the model asks for (sync
ones in a thread, async ones awaited, several at once concurrently), sends the results back and
repeats until the model answers without tool calls.

pydantic is optional: it is used only when it is already imported (a hint can only be a pydantic
model, or carry a ``pydantic.Field``, if pydantic is loaded), never imported here.
"""

from __future__ import annotations

import asyncio
import collections.abc
import contextlib
import dataclasses
import datetime
import enum
import functools
import inspect
import re
import sys
import types
import typing
import uuid
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args, get_origin

import orjson

from .errors import MaxTurnsError, ToolArgumentsError
from .types import (
    GenerateRequest,
    GenerateResponse,
    Input,
    Message,
    ReasoningOutput,
    Role,
    Tool,
    ToolCall,
    ToolChoice,
    Usage,
)

if TYPE_CHECKING:
    from .drivers.base import Driver

__all__ = [
    "FunctionTool",
    "ToolRun",
    "json_schema",
    "parse_arguments",
    "run_tools",
    "strict_schema",
    "tool_from_function",
    "tool_from_model",
]

JSON = dict[str, Any]


@dataclass(frozen=True, slots=True)
class FunctionTool(Tool):
    """A ``Tool`` that knows the Python function behind it (``Tool.from_function`` makes these):
    ``run_tools`` executes it when the model calls it."""

    function: Callable[..., Any] | None = field(default=None, compare=False, repr=False)


# ---- type hints → JSON schema ------------------------------------------------------------------


def _pydantic() -> Any:
    """The pydantic module if something already imported it, else ``None`` (never imports it)."""
    return sys.modules.get("pydantic")


def _is_pydantic_model(hint: Any) -> bool:
    pyd = _pydantic()
    return pyd is not None and isinstance(hint, type) and issubclass(hint, pyd.BaseModel)


def _is_typeddict(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, dict) and hasattr(hint, "__required_keys__")


_NONE = {"type": "null"}
_SCALARS: dict[Any, JSON] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    type(None): _NONE,
    None: _NONE,
    bytes: {"type": "string"},
    datetime.datetime: {"type": "string", "format": "date-time"},
    datetime.date: {"type": "string", "format": "date"},
    datetime.time: {"type": "string", "format": "time"},
    uuid.UUID: {"type": "string", "format": "uuid"},
}
_SEQUENCES = (list, collections.abc.Sequence, collections.abc.MutableSequence, collections.abc.Iterable)
_SETS = (set, frozenset, collections.abc.Set, collections.abc.MutableSet)
_MAPPINGS = (dict, collections.abc.Mapping, collections.abc.MutableMapping)
_CONSTRAINTS = {
    "ge": "minimum",
    "gt": "exclusiveMinimum",
    "le": "maximum",
    "lt": "exclusiveMaximum",
    "min_length": "minLength",
    "max_length": "maxLength",
    "multiple_of": "multipleOf",
    "pattern": "pattern",
}


def _json_type(value: Any) -> str | None:
    if value is None:
        return "null"
    for kind, name in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string")):
        if isinstance(value, kind):
            return name
    return None


def _enum_schema(values: Sequence[Any]) -> JSON:
    schema: JSON = {"enum": list(values)}
    kinds = {_json_type(v) for v in values}
    if len(kinds) == 1 and None not in kinds:
        schema["type"] = kinds.pop()
    return schema


class _Schemas:
    """One schema document in the making: ``defs`` gathers the ``$defs`` of pydantic models."""

    def __init__(self) -> None:
        self.defs: dict[str, Any] = {}
        self._active: set[Any] = set()

    def of(self, hint: Any) -> JSON:
        if hint is inspect.Parameter.empty or hint is Any or hint is object:
            return {}
        if isinstance(hint, typing.TypeVar):
            return self.of(hint.__bound__) if hint.__bound__ is not None else {}
        if isinstance(hint, str):
            raise TypeError(f"cannot resolve the forward reference {hint!r}")
        if hint in _SCALARS:
            return dict(_SCALARS[hint])
        supertype = getattr(hint, "__supertype__", None)  # typing.NewType
        if supertype is not None:
            return self.of(supertype)
        origin = get_origin(hint)
        args = get_args(hint)
        if origin is typing.Annotated:
            return self._annotated(args[0], args[1:])
        if origin is Literal:
            return _enum_schema([a.value if isinstance(a, enum.Enum) else a for a in args])
        if origin is typing.Union or origin is types.UnionType:
            return self._union(args)
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            return _enum_schema([m.value for m in hint])
        if origin in _SEQUENCES or hint in _SEQUENCES:
            return {"type": "array", "items": self.of(args[0])} if args else {"type": "array"}
        if origin in _SETS or hint in _SETS:
            schema: JSON = {"type": "array", "uniqueItems": True}
            if args:
                schema["items"] = self.of(args[0])
            return schema
        if origin is tuple or hint is tuple:
            return self._tuple(args)
        if origin in _MAPPINGS or hint in _MAPPINGS:
            if args and args[0] not in (str, Any):
                raise TypeError(f"{_name(hint)}: JSON object keys are strings; use dict[str, ...]")
            if len(args) == 2 and args[1] is not Any:
                return {"type": "object", "additionalProperties": self.of(args[1])}
            return {"type": "object"}
        if _is_pydantic_model(hint):
            return self._pydantic(hint)
        if _is_typeddict(hint) or dataclasses.is_dataclass(hint):
            return self._record(hint)
        raise TypeError(f"cannot describe {_name(hint)} as JSON schema")

    def _annotated(self, inner: Any, metadata: Sequence[Any]) -> JSON:
        schema = self.of(inner)
        for item in metadata:
            if isinstance(item, str):
                schema["description"] = item
                continue
            schema.update(_field_info(item))
        return schema

    def _union(self, args: Sequence[Any]) -> JSON:
        arms: list[JSON] = []
        for arg in args:
            arm = self.of(arg)
            for one in arm["anyOf"] if list(arm) == ["anyOf"] else [arm]:
                if one not in arms:
                    arms.append(one)
        if {} in arms:
            return {}
        return arms[0] if len(arms) == 1 else {"anyOf": arms}

    def _tuple(self, args: Sequence[Any]) -> JSON:
        if not args:
            return {"type": "array"}
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": self.of(args[0])}
        if args == ((),):  # tuple[()]
            return {"type": "array", "maxItems": 0}
        return {
            "type": "array",
            "prefixItems": [self.of(a) for a in args],
            "items": False,
            "minItems": len(args),
            "maxItems": len(args),
        }

    def _pydantic(self, model: Any) -> JSON:
        schema: JSON = model.model_json_schema(ref_template="#/$defs/{model}")
        self.defs.update(schema.pop("$defs", {}))
        return schema

    def _record(self, hint: Any) -> JSON:
        if hint in self._active:
            raise TypeError(f"{_name(hint)} refers to itself: recursive types are not supported")
        self._active.add(hint)
        try:
            hints = typing.get_type_hints(hint, include_extras=True)
            properties: JSON = {}
            required: list[str] = []
            if _is_typeddict(hint):
                for key, value in hints.items():
                    properties[key] = self.of(_unwrap_required(value))
                    if key in hint.__required_keys__:
                        required.append(key)
            else:
                for f in dataclasses.fields(hint):
                    if not f.init:
                        continue
                    prop = self.of(hints.get(f.name, Any))
                    if f.default is not dataclasses.MISSING:
                        _set_default(prop, f.default)
                    elif f.default_factory is dataclasses.MISSING:
                        required.append(f.name)
                    properties[f.name] = prop
        finally:
            self._active.discard(hint)
        schema: JSON = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        schema["additionalProperties"] = False
        return schema

    def document(self, schema: JSON) -> JSON:
        """``schema`` with the gathered ``$defs`` inlined (kept as ``$defs`` if recursive)."""
        if not self.defs:
            return schema
        return _inline_refs(schema, self.defs)


_QUALIFIERS = tuple(
    q for q in (getattr(typing, n, None) for n in ("Required", "NotRequired", "ReadOnly")) if q
)


def _unwrap_required(hint: Any) -> Any:
    while get_origin(hint) in _QUALIFIERS:
        hint = get_args(hint)[0]
    return hint


def _field_info(item: Any) -> JSON:
    """What a ``pydantic.Field(...)`` or an ``annotated_types`` constraint says, as JSON schema."""
    out: JSON = {}
    for attr in ("description", "title"):
        value = getattr(item, attr, None)
        if isinstance(value, str) and type(item).__name__ == "FieldInfo":
            out[attr] = value
    examples = getattr(item, "examples", None)
    if isinstance(examples, list) and type(item).__name__ == "FieldInfo":
        out["examples"] = examples
    for attr, keyword in _CONSTRAINTS.items():
        value = getattr(item, attr, None)
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            out[keyword] = value
    for nested in getattr(item, "metadata", None) or ():
        out.update(_field_info(nested))
    return out


def _set_default(schema: JSON, default: Any) -> None:
    if isinstance(default, enum.Enum):
        default = default.value
    with contextlib.suppress(TypeError):  # a default JSON cannot spell: optional all the same
        schema["default"] = orjson.loads(orjson.dumps(default))


def _inline_refs(schema: JSON, defs: Mapping[str, Any]) -> JSON:
    recursive = False

    def walk(node: Any, active: tuple[str, ...]) -> Any:
        nonlocal recursive
        if isinstance(node, list):
            return [walk(v, active) for v in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            name = ref.removeprefix("#/$defs/")
            if name in active or name not in defs:
                recursive = True
                return node
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return {**walk(defs[name], (*active, name)), **walk(rest, active)}
        return {k: walk(v, active) for k, v in node.items()}

    out: JSON = walk(schema, ())
    if recursive:
        out = dict(schema)
        out["$defs"] = dict(defs)
    return out


def json_schema(hint: Any) -> JSON:
    """The JSON schema of a type hint: scalars, ``list``/``dict``/``tuple``/``set``, ``Literal``,
    ``Enum``, unions and ``Optional``, ``Annotated`` (a string is the description),
    ``TypedDict``, dataclasses and pydantic models."""
    schemas = _Schemas()
    return schemas.document(schemas.of(hint))


def strict_schema(schema: Mapping[str, Any]) -> JSON:
    """``schema`` as strict structured outputs want it: every object lists all its properties
    as required and allows no others (an optional value must then be given; ``X | None`` lets
    it be ``null``)."""

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(v) for v in node]
        if not isinstance(node, dict):
            return node
        out = {k: walk(v) for k, v in node.items()}
        if out.get("type") == "object" and isinstance(out.get("properties"), dict):
            out["required"] = list(out["properties"])
            out["additionalProperties"] = False
        return out

    result: JSON = walk(dict(schema))
    return result


def _name(hint: Any) -> str:
    return getattr(hint, "__qualname__", None) or repr(hint)


# ---- docstrings --------------------------------------------------------------------------------

_SECTION = re.compile(
    r"^(Args|Arguments|Parameters|Params|Returns?|Yields?|Raises|Examples?|Notes?|Attributes|See Also)"
    r"\s*:?\s*$"
)
_GOOGLE_ARG = re.compile(r"^\s*\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_NUMPY_ARG = re.compile(r"^(\w+)\s*(?::.*)?$")
_SPHINX_ARG = re.compile(r"^\s*:param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*)$")


def _docstring(fn: Any) -> tuple[str, dict[str, str]]:
    """The first paragraph of ``fn``'s docstring, and each parameter's description from an
    ``Args:`` (Google), ``Parameters`` (NumPy) or ``:param x:`` (Sphinx) section."""
    doc = inspect.getdoc(fn) or ""
    lines = doc.splitlines()
    summary: list[str] = []
    for line in lines:
        if not line.strip() or _SECTION.match(line.strip()) or line.lstrip().startswith(":"):
            break
        summary.append(line.strip())
    params: dict[str, str] = {}
    current: str | None = None
    section: str | None = None
    indent = 0
    for i, line in enumerate(lines):
        stripped = line.strip()
        sphinx = _SPHINX_ARG.match(line)
        if sphinx:
            current, section = sphinx.group(1), "sphinx"
            params[current] = sphinx.group(2).strip()
            continue
        heading = _SECTION.match(stripped)
        if heading and line == line.lstrip():
            underline = i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}
            is_args = heading.group(1) in ("Args", "Arguments", "Parameters", "Params")
            section = ("numpy" if underline else "google") if is_args else None
            current = None
            continue
        if section is None or not stripped or set(stripped) == {"-"}:
            if not stripped:
                current = None if section == "sphinx" else current
            continue
        this_indent = len(line) - len(line.lstrip())
        if section == "google":
            match = _GOOGLE_ARG.match(line)
            if match and (current is None or this_indent <= indent):
                current, indent = match.group(1), this_indent
                params[current] = match.group(2).strip()
            elif current is not None and this_indent > indent:
                params[current] = f"{params[current]} {stripped}".strip()
        elif section == "numpy":
            match = _NUMPY_ARG.match(line)
            if match and this_indent == 0:
                current = match.group(1)
                params[current] = ""
            elif current is not None and this_indent > 0:
                params[current] = f"{params[current]} {stripped}".strip()
        elif section == "sphinx" and current is not None and this_indent > 0:
            params[current] = f"{params[current]} {stripped}".strip()
    return " ".join(summary), {k: v for k, v in params.items() if v}


# ---- building tools ----------------------------------------------------------------------------

_TOOL_NAME = re.compile(r"[^A-Za-z0-9_-]")


def _tool_name(raw: str) -> str:
    name = _TOOL_NAME.sub("_", raw)[:64]
    return name or "tool"


def tool_from_function(
    fn: Callable[..., Any],
    *,
    name: str | None = None,
    description: str | None = None,
    strict: bool | None = None,
) -> FunctionTool:
    """A tool from a Python function (see ``Tool.from_function``)."""
    if not callable(fn):
        raise TypeError(f"Tool.from_function expects a function, got {type(fn).__name__}")
    target = fn.func if isinstance(fn, functools.partial) else fn
    raw_name = getattr(target, "__name__", None) or type(target).__name__
    summary, docs = _docstring(target if inspect.isroutine(target) else type(target))
    if not summary and not inspect.isroutine(target):
        summary, docs = _docstring(getattr(target, "__call__", target))  # noqa: B004
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"Tool.from_function: cannot read the signature of {raw_name}: {exc}") from None
    try:
        hints = typing.get_type_hints(
            target if inspect.isroutine(target) else target.__call__,  # type: ignore[operator]
            include_extras=True,
        )
    except Exception as exc:  # a NameError of an unresolvable annotation, mostly
        raise TypeError(f"Tool.from_function: cannot resolve the type hints of {raw_name}: {exc}") from None
    schemas = _Schemas()
    properties: JSON = {}
    required: list[str] = []
    for param in signature.parameters.values():
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            star = "*" if param.kind is inspect.Parameter.VAR_POSITIONAL else "**"
            raise TypeError(
                f"Tool.from_function({raw_name}): {star}{param.name} cannot be described to a model; "
                "name each parameter (or take one dict / TypedDict parameter)"
            )
        hint = hints.get(param.name, param.annotation)
        try:
            prop = schemas.of(hint)
        except TypeError as exc:
            raise TypeError(f"Tool.from_function({raw_name}): parameter {param.name!r}: {exc}") from None
        if param.name in docs and "description" not in prop:
            prop["description"] = docs[param.name]
        if param.default is inspect.Parameter.empty:
            required.append(param.name)
        else:
            if param.default is None and prop and not _allows_null(prop):
                prop = {"anyOf": [prop, dict(_NONE)], **_lift_description(prop)}
            _set_default(prop, param.default)
        properties[param.name] = prop
    parameters: JSON = {"type": "object", "properties": properties}
    if required:
        parameters["required"] = required
    parameters = schemas.document(parameters)
    if strict:
        parameters = strict_schema(parameters)
    return FunctionTool(
        name=name or _tool_name(raw_name),
        description=summary if description is None else description,
        parameters=parameters,
        strict=strict,
        function=fn,
    )


def _allows_null(schema: JSON) -> bool:
    if schema.get("type") == "null":
        return True
    return any(_allows_null(arm) for arm in schema.get("anyOf", ()))


def _lift_description(schema: JSON) -> JSON:
    return {"description": schema.pop("description")} if "description" in schema else {}


def tool_from_model(
    model: type[Any], *, name: str | None = None, description: str | None = None, strict: bool | None = None
) -> Tool:
    """A tool whose arguments are a pydantic model's fields (see ``Tool.from_model``)."""
    if not _is_pydantic_model(model):
        raise TypeError(f"Tool.from_model expects a pydantic model class, got {model!r}")
    schemas = _Schemas()
    parameters = schemas.document(schemas.of(model))
    summary = (parameters.pop("description", None) or "").split("\n\n")[0].strip()
    parameters.pop("title", None)
    if strict:
        parameters = strict_schema(parameters)
    return Tool(
        name=name or _tool_name(model.__name__),
        description=summary if description is None else description,
        parameters=parameters,
        strict=strict,
    )


# ---- arguments ---------------------------------------------------------------------------------


def parse_arguments(call: ToolCall) -> dict[str, Any]:
    """``call.arguments`` parsed: a JSON object (empty text counts as ``{}``)."""
    text = call.arguments
    if not text.strip():
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ToolArgumentsError(
            f"tool call {call.name!r}: the arguments are not valid JSON ({exc})",
            tool_name=call.name,
            arguments=text,
        ) from None
    if not isinstance(value, dict):
        raise ToolArgumentsError(
            f"tool call {call.name!r}: the arguments are JSON {type(value).__name__}, not an object",
            tool_name=call.name,
            arguments=text,
        )
    return value


class Invalid(ValueError):
    """A value that does not fit its type hint; ``errors`` in pydantic's shape (loc, msg, type)."""

    def __init__(self, loc: tuple[str | int, ...], msg: str, kind: str = "value_error") -> None:
        where = ".".join(str(p) for p in loc) or "the value"
        super().__init__(f"{where}: {msg}")
        self.errors = [{"loc": loc, "msg": msg, "type": kind}]


def convert(value: Any, hint: Any, loc: tuple[str | int, ...] = ()) -> Any:
    """``value`` (parsed JSON) as ``hint`` describes it: checked, with enums, dataclasses,
    TypedDicts, tuples and sets built; pydantic models validated by pydantic. ``Invalid`` if not."""
    if hint is inspect.Parameter.empty or hint is Any or hint is object or isinstance(hint, typing.TypeVar):
        return value
    supertype = getattr(hint, "__supertype__", None)
    if supertype is not None:
        return convert(value, supertype, loc)
    origin = get_origin(hint)
    args = get_args(hint)
    if origin is typing.Annotated:
        return convert(value, args[0], loc)
    if hint is None or hint is type(None):
        if value is not None:
            raise Invalid(loc, "expected null", "none_required")
        return None
    if origin is typing.Union or origin is types.UnionType:
        if value is None and (type(None) in args):
            return None
        first: Invalid | None = None
        for arg in args:
            try:
                return convert(value, arg, loc)
            except Invalid as exc:
                first = first or exc
        assert first is not None
        raise first
    if origin is Literal:
        for arg in args:
            plain = arg.value if isinstance(arg, enum.Enum) else arg
            if type(plain) is type(value) and plain == value:
                return arg
        raise Invalid(loc, f"expected one of {[getattr(a, 'value', a) for a in args]!r}", "literal_error")
    if hint is bool:
        if not isinstance(value, bool):
            raise Invalid(loc, "expected a boolean", "bool_type")
        return value
    if hint is int:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid(loc, "expected an integer", "int_type")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Invalid(loc, "expected a number", "float_type")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise Invalid(loc, "expected a string", "string_type")
        return value
    if hint is bytes:
        return convert(value, str, loc).encode()
    if hint in (datetime.datetime, datetime.date, datetime.time, uuid.UUID):
        text = convert(value, str, loc)
        try:
            return hint(text) if hint is uuid.UUID else hint.fromisoformat(text)
        except ValueError as exc:
            raise Invalid(loc, str(exc)) from None
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except ValueError:
            raise Invalid(loc, f"expected one of {[m.value for m in hint]!r}", "enum") from None
    if origin in _SEQUENCES or hint in _SEQUENCES or origin in _SETS or hint in _SETS:
        items = _list(value, loc)
        if args:
            items = [convert(v, args[0], (*loc, i)) for i, v in enumerate(items)]
        if origin in _SETS or hint in _SETS:
            return frozenset(items) if (origin or hint) is frozenset else set(items)
        return items
    if origin is tuple or hint is tuple:
        items = _list(value, loc)
        if not args or (len(args) == 2 and args[1] is Ellipsis):
            if not args:
                return tuple(items)
            return tuple(convert(v, args[0], (*loc, i)) for i, v in enumerate(items))
        if args == ((),):
            args = ()
        if len(items) != len(args):
            raise Invalid(loc, f"expected {len(args)} items, got {len(items)}", "tuple_length")
        return tuple(convert(v, a, (*loc, i)) for i, (v, a) in enumerate(zip(items, args, strict=True)))
    if origin in _MAPPINGS or hint in _MAPPINGS:
        obj = _object(value, loc)
        if len(args) == 2:
            return {k: convert(v, args[1], (*loc, k)) for k, v in obj.items()}
        return dict(obj)
    if _is_pydantic_model(hint):
        pyd = _pydantic()
        try:
            return hint.model_validate(value)
        except pyd.ValidationError as exc:
            first_error = exc.errors()[0]
            raise Invalid((*loc, *first_error["loc"]), first_error["msg"], first_error["type"]) from None
    if _is_typeddict(hint) or dataclasses.is_dataclass(hint):
        return _record(value, hint, loc)
    raise Invalid(loc, f"cannot check a value against {_name(hint)}")


def _list(value: Any, loc: tuple[str | int, ...]) -> list[Any]:
    if not isinstance(value, list):
        raise Invalid(loc, "expected an array", "list_type")
    return value


def _object(value: Any, loc: tuple[str | int, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid(loc, "expected an object", "dict_type")
    return value


def _record(value: Any, hint: Any, loc: tuple[str | int, ...]) -> Any:
    obj = _object(value, loc)
    hints = typing.get_type_hints(hint, include_extras=True)
    if _is_typeddict(hint):
        known = hints
        required = set(hint.__required_keys__)
    else:
        fields = [f for f in dataclasses.fields(hint) if f.init]
        known = {f.name: hints.get(f.name, Any) for f in fields}
        required = {
            f.name
            for f in fields
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        }
    for key in obj:
        if key not in known:
            raise Invalid((*loc, key), "unexpected field", "extra_forbidden")
    for key in required:
        if key not in obj:
            raise Invalid((*loc, key), "field required", "missing")
    out = {k: convert(v, _unwrap_required(known[k]), (*loc, k)) for k, v in obj.items()}
    return out if _is_typeddict(hint) else hint(**out)


# ---- the loop ----------------------------------------------------------------------------------


@dataclass(slots=True)
class ToolRun:
    """What ``run_tools`` ends with: ``response`` the final answer, ``messages`` the whole
    transcript (the request's messages, each assistant turn with its tool calls, each tool
    result, and the final answer), ``turns`` how many requests were sent, ``usage`` their sum.
    ``complete`` is false only when the turns ran out (``run_tools(...,
    raise_on_max_turns=False)``): then ``response`` still asks for tools."""

    response: GenerateResponse
    messages: list[Message]
    turns: int
    usage: Usage
    complete: bool = True

    @property
    def text(self) -> str:
        return self.response.text


def _is_async(fn: Any) -> bool:
    while isinstance(fn, functools.partial):
        fn = fn.func
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None))  # noqa: B004


def _result_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return orjson.dumps(value, default=_json_default, option=orjson.OPT_NON_STR_KEYS).decode()


def _json_default(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if isinstance(value, (set, frozenset)):
        return list(value)
    return str(value)


def _error_text(message: str) -> str:
    return orjson.dumps({"error": message}).decode()


async def _call(tool: Tool | None, call: ToolCall, known: Sequence[str]) -> str:
    """One call's result as text for the model; every failure is a result too."""
    if tool is None:
        return _error_text(f"unknown tool {call.name!r}; the tools are: {', '.join(known)}")
    fn = tool.function if isinstance(tool, FunctionTool) else None
    if fn is None:
        return _error_text(f"tool {call.name!r} has no implementation here")
    try:
        kwargs = _bind(fn, parse_arguments(call))
    except (ToolArgumentsError, Invalid, TypeError) as exc:
        return _error_text(f"invalid arguments for {call.name!r}: {exc}")
    try:
        if _is_async(fn):
            result = await fn(**kwargs)
        else:
            result = await asyncio.to_thread(fn, **kwargs)
            if inspect.isawaitable(result):
                result = await result
    except Exception as exc:
        return _error_text(f"{type(exc).__name__}: {exc}")
    try:
        return _result_text(result)
    except Exception as exc:
        return _error_text(f"the result of {call.name!r} could not be serialised: {exc}")


def _bind(fn: Callable[..., Any], args: dict[str, Any]) -> dict[str, Any]:
    """The model's arguments checked against ``fn``'s signature and converted to its hints."""
    signature = inspect.signature(fn)
    target = fn.func if isinstance(fn, functools.partial) else fn
    try:
        hints = typing.get_type_hints(
            target if inspect.isroutine(target) else target.__call__,  # type: ignore[operator]
            include_extras=True,
        )
    except Exception:
        hints = {}
    params = signature.parameters
    for key in args:
        if key not in params:
            raise TypeError(f"unexpected argument {key!r}")
    missing = [p.name for p in params.values() if p.default is inspect.Parameter.empty and p.name not in args]
    if missing:
        raise TypeError(f"missing required argument(s): {', '.join(missing)}")
    out: dict[str, Any] = {}
    for key, value in args.items():
        hint = hints.get(key, params[key].annotation)
        if value is None and params[key].default is None:
            out[key] = None
        else:
            out[key] = convert(value, hint, (key,))
    return out


def _add_usage(total: Usage, usage: Usage) -> None:
    total.prompt_tokens += usage.prompt_tokens
    total.completion_tokens += usage.completion_tokens
    total.total_tokens += usage.total_tokens


def _assistant(response: GenerateResponse, calls: Sequence[ToolCall]) -> Message:
    text = response.text
    reasoning = tuple(o for o in response.outputs if isinstance(o, ReasoningOutput))
    return Message(
        Role.ASSISTANT, (Input.text(text),) if text else (), tool_calls=tuple(calls), reasoning=reasoning
    )


_tools_of: weakref.WeakKeyDictionary[Any, Tool] = weakref.WeakKeyDictionary()


def _cached_tool(fn: Any) -> Tool:
    """``tool_from_function(fn)``, built once per function: a loop run many times with the same
    tools does not read signatures and docstrings again each time."""
    try:
        found = _tools_of.get(fn)
    except TypeError:  # not weak-referenceable (a builtin, a partial): build it each time
        return tool_from_function(fn)
    if found is None:
        found = _tools_of[fn] = tool_from_function(fn)
    return found


async def run_tools(
    driver: Driver,
    request: GenerateRequest,
    *,
    tools: Sequence[Callable[..., Any] | Tool] = (),
    max_turns: int = 5,
    raise_on_max_turns: bool = True,
) -> ToolRun:
    """Send ``request`` with ``tools`` (functions, or ``Tool``s; the request's own tools are kept),
    run every tool call the model makes, send the results back, and repeat until an answer
    without tool calls.

    Calls of one turn run concurrently (``asyncio.gather``; sync functions in threads). A tool
    that raises, an unknown tool or arguments that do not fit the signature become that call's
    result, ``{"error": "..."}``, for the model to read; the loop goes on. A result is sent as
    is when it is a ``str``, else as JSON. ``tool_choice`` ``"required"`` or a named tool holds
    for the first request only (after it, the model chooses), so the loop can end.

    ``max_turns`` bounds the requests sent. If the last one still asks for tools, those calls
    are not run and ``MaxTurnsError`` is raised, carrying the ``ToolRun`` so far (``.result``:
    its ``.response`` and ``.messages``); with ``raise_on_max_turns=False`` that ``ToolRun`` is
    returned instead, with ``complete=False``.
    """
    if isinstance(max_turns, bool) or not isinstance(max_turns, int) or max_turns < 1:
        raise ValueError(f"max_turns: must be an integer >= 1, got {max_turns!r}")
    if isinstance(tools, (Tool, str)) or callable(tools):
        raise TypeError("tools: expected a list of functions or Tool")
    by_name: dict[str, Tool] = {t.name: t for t in request.tools}
    for item in tools:
        tool = item if isinstance(item, Tool) else _cached_tool(item)
        by_name[tool.name] = tool
    names = list(by_name)
    messages = list(request.messages)
    usage = Usage()
    current = dataclasses.replace(request, tools=tuple(by_name.values()))
    turn = 0
    while True:
        turn += 1
        response = await driver.generate(current)
        _add_usage(usage, response.usage)
        calls = [
            c if c.id else ToolCall(f"call_{turn}_{i}", c.name, c.arguments)
            for i, c in enumerate(response.tool_calls)
        ]
        if not calls:
            if response.text:
                messages.append(Message.assistant(response.text))
            return ToolRun(response, messages, turn, usage)
        messages.append(_assistant(response, calls))
        if turn >= max_turns:
            run = ToolRun(response, messages, turn, usage, complete=False)
            if raise_on_max_turns:
                raise MaxTurnsError(
                    f"the model still asked for tools after {turn} turn(s) (max_turns={max_turns})",
                    result=run,
                )
            return run
        results = await asyncio.gather(*(_call(by_name.get(c.name), c, names) for c in calls))
        messages.extend(Message.tool(text, tool_call_id=c.id) for c, text in zip(calls, results, strict=True))
        choice = current.tool_choice
        keep = choice if choice is None or choice.mode in ("auto", "none") else ToolChoice("auto")
        current = dataclasses.replace(current, messages=tuple(messages), tool_choice=keep)
