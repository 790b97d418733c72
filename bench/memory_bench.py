"""Memory of the transport (issue 10): resident set size with 1,000 streams open at once, and RSS
over 100,000 non-streaming calls (no per-request growth), one emulator in another process.

    python bench/memory_bench.py            # about 1 minute
    python bench/memory_bench.py --quick    # 200 streams, 20,000 calls

RSS is ``VmRSS`` of this process (``/proc/self/status``), after ``gc.collect()``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import gc
import time

from _harness import MODEL, PROMPT, api_key, emulator
from run import machine_info


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def open_streams(url: str, count: int) -> dict[str, float]:
    """``count`` streams open at once, each having read its first chunk, on one driver whose pool
    allows them all (``connector=aiohttp.TCPConnector(limit=0)``)."""
    import aiohttp

    from botticelli import GenerateRequest, GroqDriver, Message

    driver = GroqDriver(
        MODEL, api_key=api_key(), base_url=url, plan="unlimited", connector=aiohttp.TCPConnector(limit=0)
    )
    request = GenerateRequest((Message.user(PROMPT),), max_tokens=400, temperature=0.0)
    # One stream first: imports, the SSL context, the session, so only the streams are counted.
    async for _ in driver.generate_stream(GenerateRequest((Message.user(PROMPT),), max_tokens=2)):
        pass
    gc.collect()
    before = rss_mib()
    opened = 0
    all_open = asyncio.Event()
    release = asyncio.Event()

    async def one() -> None:
        nonlocal opened
        stream = driver.generate_stream(request)
        async for chunk in stream:
            if chunk.text:
                break  # the first content chunk: this stream is open
        else:
            raise RuntimeError("a stream ended before its first token")
        opened += 1
        if opened == count:
            all_open.set()
        await release.wait()
        await stream.aclose()

    started = time.perf_counter()
    tasks = [asyncio.create_task(one()) for _ in range(count)]
    await asyncio.wait_for(all_open.wait(), 120)
    # They all hold their response (the consumer left the loop, the task keeps the stream).
    gc.collect()
    during = rss_mib()
    took = time.perf_counter() - started
    release.set()
    await asyncio.gather(*tasks)
    await driver.aclose()
    gc.collect()
    return {"before": before, "during": during, "after": rss_mib(), "open_s": took}


async def many_calls(url: str, total: int, concurrency: int, every: int) -> list[tuple[int, float]]:
    from botticelli import GenerateRequest, GroqDriver, Message

    driver = GroqDriver(MODEL, api_key=api_key(), base_url=url, plan="unlimited")
    done = 0
    samples: list[tuple[int, float]] = []

    step = 0
    while step < total:
        target = min(step + every, total)

        async def until(limit: int = target) -> None:
            nonlocal done
            while done < limit:
                done += 1
                await driver.generate(
                    GenerateRequest((Message.user(PROMPT),), max_tokens=10, temperature=0.0)
                )

        await asyncio.gather(*(until() for _ in range(concurrency)))
        step = target
        gc.collect()
        samples.append((done, rss_mib()))
    await driver.aclose()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    streams, calls = (200, 20_000) if args.quick else (1000, 100_000)
    info = machine_info()
    # Slow tokens, so every stream is still open when the last one has its first token.
    with emulator(token_delay=0.25, reply_tokens=400) as emu:
        opened = asyncio.run(open_streams(emu.url, streams))
    with emulator() as emu:
        samples = asyncio.run(many_calls(emu.url, calls, 16, calls // 10))
    print(f"{datetime.date.today()} · {info['python']} · {info['cpu']} · {info['usable_cpus']} usable CPUs\n")
    per = (opened["during"] - opened["before"]) * 1024 / streams
    print(
        f"{streams} streams open at once: RSS {opened['before']:.1f} MiB before, {opened['during']:.1f} MiB "
        f"with all open (+{opened['during'] - opened['before']:.1f} MiB, {per:.0f} KiB per stream), "
        f"{opened['after']:.1f} MiB after closing; all open within {opened['open_s']:.1f} s"
    )
    first_n, first = samples[0]
    last_n, last = samples[-1]
    per_call = (last - first) * 1024 * 1024 / (last_n - first_n)
    print(
        f"{calls} calls at concurrency 16: RSS after {first_n}: {first:.1f} MiB, after {last_n}: "
        f"{last:.1f} MiB (growth {last - first:+.1f} MiB = {per_call:+.1f} bytes per call)"
    )
    print("samples: " + ", ".join(f"{n // 1000}k {r:.1f}" for n, r in samples))


if __name__ == "__main__":
    main()
