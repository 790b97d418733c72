"""The CA store is read when a call first needs it, and verification never weakens for it: each
case in a fresh process (the deferral only happens where botticelli imports aiohttp first), over
real HTTP and HTTPS on 127.0.0.1."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
from pathlib import Path

from botticelli import _tls
from botticelli.emulator import Emulator

from .test_core import tls_server  # noqa: F401 (a fixture: a self-signed HTTPS server)

CHILD = r"""
import asyncio, json, sys
import botticelli
from botticelli import GenerateRequest, GroqDriver

async def main(url):
    async with GroqDriver("openai/gpt-oss-20b", api_key="gsk_" + "t" * 40, base_url=url,
                          max_retries=0, plan="unlimited") as driver:
        try:
            answer = await driver.generate(GenerateRequest.prompt("Hi", max_tokens=5))
            return {"text": answer.text}
        except botticelli.ModelsError as exc:
            return {"error": type(exc).__name__, "message": exc.message}

result = asyncio.run(main(sys.argv[1]))
import aiohttp.connector
from botticelli import _tls
verified = aiohttp.connector._SSL_CONTEXT_VERIFIED
result["deferred"] = isinstance(verified, _tls.DeferredStore)
result["store_read"] = _tls.pending is None
print(json.dumps(result))
"""


def child(url: str, **env: str) -> dict[str, object]:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("GROQ_", "SSL_CERT", "BOTTICELLI_"))
    }
    environment.update(env)
    run = subprocess.run(
        [sys.executable, "-c", CHILD, url], env=environment, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr[-2000:]
    found: dict[str, object] = json.loads(run.stdout.strip().splitlines()[-1])
    return found


def test_plain_http_never_reads_the_store(emulator: Emulator) -> None:
    result = child(emulator.base_url)
    assert result["text"] and result["deferred"] is True and result["store_read"] is False


def test_https_reads_it_and_verifies(tls_server: tuple[str, str]) -> None:  # noqa: F811
    url, cert = tls_server
    trusted = child(url, SSL_CERT_FILE=cert)
    assert trusted["text"] == "over tls" and trusted["deferred"] is True and trusted["store_read"] is True
    untrusted = child(url)  # the system store does not hold our self-signed certificate
    assert untrusted["error"] == "APIConnectionError" and "certificate" in str(untrusted["message"]).lower()


def test_a_deferred_context_is_the_stdlibs_once_read() -> None:
    deferred = _tls._deferred_default_context()
    stdlib = ssl.create_default_context()
    assert isinstance(deferred, _tls.DeferredStore)
    assert (deferred.verify_mode, deferred.check_hostname) == (stdlib.verify_mode, stdlib.check_hostname)
    assert deferred.options == stdlib.options and deferred.verify_flags == stdlib.verify_flags
    assert deferred.get_ca_certs() == stdlib.get_ca_certs()  # asking reads it
    assert deferred.cert_store_stats() == stdlib.cert_store_stats()


def test_explicit_cas_are_the_stdlibs_own(tmp_path: Path) -> None:
    assert type(_tls._deferred_default_context(ssl.Purpose.CLIENT_AUTH)) is ssl.SSLContext
    os.environ["SSLKEYLOGFILE"] = str(tmp_path / "keys.log")
    try:
        assert type(_tls._deferred_default_context()) is ssl.SSLContext  # a key log: no deferral
    finally:
        del os.environ["SSLKEYLOGFILE"]
