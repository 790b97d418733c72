"""Providers are plugins: a real plugin package, written into tmp_path with its own ``*.dist-info``
(METADATA and entry_points.txt), found through the entry-point group ``botticelli.providers`` by
``botticelli.driver`` in-process and by ``botticelli ask`` run as a process. And the one parser
of ``provider:model``, and the version written in one place."""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import os
import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import botticelli
from botticelli import _defaults, plugins
from botticelli.drivers.base import Driver
from botticelli.errors import ConfigurationError
from botticelli.plugins import Spec, parse_spec
from botticelli.types import GenerateRequest

from .test_cli import CliRunner, Run, one_error_line

ROOT = Path(__file__).resolve().parent.parent
ANSWER = "hello from myprov"

PLUGIN_SOURCE = f'''
"""A third-party provider: answers a fixed text, whatever it is asked."""

from botticelli.drivers.base import Driver, ResponseStream
from botticelli.types import GenerateResponse, StreamChunk, TextOutput, Usage

ANSWER = {ANSWER!r}


class MyDriver(Driver):
    provider_name = "myprov"

    def __init__(self, model="myprov-default", *, greeting=ANSWER):
        self.model_name = model
        self.greeting = greeting

    def _text(self):
        return f"{{self.greeting}} ({{self.model_name}})"

    async def generate(self, request):
        return GenerateResponse(
            outputs=[TextOutput(self._text())], finish_reason=None, model=self.model_name,
            provider=self.provider_name, usage=Usage(),
        )

    def generate_stream(self, request):
        async def chunks():
            words = self._text().split(" ")
            for i, word in enumerate(words):
                yield StreamChunk(text=word if i == 0 else " " + word)
            yield StreamChunk(is_final=True, usage=Usage())

        return ResponseStream(chunks(), model=self.model_name, provider=self.provider_name)


def not_a_driver(model="x"):
    return object()
'''


def write_plugin(root: Path, dist: str, entry_points: dict[str, str], modules: dict[str, str]) -> Path:
    """A package as pip would leave it in site-packages: its modules and ``{dist}-1.0.dist-info``."""
    root.mkdir(parents=True, exist_ok=True)
    for name, source in modules.items():
        (root / f"{name}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[{plugins.GROUP}]\n{lines}")
    return root


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder on the path holding two plugin distributions: ``myprov-plugin`` (a working
    driver, and a factory that returns no driver) and ``broken-plugin`` (raises on import)."""
    root = tmp_path_factory.mktemp("site")
    write_plugin(
        root,
        "myprov-plugin",
        {"myprov": "myprov_plugin:MyDriver", "notdriver": "myprov_plugin:not_a_driver"},
        {"myprov_plugin": PLUGIN_SOURCE},
    )
    write_plugin(
        root,
        "broken-plugin",
        {"broken": "broken_plugin:Driver"},
        {"broken_plugin": "raise RuntimeError('the plugin is broken\\non two lines')\n"},
    )
    return root


@pytest.fixture
def installed(plugin_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The plugins importable in this process, for one test; the registry rescanned around it."""
    monkeypatch.syspath_prepend(str(plugin_path))  # also invalidates the import caches
    plugins.refresh()
    yield plugin_path
    for name in ("myprov_plugin", "broken_plugin"):
        sys.modules.pop(name, None)
    monkeypatch.undo()
    importlib.invalidate_caches()
    plugins.refresh()


def run_cli(tmp_path: Path, plugin_path: Path, *args: str) -> Run:
    """``python -m botticelli.cli ARGS`` with the plugins on its PYTHONPATH, no key, no config."""
    path = os.pathsep.join(p for p in (str(plugin_path), os.environ.get("PYTHONPATH")) if p)
    return CliRunner(tmp_path, None)(*args, key=None, PYTHONPATH=path)


# ---- a third-party plugin ------------------------------------------------------------------------


async def test_driver_resolves_a_plugin_and_it_answers(installed: Path) -> None:
    driver = botticelli.driver("myprov:some-model", greeting="hi there")
    assert isinstance(driver, Driver) and type(driver).__module__ == "myprov_plugin"
    assert driver.model_name == "some-model"
    async with driver:
        response = await driver.generate(GenerateRequest.prompt("hi"))
        assert response.text == "hi there (some-model)"
        streamed = await driver.generate_stream(GenerateRequest.prompt("hi")).collect()
        assert streamed.text == "hi there (some-model)"
    assert plugins.get("myprov") == plugins.ProviderPlugin(
        "myprov", "myprov_plugin:MyDriver", "myprov-plugin"
    )


def test_no_model_means_the_plugins_default(installed: Path) -> None:
    assert botticelli.driver("myprov:").model_name == "myprov-default"


def test_unknown_provider_names_the_plugins_among_the_known(installed: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        botticelli.driver("nosuch:model")
    message = str(caught.value)
    assert "unknown provider 'nosuch'" in message
    known = message.split("known: ")[1].split(", ")
    assert known == sorted(known) and {"myprov", "groq", "local", "openai-compatible"} <= set(known)


def test_a_plugin_that_fails_to_import_is_one_configuration_error(installed: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        botticelli.driver("broken:model")
    message = str(caught.value)
    assert "'broken'" in message and "broken-plugin" in message and "broken_plugin:Driver" in message
    assert "RuntimeError: the plugin is broken on two lines" in message and "\n" not in message


def test_a_factory_that_makes_no_driver_is_refused(installed: Path) -> None:
    with pytest.raises(ConfigurationError, match="'notdriver' returned object, not a botticelli Driver"):
        botticelli.driver("notdriver:x")


def test_the_plugin_module_is_imported_only_when_asked_for(installed: Path) -> None:
    assert "myprov" in plugins.names()
    assert parse_spec("myprov:a:b") == Spec("myprov", "a:b")
    assert "myprov_plugin" not in sys.modules
    plugins.load("myprov")
    assert "myprov_plugin" in sys.modules


def test_cli_ask_answers_with_the_plugin(tmp_path: Path, plugin_path: Path) -> None:
    run = run_cli(tmp_path, plugin_path, "ask", "-m", "myprov:some-model", "hi")
    assert run.returncode == 0, run.stderr
    assert run.stdout == f"{ANSWER} (some-model)\n" and run.stderr == ""
    run = run_cli(tmp_path, plugin_path, "ask", "--no-stream", "--timeout", "5", "-m", "myprov:m", "hi")
    assert run.returncode == 0 and run.stdout == f"{ANSWER} (m)\n", run.stderr


def test_cli_broken_plugin_is_one_error_line(tmp_path: Path, plugin_path: Path) -> None:
    run = run_cli(tmp_path, plugin_path, "ask", "-m", "broken:model", "hi")
    assert run.returncode == 1 and run.stdout == ""
    one_error_line(run, "provider plugin 'broken'", "broken-plugin", "RuntimeError")


def test_cli_unknown_provider_names_the_plugin(tmp_path: Path, plugin_path: Path) -> None:
    run = run_cli(tmp_path, plugin_path, "ask", "-m", "nosuch:model", "hi")
    assert run.returncode == 1
    one_error_line(run, "unknown provider 'nosuch'", "myprov", "groq", "local")


def test_cli_lists_the_providers(tmp_path: Path, plugin_path: Path) -> None:
    run = run_cli(tmp_path, plugin_path, "models", "--providers")
    assert run.returncode == 0 and run.stderr == ""
    rows = {line.split()[0]: line.split()[1:] for line in run.stdout.splitlines()[1:]}
    assert rows["myprov"] == ["myprov_plugin:MyDriver", "myprov-plugin"]
    assert rows["groq"] == ["botticelli.drivers.groq:GroqDriver", "botticelli"]
    assert "broken_plugin" not in sys.modules


# ---- the built-ins are plugins too ----------------------------------------------------------------


def pyproject() -> dict[str, object]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)


def test_builtins_are_registered_in_pyproject_as_in_the_fallback_table() -> None:
    project = pyproject()["project"]
    assert isinstance(project, dict)
    assert project["entry-points"][plugins.GROUP] == dict(plugins.BUILTINS)


def test_builtins_resolve_through_the_installed_entry_points() -> None:
    plugins.refresh()
    installed = {p.name: p.value for p in importlib.metadata.entry_points(group=plugins.GROUP)}
    if not installed:
        pytest.skip("botticelli's metadata is not installed (pip install -e .)")
    assert {k: installed[k] for k in plugins.BUILTINS} == dict(plugins.BUILTINS)
    for name, target in plugins.BUILTINS.items():
        assert plugins.get(name) == plugins.ProviderPlugin(name, target, "botticelli")
        assert plugins.get(name).builtin
    factory = plugins.load("openai-compatible")
    assert isinstance(factory, type) and issubclass(factory, Driver)
    assert factory.__name__ == "OpenAICompatibleDriver"


def test_builtins_resolve_without_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from a source tree: no entry points at all, the fallback table still answers."""
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **_: [])
    plugins.refresh()
    try:
        assert plugins.names() == sorted(plugins.BUILTINS)
        assert plugins.get("groq") == plugins.ProviderPlugin("groq", plugins.BUILTINS["groq"], None)
        assert parse_spec("local:smollm2") == Spec("local", "smollm2")
    finally:
        monkeypatch.undo()
        plugins.refresh()


def test_import_botticelli_reads_no_metadata() -> None:
    code = (
        "import sys, botticelli; botticelli.__version__; botticelli.driver; "
        "print('importlib.metadata' in sys.modules, 'botticelli.plugins' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout == "False False\n", done.stderr


# ---- one parser for provider:model --------------------------------------------------------------


def test_parse_spec_examples() -> None:
    assert parse_spec("openai/gpt-oss-20b") == Spec("groq", "openai/gpt-oss-20b")
    assert parse_spec("groq:openai/gpt-oss-20b") == Spec("groq", "openai/gpt-oss-20b")
    assert parse_spec("local:smollm2") == Spec("local", "smollm2")
    assert parse_spec("local:") == Spec("local", "")
    assert parse_spec("openai-compatible:llama3.2:3b") == Spec("openai-compatible", "llama3.2:3b")
    assert parse_spec("meta-llama/llama-4:free") == Spec("groq", "meta-llama/llama-4:free")
    assert str(Spec("local", "smollm2")) == "local:smollm2"
    assert parse_spec("ollama:llama3.2:3b") == Spec("ollama", "llama3.2:3b")  # a tag keeps its colon
    with pytest.raises(ConfigurationError, match=r"unknown provider 'olama' in 'olama:llama3.2:3b'"):
        parse_spec("olama:llama3.2:3b")
    with pytest.raises(ConfigurationError, match="unknown provider ''"):
        parse_spec(":model")
    with pytest.raises(AttributeError):
        Spec("a", "b").provider = "c"  # type: ignore[misc]


KNOWN = sorted(plugins.BUILTINS)
models = st.text(max_size=40)
plain = st.text(alphabet=st.characters(blacklist_characters=":/"), max_size=20)


@given(st.sampled_from(KNOWN), models)
def test_a_known_provider_takes_everything_after_the_first_colon(provider: str, model: str) -> None:
    spec = parse_spec(f"{provider}:{model}")
    assert spec == Spec(provider, model)
    assert parse_spec(str(spec)) == spec


@given(models.filter(lambda m: ":" not in m))
def test_a_bare_model_is_groq(model: str) -> None:
    assert parse_spec(model) == Spec("groq", model)


@given(plain, plain, models)
def test_a_slash_before_the_first_colon_is_a_groq_model_id(left: str, right: str, rest: str) -> None:
    text = f"{left}/{right}:{rest}"
    assert parse_spec(text) == Spec("groq", text)


@given(plain, models)
def test_any_other_prefix_is_an_unknown_provider(prefix: str, rest: str) -> None:
    assume(prefix not in KNOWN)
    with pytest.raises(ConfigurationError) as caught:
        parse_spec(f"{prefix}:{rest}")
    assert f"unknown provider {prefix!r}" in str(caught.value)
    assert str(caught.value).endswith("known: " + ", ".join(plugins.names()))


# ---- the version, written once --------------------------------------------------------------------


def test_the_version_is_written_in_one_place() -> None:
    from botticelli._version import __version__

    project = pyproject()["project"]
    assert isinstance(project, dict)
    assert "version" not in project and "version" in project["dynamic"]
    assert pyproject()["tool"]["hatch"]["version"] == {"path": "src/botticelli/_version.py"}  # type: ignore[index]
    assert botticelli.__version__ == __version__
    assert _defaults.USER_AGENT.split("/") == ["botticelli", __version__]
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):  # a source tree, no metadata
        assert importlib.metadata.version("botticelli") == __version__
