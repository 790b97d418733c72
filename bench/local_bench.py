"""LocalDriver vs llama-cpp-python called directly: same model, prompt and sampling parameters.

    python bench/local_bench.py                  # 20 runs each, 64 tokens, the bundled SmolLM2
    python bench/local_bench.py --runs 20 --max-tokens 128 --model /models/x.gguf

Both sides share one loaded ``Llama`` and evaluate the whole prompt every run (the driver's
default; the direct side calls ``reset()``), greedy (temperature 0) with the same seed, so both
produce the same tokens, which the script checks. Runs alternate between the two sides so drift
(thermal, other processes) hits both alike. Reported: the median time to first token, decode
speed (tokens after the first, per second of streaming) and end-to-end tokens per second.
Overhead is the driver's extra cost relative to llama-cpp-python; the target is within 5 %.
On a shared or small machine, prompt evaluation time swings by 10-20 % from run to run; the
last line separates the driver's own share of the time to first token from llama.cpp's.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

from botticelli.drivers.local import (
    LocalDriver,
    LocalModel,
    bundled_model_path,
    load_model,
    resolve_model_path,
    sampling_of,
    wire_messages,
)
from botticelli.local.runtime import Sampling
from botticelli.types import GenerateRequest

PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."
SEED = 42


@dataclass
class Run:
    ttft: float  # seconds to the first text
    total: float  # seconds to the end of the stream
    tokens: int
    text: str
    own: float = 0.0  # the driver only: time to first token not spent inside llama.cpp

    @property
    def decode_rate(self) -> float:
        """Tokens after the first per second: the pure generation speed."""
        return (self.tokens - 1) / (self.total - self.ttft) if self.total > self.ttft else 0.0

    @property
    def rate(self) -> float:
        return self.tokens / self.total


def direct_run(model: LocalModel, request: GenerateRequest, sampling: Sampling) -> Run:
    """llama-cpp-python's own streaming chat completion, as an application would call it."""
    llama: Any = model.llama
    messages = wire_messages(request.messages)
    with model.lock:
        llama.reset()
        started = time.perf_counter()
        first: float | None = None
        parts: list[str] = []
        for chunk in llama.create_chat_completion(
            messages,
            stream=True,
            max_tokens=sampling.max_tokens,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            top_k=sampling.top_k,
            min_p=sampling.min_p,
            repeat_penalty=sampling.repeat_penalty,
            seed=SEED,
        ):
            content = chunk["choices"][0]["delta"].get("content")
            if content:
                if first is None:
                    first = time.perf_counter() - started
                parts.append(content)
        total = time.perf_counter() - started
    # the stream carries no usage; it sends one chunk per token (bar held-back stop prefixes)
    return Run(
        ttft=first if first is not None else total, total=total, tokens=len(parts), text="".join(parts)
    )


async def driver_run(driver: LocalDriver, request: GenerateRequest) -> Run:
    stream = driver.generate_stream(request)
    async for _ in stream:
        pass
    response = stream.response
    assert response is not None and response.time_to_first_token is not None
    return Run(
        ttft=response.time_to_first_token,
        total=response.latency,
        tokens=response.usage.completion_tokens,
        text=response.text,
        own=response.time_to_first_token - (response.usage.prompt_time or 0.0),
    )


def _median(runs: list[Run], attr: str) -> float:
    return float(statistics.median(getattr(r, attr) for r in runs))


def _pct(ours: float, theirs: float, *, higher_is_better: bool) -> str:
    change = (theirs - ours) / theirs if higher_is_better else (ours - theirs) / theirs
    return f"{change * 100:+.1f}%"


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--n-ctx", type=int, default=2048)
    parser.add_argument("--n-threads", type=int, default=None)
    parser.add_argument("--model", default="smollm2", help="'smollm2' (bundled) or a .gguf path")
    args = parser.parse_args(argv)

    path = bundled_model_path() if args.model == "smollm2" else resolve_model_path(args.model)
    model = load_model(path, n_ctx=args.n_ctx, n_threads=args.n_threads)
    driver = LocalDriver(model_path=path, n_ctx=args.n_ctx, n_threads=args.n_threads)
    assert await driver.load() is model
    request = GenerateRequest.prompt(PROMPT, max_tokens=args.max_tokens, temperature=0.0, seed=SEED)
    sampling = sampling_of(request, model=args.model, provider="local")

    direct: list[Run] = []
    ours: list[Run] = []
    for i in range(args.warmup + args.runs):
        # alternate which side goes first, so neither always runs on a just-warmed cache
        if i % 2:
            d, o = direct_run(model, request, sampling), await driver_run(driver, request)
        else:
            o, d = await driver_run(driver, request), direct_run(model, request, sampling)
        if i >= args.warmup:
            direct.append(d)
            ours.append(o)
    if direct[0].text != ours[0].text:
        print("warning: the two sides generated different text", file=sys.stderr)

    threads = model.llama.n_threads
    print(f"model: {path}")
    print(
        f"prompt tokens: {model.count_tokens(wire_messages(request.messages))}, "
        f"max_tokens {args.max_tokens}, temperature 0, seed {SEED}, n_ctx {model.n_ctx}, "
        f"threads {threads}, {args.runs} runs each (median), {args.warmup} warm-up"
    )
    rows = [("llama-cpp-python (direct)", direct), ("botticelli LocalDriver", ours)]
    header = f"{'':27} {'TTFT ms':>9} {'decode tok/s':>13} {'e2e tok/s':>10} {'total ms':>9} {'tokens':>7}"
    print(header)
    print("-" * len(header))
    for name, runs in rows:
        print(
            f"{name:27} {_median(runs, 'ttft') * 1e3:9.1f} {_median(runs, 'decode_rate'):13.1f} "
            f"{_median(runs, 'rate'):10.1f} {_median(runs, 'total') * 1e3:9.1f} "
            f"{_median(runs, 'tokens'):7.0f}"
        )
    overhead = [
        _pct(_median(ours, "ttft"), _median(direct, "ttft"), higher_is_better=False),
        _pct(_median(ours, "decode_rate"), _median(direct, "decode_rate"), higher_is_better=True),
        _pct(_median(ours, "rate"), _median(direct, "rate"), higher_is_better=True),
        _pct(_median(ours, "total"), _median(direct, "total"), higher_is_better=False),
    ]
    ttft, decode, rate, total = overhead
    print(f"{'overhead (+ = driver slower)':27} {ttft:>9} {decode:>13} {rate:>10} {total:>9}")
    best = min(r.ttft for r in direct), min(r.ttft for r in ours)
    print(
        f"best TTFT: direct {best[0] * 1e3:.1f} ms, driver {best[1] * 1e3:.1f} ms; the driver's own share "
        f"of its TTFT (outside llama.cpp: queue, thread hand-off, chunk): {_median(ours, 'own') * 1e3:.2f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
