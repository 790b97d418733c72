"""Where the import time goes: ``python -X importtime`` in fresh interpreters, medians per module.

    python bench/import_breakdown.py                                   # from botticelli import GroqDriver
    python bench/import_breakdown.py -c "import groq" --top 15
    python bench/import_breakdown.py -c "import botticelli" --reps 21

Prints the total, then the modules with the largest cumulative import time (a module's own
time plus everything it imported first), with self time beside it. Byte-code is cached under
bench/out/pycache, as in run.py, and the first interpreter (which writes that cache) is dropped.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from collections import defaultdict

from _harness import ROOT, child_env


def one_run(code: str) -> dict[str, tuple[int, int, int]]:
    """module → (self µs, cumulative µs, nesting depth) for one fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        env=child_env(bytecode_cache=True),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    modules: dict[str, tuple[int, int, int]] = {}
    for line in out.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, cumulative, name = line[len("import time:") :].split("|")
        depth = (len(name) - len(name.lstrip(" "))) // 2
        modules[name.strip()] = (int(own), int(cumulative), depth)
    return modules


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-c", dest="code", default="from botticelli import GroqDriver")
    parser.add_argument("--reps", type=int, default=11)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    one_run(args.code)  # writes the byte-code cache
    own: dict[str, list[int]] = defaultdict(list)
    cumulative: dict[str, list[int]] = defaultdict(list)
    totals: list[int] = []
    interpreter: set[str] = set()
    for _ in range(args.reps):
        baseline = one_run("pass")  # what the interpreter imports before running any code
        interpreter |= set(baseline)
        modules = one_run(args.code)
        totals.append(sum(c for m, (_, c, depth) in modules.items() if depth == 0 and m not in baseline))
        for name, (self_us, cum_us, _) in modules.items():
            own[name].append(self_us)
            cumulative[name].append(cum_us)
    print(
        f"{args.code!r}: {statistics.median(totals) / 1000:.1f} ms (median of {args.reps}, start-up excluded)"
    )
    if args.top <= 0:
        return
    print(f"\n  {'cumulative ms':>13}  {'self ms':>7}  module")
    ranked = sorted(
        (m for m in cumulative if m not in interpreter),
        key=lambda m: -statistics.median(cumulative[m]),
    )
    for name in ranked[: args.top]:
        print(
            f"  {statistics.median(cumulative[name]) / 1000:13.2f}  "
            f"{statistics.median(own[name]) / 1000:7.2f}  {name}"
        )


if __name__ == "__main__":
    main()
