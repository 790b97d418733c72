"""Rate limits: push 3N requests at an emulator that allows N per minute, through botticelli
(client-side limiter) and through the official groq SDK (send, get 429, sleep, retry: 2 retries).

    python bench/ratelimit_bench.py                  # N=100 per 6 s "minute" (about 30 s in all)
    python bench/ratelimit_bench.py --n 60 --scale 1 # the real thing: 60 RPM, 180 requests, 3+ min

The emulator runs in another process with ``--enforce-limits --rpm N --window-scale S``: its
buckets refill continuously (as Groq's reset headers describe) and start full, so the fastest
any client can finish 3N requests is N at once and the other 2N at N per window: 2 windows.
Reported per client: 429s the server sent, requests completed, wall time / that minimum.
Target: botticelli 0 x 429 and within 1.1x the minimum.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

from _harness import MAX_TOKENS, MODEL, PROMPT, ROOT, TEMPERATURE, api_key, check_local, child_env


@dataclass
class Result:
    client: str
    sent: int
    completed: int
    failed: int
    rate_limited: int  # 429s the server sent
    seconds: float
    minimum: float

    @property
    def ratio(self) -> float:
        return self.seconds / self.minimum


class EmulatorProcess:
    """``python -m botticelli.emulator`` enforcing N RPM on a scaled window, on a free port."""

    def __init__(self, n: int, scale: float) -> None:
        command = [
            sys.executable,
            "-m",
            "botticelli.emulator",
            "--port",
            "0",
            "--enforce-limits",
            "--rpm",
            str(n),
            "--window-scale",
            repr(scale),
        ]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=child_env(), cwd=ROOT
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if "listening on " not in line:
            self.stop()
            raise SystemExit(f"the emulator did not start: {line!r}")
        self.url = check_local(line.rsplit(" ", 1)[1].strip())

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + "/_emulator/stats", timeout=5) as response:  # loopback only
            data: dict[str, Any] = json.loads(response.read())
            return data

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


async def run_botticelli(url: str, total: int, n: int, scale: float) -> tuple[int, int]:
    from botticelli import GenerateRequest, GroqDriver, Message

    # The plan's other limits (RPD, TPM) come from the catalog and the headers; the emulator's
    # N RPM is not the free plan's 30, and Groq sends no RPM header, so it is said explicitly.
    driver = GroqDriver(
        MODEL, api_key=api_key(), base_url=url, plan="free", limits={"rpm": n, "window_scale": scale}
    )
    request = GenerateRequest((Message.user(PROMPT),), max_tokens=MAX_TOKENS, temperature=TEMPERATURE)
    results = await asyncio.gather(*(driver.generate(request) for _ in range(total)), return_exceptions=True)
    await driver.aclose()
    failed = sum(isinstance(r, BaseException) for r in results)
    return total - failed, failed


async def run_groq(url: str, total: int, n: int, scale: float) -> tuple[int, int]:
    import groq

    client = groq.AsyncGroq(api_key=api_key(), base_url=url)  # default: max_retries=2

    async def one() -> object:
        return await client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": PROMPT}],
            max_completion_tokens=MAX_TOKENS,
            temperature=TEMPERATURE,
        )

    results = await asyncio.gather(*(one() for _ in range(total)), return_exceptions=True)
    await client.close()
    failed = sum(isinstance(r, BaseException) for r in results)
    return total - failed, failed


def measure(name: str, n: int, scale: float) -> Result:
    total = 3 * n
    window = 60.0 * scale
    emulator = EmulatorProcess(n, scale)
    try:
        runner = run_botticelli if name == "botticelli" else run_groq
        started = time.perf_counter()
        completed, failed = asyncio.run(runner(emulator.url, total, n, scale))
        seconds = time.perf_counter() - started
        stats = emulator.stats()
    finally:
        emulator.stop()
    return Result(name, total, completed, failed, int(stats["rate_limited"]), seconds, 2 * window)


def table(results: list[Result], n: int, scale: float) -> str:
    lines = [
        f"{3 * n} requests, emulator enforcing {n} requests per {60 * scale:g} s window "
        f"(theoretical minimum {results[0].minimum:.1f} s)",
        "",
        "| client | 429s received | completed | failed | wall time | / minimum |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.client} | {r.rate_limited} | {r.completed}/{r.sent} | {r.failed} | "
            f"{r.seconds:.2f} s | {r.ratio:.3f}x |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=100, help="requests allowed per window (default 100)")
    parser.add_argument("--scale", type=float, default=0.1, help="window scale: 0.1 = a 6 s minute")
    parser.add_argument("--clients", default="botticelli,groq", help="comma-separated: botticelli,groq")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args()
    results = [measure(name, args.n, args.scale) for name in args.clients.split(",")]
    print(table(results, args.n, args.scale))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump([r.__dict__ | {"ratio": r.ratio} for r in results], handle, indent=2)
    ok = all(r.rate_limited == 0 and r.ratio <= 1.1 for r in results if r.client == "botticelli")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
