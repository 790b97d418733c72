"""Per-call client CPU and time to first token of each new driver against its official SDK, on the
same emulator in another process, in one run (issue 12): ``AnthropicDriver`` against
``anthropic.AsyncAnthropic``, ``OllamaDriver`` against ``ollama.AsyncClient``.

    python bench/providers_bench.py            # about 2 minutes on 2 cores
    python bench/providers_bench.py --quick    # about 40 s
    python bench/providers_bench.py --markdown # the table as Markdown (for RESULTS.md)

Each cell is one fresh worker process for one (client, kind, concurrency): warm-up requests, then
``n`` calls by ``concurrency`` tasks; the process's CPU time (user + system) per call in µs, and
for streams the median time to the first text. The target: at most 0.6x the SDK's CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import statistics
import sys
import time
from typing import Any

from _harness import check_local, child_env, emulator, measure, report, rotated, spawn
from run import _version, machine_info

ANTHROPIC_KEY = "sk-ant-bench-" + "0123456789abcdef" * 2  # fake; the emulator takes any sk-ant- key
PROMPT = "Say hello in ten words."
KINDS = {"plain": 10, "stream50": 50}  # kind → max tokens
CONCURRENCY = (1, 16)
WIRES = {
    "anthropic": ("botticelli_anthropic", "anthropic_sdk"),
    "ollama": ("botticelli_ollama", "ollama_sdk"),
}
LABELS = {
    "botticelli_anthropic": "AnthropicDriver",
    "anthropic_sdk": "AsyncAnthropic",
    "botticelli_ollama": "OllamaDriver",
    "ollama_sdk": "ollama.AsyncClient",
}
MODELS = {"anthropic": "claude-haiku-5-5", "ollama": "llama3.2"}


# ---- the clients, each importing only its own library ------------------------------------------


class Botticelli:
    """A botticelli driver by spec (``anthropic:...``, ``ollama:...``); the same calls for both."""

    def __init__(self, spec: str, max_tokens: int, **options: Any) -> None:
        from botticelli import GenerateRequest, driver

        self._driver = driver(spec, **options)
        self._request = lambda: GenerateRequest.prompt(PROMPT, max_tokens=max_tokens)

    async def call(self) -> str:
        return (await self._driver.generate(self._request())).text

    async def stream(self) -> tuple[float, int]:
        started, first, count = time.perf_counter(), 0.0, 0
        async for chunk in self._driver.generate_stream(self._request()):
            if chunk.text:
                count += 1
                first = first or time.perf_counter() - started
        return first, count

    async def aclose(self) -> None:
        await self._driver.aclose()


class AnthropicSDK:
    """``AsyncAnthropic(...).messages.create``; streams through ``messages.stream`` and its
    ``text_stream``, the helper its documentation shows."""

    def __init__(self, url: str, max_tokens: int) -> None:
        import anthropic

        self._client = anthropic.AsyncAnthropic(api_key=ANTHROPIC_KEY, base_url=url, max_retries=2)
        self._max_tokens = max_tokens

    async def call(self) -> str:
        message = await self._client.messages.create(
            model=MODELS["anthropic"],
            max_tokens=self._max_tokens,
            messages=[{"role": "user", "content": PROMPT}],
        )
        return "".join(block.text for block in message.content if block.type == "text")

    async def stream(self) -> tuple[float, int]:
        started, first, count = time.perf_counter(), 0.0, 0
        async with self._client.messages.stream(
            model=MODELS["anthropic"],
            max_tokens=self._max_tokens,
            messages=[{"role": "user", "content": PROMPT}],
        ) as stream:
            async for text in stream.text_stream:
                if text:
                    count += 1
                    first = first or time.perf_counter() - started
        return first, count

    async def aclose(self) -> None:
        await self._client.close()


class OllamaSDK:
    def __init__(self, url: str, max_tokens: int) -> None:
        import ollama

        self._client = ollama.AsyncClient(host=url)
        self._options = {"num_predict": max_tokens}

    async def call(self) -> str:
        answer = await self._client.chat(
            model=MODELS["ollama"], messages=[{"role": "user", "content": PROMPT}], options=self._options
        )
        return answer.message.content or ""

    async def stream(self) -> tuple[float, int]:
        started, first, count = time.perf_counter(), 0.0, 0
        async for part in await self._client.chat(
            model=MODELS["ollama"],
            messages=[{"role": "user", "content": PROMPT}],
            options=self._options,
            stream=True,
        ):
            if part.message.content:
                count += 1
                first = first or time.perf_counter() - started
        return first, count

    async def aclose(self) -> None:
        close = getattr(self._client, "_client", None)
        if close is not None:
            await close.aclose()


def make(name: str, url: str, max_tokens: int) -> Any:
    if name == "botticelli_anthropic":
        return Botticelli(f"anthropic:{MODELS['anthropic']}", max_tokens, api_key=ANTHROPIC_KEY, base_url=url)
    if name == "botticelli_ollama":
        return Botticelli(f"ollama:{MODELS['ollama']}", max_tokens, base_url=url)
    return {"anthropic_sdk": AnthropicSDK, "ollama_sdk": OllamaSDK}[name](url, max_tokens)


# ---- one worker: one (client, kind, concurrency) ------------------------------------------------


async def _worker(name: str, url: str, kind: str, n: int, concurrency: int) -> dict[str, Any]:
    client = make(name, url, KINDS[kind])
    try:
        results, out = await measure(client.call if kind == "plain" else client.stream, n, concurrency)
    finally:
        await client.aclose()
    if kind == "plain":
        if not all(results):
            raise RuntimeError(f"{name}: an empty answer")
    else:
        if any(count < 3 for _, count in results):
            raise RuntimeError(f"{name}: a stream arrived in fewer than 3 pieces")
        out["ttft_ms"] = statistics.median(first for first, _ in results) * 1e3
    return out


# ---- the report ---------------------------------------------------------------------------------


def render(results: dict[str, Any], markdown: bool) -> str:
    out: list[str] = []
    for wire, (ours, sdk) in WIRES.items():
        if wire not in results:
            continue
        out.append(
            f"{wire}: client CPU µs per call / calls per s (÷ {LABELS[sdk]}); streams: time to first text"
        )
        header = ["kind", "concurrency", LABELS[ours], LABELS[sdk]]
        rows = []
        for kind, levels in results[wire].items():
            for c, cells in levels.items():
                a, b = cells[ours], cells[sdk]
                first = f"{a['cpu_us']:.0f} / {a['rps']:.0f} ({a['cpu_us'] / b['cpu_us']:.2f}×)"
                second = f"{b['cpu_us']:.0f} / {b['rps']:.0f}"
                if "ttft_ms" in a:
                    first += f" ttft {a['ttft_ms']:.2f} ms"
                    second += f" ttft {b['ttft_ms']:.2f} ms"
                rows.append([kind, str(c), first, second])
        if markdown:
            out += ["| " + " | ".join(header) + " |", "|---|---:|---:|---:|"]
            out += ["| " + " | ".join(r) + " |" for r in rows]
        else:
            widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
            out += [
                "  ".join(cell.rjust(w) for cell, w in zip(r, widths, strict=True)) for r in [header, *rows]
            ]
        out.append("")
    for check in checks(results):
        mark = "PASS" if check["pass"] else "FAIL"
        line = f"{check['target']}: {check['measured']}"
        out.append(f"- **{mark}** {line}" if markdown else f"{mark}  {line}")
    return "\n".join(out)


def checks(results: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for wire, (ours, sdk) in WIRES.items():
        for kind, levels in results.get(wire, {}).items():
            for c, cells in levels.items():
                a, b = cells[ours], cells[sdk]
                found.append(
                    {
                        "target": f"{wire} {kind} c={c}: CPU ≤ 0.6× {LABELS[sdk]}",
                        "measured": f"{a['cpu_us']:.0f} vs {b['cpu_us']:.0f} µs "
                        f"= {a['cpu_us'] / b['cpu_us']:.2f}×",
                        "pass": a["cpu_us"] <= 0.6 * b["cpu_us"],
                    }
                )
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--wires", default=",".join(WIRES))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--kind", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        result = asyncio.run(_worker(args.worker, check_local(args.url), args.kind, args.n, args.concurrency))
        report(result)
        return
    n = {"plain": 300, "stream50": 150} if args.quick else {"plain": 1500, "stream50": 600}
    rounds = 1 if args.quick else 3
    started = time.perf_counter()
    info = machine_info()
    results: dict[str, Any] = {}
    for wire in args.wires.split(","):
        names = list(WIRES[wire])
        with emulator(wire=wire) as emu:
            url = emu.url
            cells: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
            for r in range(rounds):
                for kind in KINDS:
                    for c in CONCURRENCY:
                        for name in rotated(names, r):
                            sys.stderr.write(
                                f"\r[{time.perf_counter() - started:6.1f}s] {wire} {kind} c={c} {name:<22}"
                            )
                            sys.stderr.flush()
                            cells.setdefault((kind, c, name), []).append(
                                spawn(__file__, name, url, kind, n[kind], c, child_env())
                            )
        for (kind, c, name), values in cells.items():
            results.setdefault(wire, {}).setdefault(kind, {}).setdefault(c, {})[name] = {
                key: statistics.median(v[key] for v in values) for key in values[0]
            }
    sys.stderr.write("\n")
    info["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    versions = {p: _version(p) for p in ("aiohttp", "anthropic", "httpx2", "httpx", "ollama")}
    print(
        f"{datetime.date.today()} · {info['python']} · {info['cpu']} · {info['usable_cpus']} usable CPUs · "
        f"load {info['load_average_at_start'][0]:.2f} → {info['load_average_at_end'][0]:.2f} · "
        + ", ".join(f"{k} {x}" for k, x in versions.items())
        + f" · {n['plain']} calls / {n['stream50']} streams per cell and round, {rounds} round(s), median"
        + f" · {time.perf_counter() - started:.0f} s\n"
    )
    print(render(results, args.markdown))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
