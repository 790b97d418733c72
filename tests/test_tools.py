"""Tools from functions and the tool loop, over real HTTP against ``tests.hostile.HostileServer``."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import inspect
import time
from collections.abc import Iterator
from typing import Annotated, Any, Literal, Optional, TypedDict

import orjson
import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import botticelli
from botticelli import (
    GenerateRequest,
    MaxTurnsError,
    Message,
    OpenAICompatibleDriver,
    Role,
    Tool,
    ToolArgumentsError,
    ToolCall,
    run_tools,
)
from botticelli.config import Timeout
from botticelli.tools import FunctionTool, convert, json_schema

from .hostile import FAKE_KEY, HostileServer, Request, completion, response

try:
    import jsonschema
except ImportError:  # structural checks only
    jsonschema = None


@pytest.fixture(scope="module")
def server() -> Iterator[HostileServer]:
    with HostileServer() as hostile:
        yield hostile


@pytest.fixture
def fresh(server: HostileServer) -> HostileServer:
    server.requests.clear()
    return server


def make_driver(server: HostileServer) -> OpenAICompatibleDriver:
    return OpenAICompatibleDriver(
        "m",
        base_url=server.base_url + "/v1",
        api_key=FAKE_KEY,
        max_retries=0,
        timeout=Timeout(read=5, connect=2, total=8, stall=5),
    )


def tool_answer(*calls: tuple[str, str, Any]) -> bytes:
    """A completion asking for tools: (id, name, arguments as an object or raw text)."""
    wire = [
        {
            "id": cid,
            "type": "function",
            "function": {
                "name": name,
                "arguments": args if isinstance(args, str) else orjson.dumps(args).decode(),
            },
        }
        for cid, name, args in calls
    ]
    body = completion("")
    body["choices"] = [
        {
            "index": 0,
            "message": {"role": "assistant", "content": None, "tool_calls": wire},
            "finish_reason": "tool_calls",
        }
    ]
    return response(200, body)


def scripted(server: HostileServer, *answers: bytes) -> None:
    queue = list(answers)

    def answer(request: Request) -> bytes:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    server.script(answer)


def body(request: Request) -> dict[str, Any]:
    result: dict[str, Any] = orjson.loads(request.body)
    return result


# ---- schema from functions -----------------------------------------------------------------


class Unit(enum.Enum):
    C = "celsius"
    F = "fahrenheit"


class Address(TypedDict):
    street: str
    number: int


@dataclasses.dataclass
class Point:
    x: float
    y: float = 0.0


class Person(pydantic.BaseModel):
    """A person.

    Longer text that is not the description."""

    name: str = pydantic.Field(description="full name")
    age: int | None = None
    home: Point | None = None


def weather(
    city: Annotated[str, "the city name"],
    unit: Unit = Unit.C,
    days: int = 1,
    mode: Literal["brief", "full"] = "brief",
    tags: list[str] | None = None,
    scores: dict[str, float] | None = None,
    pair: tuple[int, str] = (1, "a"),
    where: Address | None = None,
    at: Point | None = None,
    who: Optional[Person] = None,  # noqa: UP045 (Optional is part of what is tested)
    count: Annotated[int, pydantic.Field(description="how many", ge=1)] = 1,
) -> str:
    """Get the weather for a city.

    Second paragraph, not in the description.

    Args:
        city: overridden by Annotated
        days: how many days,
            counted from today
    """
    return city


def test_from_function_schema() -> None:
    tool = Tool.from_function(weather)
    assert isinstance(tool, Tool) and isinstance(tool, FunctionTool)
    assert tool.name == "weather"
    assert tool.description == "Get the weather for a city."
    p = tool.parameters
    props = p["properties"]
    assert p["type"] == "object" and p["required"] == ["city"]
    assert props["city"] == {"type": "string", "description": "the city name"}
    assert props["unit"] == {"enum": ["celsius", "fahrenheit"], "type": "string", "default": "celsius"}
    assert props["days"] == {
        "type": "integer",
        "description": "how many days, counted from today",
        "default": 1,
    }
    assert props["mode"]["enum"] == ["brief", "full"]
    assert props["tags"]["anyOf"] == [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]
    assert props["scores"]["anyOf"][0] == {"type": "object", "additionalProperties": {"type": "number"}}
    assert props["pair"]["prefixItems"] == [{"type": "integer"}, {"type": "string"}]
    where = props["where"]["anyOf"][0]
    assert where["properties"] == {"street": {"type": "string"}, "number": {"type": "integer"}}
    assert where["required"] == ["street", "number"]
    at = props["at"]["anyOf"][0]
    assert at["required"] == ["x"] and at["properties"]["y"]["default"] == 0.0
    who = props["who"]["anyOf"][0]
    assert who["properties"]["name"]["description"] == "full name"
    assert "$ref" not in orjson.dumps(p).decode()  # pydantic's refs are inlined
    assert props["count"] == {"type": "integer", "description": "how many", "minimum": 1, "default": 1}
    if jsonschema is not None:
        jsonschema.Draft202012Validator.check_schema(p)
        jsonschema.validate({"city": "Paris", "where": {"street": "x", "number": 3}}, p)


def test_docstring_styles() -> None:
    def numpy_style(a: int, b: str = "x") -> None:
        """Do a thing.

        Parameters
        ----------
        a : int
            the first
        b : str
            the second
        """

    def sphinx_style(a: int) -> None:
        """Do another.

        :param a: the only one
        """

    props = Tool.from_function(numpy_style).parameters["properties"]
    assert props["a"]["description"] == "the first" and props["b"]["description"] == "the second"
    assert Tool.from_function(sphinx_style).parameters["properties"]["a"]["description"] == "the only one"
    assert Tool.from_function(sphinx_style).description == "Do another."


def test_varargs_refused() -> None:
    def star(*args: int) -> None: ...
    def kw(a: int, **kwargs: int) -> None: ...

    with pytest.raises(TypeError, match=r"\*args"):
        Tool.from_function(star)
    with pytest.raises(TypeError, match=r"\*\*kwargs"):
        Tool.from_function(kw)


def test_unsupported_hint_named() -> None:
    def f(x: complex) -> None: ...

    with pytest.raises(TypeError, match="parameter 'x'"):
        Tool.from_function(f)


def test_from_model() -> None:
    tool = Tool.from_model(Person)
    assert tool.name == "Person" and tool.description == "A person."
    assert tool.parameters["required"] == ["name"]
    assert "$defs" not in tool.parameters
    with pytest.raises(TypeError):
        Tool.from_model(Point)


def test_strict_tool_requires_everything() -> None:
    tool = Tool.from_function(weather, strict=True)
    assert tool.strict is True
    assert set(tool.parameters["required"]) == set(tool.parameters["properties"])
    assert tool.parameters["additionalProperties"] is False


def test_tool_call_args() -> None:
    call = ToolCall("c1", "f", '{"a": 1, "b": [true]}')
    assert call.args == {"a": 1, "b": [True]}
    assert call.arguments == '{"a": 1, "b": [true]}'
    assert ToolCall("c", "f", "").args == {}
    with pytest.raises(ToolArgumentsError) as caught:
        _ = ToolCall("c", "f", '{"a": ').args
    assert caught.value.arguments == '{"a": ' and caught.value.tool_name == "f"
    with pytest.raises(ToolArgumentsError, match="not an object"):
        _ = ToolCall("c", "f", "[1]").args


def test_convert_builds_types() -> None:
    value = convert({"x": 1, "y": 2}, Point)
    assert value == Point(1.0, 2.0)
    assert convert("celsius", Unit) is Unit.C
    assert convert([1, "a"], tuple[int, str]) == (1, "a")
    assert convert({"name": "A"}, Person) == Person(name="A")
    with pytest.raises(ValueError, match="number"):
        convert({"street": "s"}, Address)
    with pytest.raises(ValueError, match="expected an integer"):
        convert(True, int)


# ---- hypothesis: generated type combinations give valid JSON Schema ------------------------------

_LEAVES: list[Any] = [
    str,
    int,
    float,
    bool,
    type(None),
    Any,
    Unit,
    Literal["a", "b"],
    Literal[1, 2],
    Point,
    Address,
]


def _hints() -> st.SearchStrategy[Any]:
    def extend(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(
            inner.map(lambda t: list[t]),  # type: ignore[valid-type]
            inner.map(lambda t: dict[str, t]),  # type: ignore[valid-type]
            inner.map(lambda t: tuple[t, ...]),  # type: ignore[valid-type]
            st.tuples(inner, inner).map(lambda ts: tuple[ts[0], ts[1]]),  # type: ignore[valid-type]
            st.tuples(inner, inner).map(lambda ts: ts[0] | ts[1] if _unionable(ts) else Optional[ts[0]]),  # noqa: UP045
            inner.map(lambda t: Optional[t]),  # noqa: UP045
            st.tuples(inner, st.text(max_size=10)).map(lambda p: Annotated[p[0], p[1]]),
        )

    return st.recursive(st.sampled_from(_LEAVES), extend, max_leaves=6)


def _unionable(ts: tuple[Any, Any]) -> bool:
    try:
        ts[0] | ts[1]
    except TypeError:
        return False
    return True


def _check_structure(schema: Any) -> None:
    assert isinstance(schema, dict)
    if "type" in schema:
        assert schema["type"] in ("string", "integer", "number", "boolean", "null", "array", "object")
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            _check_structure(schema[key])
    for key in ("anyOf", "prefixItems"):
        for sub in schema.get(key, ()):
            _check_structure(sub)
    for sub in schema.get("properties", {}).values():
        _check_structure(sub)
    if "required" in schema:
        assert set(schema["required"]) <= set(schema["properties"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_hints(), st.booleans()), min_size=0, max_size=5))
def test_generated_signatures_give_valid_schema(params: list[tuple[Any, bool]]) -> None:
    def fn(**kwargs: Any) -> None: ...

    parameters = [
        inspect.Parameter(
            f"p{i}",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=hint,
            default=None if has_default else inspect.Parameter.empty,
        )
        for i, (hint, has_default) in enumerate(params)
    ]
    fn.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    fn.__annotations__ = {p.name: p.annotation for p in parameters}
    tool = Tool.from_function(fn)
    schema = tool.parameters
    orjson.dumps(schema)  # plain JSON
    _check_structure(schema)
    assert schema["type"] == "object"
    assert schema.get("required", []) == [f"p{i}" for i, (_, d) in enumerate(params) if not d]
    if jsonschema is not None:
        jsonschema.Draft202012Validator.check_schema(schema)
        for hint, _ in params:
            jsonschema.Draft202012Validator.check_schema(json_schema(hint))


# ---- the loop, over HTTP -------------------------------------------------------------------


def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


async def test_loop_sends_calls_and_results(fresh: HostileServer) -> None:
    scripted(
        fresh,
        tool_answer(("call_1", "add", {"a": 2, "b": 3})),
        response(200, completion("The sum is 5.")),
    )
    request = GenerateRequest.prompt("What is 2+3?", tools=[Tool.from_function(add)], tool_choice="required")
    async with make_driver(fresh) as driver:
        run = await botticelli.run_tools(driver, request, tools=[add], max_turns=5)
    assert run.response.text == "The sum is 5." and run.turns == 2 and run.complete
    assert [m.role for m in run.messages] == [Role.USER, Role.ASSISTANT, Role.TOOL, Role.ASSISTANT]
    assert run.messages[1].tool_calls == (ToolCall("call_1", "add", '{"a":2,"b":3}'),)
    assert run.messages[2].text == "5" and run.messages[2].tool_call_id == "call_1"
    assert run.usage.total_tokens == 10
    first, second = (body(r) for r in fresh.requests)
    assert first["tools"][0]["function"]["name"] == "add"
    assert first["tool_choice"] == "required"
    assert second["tool_choice"] == "auto"  # required holds for the first turn only
    assistant, tool = second["messages"][1], second["messages"][2]
    assert assistant["role"] == "assistant"
    assert assistant["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "add", "arguments": '{"a":2,"b":3}'}}
    ]
    assert tool == {"role": "tool", "content": "5", "tool_call_id": "call_1"}


async def test_parallel_calls_run_concurrently(fresh: HostileServer) -> None:
    async def slow_a(x: int) -> dict[str, int]:
        await asyncio.sleep(0.2)
        return {"a": x}

    async def slow_b(x: int) -> dict[str, int]:
        await asyncio.sleep(0.2)
        return {"b": x}

    def sync_c(x: int) -> str:
        time.sleep(0.2)
        return f"c{x}"

    scripted(
        fresh,
        response(200, completion("warm")),
        tool_answer(("c1", "slow_a", {"x": 1}), ("c2", "slow_b", {"x": 2}), ("c3", "sync_c", {"x": 3})),
        response(200, completion("done")),
    )
    async with make_driver(fresh) as driver:
        await driver.generate(GenerateRequest.prompt("warm up"))  # connect first
        started = time.perf_counter()
        run = await run_tools(driver, GenerateRequest.prompt("go"), tools=[slow_a, slow_b, sync_c])
        elapsed = time.perf_counter() - started
    assert elapsed < 0.35, elapsed
    results = {m.tool_call_id: m.text for m in run.messages if m.role is Role.TOOL}
    assert results == {"c1": '{"a":1}', "c2": '{"b":2}', "c3": "c3"}


async def test_failures_go_back_to_the_model(fresh: HostileServer) -> None:
    def boom(x: int) -> str:
        raise RuntimeError("the tool broke")

    scripted(
        fresh,
        tool_answer(
            ("c1", "boom", {"x": 1}),
            ("c2", "nope", {}),
            ("c3", "add", '{"a": 1'),
            ("c4", "add", {"a": "one", "b": 2}),
            ("c5", "add", {"a": 1}),
        ),
        response(200, completion("sorry")),
    )
    async with make_driver(fresh) as driver:
        run = await run_tools(driver, GenerateRequest.prompt("go"), tools=[boom, add])
    assert run.response.text == "sorry"
    results = {m.tool_call_id: orjson.loads(m.text)["error"] for m in run.messages if m.role is Role.TOOL}
    assert results["c1"] == "RuntimeError: the tool broke"
    assert "unknown tool 'nope'" in results["c2"] and "boom, add" in results["c2"]
    assert "not valid JSON" in results["c3"]
    assert "a: expected an integer" in results["c4"]
    assert "missing required argument(s): b" in results["c5"]
    sent = body(fresh.requests[-1])["messages"]
    assert [m["tool_call_id"] for m in sent if m["role"] == "tool"] == ["c1", "c2", "c3", "c4", "c5"]


async def test_max_turns(fresh: HostileServer) -> None:
    calls = 0

    def tick() -> int:
        nonlocal calls
        calls += 1
        return calls

    scripted(fresh, tool_answer(("c", "tick", {})))
    async with make_driver(fresh) as driver:
        with pytest.raises(MaxTurnsError) as caught:
            await run_tools(driver, GenerateRequest.prompt("go"), tools=[tick], max_turns=3)
        assert len(fresh.requests) == 3 and calls == 2  # the last turn's calls are not run
        run = caught.value.result
        assert not run.complete and run.turns == 3 and run.response.tool_calls
        assert caught.value.messages[-1].tool_calls
        fresh.requests.clear()
        run = await run_tools(
            driver, GenerateRequest.prompt("go"), tools=[tick], max_turns=1, raise_on_max_turns=False
        )
    assert not run.complete and len(fresh.requests) == 1
    with pytest.raises(ValueError):
        await run_tools(make_driver(fresh), GenerateRequest.prompt("go"), tools=[tick], max_turns=0)


async def test_tool_instances_and_request_tools(fresh: HostileServer) -> None:
    declared = Tool(
        "lookup", "Look something up", {"type": "object", "properties": {"q": {"type": "string"}}}
    )
    scripted(
        fresh,
        tool_answer(("c1", "lookup", {"q": "x"}), ("c2", "add", {"a": 1, "b": 1})),
        response(200, completion("ok")),
    )
    request = GenerateRequest(messages=[Message.user("go")], tools=[Tool.from_function(add)])
    async with make_driver(fresh) as driver:
        run = await run_tools(driver, request, tools=[declared])
    names = [t["function"]["name"] for t in body(fresh.requests[0])["tools"]]
    assert names == ["add", "lookup"]
    results = {m.tool_call_id: m.text for m in run.messages if m.role is Role.TOOL}
    assert results["c2"] == "2" and "no implementation" in results["c1"]


def test_exports() -> None:
    for name in ("run_tools", "ToolRun", "MaxTurnsError", "ToolArgumentsError", "OutputValidationError"):
        assert getattr(botticelli, name) is not None and name in botticelli.__all__
