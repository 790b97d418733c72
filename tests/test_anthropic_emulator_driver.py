"""AnthropicDriver against the Anthropic emulator over real HTTP, beside the official SDK on the
same server: both API versions, the parameters the API would refuse (never a 400 the user has to
decode), thinking signatures carried through a tool loop, 529s retried, rate-limit headers read,
and the CLI (``ask -m anthropic:...``, ``models --live``) as a process."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from botticelli import (
    AnthropicDriver,
    BotticelliWarning,
    FinishReason,
    GenerateRequest,
    InvalidRequestError,
    ReasoningOutput,
    Role,
    driver,
    run_tools,
)
from botticelli.emulator import Fault
from botticelli.emulator.anthropic import AnthropicEmulator

KEY = "sk-ant-api03-driver-tests-0000000000"
MODEL = "claude-haiku-5-5"


@pytest.fixture(scope="module")
def emu() -> Iterator[AnthropicEmulator]:
    with AnthropicEmulator(api_keys=[KEY]) as server:
        yield server


@pytest.fixture(autouse=True)
def _clean(emu: AnthropicEmulator) -> None:
    emu.reset()


def make(emu: AnthropicEmulator, model: str = MODEL, **options: Any) -> AnthropicDriver:
    options.setdefault("max_retries", 0)
    return AnthropicDriver(model, api_key=KEY, base_url=emu.base_url, **options)


@pytest.mark.parametrize("version", ["2026-10-21", "2023-06-01"])
async def test_both_versions_and_their_auth_headers(emu: AnthropicEmulator, version: str) -> None:
    async with make(emu, version=version) as claude:
        answer = await claude.generate(GenerateRequest.prompt("Hello", max_tokens=30))
        chunks = [c async for c in claude.generate_stream(GenerateRequest.prompt("Hello", max_tokens=30))]
    assert answer.text and answer.finish_reason in (FinishReason.STOP, FinishReason.LENGTH)
    assert answer.request_id and answer.request_id.startswith("req_")
    assert "".join(c.text for c in chunks) and chunks[-1].usage is not None
    sent = emu.requests[-1].headers
    assert sent["anthropic-version"] == version
    if version == "2026-10-21":
        assert sent["authorization"] == f"Bearer {KEY}" and "x-api-key" not in sent
    else:
        assert sent["x-api-key"] == KEY and "authorization" not in sent


async def test_the_same_answer_as_the_official_sdk(emu: AnthropicEmulator) -> None:
    import anthropic

    request = GenerateRequest.prompt("Tell me about Rome.", max_tokens=40, system="Be brief.")
    async with make(emu) as claude:
        ours = await claude.generate(request)
    async with anthropic.AsyncAnthropic(base_url=emu.base_url, api_key=KEY, max_retries=0) as sdk:
        theirs = await sdk.messages.create(
            model=MODEL,
            max_tokens=40,
            system="Be brief.",
            messages=[{"role": "user", "content": "Tell me about Rome."}],
        )
    assert ours.text == "".join(b.text for b in theirs.content if b.type == "text")
    assert ours.usage.prompt_tokens == theirs.usage.input_tokens
    assert ours.raw_finish_reason == theirs.stop_reason


async def test_sampling_parameters_never_reach_a_400(emu: AnthropicEmulator) -> None:
    """The emulator refuses them as the API does; the driver drops them with one warning."""
    request = GenerateRequest.prompt("Hi", max_tokens=20, temperature=0.2, top_p=0.9)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with make(emu) as claude:
            assert (await claude.generate(request)).text
    assert {str(w.message).split(":")[1].split()[0] for w in caught if w.category is BotticelliWarning} == {
        "temperature",
        "top_p",
    }
    async with make(emu, strict=True) as claude:
        with pytest.raises(InvalidRequestError, match="strict=True"):
            await claude.generate(request)
    assert emu.stats.requests == 1  # the strict call never left


async def test_without_the_driver_the_api_would_refuse(emu: AnthropicEmulator) -> None:
    """What the warning spares the user: the raw request with temperature is a 400."""
    async with make(emu) as claude:
        with pytest.raises(InvalidRequestError) as info:
            await claude.request(
                "POST",
                "/messages",
                content=b'{"model":"claude-haiku-5-5","max_tokens":5,"temperature":0.5,'
                b'"messages":[{"role":"user","content":"Hi"}]}',
            )
    assert info.value.status == 400 and "temperature" in info.value.message


async def test_thinking_signatures_go_back_through_the_tool_loop(emu: AnthropicEmulator) -> None:
    def get_weather(city: str) -> dict[str, Any]:
        """The weather in a city."""
        return {"city": city, "temperature": 21}

    request = GenerateRequest.prompt("Use get_weather for Paris.", max_tokens=2000, include_reasoning=True)
    async with make(emu) as claude:
        run = await run_tools(claude, request, tools=[get_weather], max_turns=4)
    assistant = next(m for m in run.messages if m.role is Role.ASSISTANT and m.tool_calls)
    assert assistant.reasoning and all(
        isinstance(r, ReasoningOutput) and r.signature for r in assistant.reasoning
    )
    assert run.response.text and run.response.finish_reason is FinishReason.STOP
    # The emulator verifies the signed thinking block it gets back (a tampered one is a 400).
    sent = emu.requests[-1].body
    assert sent["messages"][1]["content"][0]["type"] == "thinking"


async def test_overloaded_529_is_retried(emu: AnthropicEmulator) -> None:
    emu.inject(Fault("status", status=529, count=2))
    async with make(emu, max_retries=3) as claude:
        assert (await claude.generate(GenerateRequest.prompt("Hi", max_tokens=10))).text
    assert emu.stats.requests == 3


async def test_rate_limit_headers_are_read(emu: AnthropicEmulator) -> None:
    async with make(emu) as claude:
        answer = await claude.generate(GenerateRequest.prompt("Hi", max_tokens=10))
    limits = answer.rate_limit
    assert limits is not None and limits.requests_limit and limits.tokens_limit
    assert limits.requests_remaining is not None and limits.requests_remaining < limits.requests_limit
    assert limits.requests_reset is not None and 0 <= limits.requests_reset <= 60


async def test_list_models_has_the_lifecycle(emu: AnthropicEmulator) -> None:
    async with make(emu) as claude:
        active = await claude.list_models()
        everything = await claude.list_models(lifecycle=("active", "deprecated", "retired"))
    ids = {m.id for m in active}
    assert MODEL in ids and all(m.status in ("active", "deprecated") for m in active)
    assert len(everything) >= len(active) and any(m.status == "retired" for m in everything)
    deprecated = [m for m in everything if m.status == "deprecated"]
    assert deprecated and all(m.retires_at for m in deprecated)


def test_driver_by_spec_takes_options(emu: AnthropicEmulator) -> None:
    built = driver("anthropic:claude-opus-5-5", api_key=KEY, base_url=emu.base_url, version="2023-06-01")
    assert isinstance(built, AnthropicDriver) and built.version == "2023-06-01"
    assert built.model_name == "claude-opus-5-5"


def _cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "botticelli.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_the_cli_switches_provider_with_one_string(emu: AnthropicEmulator, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GROQ_", "BOTTICELLI_", "ANTHROPIC_"))}
    env.update(ANTHROPIC_API_KEY=KEY, ANTHROPIC_BASE_URL=emu.base_url)
    asked = _cli("ask", "-m", f"anthropic:{MODEL}", "--max-tokens", "20", "Hello", env=env, cwd=tmp_path)
    assert asked.returncode == 0 and asked.stdout.strip(), asked.stderr
    listed = _cli("models", "-p", "anthropic", "--live", env=env, cwd=tmp_path)
    assert listed.returncode == 0 and MODEL in listed.stdout, listed.stderr
    env["ANTHROPIC_API_KEY"] = KEY + "-wrong"
    refused = _cli("ask", "-m", f"anthropic:{MODEL}", "Hello", env=env, cwd=tmp_path)
    assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1
    assert "Traceback" not in refused.stderr and KEY not in refused.stderr
