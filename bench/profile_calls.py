"""Where botticelli's per-call CPU goes: cProfile over N sequential ``GroqDriver.generate`` calls
(or ``generate_stream`` streams with ``--stream``) against the emulator in another process.

    python bench/profile_calls.py                 # 2000 non-streaming calls
    python bench/profile_calls.py --stream -n 500 # 500 streams
    python bench/profile_calls.py --top 40 --save bench/out/calls.prof

Prints the unprofiled CPU per call first, then the split by package of the profiled self time
(time blocked in ``epoll`` waiting for the server is set apart, as it is not client CPU) scaled to
that unprofiled CPU, then the top functions by self time and by cumulative time.

The profiler's clock is wall time by default: a CPU-time clock (``--timer cpu``) is exact about
waiting but costs a system call per event, which inflates small functions about tenfold.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import pstats
import sys
import time
from collections import defaultdict
from pathlib import Path

from _harness import MODEL, OUT_DIR, BotticelliClient, emulator

_PACKAGES = ("botticelli", "httpx2", "httpcore2", "anyio", "h11", "asyncio", "orjson", "idna", "truststore")


def package_of(filename: str) -> str:
    path = filename.replace("\\", "/")
    for name in _PACKAGES:
        if f"/{name}/" in path:
            return name
    if path.startswith("~") or path.startswith("<"):
        return "builtins / C"
    if "/bench/" in path:
        return "bench harness"
    return "other stdlib"


async def _run(
    url: str, n: int, warmup: int, stream: bool, model: str, timer: str
) -> tuple[float, cProfile.Profile]:
    client = BotticelliClient(url, model)

    async def one() -> None:
        if stream:
            await client.stream()
        else:
            await client.call()

    try:
        for _ in range(warmup):
            await one()
        gc.collect()
        c0 = time.process_time()
        for _ in range(n):
            await one()
        plain = (time.process_time() - c0) / n
        profile = cProfile.Profile(time.process_time if timer == "cpu" else time.perf_counter)
        profile.enable()
        for _ in range(n):
            await one()
        profile.disable()
        return plain, profile
    finally:
        await client.aclose()


def _is_wait(filename: str, func: str) -> bool:
    return filename == "~" and "poll" in func and "epoll" in func


def report(plain: float, profile: cProfile.Profile, n: int, top: int, what: str) -> None:
    stats = pstats.Stats(profile)
    raw = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values())
    waiting = sum(v[2] for k, v in raw.items() if _is_wait(k[0], k[2]))
    busy = total - waiting
    print(f"unprofiled client CPU per {what}: {plain * 1e6:.0f} µs")
    print(
        f"profiled: {total / n * 1e6:.0f} µs per {what}, of which {waiting / n * 1e6:.0f} µs blocked in "
        f"epoll (waiting for the server); the profiler inflates the rest {busy / n / plain:.1f}×\n"
    )
    by_package: dict[str, float] = defaultdict(float)
    for (filename, _, func), (_, _, tottime, _, _) in raw.items():
        if not _is_wait(filename, func):
            by_package[package_of(filename)] += tottime
    print(f"self time by package, epoll wait excluded (share; ≈ µs of the unprofiled CPU per {what})")
    for name, seconds in sorted(by_package.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<16} {seconds / busy:6.1%}  {seconds / busy * plain * 1e6:7.1f}")
    rows = []
    for (filename, line, func), (_, nc, tottime, cumtime, _) in raw.items():
        short = filename.split("site-packages/")[-1].split("/src/")[-1].split("/lib/python3")[-1]
        rows.append((tottime, cumtime, nc, f"{short}:{line}({func})"))
    print(f"\ntop {top} by self time (profiled µs per {what}; calls per {what})")
    for tottime, _, nc, name in sorted(rows, reverse=True)[:top]:
        print(f"  {tottime / n * 1e6:7.1f}  {nc / n:5.1f}  {name}")
    print(f"\ntop {top} by cumulative time (profiled µs per {what}; share of the non-waiting time)")
    for _, cumtime, nc, name in sorted(rows, key=lambda r: -r[1])[:top]:
        print(f"  {cumtime / n * 1e6:7.1f}  {min(cumtime / busy, 1.0):6.1%}  {nc / n:5.1f}  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=2000, help="profiled calls (default 2000)")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--stream", action="store_true", help="profile generate_stream instead of generate")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--timer", choices=("wall", "cpu"), default="wall", help="the profiler's clock")
    parser.add_argument("--save", metavar="PATH", help="write the raw profile (pstats format) to PATH")
    parser.add_argument("--url", help="an already running loopback server instead of the emulator")
    args = parser.parse_args()
    with emulator(url=args.url) as emu:
        plain, profile = asyncio.run(_run(emu.url, args.n, args.warmup, args.stream, args.model, args.timer))
    report(plain, profile, args.n, args.top, "stream" if args.stream else "call")
    if args.save:
        path = Path(args.save)
        path.parent.mkdir(parents=True, exist_ok=True)
        profile.dump_stats(path)
        print(f"\nprofile written to {path}", file=sys.stderr)
    elif not OUT_DIR.exists():
        OUT_DIR.mkdir(parents=True)


if __name__ == "__main__":
    main()
