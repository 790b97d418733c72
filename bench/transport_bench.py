"""Client CPU and throughput at concurrency 1/16/128/512: botticelli against raw httpx2, raw
aiohttp and the official groq SDK (on httpx, and on aiohttp through ``DefaultAioHttpClient``),
plain calls and streams of 10 and 200 tokens, one emulator in another process (issue 10).

    python bench/transport_bench.py                 # full run (about 45 minutes on 2 cores)
    python bench/transport_bench.py --quick         # about 2 minutes
    python bench/transport_bench.py --markdown      # the tables as Markdown
    python bench/transport_bench.py --baseline-src ../main/src   # add "today": another checkout

Each cell is one fresh worker process for one (client, kind, concurrency): ``warm-up`` requests
(which also open the pool's connections), then ``n`` requests by ``concurrency`` tasks; the cell
shows the process's CPU time (user + system) per request in µs and the requests per second of
wall time. The emulator runs in its own process, so its work is not counted; with two or more
CPUs it is pinned to one and every client to another (``--no-pin``: shared), so the two never
compete for a core. Ratios are to raw aiohttp in the same run. Then whole-process start-up:
``import botticelli`` + ``GroqDriver(...)`` against ``import groq`` + ``AsyncGroq(...)``, and a
one-shot ``botticelli ask``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from _harness import (
    MODEL,
    PROMPT,
    ROOT,
    TEMPERATURE,
    api_key,
    check_local,
    child_env,
    emulator,
    measure,
    pin,
    pinned,
    report,
    rotated,
    spawn,
)
from run import _version, machine_info

CLIENTS = ("botticelli", "httpx2", "aiohttp", "groq", "groq_aiohttp")
LABELS = {
    "botticelli": "botticelli",
    "baseline": "botticelli (baseline)",
    "httpx2": "raw httpx2",
    "aiohttp": "raw aiohttp",
    "groq": "AsyncGroq (httpx)",
    "groq_aiohttp": "AsyncGroq + aiohttp",
}
KINDS = {"plain": 10, "stream10": 10, "stream200": 200}  # kind → max_completion_tokens
CONCURRENCY = (1, 16, 128, 512)


@dataclass(frozen=True)
class Plan:
    calls: int
    streams10: int
    streams200: int
    reps: int  # whole-process start-up samples per client
    rounds: int  # fresh workers per cell, the clients' order rotating; the cell is their median

    def n(self, kind: str) -> int:
        return {"plain": self.calls, "stream10": self.streams10, "stream200": self.streams200}[kind]


# Five rounds: on a shared VM three leave a cell's median at the mercy of one slow round.
FULL = Plan(calls=3000, streams10=1500, streams200=300, reps=20, rounds=5)
QUICK = Plan(calls=800, streams10=400, streams200=100, reps=4, rounds=1)


# ---- the clients, each importing only its own library ------------------------------------------


def body(max_tokens: int, *, stream: bool) -> bytes:
    data: dict[str, Any] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_completion_tokens": max_tokens,
        "temperature": TEMPERATURE,
    }
    if stream:
        data["stream"] = True
    return json.dumps(data).encode()


class Botticelli:
    def __init__(self, url: str, max_tokens: int) -> None:
        from botticelli import GenerateRequest, GroqDriver, Message

        self._driver = GroqDriver(MODEL, api_key=api_key(), base_url=url, plan="unlimited")
        self._request = lambda: GenerateRequest(
            (Message.user(PROMPT),), max_tokens=max_tokens, temperature=TEMPERATURE
        )

    async def call(self) -> str:
        return (await self._driver.generate(self._request())).text

    async def stream(self) -> tuple[float, int]:
        started = time.perf_counter()
        first = 0.0
        count = 0
        async for chunk in self._driver.generate_stream(self._request()):
            if chunk.text:
                count += 1
                if not first:
                    first = time.perf_counter() - started
        return first, count

    async def aclose(self) -> None:
        await self._driver.aclose()


class RawAiohttp:
    """The floor: one default ``aiohttp.ClientSession`` posting prebuilt bytes, the body parsed
    with orjson; streams read line by line (``async for line in response.content``), each
    ``data:`` line parsed until ``[DONE]``, the body read to its end so the connection is reused."""

    def __init__(self, url: str, max_tokens: int) -> None:
        import aiohttp
        import orjson

        self._loads = orjson.loads
        self._url = url + "/openai/v1/chat/completions"
        self._body, self._stream_body = body(max_tokens, stream=False), body(max_tokens, stream=True)
        self._session = aiohttp.ClientSession(
            headers={"authorization": f"Bearer {api_key()}", "content-type": "application/json"}
        )

    async def call(self) -> str:
        async with self._session.post(self._url, data=self._body) as response:
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}")
            data = self._loads(await response.read())
        return str(data["choices"][0]["message"]["content"])

    async def stream(self) -> tuple[float, int]:
        started = time.perf_counter()
        first = 0.0
        count = 0
        done = False
        async with self._session.post(self._url, data=self._stream_body) as response:
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}")
            async for line in response.content:
                if done or not line.startswith(b"data: "):
                    continue
                data = line[6:].rstrip()
                if data == b"[DONE]":
                    done = True
                    continue
                choices = self._loads(data).get("choices")
                if choices and choices[0]["delta"].get("content"):
                    count += 1
                    if not first:
                        first = time.perf_counter() - started
        return first, count

    async def aclose(self) -> None:
        await self._session.close()


class RawHttpx2:
    """One ``httpx2.AsyncClient`` posting prebuilt bytes (as ``bench/_harness.RawHttpx2Client``),
    parsed with orjson; streams by ``aiter_lines()``."""

    def __init__(self, url: str, max_tokens: int) -> None:
        import httpx2
        import orjson

        self._loads = orjson.loads
        self._url = url + "/openai/v1/chat/completions"
        self._body, self._stream_body = body(max_tokens, stream=False), body(max_tokens, stream=True)
        self._client = httpx2.AsyncClient(
            headers={"authorization": f"Bearer {api_key()}", "content-type": "application/json"},
            timeout=60.0,
        )

    async def call(self) -> str:
        response = await self._client.post(self._url, content=self._body)
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}")
        return str(self._loads(response.content)["choices"][0]["message"]["content"])

    async def stream(self) -> tuple[float, int]:
        started = time.perf_counter()
        first = 0.0
        count = 0
        done = False
        async with self._client.stream("POST", self._url, content=self._stream_body) as response:
            async for line in response.aiter_lines():
                if done or not line.startswith("data: "):
                    continue
                if line[6:] == "[DONE]":
                    done = True
                    continue
                choices = self._loads(line[6:]).get("choices")
                if choices and choices[0]["delta"].get("content"):
                    count += 1
                    if not first:
                        first = time.perf_counter() - started
        return first, count

    async def aclose(self) -> None:
        await self._client.aclose()


class Groq:
    """``AsyncGroq(...).chat.completions.create``; with ``aiohttp``, on ``DefaultAioHttpClient``."""

    def __init__(self, url: str, max_tokens: int, *, aiohttp: bool = False) -> None:
        import groq

        options: dict[str, Any] = {}
        if aiohttp:
            options["http_client"] = groq.DefaultAioHttpClient()
        self._client = groq.AsyncGroq(api_key=api_key(), base_url=url, max_retries=2, **options)
        self._max_tokens = max_tokens

    def _create(self, **extra: Any) -> Any:
        return self._client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": PROMPT}],
            max_completion_tokens=self._max_tokens,
            temperature=TEMPERATURE,
            **extra,
        )

    async def call(self) -> str:
        completion = await self._create()
        return completion.choices[0].message.content or ""

    async def stream(self) -> tuple[float, int]:
        started = time.perf_counter()
        first = 0.0
        count = 0
        async for chunk in await self._create(stream=True):
            if chunk.choices and chunk.choices[0].delta.content:
                count += 1
                if not first:
                    first = time.perf_counter() - started
        return first, count

    async def aclose(self) -> None:
        await self._client.close()


def make(name: str, url: str, max_tokens: int) -> Any:
    if name in ("botticelli", "baseline"):
        return Botticelli(url, max_tokens)
    if name == "aiohttp":
        return RawAiohttp(url, max_tokens)
    if name == "httpx2":
        return RawHttpx2(url, max_tokens)
    if name == "groq":
        return Groq(url, max_tokens)
    if name == "groq_aiohttp":
        return Groq(url, max_tokens, aiohttp=True)
    raise ValueError(name)


# ---- one worker: one (client, kind, concurrency) ----------------------------------------------


async def _worker(name: str, url: str, kind: str, n: int, concurrency: int) -> dict[str, Any]:
    max_tokens = KINDS[kind]
    client = make(name, url, max_tokens)
    try:
        results, out = await measure(client.call if kind == "plain" else client.stream, n, concurrency)
    finally:
        await client.aclose()
    if kind != "plain":
        if any(count < max_tokens * 0.9 for _, count in results):
            raise RuntimeError(f"{name}: a stream carried fewer than {max_tokens} tokens")
        out["ttft_ms"] = statistics.median(first for first, _ in results) * 1e3
    elif not all(results):
        raise RuntimeError(f"{name}: an empty answer")
    return out


def _spawn(
    name: str, url: str, kind: str, n: int, concurrency: int, baseline_src: str | None
) -> dict[str, Any]:
    env = child_env()
    if name == "baseline":
        assert baseline_src is not None
        env["PYTHONPATH"] = os.path.abspath(baseline_src)
    return spawn(__file__, name, url, kind, n, concurrency, env)


# ---- whole-process start-up ---------------------------------------------------------------------

_STARTUP = {
    "botticelli": "import botticelli\nbotticelli.GroqDriver({model!r}, api_key='gsk_' + 'x' * 48)",
    "baseline": "import botticelli\nbotticelli.GroqDriver({model!r}, api_key='gsk_' + 'x' * 48)",
    "groq": "import groq\ngroq.AsyncGroq(api_key='gsk_' + 'x' * 48)",
}


def startup(names: list[str], reps: int, url: str, baseline_src: str | None) -> dict[str, list[float]]:
    """Whole-process wall time (interpreter start-up included), fresh interpreters interleaved;
    the first of each writes its byte-code cache and is discarded."""
    samples: dict[str, list[float]] = {}
    for rep in range(reps + 1):
        for name in names:
            env = child_env(bytecode_cache=True)
            env["GROQ_BASE_URL"] = url
            if name == "baseline" or name == "ask baseline":
                assert baseline_src is not None
                env["PYTHONPATH"] = os.path.abspath(baseline_src)
            if name.startswith("ask"):
                env["GROQ_API_KEY"] = api_key()
                command = [sys.executable, "-m", "botticelli.cli", "ask", "-m", f"groq:{MODEL}", PROMPT]
            else:
                command = [sys.executable, "-c", _STARTUP[name].format(model=MODEL)]
            t0 = time.perf_counter()
            out = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
            elapsed = time.perf_counter() - t0
            if out.returncode != 0:
                raise SystemExit(f"{name} start-up failed:\n{out.stderr[-2000:]}")
            if rep:
                samples.setdefault(name, []).append(elapsed)
    return samples


# ---- the report ---------------------------------------------------------------------------------


def summary(
    cells: list[dict[str, Any]], floors: list[dict[str, Any]] | None, at16: list[dict[str, Any]] | None
) -> dict[str, Any]:
    """One cell over its rounds: the median of each measure, and the ratios as the median of each
    round's own ratio to raw aiohttp (measured seconds apart, so a machine whose speed drifts
    between rounds, as a shared VM's does, moves both sides of a ratio alike); ``rps_vs_16``:
    the same for its throughput against its own at concurrency 16."""
    out: dict[str, Any] = {key: statistics.median(cell[key] for cell in cells) for key in cells[0]}
    out["per_round"] = [{key: round(value, 2) for key, value in cell.items()} for cell in cells]
    if floors is not None and floors is not cells:
        out["cpu_ratio"] = statistics.median(
            c["cpu_us"] / f["cpu_us"] for c, f in zip(cells, floors, strict=True)
        )
        out["rps_ratio"] = statistics.median(c["rps"] / f["rps"] for c, f in zip(cells, floors, strict=True))
    if at16 is not None and at16 is not cells:
        out["rps_vs_16"] = statistics.median(c["rps"] / r["rps"] for c, r in zip(cells, at16, strict=True))
    return out


def cpu_ratio(cell: dict[str, Any], floor: dict[str, Any]) -> float:
    return float(cell.get("cpu_ratio", cell["cpu_us"] / floor["cpu_us"]))


def rps_ratio(cell: dict[str, Any], floor: dict[str, Any]) -> float:
    return float(cell.get("rps_ratio", cell["rps"] / floor["rps"]))


def render(results: dict[str, Any], starts: dict[str, list[float]], names: list[str], markdown: bool) -> str:
    out: list[str] = []
    for kind in results:
        title = {
            "plain": "non-streaming calls",
            "stream10": "streams, 10 tokens",
            "stream200": "streams, 200 tokens",
        }
        out.append(f"{title[kind]}: client CPU µs per request / requests/s (÷ raw aiohttp)")
        header = ["concurrency", *(LABELS[n] for n in names)]
        rows = []
        for c in results[kind]:
            floor = results[kind][c]["aiohttp"]
            row = [str(c)]
            for n in names:
                cell = results[kind][c][n]
                text = f"{cell['cpu_us']:.0f} / {cell['rps']:.0f}"
                if n != "aiohttp":
                    text += f" ({cpu_ratio(cell, floor):.2f}× / {rps_ratio(cell, floor):.2f}×)"
                if "ttft_ms" in cell and c == 1:
                    text += f" ttft {cell['ttft_ms']:.2f} ms"
                row.append(text)
            rows.append(row)
        out.extend(_table(header, rows, markdown))
        out.append("")
    med = {name: statistics.median(values) * 1e3 for name, values in starts.items()}
    out.append("whole process, median ms: " + ", ".join(f"{k} {v:.0f}" for k, v in med.items()))
    out.append("")
    for check in checks(results, med, names):
        mark = "PASS" if check["pass"] else "FAIL"
        out.append(
            f"- **{mark}** {check['target']}: {check['measured']}"
            if markdown
            else f"{mark}  {check['target']}: {check['measured']}"
        )
    return "\n".join(out)


def _table(header: list[str], rows: list[list[str]], markdown: bool) -> list[str]:
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---:|" * len(header)]
        return lines + ["| " + " | ".join(row) + " |" for row in rows]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:>{w}}}" for w in widths)
    return [fmt.format(*header), *(fmt.format(*row) for row in rows)]


def checks(results: dict[str, Any], med: dict[str, float], names: list[str]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    plain = results.get("plain", {})
    for c in plain:
        b, a = plain[c]["botticelli"], plain[c]["aiohttp"]
        cpu, rps = cpu_ratio(b, a), rps_ratio(b, a)
        found.append(
            {
                "target": f"plain c={c}: CPU ≤ 1.3× raw aiohttp, throughput ≥ 0.75×",
                "measured": f"{b['cpu_us']:.0f} vs {a['cpu_us']:.0f} µs, {cpu:.2f}×; "
                f"{b['rps']:.0f} vs {a['rps']:.0f} req/s, {rps:.2f}×",
                "pass": cpu <= 1.3 and rps >= 0.75,
            }
        )
    if 16 in plain and 512 in plain:
        r16, r512 = plain[16]["botticelli"]["rps"], plain[512]["botticelli"]
        fall = float(r512.get("rps_vs_16", r512["rps"] / r16))
        found.append(
            {
                "target": "plain: throughput does not fall from c=16 to c=512 (within 5 % noise)",
                "measured": f"{r16:.0f} → {r512['rps']:.0f} req/s, {fall:.2f}×",
                "pass": fall >= 0.95,
            }
        )
    for kind in ("stream10", "stream200"):
        for c in results.get(kind, {}):
            b, a = results[kind][c]["botticelli"], results[kind][c]["aiohttp"]
            cpu = cpu_ratio(b, a)
            found.append(
                {
                    "target": f"{kind} c={c}: CPU ≤ 1.3× raw aiohttp",
                    "measured": f"{b['cpu_us']:.0f} vs {a['cpu_us']:.0f} µs, {cpu:.2f}×",
                    "pass": cpu <= 1.3,
                }
            )
    if "baseline" in names:
        for kind in (k for k in ("stream10", "stream200") if 1 in results.get(k, {})):
            b, t = results[kind][1]["botticelli"]["ttft_ms"], results[kind][1]["baseline"]["ttft_ms"]
            found.append(
                {
                    "target": f"{kind} c=1: time to first token ≤ the baseline's (today's)",
                    "measured": f"{b:.2f} vs {t:.2f} ms",
                    "pass": b <= t,
                }
            )
    if "groq" in med:
        b, g = med["botticelli"], med["groq"]
        found.append(
            {
                "target": "import botticelli + GroqDriver ≤ 0.5× import groq + AsyncGroq (whole process)",
                "measured": f"{b:.0f} vs {g:.0f} ms = {b / g:.2f}×",
                "pass": b <= 0.5 * g,
            }
        )
    if "ask baseline" in med:
        b, t = med["ask"], med["ask baseline"]
        found.append(
            {
                "target": "one-shot `botticelli ask` (whole process) not slower than the baseline's",
                "measured": f"{b:.0f} vs {t:.0f} ms",
                "pass": b <= t * 1.02,
            }
        )
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--rounds", type=int, help="fresh workers per cell (default: 5, quick: 1)")
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument(
        "--baseline-src", metavar="DIR", help="another checkout's src/ for the 'today' column"
    )
    parser.add_argument("--kinds", default=",".join(KINDS), help="subset of plain,stream10,stream200")
    parser.add_argument("--clients", default=",".join(CLIENTS))
    parser.add_argument(
        "--concurrency", default=",".join(map(str, CONCURRENCY)), help="levels, or a worker's one"
    )
    parser.add_argument("--from-json", metavar="PATH", help="render the tables of an earlier --json run")
    parser.add_argument(
        "--no-pin", action="store_true", help="let the emulator and the clients share every CPU"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--kind", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        result = asyncio.run(
            _worker(args.worker, check_local(args.url), args.kind, args.n, int(args.concurrency))
        )
        report(result)
        return
    if args.from_json:
        with open(args.from_json) as f:
            saved = json.load(f)
        loaded = {k: {int(c): cells for c, cells in v.items()} for k, v in saved["results"].items()}
        present = list(next(iter(next(iter(loaded.values())).values())))
        print(render(loaded, saved["startup"], present, args.markdown))
        return
    levels = tuple(int(c) for c in args.concurrency.split(","))
    plan = QUICK if args.quick else FULL
    if args.rounds:
        plan = dataclasses.replace(plan, rounds=args.rounds)
    names = args.clients.split(",")
    if args.baseline_src:
        names.insert(1, "baseline")
    kinds = args.kinds.split(",")
    started = time.perf_counter()
    info = machine_info()
    results: dict[str, Any] = {}
    cpus = None if args.no_pin else pinned()
    info["pinned"] = cpus
    with emulator(reply_tokens=400, cpu=cpus[0] if cpus else None) as emu:
        if cpus:
            pin(cpus[1])  # this process, and so every worker and start-up child it runs
        rounds: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
        for r in range(plan.rounds):
            for kind in kinds:
                for c in levels:
                    for name in rotated(names, r):
                        elapsed = time.perf_counter() - started
                        sys.stderr.write(f"\r[{elapsed:6.1f}s] round {r + 1} {kind} c={c} {name:<14}")
                        sys.stderr.flush()
                        cell = _spawn(name, emu.url, kind, plan.n(kind), c, args.baseline_src)
                        rounds.setdefault((kind, c, name), []).append(cell)
        for (kind, c, name), cells in rounds.items():
            results.setdefault(kind, {}).setdefault(c, {})[name] = summary(
                cells, rounds.get((kind, c, "aiohttp")), rounds.get((kind, 16, name))
            )
        sys.stderr.write("\n")
        start_names = ["botticelli", "groq", "ask"]
        if args.baseline_src:
            start_names += ["baseline", "ask baseline"]
        starts = startup(start_names, plan.reps, emu.url, args.baseline_src)
    info["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    v = {p: _version(p) for p in ("aiohttp", "httpx", "httpx2", "groq", "httpx-aiohttp", "orjson")}
    print(
        f"{datetime.date.today()} · {info['python']} · {info['cpu']} · {info['usable_cpus']} usable CPUs · "
        f"load {info['load_average_at_start'][0]:.2f} → {info['load_average_at_end'][0]:.2f} · "
        + ", ".join(f"{k} {x}" for k, x in v.items())
        + f" · {'quick' if args.quick else 'full'}: {plan.calls} calls, {plan.streams10} / "
        f"{plan.streams200} streams per cell and round, {plan.rounds} round(s) (median shown)"
        + (f" · emulator pinned to CPU {cpus[0]}, clients to CPU {cpus[1]}" if cpus else " · unpinned")
        + f" · {time.perf_counter() - started:.0f} s\n"
    )
    print(render(results, starts, names, args.markdown))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "results": results, "startup": starts}, f, indent=2)


if __name__ == "__main__":
    main()
