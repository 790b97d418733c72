"""Batch throughput: 2,000 requests through botticelli's ``generate_batch`` vs the official async
groq SDK driven with ``asyncio.gather`` under a semaphore of the same concurrency.

    python bench/batch_bench.py                      # 2,000 requests, concurrency 8 and 64, 3 rounds
    python bench/batch_bench.py --quick              # 1 round
    python bench/batch_bench.py -n 500 -c 16 --markdown

The emulator runs in another process (no limits enforced, no token delay: the server answers at
once, so the number measures the client). Every batch runs in a fresh child process of its own,
after a warm-up batch of ``concurrency * 4`` requests that opens the connections, and the clients
alternate order each round. Each request has its own prompt (``... #i``) so no client can answer
from a cache. Reported: requests per second (wall clock over the whole batch) and client CPU
milliseconds per request (``time.process_time`` of the child: what the batch costs the caller).
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import statistics
import subprocess
import sys
import time
from typing import Any

from _harness import MAX_TOKENS, MODEL, PROMPT, ROOT, TEMPERATURE, api_key, check_local, child_env, emulator

RESULT_PREFIX = "BATCH_RESULT "
BATCH_CLIENTS = ("botticelli", "groq")
LABELS = {"botticelli": "botticelli generate_batch", "groq": "groq SDK gather+semaphore"}


# ---- workers (one per child process) ------------------------------------------------------------


async def _botticelli(url: str, n: int, concurrency: int, warmup: int) -> dict[str, Any]:
    from botticelli import GenerateRequest, GroqDriver, Message
    from botticelli.batch import generate_batch

    options: dict[str, Any] = {"api_key": api_key(), "base_url": url}
    if "plan" in inspect.signature(GroqDriver).parameters:
        options["plan"] = "unlimited"  # the emulator enforces nothing; don't pace client-side
    driver = GroqDriver(MODEL, **options)

    def requests(count: int, tag: str) -> list[GenerateRequest]:
        return [
            GenerateRequest(
                (Message.user(f"{PROMPT} {tag}{i}"),), max_tokens=MAX_TOKENS, temperature=TEMPERATURE
            )
            for i in range(count)
        ]

    async with driver:
        await generate_batch(driver, requests(warmup, "w"), concurrency=concurrency)
        batch = requests(n, "#")
        cpu, wall = time.process_time(), time.perf_counter()
        results = await generate_batch(driver, batch, concurrency=concurrency)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    errors = [str(r.error) for r in results if r.error is not None]
    return {"wall": wall, "cpu": cpu, "ok": len(results) - len(errors), "errors": errors[:3]}


async def _groq(url: str, n: int, concurrency: int, warmup: int) -> dict[str, Any]:
    import groq

    client = groq.AsyncGroq(api_key=api_key(), base_url=url, max_retries=2)
    semaphore = asyncio.Semaphore(concurrency)

    async def one(prompt: str) -> Any:
        async with semaphore:
            return await client.chat.completions.create(
                model=MODEL,
                messages=[{"role": "user", "content": prompt}],
                max_completion_tokens=MAX_TOKENS,
                temperature=TEMPERATURE,
            )

    async def run(count: int, tag: str) -> list[Any]:
        return await asyncio.gather(
            *(one(f"{PROMPT} {tag}{i}") for i in range(count)), return_exceptions=True
        )

    try:
        await run(warmup, "w")
        cpu, wall = time.process_time(), time.perf_counter()
        results = await run(n, "#")
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        await client.close()
    errors = [str(r) for r in results if isinstance(r, BaseException)]
    return {"wall": wall, "cpu": cpu, "ok": len(results) - len(errors), "errors": errors[:3]}


def run_worker(client: str, url: str, n: int, concurrency: int) -> None:
    work = _botticelli if client == "botticelli" else _groq
    result = asyncio.run(work(check_local(url), n, concurrency, warmup=concurrency * 4))
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")


def spawn(client: str, url: str, n: int, concurrency: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--worker", client, "--url", url, "-n", str(n)]
    command += ["-c", str(concurrency)]
    out = subprocess.run(command, env=child_env(), cwd=ROOT, capture_output=True, text=True, timeout=900)
    lines = [line for line in out.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if out.returncode != 0 or not lines:
        raise SystemExit(f"{client} worker failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1][len(RESULT_PREFIX) :])
    if result["ok"] != n:
        raise SystemExit(f"{client}: only {result['ok']} of {n} requests succeeded: {result['errors']}")
    return result


# ---- driver and report -----------------------------------------------------------------------------


def table(n: int, samples: dict[tuple[str, int], list[dict[str, Any]]], markdown: bool) -> str:
    header = ["client", "concurrency", "requests/s", "client CPU ms/request", "wall s"]
    rows = []
    for (client, concurrency), runs in samples.items():
        rps = [n / r["wall"] for r in runs]
        cpu = [r["cpu"] * 1000 / n for r in runs]
        wall = [r["wall"] for r in runs]
        rows.append(
            [
                LABELS[client],
                str(concurrency),
                f"{statistics.median(rps):,.0f} ({min(rps):,.0f}–{max(rps):,.0f})",
                f"{statistics.median(cpu):.3f}",
                f"{statistics.median(wall):.2f}",
            ]
        )
    for concurrency in sorted({c for _, c in samples}):
        ours = statistics.median(n / r["wall"] for r in samples[("botticelli", concurrency)])
        theirs = statistics.median(n / r["wall"] for r in samples[("groq", concurrency)])
        rows.append(["botticelli / SDK throughput", str(concurrency), f"{ours / theirs:.2f}×", "", ""])
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in [header, *rows]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=2000, help="requests per batch (default 2000)")
    parser.add_argument(
        "-c", "--concurrency", type=int, action="append", help="concurrency (repeatable; default 8 and 64)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="fresh child processes per client (default 3)")
    parser.add_argument("--quick", action="store_true", help="one round")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--url", help="use an already running loopback emulator")
    parser.add_argument("--worker", choices=BATCH_CLIENTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    concurrencies = args.concurrency or [8, 64]
    if args.worker:
        run_worker(args.worker, args.url, args.n, concurrencies[0])
        return
    rounds = 1 if args.quick else args.rounds
    samples: dict[tuple[str, int], list[dict[str, Any]]] = {
        (client, c): [] for c in concurrencies for client in BATCH_CLIENTS
    }
    started = time.perf_counter()
    with emulator(url=args.url) as emu:
        for r in range(rounds):
            for concurrency in concurrencies:
                order = BATCH_CLIENTS if r % 2 == 0 else BATCH_CLIENTS[::-1]
                for client in order:
                    sys.stderr.write(
                        f"\r[{time.perf_counter() - started:5.1f}s] round {r + 1}/{rounds}: "
                        f"{client}, concurrency {concurrency}      "
                    )
                    sys.stderr.flush()
                    samples[(client, concurrency)].append(spawn(client, emu.url, args.n, concurrency))
    sys.stderr.write("\n")
    print(f"{args.n} requests per batch, {rounds} round(s), median (min–max) over rounds\n")
    print(table(args.n, samples, args.markdown))


if __name__ == "__main__":
    main()
