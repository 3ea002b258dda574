#!/usr/bin/env python3
"""Benchmarks of reanalyzer, run side by side so that figures compare within one run.

    python scripts/bench.py front        # the front of the pipeline at 1M and 10M lines
    python scripts/bench.py front --lines 1000000 --lines 10000000
    python scripts/bench.py simulator    # bulk requests/s the simulator serves

Each front figure is one `reanalyzer run --dry-run` in its own process, so that its peak RSS
(from wait4) is its own. Inputs are generated once into bench-out/ and reused.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench-out"
HEX_LENGTHS = (32, 40, 64, 128)


def write_front_input(path: Path, lines: int, seed: int = 7) -> None:
    """Mixed types and cases, 1% junk, 5% repeats of earlier hashes (near and far)."""
    rng = random.Random(seed)
    pool: list[str] = []
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="ascii") as out:
        for start in range(0, lines, 100_000):
            count = min(100_000, lines - start)
            blob = rng.randbytes(count * 64).hex()
            rows = []
            for i in range(count):
                draw = rng.random()
                if draw < 0.01:
                    rows.append(f"junk line {start + i}" if i % 2 else "xyz" * 11)
                elif draw < 0.06 and pool:
                    rows.append(pool[rng.randrange(len(pool))])
                else:
                    value = blob[i * 128 : i * 128 + HEX_LENGTHS[i & 3]]
                    if i % 5 == 0:
                        value = value.upper()
                    elif i % 11 == 0:
                        value = f"  {value}\t"
                    rows.append(value)
                    if len(pool) < 50_000:
                        pool.append(value)
                    elif i % 3 == 0:
                        pool[rng.randrange(len(pool))] = value
            out.write("\n".join(rows) + "\n")
    tmp.rename(path)


def front_input(lines: int) -> Path:
    OUT.mkdir(exist_ok=True)
    path = OUT / f"front-{lines}.txt"
    if not path.exists():
        print(f"generating {path.name} ...", file=sys.stderr, flush=True)
        write_front_input(path, lines)
    return path


def run_measured(argv: list[str]) -> tuple[dict[str, object], float, int]:
    """Run a command; its JSON stdout, wall seconds and peak RSS in MiB (its own, via wait4)."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stderr is not None
    stdout = proc.stdout.read()
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {stderr.decode()}")
    return json.loads(stdout), wall, usage.ru_maxrss // 1024


def bench_front(line_counts: list[int]) -> None:
    print("front of the pipeline (reanalyzer run --dry-run), one process per row")
    print(
        f"{'lines':>12} {'dedupe':>7} {'lines/s':>12} {'front s':>8} {'wall s':>7} {'peak RSS':>9}"
    )
    results: dict[tuple[int, bool], int] = {}
    for lines in line_counts:
        path = front_input(lines)
        for dedupe in (True, False):
            argv = [
                sys.executable,
                "-m",
                "reanalyzer",
                "run",
                "--dry-run",
                "--report-format",
                "json",
                "--dedupe" if dedupe else "--no-dedupe",
                str(path),
            ]
            report, wall, rss = run_measured(argv)
            assert report["accounted"], report
            assert report["lines"] == lines, report
            results[(lines, dedupe)] = rss
            print(
                f"{lines:>12,} {'on' if dedupe else 'off':>7} {report['lines_per_s']:>12,} "
                f"{report['elapsed_s']:>8} {wall:>7.1f} {rss:>6} MiB",
                flush=True,
            )
    if len(line_counts) >= 2:
        low, high = min(line_counts), max(line_counts)
        growth = results[(high, True)] - results[(low, True)]
        print(f"peak RSS growth from {low:,} to {high:,} lines, dedupe on: {growth} MiB")


def bench_simulator() -> None:
    from reanalyzer.simulator.bench import measure_throughput

    rate = asyncio.run(measure_throughput(5.0, batch=100, concurrency=8))
    print(
        f"simulator: {rate:,.0f} bulk requests/s of 100 hashes (bare aiohttp client, 8 in flight)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", nargs="*", default=["front"], choices=["front", "simulator"])
    parser.add_argument(
        "--lines",
        type=int,
        action="append",
        help="front input sizes (default 1,000,000 and 10,000,000)",
    )
    args = parser.parse_args()
    if "front" in args.what:
        bench_front(args.lines or [1_000_000, 10_000_000])
    if "simulator" in args.what:
        bench_simulator()


if __name__ == "__main__":
    main()
