"""``botticelli limits`` (the click command, before app.py registers it) and the wait notice as
one stderr line through ``notices_to``."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from botticelli import GenerateRequest, GroqDriver, Message, _defaults
from botticelli.cli import output
from botticelli.cli.limits import limits
from botticelli.emulator import Emulator
from botticelli.ratelimit import clear_registry, notices_to

MODEL = "openai/gpt-oss-20b"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clear_registry()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("BOTTICELLI_CONFIG", raising=False)
    monkeypatch.delenv("BOTTICELLI_GROQ_PLAN", raising=False)


def test_limits_shows_the_plan_table() -> None:
    result = CliRunner().invoke(limits, ["-m", MODEL, "--plan", "developer"])
    assert result.exit_code == 0, result.output
    assert "plan: developer (plan=)" in result.output
    assert "tokens per minute (TPM)" in result.output and "250,000" in result.output
    assert "developer plan" in result.output


def test_limits_reads_botticelli_toml(tmp_path: Path) -> None:
    (tmp_path / "botticelli.toml").write_text(
        '[providers.groq]\nplan = "free"\n[providers.groq.models."openai/gpt-oss-20b"]\nrpm = 12\n'
    )
    result = CliRunner().invoke(limits, [])
    assert result.exit_code == 0, result.output
    assert "plan: free (botticelli.toml)" in result.output
    assert "botticelli.toml" in result.output.splitlines()[0]
    rpm_line = next(line for line in result.output.splitlines() if "requests per minute" in line)
    assert " 12 " in rpm_line and "botticelli.toml" in rpm_line


def test_limits_unlimited_and_bad_plan() -> None:
    assert "no client-side limits" in CliRunner().invoke(limits, ["--plan", "unlimited"]).output
    bad = CliRunner().invoke(limits, ["--plan", "gold"])
    assert bad.exit_code != 0


def test_limits_shows_shared_usage_from_redis(
    redis_url: str, api_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Emulator() as emu:
        driver = GroqDriver(MODEL, api_key=api_key, base_url=emu.base_url, plan="free", redis_url=redis_url)

        async def three() -> None:
            try:
                for _ in range(3):
                    await driver.generate(GenerateRequest([Message.user("hi")], max_tokens=4))
            finally:
                await driver.aclose()

        asyncio.run(three())
        clear_registry()  # another process: only Redis knows what was used
        monkeypatch.setenv("GROQ_API_KEY", api_key)
        monkeypatch.setenv("GROQ_BASE_URL", emu.base_url)
        monkeypatch.setenv("BOTTICELLI_REDIS_URL", redis_url)
        result = CliRunner().invoke(limits, ["--plan", "free"])
    assert result.exit_code == 0, result.output
    assert "redis" in result.output and api_key not in result.output
    rpd_line = next(line for line in result.output.splitlines() if "requests per day" in line)
    assert rpd_line.split()[5] == "3"  # LIMIT NAME (4 words) MAX USED ...


async def test_wait_notice_is_one_line(api_key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_defaults, "RATE_LIMIT_NOTICE_AFTER", 0.2)
    lines: list[str] = []
    undo = notices_to(lines.append)
    try:
        # A 3 s minute: the 31st call waits for the window unless the first 30 took > 2.8 s, so a
        # loaded machine still sees one wait longer than the notice's 0.2 s.
        with Emulator(window_scale=0.05) as emu:
            driver = GroqDriver(
                MODEL, api_key=api_key, base_url=emu.base_url, plan="free", limits={"window_scale": 0.05}
            )
            request = GenerateRequest([Message.user("hi")], max_tokens=4)
            logging.getLogger("botticelli.ratelimit").setLevel(logging.INFO)
            try:
                await asyncio.gather(*(driver.generate(request) for _ in range(32)))
            finally:
                await driver.aclose()
    finally:
        undo()
    waits = [line for line in lines if line.startswith("waiting")]
    assert len(waits) == 1, lines
    assert "requests per minute (30, free plan)" in waits[0]
    assert "BOTTICELLI_GROQ_PLAN=developer" in waits[0] and "\n" not in waits[0]


def test_limits_says_when_the_plan_is_only_assumed() -> None:
    result = CliRunner().invoke(limits, ["-m", MODEL])
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert first.startswith("plan: free (assumed") and "BOTTICELLI_GROQ_PLAN=developer" in first
    assert "free plan (assumed)" in result.output and "free plan, assumed" in result.output


def test_limits_with_a_malformed_redis_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOTTICELLI_REDIS_URL", "redis://user:hunter2hunter2@cache:notaport/0")
    result = CliRunner().invoke(limits, ["--plan", "free"])
    assert isinstance(result.exception, output.Failure)  # app.py prints it as one error line
    message = result.exception.message
    assert message.startswith("BOTTICELLI_REDIS_URL:") and "not a usable Redis URL" in message
    assert "hunter2hunter2" not in message and "cache:notaport" in message
