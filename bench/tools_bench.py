"""The tool loop's own overhead per turn, and generate_json's validation cost.

    python bench/tools_bench.py            # 200 loops of two turns, 20,000 validations
    python bench/tools_bench.py -n 50      # quicker

The emulator runs in another process. A ``run_tools`` loop of two turns (a tool call, then the
answer) is compared with the same two requests sent by hand with ``driver.generate``: the
difference in client CPU is what the loop itself costs (schema building, argument parsing and
checking, running the function, the transcript). Validation is timed in-process on a reply body.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import timeit
from dataclasses import dataclass
from typing import Any

from _harness import api_key, emulator
from botticelli import GenerateRequest, GroqDriver, Tool, run_tools
from botticelli.structured import validate_json

MODEL = "openai/gpt-oss-20b"


def get_weather(city: str, unit: str = "celsius") -> dict[str, Any]:
    """Current weather for a city."""
    return {"city": city, "temperature": 21, "unit": unit}


@dataclass
class City:
    name: str
    country: str
    population: int


async def loops(url: str, n: int) -> tuple[float, float]:
    """Client CPU per loop: run_tools, and the same two requests by hand."""
    async with GroqDriver(MODEL, api_key=api_key(), base_url=url, plan="unlimited") as driver:
        prompt = GenerateRequest.prompt("Use get_weather for Rome.")
        first = await run_tools(driver, prompt, tools=[get_weather])  # warm-up, and the transcript
        assert first.turns == 2, first.turns
        tool = Tool.from_function(get_weather)
        tool_request = GenerateRequest(prompt.messages, tools=(tool,))  # turn 1: the model calls it
        by_hand = GenerateRequest(tuple(first.messages[:3]), tools=(tool,))  # turn 2: with its result
        started = time.process_time()
        for _ in range(n):
            await run_tools(driver, prompt, tools=[get_weather])
        loop_cpu = (time.process_time() - started) / n
        started = time.process_time()
        for _ in range(n):
            await driver.generate(tool_request)
            await driver.generate(by_hand)
        plain_cpu = (time.process_time() - started) / n
    return loop_cpu, plain_cpu


def validation(number: int) -> list[tuple[str, float]]:
    text = '{"name": "Milan", "country": "Italy", "population": 1371498}'
    rows = [("dataclass (own validator or pydantic)", lambda: validate_json(text, City))]
    try:
        import pydantic

        class CityModel(pydantic.BaseModel):
            name: str
            country: str
            population: int

        rows.append(("pydantic model", lambda: validate_json(text, CityModel)))
    except ImportError:
        pass
    return [(name, min(timeit.repeat(fn, number=number, repeat=3)) / number * 1e6) for name, fn in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="tool loops to run")
    args = parser.parse_args()
    with emulator() as emu:
        loop_cpu, plain_cpu = asyncio.run(loops(emu.url, args.n))
    print("| measurement | client CPU |")
    print("|---|---:|")
    print(f"| run_tools, two turns (call + answer) | {loop_cpu * 1e6:.0f} µs |")
    print(f"| the same two requests by hand | {plain_cpu * 1e6:.0f} µs |")
    print(f"| **the loop's own cost per turn** | **{(loop_cpu - plain_cpu) / 2 * 1e6:.0f} µs** |")
    for name, micros in validation(max(1000, args.n * 100)):
        print(f"| generate_json validation, {name} | {micros:.1f} µs |")


if __name__ == "__main__":
    main()
