"""``python -m botticelli.emulator --wire anthropic|ollama`` as a process, as the benchmarks and a
user's own test rig start it, each answered by its official SDK; and ``botticelli.emulator``
naming every wire's emulator."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import pytest


def serve(*args: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "botticelli.emulator", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.fullmatch(r"botticelli emulator listening on (http://127\.0\.0\.1:\d+)\n", line)
    assert match, (line, process.stderr.read() if process.poll() is not None and process.stderr else "")
    return process, match.group(1)


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0 and "Traceback" not in stderr, stderr
    return stderr


def test_anthropic_wire_process_with_the_official_sdk() -> None:
    import anthropic

    process, url = serve("--wire", "anthropic", "--api-key", "sk-ant-only-this", "--reply-tokens", "7")
    try:
        with anthropic.Anthropic(base_url=url, api_key="sk-ant-only-this", max_retries=0) as client:
            message = client.messages.create(
                model="claude-haiku-5-5", max_tokens=50, messages=[{"role": "user", "content": "Hi"}]
            )
        assert message.content[0].type == "text" and message.usage.output_tokens == 7
        with (
            anthropic.Anthropic(base_url=url, api_key="sk-ant-other", max_retries=0) as other,
            pytest.raises(anthropic.AuthenticationError),
        ):
            other.messages.create(
                model="claude-haiku-5-5", max_tokens=5, messages=[{"role": "user", "content": "Hi"}]
            )
    finally:
        assert "sk-ant-only-this" not in stop(process)


def test_ollama_wire_process_with_the_official_sdk() -> None:
    import ollama

    process, url = serve("--wire", "ollama", "--reply-tokens", "5")
    try:
        with ollama.Client(host=url) as client:
            assert "llama3.2" in {m.model.split(":")[0] for m in client.list().models if m.model}
            answer = client.chat(model="llama3.2", messages=[{"role": "user", "content": "Hi"}])
        assert answer.message.content and answer.eval_count == 5 and answer.done
    finally:
        stop(process)


def test_a_bad_option_is_one_line_and_exit_2() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "botticelli.emulator", "--wire", "anthropic", "--backend", "nope"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 2 and "unknown emulator backend 'nope'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_package_names_every_wires_emulator() -> None:
    import botticelli.emulator as emulator
    from botticelli.emulator.anthropic import AnthropicEmulator
    from botticelli.emulator.ollama import OllamaEmulator

    assert emulator.AnthropicEmulator is AnthropicEmulator and emulator.OllamaEmulator is OllamaEmulator
    assert {"AnthropicEmulator", "OllamaEmulator"} <= set(emulator.__all__)
    with pytest.raises(AttributeError):
        emulator.NoSuchEmulator  # noqa: B018
