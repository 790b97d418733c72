"""One conformance suite over every driver: the same behaviour whatever the wire format.

Each ``Target`` is a driver pointed at its emulator over real HTTP (the local model runs in
process). Adding a provider is one ``Target``. Capabilities run where the driver's profile
declares them: declared and failing is a failure, not declared is a skip that says so. Error
classes run where the provider can produce them (``errors``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from botticelli import (
    APITimeoutError,
    AuthenticationError,
    Driver,
    FinishReason,
    GenerateRequest,
    Input,
    Message,
    ModelNotFoundError,
    RateLimitError,
    Role,
    ServerError,
    run_tools,
)
from botticelli import (
    driver as make_driver,
)
from botticelli.config import Timeout
from botticelli.emulator import Emulator, Fault

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4"
    b"\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82"
)
TIMEOUT = Timeout(read=5, connect=2, total=10, stall=5)
DELAY = 0.004  # seconds per token: a stream is still going when a test leaves it early


@dataclasses.dataclass
class Target:
    """One driver under test: how to make it against ``server`` (``None``: in process)."""

    name: str
    spec: str
    server: Callable[[], Any] | None
    options: Callable[[Any], dict[str, Any]]
    key: str | None = None
    errors: frozenset[str] = frozenset({"auth", "not_found", "rate_limit", "server"})
    needs: str | None = None  # a module that must be importable (the optional local runtime)
    vision_model: str | None = None
    reasoning: dict[str, Any] = dataclasses.field(default_factory=dict)


def _groq_options(emu: Any) -> dict[str, Any]:
    return {"base_url": emu.base_url, "api_key": "gsk_conformance_key"}


def _openai_options(emu: Any) -> dict[str, Any]:
    return {"base_url": emu.openai_base_url, "api_key": "gsk_conformance_key"}


def _anthropic_server() -> Any:
    from botticelli.emulator.anthropic import AnthropicEmulator

    return AnthropicEmulator(token_delay=DELAY, api_keys=["sk-ant-conformance-key"])


def _anthropic_options(emu: Any) -> dict[str, Any]:
    return {"base_url": emu.base_url, "api_key": "sk-ant-conformance-key"}


def _ollama_server() -> Any:
    from botticelli.emulator.ollama import OllamaEmulator

    return OllamaEmulator(token_delay=DELAY)


def _ollama_options(emu: Any) -> dict[str, Any]:
    return {"base_url": emu.base_url}


TARGETS = [
    Target(
        "groq",
        "groq:openai/gpt-oss-20b",
        lambda: Emulator(token_delay=DELAY, api_keys=["gsk_conformance_key"]),
        _groq_options,
        key="gsk_conformance_key",
        vision_model="qwen/qwen3.8-27b",
        reasoning={"reasoning_effort": "low"},
    ),
    Target(
        "openai-compatible",
        "openai-compatible:openai/gpt-oss-20b",
        lambda: Emulator(token_delay=DELAY, api_keys=["gsk_conformance_key"]),
        _openai_options,
        key="gsk_conformance_key",
        reasoning={"reasoning_effort": "low"},
    ),
    Target(
        "anthropic",
        "anthropic:claude-haiku-5-5",
        _anthropic_server,
        _anthropic_options,
        key="sk-ant-conformance-key",
        vision_model="claude-haiku-5-5",
        reasoning={"include_reasoning": True},
    ),
    Target(
        "ollama",
        "ollama:llama3.2",
        _ollama_server,
        _ollama_options,
        errors=frozenset({"not_found", "server"}),  # no keys, no rate limits on a local server
        vision_model="gemma3",
    ),
    Target(
        "local",
        "local:smollm2",
        None,
        lambda emu: {},
        errors=frozenset(),
        needs="llama_cpp",
    ),
]


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


_servers: dict[str, Any] = {}


@pytest.fixture(scope="module", autouse=True)
def _stop_servers() -> Iterator[None]:
    yield
    for server in _servers.values():
        server.stop()
    _servers.clear()


@pytest.fixture(params=TARGETS, ids=[t.name for t in TARGETS])
def target(request: pytest.FixtureRequest) -> Target:
    found: Target = request.param
    if found.needs and not _importable(found.needs):
        pytest.skip(f"{found.name}: {found.needs} is not available")
    return found


def server_of(target: Target) -> Any:
    if target.server is None:
        return None
    server = _servers.get(target.name)
    if server is None:
        server = _servers[target.name] = target.server().start()
    server.reset()
    return server


@asynccontextmanager
async def connected(
    target: Target, spec: str | None = None, **options: Any
) -> AsyncIterator[tuple[Driver, Any]]:
    server = server_of(target)
    values: dict[str, Any] = {"timeout": TIMEOUT, "max_retries": 0}
    values.update(target.options(server) if server is not None else {})
    values.update(options)
    if target.name == "local":
        values.pop("timeout", None)
        values.pop("max_retries", None)
    driver = make_driver(spec or target.spec, **values)
    async with driver:
        yield driver, server


def hello(**fields: Any) -> GenerateRequest:
    fields.setdefault("max_tokens", 24)
    return GenerateRequest.prompt("Hello! Say something short.", **fields)


def caps(driver: Driver) -> Any:
    return driver.capabilities


def needs(driver: Driver, feature: str) -> None:
    if not getattr(caps(driver), feature):
        pytest.skip(f"{driver.provider_name} model {driver.model_name!r} does not declare {feature}")


# ---- the basics ---------------------------------------------------------------------------------


async def test_plain_generate(target: Target) -> None:
    async with connected(target) as (driver, _):
        answer = await driver.generate(hello())
    assert answer.text.strip()
    assert answer.finish_reason in (FinishReason.STOP, FinishReason.LENGTH)
    assert answer.usage.prompt_tokens > 0 and answer.usage.completion_tokens > 0
    assert answer.provider == driver.provider_name


async def test_multi_turn_with_a_system_prompt(target: Target) -> None:
    request = GenerateRequest(
        [
            Message.system("You answer in one short sentence."),
            Message.user("Name a colour."),
            Message.assistant("Blue."),
            Message.user("Another one?"),
        ],
        max_tokens=24,
    )
    async with connected(target) as (driver, server):
        answer = await driver.generate(request)
    assert answer.text.strip()
    if server is not None:  # the system prompt reached the server, in the format's own place
        sent = str(server.requests[-1].body)
        assert "You answer in one short sentence." in sent and "Another one?" in sent


async def test_streaming_many_chunks_and_final_usage(target: Target) -> None:
    async with connected(target) as (driver, _):
        chunks = [c async for c in driver.generate_stream(hello(max_tokens=40))]
    text = [c for c in chunks if c.text]
    assert len(text) >= 3, "a stream arrives in pieces"
    final = chunks[-1]
    assert final.is_final and final.finish_reason in (FinishReason.STOP, FinishReason.LENGTH)
    assert final.usage is not None and final.usage.completion_tokens > 0
    assert all(not c.is_final for c in chunks[:-1])


async def test_leaving_a_stream_early_closes_the_connection(target: Target) -> None:
    if target.server is None:
        pytest.skip("in process: no connection to close")
    async with connected(target) as (driver, server):
        async for _chunk in driver.generate_stream(hello(max_tokens=400)):
            break
        await asyncio.sleep(0.3)
        assert server.stats.client_disconnects == 1


async def test_cancelling_a_call_ends_it(target: Target) -> None:
    if target.server is None:
        pytest.skip("in process: cancellation of the local runtime is tested in test_local_driver")
    async with connected(target) as (driver, server):
        server.inject(Fault("hang", count=1))
        task = asyncio.create_task(driver.generate(hello()))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await driver.generate(hello())).text  # the driver is still good


# ---- errors and retries -------------------------------------------------------------------------


async def test_a_bad_key_is_an_authentication_error(target: Target) -> None:
    if "auth" not in target.errors:
        pytest.skip(f"{target.name} has no keys")
    server = server_of(target)
    key_options = target.options(server)
    key_options["api_key"] = (target.key or "") + "-wrong"
    from botticelli import driver as create

    async with create(target.spec, timeout=TIMEOUT, max_retries=0, **key_options) as driver:
        with pytest.raises(AuthenticationError) as info:
            await driver.generate(hello())
    assert info.value.status == 401 and key_options["api_key"] not in str(info.value)


async def test_an_unknown_model_is_model_not_found(target: Target) -> None:
    if "not_found" not in target.errors:
        pytest.skip(f"{target.name} cannot name a model it lacks")
    provider = target.spec.split(":", 1)[0]
    async with connected(target, f"{provider}:no-such-model-xyz") as (driver, _):
        with pytest.raises(ModelNotFoundError):
            await driver.generate(hello())


async def test_a_rate_limit_is_a_rate_limit_error(target: Target) -> None:
    if "rate_limit" not in target.errors:
        pytest.skip(f"{target.name} has no rate limits")
    async with connected(target) as (driver, server):
        server.inject(Fault("rate_limit", retry_after=0.05, count=1))
        with pytest.raises(RateLimitError) as info:
            await driver.generate(hello())
    assert info.value.status == 429


async def test_a_server_error_is_retried_then_answers(target: Target) -> None:
    if "server" not in target.errors:
        pytest.skip(f"{target.name} runs in process")
    async with connected(target, max_retries=2) as (driver, server):
        server.inject(Fault("server_error", count=1))
        answer = await driver.generate(hello())
        assert answer.text and server.stats.requests == 2
        server.inject(Fault("server_error", count=5))
    async with connected(target, max_retries=1) as (driver, server):
        server.inject(Fault("server_error", count=5))
        with pytest.raises(ServerError):
            await driver.generate(hello())
        assert server.stats.requests == 2


async def test_a_hung_server_times_out_within_the_bound(target: Target) -> None:
    if target.server is None:
        pytest.skip("in process")
    async with connected(target, timeout=Timeout(read=0.5, connect=1, total=1.5, stall=0.5)) as (
        driver,
        server,
    ):
        server.inject(Fault("hang", count=1))
        started = asyncio.get_running_loop().time()
        with pytest.raises(APITimeoutError):
            await driver.generate(hello())
        assert asyncio.get_running_loop().time() - started < 3


# ---- capabilities, where declared ---------------------------------------------------------------


def get_weather(city: str) -> dict[str, Any]:
    """The current weather in a city."""
    return {"city": city, "temperature": 21}


async def test_tools_and_the_tool_loop(target: Target) -> None:
    async with connected(target) as (driver, _):
        needs(driver, "tools")
        request = GenerateRequest.prompt("Use get_weather for Rome, please.", max_tokens=200)
        run = await run_tools(driver, request, tools=[get_weather], max_turns=4)
    roles = [m.role for m in run.messages]
    assert Role.TOOL in roles, "the model called the tool and got its result"
    call = next(m for m in run.messages if m.tool_calls).tool_calls[0]
    assert call.name == "get_weather" and isinstance(call.args.get("city"), str)
    assert run.response.text and run.response.finish_reason is not FinishReason.TOOL_CALLS


async def test_streamed_tool_calls(target: Target) -> None:
    from botticelli import Tool

    async with connected(target) as (driver, _):
        needs(driver, "tools")
        tool = Tool.from_function(get_weather)
        request = GenerateRequest.prompt("Use get_weather for Oslo.", tools=[tool], tool_choice="required")
        chunks = [c async for c in driver.generate_stream(request)]
    final = chunks[-1]
    assert final.finish_reason is FinishReason.TOOL_CALLS
    assert final.tool_calls and final.tool_calls[0].name == "get_weather"
    assert isinstance(final.tool_calls[0].args["city"], str)


@dataclasses.dataclass
class Film:
    title: str
    year: int


async def test_json_schema(target: Target) -> None:
    async with connected(target) as (driver, _):
        needs(driver, "json_schema")
        film = await driver.generate_json(
            GenerateRequest.prompt("A film, as JSON.", max_tokens=200), schema=Film
        )
    assert isinstance(film, Film) and isinstance(film.title, str) and isinstance(film.year, int)


async def test_vision(target: Target) -> None:
    spec = f"{target.spec.split(':', 1)[0]}:{target.vision_model}" if target.vision_model else None
    async with connected(target, spec) as (driver, server):
        needs(driver, "vision")
        message = Message(Role.USER, (Input.text("What is in this picture?"), Input.image(PNG)))
        answer = await driver.generate(GenerateRequest([message], max_tokens=30))
    assert answer.text
    if server is not None:
        assert "iVBORw0KGgo" in str(server.requests[-1].body)  # the PNG went as base64


async def test_reasoning(target: Target) -> None:
    async with connected(target) as (driver, _):
        needs(driver, "reasoning")
        if not target.reasoning:
            pytest.skip(f"{target.name}: no way to ask for visible reasoning is configured")
        answer = await driver.generate(hello(max_tokens=200, **target.reasoning))
        chunks = [c async for c in driver.generate_stream(hello(max_tokens=200, **target.reasoning))]
    assert answer.reasoning and answer.text and answer.reasoning not in answer.text
    assert "".join(c.reasoning for c in chunks)


# ---- what sits on top of every driver: the cache and batches --------------------------------------


async def test_the_cache_answers_the_second_call(target: Target, tmp_path: Any) -> None:
    from botticelli import CachedDriver, open_cache

    async with connected(target) as (driver, server):
        cached = CachedDriver(driver, open_cache(tmp_path / "cache.db"), cache_all=True)
        first = await cached.generate(hello(max_tokens=12))
        sent = server.stats.requests if server is not None else None
        second = await cached.generate(hello(max_tokens=12))
        assert cached.last_hit and second.text == first.text
        if server is not None:
            assert server.stats.requests == sent  # nothing went out for the hit
        await cached.cache.aclose()


async def test_a_batch_runs_every_item(target: Target) -> None:
    from botticelli import generate_batch

    async with connected(target) as (driver, _):
        results = await generate_batch(driver, [hello(max_tokens=8) for _ in range(6)], concurrency=3)
    assert [r.id for r in results] == list(range(6))
    assert all(r.ok and r.response is not None and r.response.text for r in results)
