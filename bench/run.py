"""botticelli vs the official groq SDK vs raw httpx2, on one Groq emulator, in one run.

    python bench/run.py               # full run (about 2 minutes on 2 cores)
    python bench/run.py --quick       # shorter run (about 30 seconds)
    python bench/run.py --markdown    # the table as Markdown
    python bench/run.py --json out.json

The emulator runs in another process; every measurement of a client runs in a fresh child
process of its own, so one library's imports, caches and garbage never weigh on another's numbers.
See bench/README.md for what each number means and how it is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import gc
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from _harness import (
    CLIENTS,
    LABELS,
    MAX_TOKENS,
    MODEL,
    PROMPT,
    ROOT,
    TEMPERATURE,
    check_local,
    child_env,
    emulator,
    make_client,
    rotated,
    summary,
    wire_body,
)

RESULT_PREFIX = "BENCH_RESULT "


@dataclass(frozen=True)
class Config:
    import_reps: int
    rounds: int  # fresh worker processes per client, alternating the order of the clients
    calls: int  # measured non-streaming calls per worker
    call_warmup: int
    call_blocks: int  # the calls of a worker are timed in this many blocks (the spread)
    streams: int  # measured streams per worker
    stream_warmup: int

    @staticmethod
    def full() -> Config:
        return Config(
            import_reps=20,
            rounds=5,
            calls=2000,
            call_warmup=200,
            call_blocks=10,
            streams=500,
            stream_warmup=50,
        )

    @staticmethod
    def quick() -> Config:
        return Config(
            import_reps=8,
            rounds=2,
            calls=1000,
            call_warmup=100,
            call_blocks=10,
            streams=200,
            stream_warmup=20,
        )


# ---- import / construct / cold start: one fresh interpreter per sample -----------------------

# Self-contained on purpose: importing anything beyond what the client itself needs (json,
# dataclasses, asyncio...) before the measured import would hide part of its cost.
_COLD_START = """\
import os, sys, time
def rss():
    try:
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')
    except OSError:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
KEY = os.environ['BOTTICELLI_BENCH_KEY']
URL = os.environ['BENCH_URL']
r0 = rss()
t0 = time.perf_counter()
{import_}
t1 = time.perf_counter()
r1 = rss()
{construct}
t2 = time.perf_counter()
r2 = rss()
import asyncio
async def main():
{first}
text = asyncio.run(main())
t3 = time.perf_counter()
r3 = rss()
assert text, 'empty answer'
sys.stdout.write('%r %r %r %r %r %r\\n' % (t1 - t0, t2 - t0, t3 - t0, r1 - r0, r2 - r0, r3 - r0))
"""

_SNIPPETS = {
    "botticelli": (
        "import botticelli",
        "from botticelli import GroqDriver\n"
        "driver = GroqDriver({model!r}, api_key=KEY, base_url=URL, plan='unlimited')",
        "    from botticelli import GenerateRequest, Message\n"
        "    request = GenerateRequest((Message.user({prompt!r}),), max_tokens={max_tokens}, "
        "temperature={temperature!r})\n"
        "    response = await driver.generate(request)\n"
        "    await driver.aclose()\n"
        "    return response.text",
    ),
    "groq": (
        "import groq",
        "client = groq.AsyncGroq(api_key=KEY, base_url=URL, max_retries=2)",
        "    completion = await client.chat.completions.create(model={model!r}, "
        "messages=[{{'role': 'user', 'content': {prompt!r}}}], max_completion_tokens={max_tokens}, "
        "temperature={temperature!r})\n"
        "    await client.close()\n"
        "    return completion.choices[0].message.content",
    ),
    "httpx2": (
        "import httpx2",
        "client = httpx2.AsyncClient(headers={{'authorization': 'Bearer ' + KEY, "
        "'content-type': 'application/json'}}, timeout=60.0)\n"
        "body = {body!r}",
        "    response = await client.post(URL + '/openai/v1/chat/completions', content=body)\n"
        "    data = response.json()\n"
        "    await client.aclose()\n"
        "    return data['choices'][0]['message']['content']",
    ),
}


def cold_start_code(client: str, model: str) -> str:
    body = json.dumps(wire_body(stream=False, model=model)).encode()
    values = {
        "model": model,
        "prompt": PROMPT,
        "max_tokens": MAX_TOKENS,
        "temperature": TEMPERATURE,
        "body": body,
    }
    import_, construct, first = (part.format(**values) for part in _SNIPPETS[client])
    return _COLD_START.format(import_=import_, construct=construct, first=first)


def measure_cold_starts(url: str, reps: int, model: str, progress: Callable[[str], None]) -> dict[str, Any]:
    """``reps`` fresh interpreters per client (plus one discarded to write byte-code caches),
    clients interleaved: import, import + construct, import → first response; RSS growth."""
    env = child_env(bytecode_cache=True)
    env["BENCH_URL"] = url
    samples: dict[str, dict[str, list[float]]] = {
        c: {k: [] for k in ("import", "construct", "first", "rss_import", "rss_construct", "rss_first")}
        for c in CLIENTS
    }
    codes = {c: cold_start_code(c, model) for c in CLIENTS}
    for rep in range(reps + 1):
        progress(f"cold starts {rep}/{reps}")
        for client in rotated(CLIENTS, rep):
            out = subprocess.run(
                [sys.executable, "-c", codes[client]],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=120,
            )
            if out.returncode != 0:
                raise SystemExit(f"{client} cold-start child failed:\n{out.stderr[-2000:]}")
            if rep == 0:
                continue  # the first child of each client compiles and caches byte-code
            values = [float(v) for v in out.stdout.split()]
            for key, value in zip(samples[client], values, strict=True):
                samples[client][key].append(value)
    return samples


# ---- per-call CPU and stream timings: one worker process per client and round ---------------


class ConnectionCounter:
    """Counts TCP connections the client opens, by wrapping this event loop's
    ``create_connection`` (which anyio, under httpx and httpx2 alike, calls for every new
    connection). Only the benchmark's own loop object is touched, no library code."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        original = loop.create_connection
        self.count = 0

        async def counting(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return await original(*args, **kwargs)

        loop.create_connection = counting  # type: ignore[method-assign]


async def _calls_worker(
    client_name: str, url: str, model: str, n: int, warmup: int, blocks: int
) -> dict[str, Any]:
    client = make_client(client_name, url, model)
    try:
        for _ in range(warmup):
            await client.call()
        gc.collect()
        connections = ConnectionCounter()
        size = max(1, n // blocks)
        cpu: list[float] = []
        wall: list[float] = []
        for _ in range(blocks):
            c0, w0 = time.process_time(), time.perf_counter()
            for _ in range(size):
                await client.call()
            cpu.append((time.process_time() - c0) / size)
            wall.append((time.perf_counter() - w0) / size)
        return {"cpu": cpu, "wall": wall, "connections": [100 * connections.count / (size * blocks)]}
    finally:
        await client.aclose()


async def _streams_worker(
    client_name: str, url: str, model: str, n: int, warmup: int, blocks: int
) -> dict[str, Any]:
    client = make_client(client_name, url, model)
    try:
        for _ in range(warmup):
            await client.stream()
        gc.collect()
        connections = ConnectionCounter()
        size = max(1, n // blocks)
        ttft: list[float] = []
        total: list[float] = []
        cpu: list[float] = []
        for _ in range(blocks):
            c0 = time.process_time()
            for _ in range(size):
                first, end, text = await client.stream()
                if first <= 0 or not text:
                    raise RuntimeError(f"{client_name}: the stream carried no content")
                ttft.append(first)
                total.append(end)
            cpu.append((time.process_time() - c0) / size)
        connections_per_100 = 100 * connections.count / (size * blocks)
        return {"ttft": ttft, "total": total, "cpu": cpu, "connections": [connections_per_100]}
    finally:
        await client.aclose()


async def _check_worker(client_name: str, url: str, model: str) -> dict[str, Any]:
    client = make_client(client_name, url, model)
    try:
        text = await client.call()
        first, _, streamed = await client.stream()
        return {"text": text, "streamed": streamed, "ttft": first}
    finally:
        await client.aclose()


def run_worker(args: argparse.Namespace) -> None:
    url = check_local(args.url)
    if args.worker == "check":
        result = asyncio.run(_check_worker(args.client, url, args.model))
    elif args.worker == "calls":
        result = asyncio.run(_calls_worker(args.client, url, args.model, args.n, args.warmup, args.blocks))
    else:
        result = asyncio.run(_streams_worker(args.client, url, args.model, args.n, args.warmup, args.blocks))
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")


def spawn_worker(
    kind: str, client: str, url: str, model: str, n: int = 0, warmup: int = 0, blocks: int = 1
) -> Any:
    command = [sys.executable, __file__, "--worker", kind, "--client", client, "--url", url, "--model", model]
    command += ["--n", str(n), "--warmup", str(warmup), "--blocks", str(blocks)]
    out = subprocess.run(command, env=child_env(), cwd=ROOT, capture_output=True, text=True, timeout=600)
    lines = [line for line in out.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if out.returncode != 0 or not lines:
        raise SystemExit(f"{client} {kind} worker failed:\n{out.stderr[-3000:]}")
    return json.loads(lines[-1][len(RESULT_PREFIX) :])


# ---- the report ---------------------------------------------------------------------------------


@dataclass
class Row:
    metric: str
    unit: str
    scale: float  # seconds (or bytes) → unit
    digits: int
    samples: dict[str, list[float]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.metric} [{self.unit}]" if self.unit else self.metric

    def stats(self, client: str) -> dict[str, float] | None:
        values = self.samples.get(client)
        if not values:
            return None
        return summary([v * self.scale for v in values])

    def cell(self, client: str) -> str:
        s = self.stats(client)
        if s is None:
            return "n/a"
        return f"{s['median']:.{self.digits}f} (p90 {s['p90']:.{self.digits}f})"

    def ratio(self) -> str:
        b, g = self.stats("botticelli"), self.stats("groq")
        if b is None or g is None or not g["median"]:
            return "n/a"
        return f"{b['median'] / g['median']:.2f}×"


def build_rows(cold: dict[str, Any], calls: dict[str, Any], streams: dict[str, Any]) -> list[Row]:
    ms, us, mib = 1e3, 1e6, 1 / (1024 * 1024)
    rows = [
        Row("import time", "ms", ms, 1, {c: cold[c]["import"] for c in CLIENTS}),
        Row("import + construct client", "ms", ms, 1, {c: cold[c]["construct"] for c in CLIENTS}),
        Row("cold start: import → first response", "ms", ms, 1, {c: cold[c]["first"] for c in CLIENTS}),
        Row("RSS growth: import", "MiB", mib, 1, {c: cold[c]["rss_import"] for c in CLIENTS}),
        Row("RSS growth: import → first response", "MiB", mib, 1, {c: cold[c]["rss_first"] for c in CLIENTS}),
        Row("client CPU per call", "µs", us, 0, {c: calls[c]["cpu"] for c in CLIENTS}),
        Row("wall time per call (incl. server)", "µs", us, 0, {c: calls[c]["wall"] for c in CLIENTS}),
        Row("stream: time to first token", "ms", ms, 2, {c: streams[c]["ttft"] for c in CLIENTS}),
        Row(
            f"stream: time to end ({MAX_TOKENS} tokens)",
            "ms",
            ms,
            2,
            {c: streams[c]["total"] for c in CLIENTS},
        ),
        Row("client CPU per stream", "µs", us, 0, {c: streams[c]["cpu"] for c in CLIENTS}),
        Row("TCP connections opened per 100 calls", "", 1, 1, {c: calls[c]["connections"] for c in CLIENTS}),
        Row(
            "TCP connections opened per 100 streams",
            "",
            1,
            1,
            {c: streams[c]["connections"] for c in CLIENTS},
        ),
    ]
    return rows


def targets(rows: list[Row]) -> list[dict[str, Any]]:
    by_metric = {r.metric: r for r in rows}

    def med(metric: str, client: str) -> float:
        s = by_metric[metric].stats(client)
        assert s is not None
        return s["median"]

    imp_b, imp_g = med("import time", "botticelli"), med("import time", "groq")
    cpu_b, cpu_g = med("client CPU per call", "botticelli"), med("client CPU per call", "groq")
    ttft_b = med("stream: time to first token", "botticelli")
    ttft_h = med("stream: time to first token", "httpx2")
    return [
        {
            "target": "import botticelli ≤ 0.5× import groq",
            "measured": f"{imp_b:.1f} ms vs {imp_g:.1f} ms = {imp_b / imp_g:.2f}×",
            "pass": imp_b <= 0.5 * imp_g,
        },
        {
            "target": "client CPU per call ≤ 0.6× groq SDK",
            "measured": f"{cpu_b:.0f} µs vs {cpu_g:.0f} µs = {cpu_b / cpu_g:.2f}×",
            "pass": cpu_b <= 0.6 * cpu_g,
        },
        {
            "target": "botticelli TTFT ≤ raw httpx2 TTFT + 0.5 ms",
            "measured": f"{ttft_b:.2f} ms vs {ttft_h:.2f} ms ({ttft_b - ttft_h:+.2f} ms)",
            "pass": ttft_b <= ttft_h + 0.5,
        },
    ]


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_info() -> dict[str, Any]:
    cpu_model = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "cpu": cpu_model,
        "cpu_count": os.cpu_count(),
        "usable_cpus": affinity,
        "load_average_at_start": [round(x, 2) for x in load],
        "versions": {p: _version(p) for p in ("botticelli", "groq", "httpx", "httpx2", "aiohttp", "orjson")},
    }


def render_text(
    rows: list[Row], checks: list[dict[str, Any]], info: dict[str, Any], config: dict[str, Any]
) -> str:
    header = ["metric (median, p90)", *(LABELS[c] for c in CLIENTS), "botticelli ÷ groq"]
    body = [[r.label, *(r.cell(c) for c in CLIENTS), r.ratio()] for r in rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    out = [_machine_line(info), _config_line(config), ""]
    fmt = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    out.append(fmt.format(*header))
    out.append("  ".join("-" * w for w in widths))
    out.extend(fmt.format(*line) for line in body)
    out.append("")
    out.extend(f"{'PASS' if c['pass'] else 'FAIL'}  {c['target']}: {c['measured']}" for c in checks)
    return "\n".join(out)


def render_markdown(
    rows: list[Row], checks: list[dict[str, Any]], info: dict[str, Any], config: dict[str, Any]
) -> str:
    out = [_machine_line(info), "", _config_line(config), ""]
    out.append(
        "| metric (median, p90) | " + " | ".join(LABELS[c] for c in CLIENTS) + " | botticelli ÷ groq |"
    )
    out.append("|---|" + "---:|" * (len(CLIENTS) + 1))
    out.extend(f"| {r.label} | " + " | ".join(r.cell(c) for c in CLIENTS) + f" | {r.ratio()} |" for r in rows)
    out.append("")
    out.extend(f"- **{'PASS' if c['pass'] else 'FAIL'}** {c['target']}: {c['measured']}" for c in checks)
    return "\n".join(out)


def _machine_line(info: dict[str, Any]) -> str:
    v = info["versions"]
    return (
        f"{info['date']} · {info['python']} · {info['platform']} · {info['cpu']} · "
        f"{info['cpu_count']} CPUs ({info['usable_cpus']} usable) · load average at start "
        f"{info['load_average_at_start'][0]:.2f}, at end {info.get('load_average_at_end', ['?'])[0]} · "
        f"botticelli {v['botticelli']}, groq {v['groq']} (httpx {v['httpx']}), httpx2 {v['httpx2']}"
    )


def _config_line(config: dict[str, Any]) -> str:
    return (
        f"model {config['model']}, max_completion_tokens {MAX_TOKENS}, emulator token delay "
        f"{config['token_delay']} s; {config['import_reps']} fresh interpreters per client for import/cold "
        f"start; {config['rounds']} worker process(es) per client × {config['calls']} calls "
        f"(after {config['call_warmup']} warm-up) and × {config['streams']} streams "
        f"(after {config['stream_warmup']} warm-up)"
    )


# ---- main -----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (about 30 s)")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--json", metavar="PATH", help="also write all results as JSON to PATH")
    parser.add_argument("--model", default=MODEL, help=f"model id sent by every client (default {MODEL})")
    parser.add_argument(
        "--token-delay", type=float, default=0.0, help="emulator seconds between stream tokens (default 0)"
    )
    parser.add_argument(
        "--url", help="use an already running loopback server instead of starting the emulator"
    )
    # Internal: one measurement in this (fresh) process.
    parser.add_argument("--worker", choices=("check", "calls", "streams"), help=argparse.SUPPRESS)
    parser.add_argument("--client", choices=CLIENTS, help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--blocks", type=int, default=1, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        run_worker(args)
        return
    config = Config.quick() if args.quick else Config.full()
    started = time.perf_counter()

    def progress(message: str) -> None:
        sys.stderr.write(f"\r[{time.perf_counter() - started:5.1f}s] {message:<60}")
        sys.stderr.flush()

    info = machine_info()
    calls: dict[str, dict[str, list[float]]] = {
        c: {"cpu": [], "wall": [], "connections": []} for c in CLIENTS
    }
    streams: dict[str, dict[str, list[float]]] = {
        c: {"ttft": [], "total": [], "cpu": [], "connections": []} for c in CLIENTS
    }
    with emulator(token_delay=args.token_delay, url=args.url) as emu:
        progress("checking that every client gets the same answer")
        answers = {c: spawn_worker("check", c, emu.url, args.model) for c in CLIENTS}
        texts = {(a["text"], a["streamed"]) for a in answers.values()}
        if len(texts) != 1 or not all(a["text"] and a["streamed"] for a in answers.values()):
            raise SystemExit(f"the clients disagree or got empty answers: {answers}")
        cold = measure_cold_starts(emu.url, config.import_reps, args.model, progress)
        for r in range(config.rounds):
            for client in rotated(CLIENTS, r):
                progress(f"round {r + 1}/{config.rounds}: {LABELS[client]} calls")
                result = spawn_worker(
                    "calls", client, emu.url, args.model, config.calls, config.call_warmup, config.call_blocks
                )
                for key in calls[client]:
                    calls[client][key] += result[key]
            for client in rotated(CLIENTS, r + 1):
                progress(f"round {r + 1}/{config.rounds}: {LABELS[client]} streams")
                result = spawn_worker(
                    "streams",
                    client,
                    emu.url,
                    args.model,
                    config.streams,
                    config.stream_warmup,
                    config.call_blocks,
                )
                for key in streams[client]:
                    streams[client][key] += result[key]
    if hasattr(os, "getloadavg"):
        info["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    progress(f"done in {time.perf_counter() - started:.0f} s")
    sys.stderr.write("\n")

    rows = build_rows(cold, calls, streams)
    checks = targets(rows)
    run_config = {
        **config.__dict__,
        "model": args.model,
        "token_delay": args.token_delay,
        "quick": args.quick,
        "elapsed_s": round(time.perf_counter() - started, 1),
    }
    render = render_markdown if args.markdown else render_text
    print(render(rows, checks, info, run_config))
    if args.json:
        document = {
            "machine": info,
            "config": run_config,
            "metrics": [
                {
                    "metric": r.metric,
                    "unit": r.unit,
                    **{c: r.stats(c) for c in CLIENTS},
                    "botticelli_over_groq": r.ratio(),
                }
                for r in rows
            ],
            "targets": checks,
        }
        with open(args.json, "w") as f:
            json.dump(document, f, indent=2, ensure_ascii=False)
            f.write("\n")


if __name__ == "__main__":
    main()
