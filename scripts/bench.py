#!/usr/bin/env python3
"""Benchmarks of reanalyzer, run side by side so that figures compare within one run.

    python scripts/bench.py front        # the front of the pipeline at 1M and 10M lines
    python scripts/bench.py front --lines 1000000 --lines 10000000
    python scripts/bench.py simulator    # bulk requests/s the simulator serves
    python scripts/bench.py send         # 20 ms latency: runner vs a bare loop at 8 and 32
    python scripts/bench.py overhead     # no latency: the runner vs a bare aiohttp loop
    python scripts/bench.py rate         # --rate-limit R for 10 s: the appliance's own log
    python scripts/bench.py pace         # no --rate-limit, undisclosed limits: settle, recover, 413
    python scripts/bench.py sdk          # 20 ms latency: the official SDK's loop vs the runner
    python scripts/bench.py archive      # a 2M-line job: log size, status, report, resume
    python scripts/bench.py archive --lines 10000000

Each front figure is one `reanalyzer run --dry-run` in its own process (and its read-ahead
child), so that its peak memory (summed PSS, sampled) is its own. Inputs are generated once
into bench-out/ and reused.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
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


def run_measured(
    argv: list[str], env: dict[str, str] | None = None, json_out: bool = True
) -> tuple[dict[str, object], float, int]:
    """Run a command; its JSON stdout, wall seconds and peak memory in MiB: the largest sum of
    the proportional set sizes (PSS) of it and its read-ahead child, sampled every 0.2 s (RSS
    would count the pages they share since the fork twice). Its CPU seconds (user + system, the
    child's included) go into the report as "cpu_s", and the sum of each process's own peak
    RSS (VmHWM: shared pages counted in each) as "hwm_mib"."""
    import threading

    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    assert proc.stderr is not None
    peak = [0]
    hwm: dict[int, int] = {}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            peak[0] = max(peak[0], _tree_pss_kib(proc.pid, hwm))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout = proc.stdout.read()
    stderr = proc.stderr.read()
    done.set()
    sampler.join()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if proc.returncode not in (0, 4):  # 4: stopped by a budget, resumable (bench front)
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {stderr.decode()}")
    report = json.loads(stdout) if json_out else {"exit": proc.returncode}
    report["cpu_s"] = usage.ru_utime + usage.ru_stime
    report["hwm_mib"] = sum(hwm.values()) // 1024
    return report, wall, peak[0] // 1024


def _tree_pss_kib(pid: int, hwm: dict[int, int] | None = None) -> int:
    """PSS of a process and its descendants (Linux), in KiB; 0 once it is gone. Each one's VmHWM
    (its own peak RSS, KiB) goes into `hwm`."""
    total = 0
    tree, at = [pid], 0
    while at < len(tree):  # the read-ahead child's own child (the reader) included
        try:
            tree += map(int, Path(f"/proc/{tree[at]}/task/{tree[at]}/children").read_text().split())
        except OSError:
            if at == 0:
                return 0
        at += 1
    for each in tree:
        try:
            for line in Path(f"/proc/{each}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
            if hwm is not None:
                for line in Path(f"/proc/{each}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        hwm[each] = max(hwm.get(each, 0), int(line.split()[1]))
        except OSError:
            pass
    return total


def reference_speed() -> float:
    """Nanoseconds per iteration of a fixed pure-Python loop: how fast this shared machine is
    right now, so that figures of runs at different times can be compared."""
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        x = 0
        for i in range(1_000_000):
            x ^= (i * 7) >> 3
        best = min(best, time.perf_counter() - started)
    return best * 1000


def bench_front(line_counts: list[int], resume_lines: int = 1_000_000) -> None:
    print("front of the pipeline (reanalyzer run --dry-run), one process per row")
    print(f"machine speed at start: reference loop {reference_speed():.0f} ns per iteration")
    print("(lines/s over the front's own time; lines per CPU-second of the whole process, which")
    print(" other tenants of a shared machine disturb less than wall time; peak PSS: the largest")
    print(" sampled sum over both processes; VmHWM: the sum of each one's own peak RSS)")
    print(
        f"{'lines':>12} {'dedupe':>7} {'lines/s':>12} {'lines/CPU-s':>12} {'front s':>8} "
        f"{'wall s':>7} {'peak PSS':>9} {'VmHWM sum':>10} {'distinct':>11}"
    )
    results: dict[tuple[int, bool], tuple[int, int, float, int]] = {}
    for lines in line_counts:
        path = front_input(lines)
        for dedupe in (True, False):
            argv = _dry_run_argv(path, "--dedupe" if dedupe else "--no-dedupe")
            report, wall, rss = run_measured(argv)
            assert report["accounted"], report
            assert report["lines"] == lines, report
            assert not report["unremembered"], report
            hwm = int(report["hwm_mib"])  # type: ignore[call-overload]
            distinct = int(report["to_send_total"])  # type: ignore[call-overload]
            results[(lines, dedupe)] = (rss, hwm, float(report["lines_per_s"]), distinct)  # type: ignore[arg-type]
            per_cpu = lines / float(report["cpu_s"])  # type: ignore[arg-type]
            print(
                f"{lines:>12,} {'on' if dedupe else 'off':>7} {report['lines_per_s']:>12,} "
                f"{per_cpu:>12,.0f} {report['elapsed_s']:>8} {wall:>7.1f} {rss:>5} MiB "
                f"{hwm:>6} MiB {distinct if dedupe else '':>11}",
                flush=True,
            )
    for lines in line_counts:
        rss, hwm, speed, distinct = results[(lines, True)]
        limit = (100e6 + 9 * distinct) / 2**20
        ratio = speed / results[(lines, False)][2]
        # PSS is what both hold together; VmHWM counts the pages they share since the fork
        # in each (the interpreter, the modules), so it is shown beside, not judged.
        print(
            f"{lines:,} lines: with dedupe {ratio:.2f} of the speed without (target >= 0.80); "
            f"peak {rss} MiB PSS (VmHWM sum {hwm} MiB) against 100 MB + 9 B x {distinct:,} = "
            f"{limit:.0f} MiB: {'within' if rss <= limit else 'OVER'}"
        )
    if len(line_counts) >= 2:
        low, high = min(line_counts), max(line_counts)
        growth = results[(high, True)][0] - results[(low, True)][0]
        print(f"peak PSS growth from {low:,} to {high:,} lines, dedupe on: {growth} MiB")
    if resume_lines:
        front_resume(resume_lines)
    print(
        f"machine speed now: a reference Python loop takes {reference_speed():.0f} ns per "
        "iteration (lower is faster; compare runs by it)"
    )


def front_resume(lines: int) -> None:
    """A real job run whole (fresh), and the same job stopped by --max-requests after about 90%
    of its input and resumed: the resumed run's peak (both processes) beside the fresh run's.
    The resume reads the dedupe set of the recorded 90% into its reading child, from the log."""
    import tempfile

    path = front_input(lines)
    with tempfile.TemporaryDirectory(dir=OUT) as tmp:
        sim = Simulator(1000, "--share-absent", "1")  # every hash not_found: one quick answer
        try:
            env = {**os.environ, "REANALYZER_TOKEN": SEND_TOKEN}

            def argv(job: str) -> list[str]:
                options = ("--concurrency", "8", "--progress", "off", str(path))
                return _run_argv(sim.url, f"{tmp}/{job}", *options)

            fresh, fresh_wall, fresh_rss = run_measured(argv("fresh"), env, json_out=False)
            stop_at = str(int(lines * 0.9 / 100))  # requests of 100 hashes
            stopped, _, _ = run_measured(
                [*argv("job"), "--max-requests", stop_at], env, json_out=False
            )
            again, again_wall, again_rss = run_measured(argv("job"), env, json_out=False)
            summary = json.loads((Path(tmp) / "job" / "summary.json").read_text())
        finally:
            sim.close()
    print(
        f"resume: a {lines:,}-line job run whole, and stopped after ~90% (exit "
        f"{stopped['exit']}) then resumed (exit {again['exit']}, {summary['state']}, "
        f"{summary['already_recorded']:,} lines from the first run), its dedupe set read from "
        "the log in the reading child:"
    )
    print(
        f"  fresh run:   peak {fresh_rss:>4} MiB PSS, {fresh['hwm_mib']:>4} MiB VmHWM sum, "
        f"{fresh_wall:.1f} s"
    )
    print(
        f"  resumed run: peak {again_rss:>4} MiB PSS, {again['hwm_mib']:>4} MiB VmHWM sum, "
        f"{again_wall:.1f} s: {'not above' if again_rss <= fresh_rss else 'ABOVE'} the fresh "
        "run's (PSS)"
    )


def bench_simulator() -> None:
    from reanalyzer.simulator.bench import measure_throughput

    rate = asyncio.run(measure_throughput(5.0, batch=100, concurrency=8))
    print(
        f"simulator: {rate:,.0f} bulk requests/s of 100 hashes (bare aiohttp client, 8 in flight)"
    )


SEND_TOKEN = "bench-send-token"  # a throwaway token for a simulator on 127.0.0.1
# What the bare loop asks for, and so the runner too where they are compared: the same request
# bodies, the same answers (one analysis per sample; the runner's default asks for two).
BARE_ANALYSIS = "core"


class Simulator:
    """`python -m reanalyzer simulate` in its own process (its own core and event loop)."""

    def __init__(self, samples: int, *extra: str) -> None:
        self.samples = samples
        env = {**os.environ, "REANALYZER_TOKEN": SEND_TOKEN}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reanalyzer",
                "simulate",
                "--port",
                "0",
                "--seed",
                "11",
                "--samples",
                str(samples),
                "--share-absent",
                "0",
                "--share-extracted",
                "0",
                "--share-queued",
                "0",
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            raise SystemExit(f"the simulator did not start: {line!r}")
        self.url = line.split("listening on ")[1].split()[0]

    def hashes(self) -> list[str]:
        from reanalyzer.simulator.world import World

        world = World.generate(self.samples, seed=11)  # the same world the simulator made
        return [s.sha1 for s in world.samples]

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def _dry_run_argv(path: Path, *args: str) -> list[str]:
    """`reanalyzer run --dry-run` of `path`, its report as JSON on stdout."""
    dry = [sys.executable, "-m", "reanalyzer", "run", "--dry-run", "--report-format", "json"]
    return [*dry, *args, str(path)]


def _run_argv(url: str, job_dir: str, *args: str) -> list[str]:
    """`reanalyzer run` against `url`, its job in `job_dir`, warnings only, then `args`."""
    run = [sys.executable, "-m", "reanalyzer", "run", "--url", url, "--job-dir", job_dir]
    return [*run, "--log-level", "warning", *args]


def _job_argv(url: str, tmp: str, hashes: list[str], *args: str) -> list[str]:
    """`reanalyzer run` against `url` over `hashes` (written into `tmp`), its job in `tmp`."""
    path = Path(tmp) / "hashes.txt"
    path.write_text("\n".join(hashes) + "\n")
    return _run_argv(url, f"{tmp}/job", *args, str(path))


def run_job(url: str, hashes: list[str], batch: int, concurrency: int, **extra: str) -> dict:
    """One `reanalyzer run` subprocess over `hashes`; its summary.json."""
    import tempfile

    with tempfile.TemporaryDirectory(dir=OUT) as tmp:
        options = ["--batch-size", str(batch), "--concurrency", str(concurrency)]
        for key, value in extra.items():
            options += [f"--{key.replace('_', '-')}", value]
        env = {**os.environ, "REANALYZER_TOKEN": SEND_TOKEN}
        argv = _job_argv(url, tmp, hashes, *options)
        done = subprocess.run(argv, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"reanalyzer run failed ({done.returncode}): {done.stderr[-2000:]}")
        summary: dict = json.loads((Path(tmp) / "job" / "summary.json").read_text())
        summary["steady_hashes_per_s"] = steady_rate(Path(tmp) / "job" / "outcomes.jsonl")
        return summary


def steady_rate(outcomes: Path) -> float:
    """Records per second from the first answer to the last, start-up and teardown left out:
    each answer's records share one timestamp, so this is (records after the first answer) over
    the time between the first and the last answer. Read with the project's own reader: a run
    closes and compresses its log as it ends."""
    from datetime import datetime

    from reanalyzer.record.outcome_log import stored_lines

    answers = [(line.ts, len(line.hash_list())) for line, _ in stored_lines(outcomes)]
    if len(answers) < 2:  # one answer only
        return float("nan")
    first_ts = answers[0][0]
    first = next((i for i, (ts, _) in enumerate(answers) if ts != first_ts), None)
    if first is None:
        return float("nan")
    span = (
        datetime.fromisoformat(answers[-1][0]) - datetime.fromisoformat(first_ts)
    ).total_seconds()
    after = sum(count for _, count in answers[first:])
    return after / span if span > 0 else float("nan")


async def bare_loop(
    url: str, hashes: list[str], batch: int, concurrency: int
) -> tuple[float, float]:
    """Pre-built v1 bulk bodies posted by a bare aiohttp loop: hashes/s and mean RTT (s)."""
    import aiohttp

    bodies = [
        json.dumps({"hash_value": hashes[i : i + batch], "analysis": BARE_ANALYSIS}).encode()
        for i in range(0, len(hashes), batch)
    ]
    headers = {"Authorization": f"Token {SEND_TOKEN}", "Content-Type": "application/json"}
    target = f"{url}/api/samples/analyze_bulk/"
    rtts: list[float] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def worker(k: int) -> None:
            for i in range(k, len(bodies), concurrency):
                t0 = time.perf_counter()
                async with session.post(target, data=bodies[i]) as response:
                    await response.read()
                    assert response.status in (200, 201), response.status
                rtts.append(time.perf_counter() - t0)

        started = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        elapsed = time.perf_counter() - started
    return len(hashes) / elapsed, sorted(rtts)[len(rtts) // 2]


def bench_send(
    latency_ms: float = 20.0,
    batch: int = 100,
    concurrencies: tuple[int, ...] = (8, 32),
    per_worker: int = 150,
) -> None:
    """Latency-bound: the runner beside a bare aiohttp loop at the same concurrency, in the
    same run, each on hashes not sent yet (so both are answered 201 alike), `per_worker`
    requests per slot. The runner's rate is its steady one (first answer to last, as the bare
    loop's is timed), its CPU both its processes'; the bare loop's CPU is this process's
    while it runs (it shares nothing else then)."""
    import resource

    print(
        f"send: {latency_ms:.0f} ms appliance latency, batch {batch}; reanalyzer run "
        "(subprocess) beside a bare aiohttp loop at the same concurrency"
    )
    print(f"  machine speed at start: reference loop {reference_speed():.0f} ns per iteration")
    sizes = {c: c * batch * per_worker for c in concurrencies}
    sim = Simulator(3 * sum(sizes.values()) + batch * 40, "--latency-ms", str(latency_ms))
    try:
        hashes = sim.hashes()
        _, rtt = asyncio.run(bare_loop(sim.url, hashes[-batch * 20 :], batch, 1))
        print(
            f"  measured RTT of one bulk request of {batch}: {rtt * 1000:.1f} ms "
            f"(latency {latency_ms:.0f} ms)"
        )

        def runner_cpu(some: list[str], c: int) -> tuple[dict, float]:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            summary = run_job(sim.url, some, batch, c, analysis=BARE_ANALYSIS)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            return summary, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

        # The runner's CPU to start, read its input and stop, whatever the job: one batch.
        _, start_up = runner_cpu(hashes[-batch * 40 : -batch * 39], 1)
        print(
            f"  the runner's start-up and teardown (a job of one batch): {start_up:.2f} CPU-s, "
            "left out of its CPU per hash below"
        )
        print(
            f"  {'concurrency':>11} {'hashes':>8} {'bare/s':>9} {'runner/s':>9} "
            f"{'(whole)':>8} {'ratio':>6} {'bare CPU/hash':>14} {'runner CPU/hash':>16} "
            f"{'CPU x':>6} {'Little':>8}"
        )
        at = 0
        for c in concurrencies:
            n = sizes[c]
            # The bare loop before and after the runner (the simulator's state drifts): their
            # mean rate and CPU.
            rates, cpus = [], []
            for part in (0, 2):
                cpu_before = time.process_time()
                rate, _ = asyncio.run(
                    bare_loop(sim.url, hashes[at + part * n : at + (part + 1) * n], batch, c)
                )
                cpus.append(time.process_time() - cpu_before)
                rates.append(rate)
                if part == 0:
                    summary, cpu = runner_cpu(hashes[at + n : at + 2 * n], c)
            at += 3 * n
            bare, bare_cpu = sum(rates) / 2, sum(cpus) / 2
            cpu -= start_up
            steady = float(summary["steady_hashes_per_s"])
            whole = float(summary["hashes_per_s"])
            print(
                f"  {c:>11} {n:>8,} {bare:>9,.0f} {steady:>9,.0f} {whole:>8,.0f} "
                f"{steady / bare:>6.2f} {bare_cpu / n * 1e6:>11.1f} us "
                f"{cpu / n * 1e6:>13.1f} us {cpu / bare_cpu:>6.2f} "
                f"{c * batch / rtt:>8,.0f}",
                flush=True,
            )
        print(
            "  (ratio: the runner's steady rate, first answer to last, over the bare loop's, "
            "the mean of one run before and one after it; target >= 0.95. CPU x: runner "
            "(both processes, start-up left out) over bare, per hash; aim <= 2. Little: "
            "concurrency x batch / RTT)"
        )
    finally:
        sim.close()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a running process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_overhead(
    batch: int = 100, concurrency: int = 8, hashes_n: int = 1_000_000, rounds: int = 5
) -> None:
    """The runner end to end against a bare aiohttp loop, same simulator, same concurrency.

    Rounds alternate the two, so that each ratio compares runs a few seconds apart: this shared
    machine's speed drifts by more than the differences measured. The runner's time is its
    summary's (from the run's start to its summary: reading, sending, recording), without the
    interpreter's start-up; its CPU is the process's and its read-ahead child's.
    """
    import resource
    import statistics

    print(
        f"overhead: no latency, batch {batch}, concurrency {concurrency}, {hashes_n:,} hashes, "
        f"{rounds} rounds; the same simulator process for both"
    )
    print(f"  machine speed at start: reference loop {reference_speed():.0f} ns per iteration")
    sim = Simulator(hashes_n)
    try:
        hashes = sim.hashes()
        # The first pass over a fresh simulator queues every sample (201, a state change per
        # sample); every later pass is answered 200. Warm it up so that all measured passes,
        # the runner's too, get the same answers from a simulator in the same state.
        cold, _ = asyncio.run(bare_loop(sim.url, hashes, batch, concurrency))
        print(f"  bare aiohttp loop, cold simulator: {cold:>9,.0f} hashes/s (warm-up only)")
        print(
            f"  {'round':>5} {'bare loop/s':>12} {'runner/s':>9} {'ratio':>6} "
            f"{'runner CPU/hash':>16} {'simulator CPU/hash, bare/runner':>32}"
        )
        ratios, bares, runners = [], [], []
        for r in range(1, rounds + 1):
            sim_before = _cpu_seconds(sim.proc.pid)
            bare, _ = asyncio.run(bare_loop(sim.url, hashes, batch, concurrency))
            sim_bare = _cpu_seconds(sim.proc.pid) - sim_before
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            sim_before = _cpu_seconds(sim.proc.pid)
            summary = run_job(sim.url, hashes, batch, concurrency, analysis=BARE_ANALYSIS)
            sim_runner = _cpu_seconds(sim.proc.pid) - sim_before
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            runner = float(summary["hashes_per_s"])
            ratios.append(runner / bare)
            bares.append(bare)
            runners.append(runner)
            print(
                f"  {r:>5} {bare:>12,.0f} {runner:>9,.0f} {runner / bare:>6.2f} "
                f"{cpu / hashes_n * 1e6:>13.1f} us "
                f"{sim_bare / hashes_n * 1e6:>23.1f} / {sim_runner / hashes_n * 1e6:.1f} us",
                flush=True,
            )
        print(
            f"  median ratio runner / bare loop: {statistics.median(ratios):.2f} "
            f"(target >= 0.70); medians {statistics.median(runners):,.0f} / "
            f"{statistics.median(bares):,.0f} hashes/s"
        )
        print(f"  machine speed at end: reference loop {reference_speed():.0f} ns per iteration")
    finally:
        sim.close()


def bench_rate(rate: float = 50.0, seconds: float = 10.0) -> None:
    import bisect
    import itertools
    import tempfile

    from reanalyzer.simulator.requestlog import read_log

    print(
        f"rate: reanalyzer run --rate-limit {rate:g} for about {seconds:.0f} s, "
        "measured in the simulator's request log"
    )
    with tempfile.TemporaryDirectory(dir=OUT) as tmp:
        log_path = Path(tmp) / "requests.jsonl"
        batch = 10
        n = int(rate * seconds * batch)
        sim = Simulator(n, "--request-log", str(log_path))
        try:
            run_job(sim.url, sim.hashes(), batch, 8, rate_limit=str(rate))
        finally:
            sim.close()
        times = sorted(r.monotonic for r in read_log(log_path))
    counts = [bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times)]
    peak = max(counts)
    worst = counts.index(peak)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    print("  first gaps (ms):", " ".join(f"{g * 1000:.0f}" for g in gaps[:12]))
    print(
        f"  worst window starts at request {worst} ({times[worst] - times[0]:.3f} s in); "
        f"gaps between arrivals: min {min(gaps) * 1000:.1f} ms, max {max(gaps) * 1000:.1f} ms"
    )
    achieved = (len(times) - 1) / (times[-1] - times[0])
    print(
        f"  requests {len(times)}, span {times[-1] - times[0]:.2f} s, "
        f"most in any 1-s window {peak} (limit {rate:g}), achieved {achieved:.2f}/s "
        f"= {achieved / rate:.1%} of R (target >= 95%)"
    )


def run_for(url: str, hashes: list[str], seconds: float, *args: str) -> float:
    """`reanalyzer run` over `hashes` (defaults but `args`), stopped with SIGTERM after
    `seconds` unless it ends first; the monotonic time it was started at."""
    import tempfile

    with tempfile.TemporaryDirectory(dir=OUT) as tmp:
        argv = _job_argv(url, tmp, hashes, *args)
        env = {**os.environ, "REANALYZER_TOKEN": SEND_TOKEN}
        started = time.monotonic()
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            proc.wait(seconds)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
        return started


def competitor(url: str, rate: float, until: float) -> None:
    """Another client of the appliance: `rate` status requests/s, 429s or not, until the
    monotonic time `until` (in a thread of its own, with its own event loop)."""
    import aiohttp

    async def loop() -> None:
        headers = {"Authorization": f"Token {SEND_TOKEN}"}
        async with aiohttp.ClientSession(headers=headers) as session:
            next_at = time.monotonic()
            while next_at < until:
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                async with session.post(
                    f"{url}/api/samples/status/", data={"hash_values": "0" * 40}
                ) as response:
                    await response.read()
                next_at += 1 / rate

    asyncio.run(loop())


def first_full_second(times: list[float], at_least: float, after: float) -> float:
    """Seconds from `after` to the end of the first one-second window (of the sorted `times`)
    holding `at_least` of them; inf if none does."""
    import bisect

    later = [t for t in times if t >= after]
    for i, t in enumerate(later):
        if bisect.bisect_left(later, t + 1.0) - i >= at_least:
            return t + 1.0 - after
    return float("inf")


def bench_pace(latency_ms: float = 5.0) -> None:
    """No --rate-limit against undisclosed limits: the settled rate, 429s, recoveries, 413."""
    import collections
    import tempfile
    import threading

    from reanalyzer.simulator.requestlog import Endpoint, Fault, read_log

    print(
        f"pace: reanalyzer run with no --rate-limit (defaults, batch 10), {latency_ms:g} ms "
        "latency; measured in the simulator's request log, times from the run's first request"
    )
    batch = 10

    def case(
        seconds: float, most: float, *sim_args: str, rival: float = 0.0, rival_until: float = 0.0
    ) -> tuple[list[float], list[float], float, float]:
        """Accepted and refused times of the runner's requests (run-relative), the simulator's
        start and the run's first request (monotonic)."""
        with tempfile.TemporaryDirectory(dir=OUT) as tmp:
            log_path = Path(tmp) / "requests.jsonl"
            n = int(most * seconds * batch * 1.3)
            sim = Simulator(
                n, "--latency-ms", str(latency_ms), "--request-log", str(log_path), *sim_args
            )
            sim_start = time.monotonic()
            try:
                if rival:
                    threading.Thread(
                        target=competitor,
                        daemon=True,
                        args=(sim.url, rival, sim_start + rival_until),
                    ).start()
                run_for(sim.url, sim.hashes(), seconds, "--batch-size", str(batch))
            finally:
                sim.close()
            records = [r for r in read_log(log_path) if r.endpoint is not Endpoint.STATUS]
        first = min(r.monotonic for r in records)
        accepted = sorted(r.monotonic - first for r in records if r.fault is Fault.NONE)
        refused = sorted(r.monotonic - first for r in records if r.fault is Fault.RATE_LIMITED)
        return accepted, refused, sim_start, first

    print(f"  {'limit/s':>8} {'settled/s':>10} {'ratio':>6} {'429s after 10 s':>16}")
    for limit in (5, 20, 100):
        accepted, refused, _, _ = case(40.0, limit, "--rate-limit", str(limit))
        end = max(accepted[-1], refused[-1] if refused else 0.0)
        settled = sum(1 for t in accepted if t >= 10.0) / (end - 10.0)
        late_refused = sum(1 for t in refused if t >= 10.0)
        share = late_refused / (late_refused + sum(1 for t in accepted if t >= 10.0))
        print(
            f"  {limit:>8} {settled:>10.2f} {settled / limit:>6.3f} "
            f"{share:>10.2%} ({late_refused})  (targets >= 0.95, <= 2%)",
            flush=True,
        )

    # The limit rises from 20 to 40 at about 10 s into the run.
    offset = 0.7  # about when the run's first request comes, after the simulator's start
    accepted, _, sim_start, first = case(
        40.0, 40, "--rate-limit-schedule", f"0:20,{10 + offset:.1f}:40"
    )
    freed = sim_start + 10 + offset - first
    print(
        f"  limit 20 -> 40 at {freed:.1f} s: 36/s (0.9) reached "
        f"{first_full_second(accepted, 36, freed):.1f} s later (target <= 30 s)",
        flush=True,
    )
    # 429s in the first second: a limit of 1/s until 2 s after the simulator's start, then 50.
    accepted, refused, sim_start, first = case(30.0, 50, "--rate-limit-schedule", "0:1,2:50")
    freed = sim_start + 2 - first
    early = sum(1 for t in refused if t < 1.0)
    print(
        f"  limit 1 -> 50 at {freed:.1f} s ({early} 429s in the first second): 45/s (0.9) "
        f"reached {first_full_second(accepted, 45, freed):.1f} s later (target <= 30 s)",
        flush=True,
    )
    # A competitor takes 30 of a limit of 40 until about 10 s into the run.
    accepted, _, sim_start, first = case(
        40.0, 40, "--rate-limit", "40", rival=30.0, rival_until=10 + offset
    )
    freed = sim_start + 10 + offset - first
    print(
        f"  limit 40, competitor at 30/s stops at {freed:.1f} s: 36/s (0.9) reached "
        f"{first_full_second(accepted, 36, freed):.1f} s later (target <= 30 s)",
        flush=True,
    )

    # 413 above 64 hashes, batches of 100 asked for.
    with tempfile.TemporaryDirectory(dir=OUT) as tmp:
        log_path = Path(tmp) / "requests.jsonl"
        sim = Simulator(
            20_000,
            "--latency-ms",
            str(latency_ms),
            "--request-log",
            str(log_path),
            "--max-bulk",
            "64",
        )
        try:
            run_for(sim.url, sim.hashes(), 60.0, "--batch-size", "100")
        finally:
            sim.close()
        records = read_log(log_path)
    accepted = [len(r.hashes) for r in records if r.fault is Fault.NONE]
    sizes = collections.Counter(accepted)
    tail = collections.Counter(accepted[-100:-1])  # the very last is the input's remainder
    refused = sum(1 for r in records if len(r.hashes) > 64)
    print(
        f"  bulk limit 64, --batch-size 100: {len(records)} requests, {refused} answered 413; "
        f"accepted sizes (most common): "
        + ", ".join(f"{size} x{count}" for size, count in sizes.most_common(4))
        + "; the last 100 but one: "
        + ", ".join(f"{size} x{count}" for size, count in tail.most_common(3)),
        flush=True,
    )


def sdk_loop(url: str, hashes: list[str], batch: int = 100) -> float:
    """What an operator writes with the official SDK: hashes grouped by type (here all SHA-1),
    one `reanalyze_samples_v2` call of `batch` after another. Hashes/s."""
    from ReversingLabs.SDK.a1000 import A1000

    client = A1000(host=url, token=SEND_TOKEN, verify=False)
    started = time.perf_counter()
    for i in range(0, len(hashes), batch):
        response = client.reanalyze_samples_v2(
            hashes[i : i + batch], titanium_cloud=True, titanium_core=True
        )
        assert response.status_code in (200, 201), response.status_code
    return len(hashes) / (time.perf_counter() - started)


def bench_sdk(latency_ms: float = 20.0) -> None:
    """The SDK's sequential loop and the runner (defaults; --concurrency 16), one simulator."""
    print(
        f"sdk: {latency_ms:g} ms appliance latency; the official SDK's sequential loop "
        "(reanalyze_samples_v2, 100 a call) vs reanalyzer run (cloud,core both)"
    )
    print(f"  machine speed at start: reference loop {reference_speed():.0f} ns per iteration")
    counts = {"sdk": 30_000, "defaults": 100_000, "c16": 300_000}
    sim = Simulator(sum(counts.values()), "--latency-ms", str(latency_ms))
    try:
        hashes = sim.hashes()
        parts, start = {}, 0
        for name, count in counts.items():  # disjoint: each pass meets samples not yet queued
            parts[name] = hashes[start : start + count]
            start += count
        sdk = sdk_loop(sim.url, parts["sdk"])
        print(f"  {'client':<36} {'hashes':>8} {'hashes/s':>9} {'x SDK':>6}")
        print(f"  {'SDK loop':<36} {counts['sdk']:>8,} {sdk:>9,.0f} {1:>6.1f}", flush=True)
        for name, label, concurrency in (
            ("defaults", "reanalyzer run (defaults)", 4),
            ("c16", "reanalyzer run --concurrency 16", 16),
        ):
            summary = run_job(sim.url, parts[name], 100, concurrency)
            rate = float(summary["hashes_per_s"])
            print(f"  {label:<36} {counts[name]:>8,} {rate:>9,.0f} {rate / sdk:>6.1f}", flush=True)
        print("  (runner: its summary's hashes/s, from the run's start to its summary)")
    finally:
        sim.close()


def bench_resume(lines: int = 1_000_000) -> None:
    """Resuming a finished job: no request, and a small fraction of the front's time."""
    import tempfile

    from reanalyzer.run.job import send_job
    from reanalyzer.run.logs import configure_logging
    from reanalyzer.settings import load_settings

    print(f"resume: a finished {lines:,}-line job, run again, vs the front of the pipeline")
    path = front_input(lines)
    with tempfile.TemporaryDirectory(dir=OUT) as tmp:
        request_log = Path(tmp) / "requests.jsonl"
        sim = Simulator(1000, "--request-log", str(request_log))
        try:
            job_dir = Path(tmp) / "job"
            env = {**os.environ, "REANALYZER_TOKEN": SEND_TOKEN}
            argv = _run_argv(sim.url, str(job_dir), "--concurrency", "8", str(path))
            started = time.perf_counter()
            first = subprocess.run(argv, env=env, capture_output=True, text=True)
            took = time.perf_counter() - started
            print(f"  the job itself: exit {first.returncode} in {took:.1f} s")
            requests_before = sum(1 for _ in request_log.open())

            dry, dry_wall, _ = run_measured(_dry_run_argv(path))
            started = time.perf_counter()
            again = subprocess.run(argv, env=env, capture_output=True, text=True)
            resume_wall = time.perf_counter() - started
            configure_logging("json", "warning")
            settings = load_settings({"url": sim.url, "token": SEND_TOKEN, "job_dir": job_dir})
            started = time.perf_counter()
            code = asyncio.run(send_job(settings, [str(path)]))
            resume_in_process = time.perf_counter() - started
            requests_after = sum(1 for _ in request_log.open())
        finally:
            sim.close()
    front_s = float(dry["elapsed_s"])  # type: ignore[arg-type]
    print(f"  front (--dry-run):     {front_s:6.2f} s in the process, {dry_wall:5.2f} s wall")
    print(
        f"  resume (run again):    {resume_in_process:6.3f} s in the process, "
        f"{resume_wall:5.2f} s wall; exit {again.returncode} and {code}"
    )
    print(
        f"  ratio resume / front:  {resume_in_process / front_s:6.3f} in the process, "
        f"{resume_wall / dry_wall:5.2f} wall (target < 0.10)"
    )
    print(f"  requests during the resumes: {requests_after - requests_before}")


def _measure(argv: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    """Run a command, its stdout thrown away: wall seconds, seconds to its first line on
    stderr, peak memory (PSS of it and its children, MiB, sampled every 0.05 s)."""
    import threading

    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    assert proc.stderr is not None
    peak = [0]
    first: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], _tree_pss_kib(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    err = []
    for line in proc.stderr:
        if not first:
            first.append(time.perf_counter() - started)
        err.append(line)
    _, status, usage = os.wait4(proc.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    if code not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} failed ({code}): {b''.join(err)[-2000:].decode()}")
    return {
        "wall": wall,
        "first_line": first[0] if first else float("nan"),
        "peak_mib": peak[0] / 1024,
        "code": code,
        "cpu": usage.ru_utime + usage.ru_stime,
    }


def _log_bytes(job_dir: Path) -> int:
    return sum(
        p.stat().st_size for p in job_dir.iterdir() if p.name.startswith(("outcomes", "details"))
    )


def _write_archive_job(job_dir: Path, input_path: Path, lines: int, done: int, url: str) -> None:
    """A job of `lines` hashes whose log records the first `done` of them, as a run writes it
    (the encoder, the log's segments), answered as the simulator answers: 100 a request, most
    queued with the sample's four hashes, some not found; a checkpoint at line done + 1."""
    from reanalyzer.core.outcomes import AnalysisResult, DetailTexts, Status, Verdict
    from reanalyzer.record import jobdir
    from reanalyzer.record.checkpoint import Checkpoint, write_checkpoint
    from reanalyzer.record.outcome_log import OutcomeLog, encode_verdicts, utc_now
    from reanalyzer.run.job import _identity, recorded_settings
    from reanalyzer.settings import load_settings

    kinds = (("md5", 32), ("sha1", 40), ("sha256", 64), ("sha512", 128))
    rng = random.Random(5)
    offsets = []
    with input_path.open("w") as out:
        at = 0
        for start in range(0, lines, 100_000):
            count = min(100_000, lines - start)
            blob = os.urandom(count * 132).hex()
            rows = []
            for i in range(count):
                name, width = kinds[(start + i) % 4]
                rows.append(blob[i * 264 : i * 264 + width])
            text = "\n".join(rows) + "\n"
            for row in rows:
                offsets.append(at)
                at += len(row) + 1
            out.write(text)
    offsets.append(at)
    settings = load_settings({"url": url, "token": SEND_TOKEN, "job_dir": job_dir})
    job_dir.mkdir(parents=True, exist_ok=True)
    jobdir.prepare(
        job_dir, _identity(settings, [str(input_path)]), True, recorded_settings(settings)
    )
    source = str(input_path)
    core = (AnalysisResult("core", 201, "Sample is sent to core analysis."),)
    queued = Verdict(Status.QUEUED, http_status=201, attempts=1, analyses=core)
    absent = Verdict(
        Status.NOT_FOUND, http_status=201, attempts=1, reason="absent from the bulk answer"
    )
    hashes_of = input_path.read_text().splitlines()
    journal = OutcomeLog(job_dir / "outcomes.jsonl", fsync_interval=5.0)
    # Requests of one type each, 100 hashes, answered a few out of order (8 in flight).
    pending: list[list[str]] = []
    by_type: dict[int, list[int]] = {0: [], 1: [], 2: [], 3: []}
    for line in range(1, done + 1):
        bucket = by_type[(line - 1) % 4]
        bucket.append(line)
        if len(bucket) == 100 or line == done:
            for key in list(by_type):
                if by_type[key] and (len(by_type[key]) == 100 or line == done):
                    numbers = by_type[key]
                    by_type[key] = []
                    hashes = [hashes_of[n - 1] for n in numbers]
                    name = kinds[key][0]
                    verdict = absent if rng.random() < 0.05 else queued
                    details = DetailTexts()
                    extra = os.urandom(len(hashes) * 132).hex()
                    for j, value in enumerate(hashes):
                        four = {k: extra[j * 264 : j * 264 + w] for k, w in kinds}
                        four[name] = value
                        details.append(
                            "{}"
                            if verdict is absent
                            else ",".join(f'"{k}":"{v}"' for k, v in four.items()).join("{}")
                        )
                    pending.extend(
                        encode_verdicts(
                            name,
                            hashes,
                            [source] * len(hashes),
                            numbers,
                            [verdict] * len(hashes),
                            utc_now(),
                            details,
                        )
                    )
                    if len(pending) >= 8:
                        rng.shuffle(pending)
                        journal.write_lines(pending)
                        pending = []
    journal.write_lines(pending)
    journal.sync()
    write_checkpoint(job_dir, Checkpoint(0, done + 1, offsets[done], False, 0))
    journal.close()


def bench_archive(lines: int = 2_000_000, real_lines: int = 200_000) -> None:
    """What an archive-sized job costs: the log's bytes per record (of a real run through the
    simulator, and of a generated job of `lines`), status, report, and a resume."""
    import tempfile

    from reanalyzer.simulator.requestlog import read_log

    env = {**os.environ, "REANALYZER_TOKEN": SEND_TOKEN}
    cli = [sys.executable, "-m", "reanalyzer"]
    print(
        f"archive: a {lines:,}-line job; machine speed: reference loop "
        f"{reference_speed():.0f} ns per iteration; load {os.getloadavg()[0]:.2f}"
    )
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=OUT) as tmp:
        root = Path(tmp)
        # 1. a real run: the simulator's world, its own input (repeats, junk, absent samples)
        request_log = root / "requests.jsonl"
        proc = subprocess.Popen(
            [
                *cli,
                "simulate",
                "--port",
                "0",
                "--seed",
                "11",
                "--samples",
                str(real_lines),
                "--write-input",
                str(root / "real.txt"),
                "--lines",
                str(real_lines),
                "--request-log",
                str(request_log),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            text=True,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()
        while "listening on" not in line:
            line = proc.stdout.readline()
            if not line:
                raise SystemExit("the simulator did not start")
        url = line.split("listening on ")[1].split()[0]
        try:
            real = root / "real-job"
            done = subprocess.run(
                [
                    *cli,
                    "run",
                    "--url",
                    url,
                    "--job-dir",
                    str(real),
                    "--progress",
                    "off",
                    "--log-level",
                    "warning",
                    str(root / "real.txt"),
                ],
                env=env,
                capture_output=True,
            )
            assert done.returncode == 0, done.stderr[-2000:]
            counts = json.loads((real / "counts.json").read_text())
            size = _log_bytes(real)
            print(
                f"  real run, {counts['records']:,} records through the simulator: "
                f"{size / counts['records']:.1f} bytes per record on disk "
                f"(the log before: ~570)"
            )

            # 2. a generated job of `lines`, 90% recorded
            job = root / "job"
            started = time.perf_counter()
            recorded = lines * 9 // 10
            _write_archive_job(job, root / "archive.txt", lines, recorded, url)
            print(
                f"  generated {lines:,} lines, {recorded:,} recorded, in "
                f"{time.perf_counter() - started:.1f} s"
            )

            # 3. the resume: its first line, its first request, the whole run
            requests_before = len(read_log(request_log))
            t0 = time.monotonic()
            resume = _measure(
                [
                    *cli,
                    "run",
                    "--url",
                    url,
                    "--job-dir",
                    str(job),
                    "--progress",
                    "log",
                    str(root / "archive.txt"),
                ],
                env,
            )
            firsts = read_log(request_log)[requests_before:]
            first_request = (min(r.monotonic for r in firsts) - t0) if firsts else float("nan")
            size = _log_bytes(job)
            print(
                f"  log on disk: {size / lines:.1f} bytes per record "
                f"({size / 1e6:,.0f} MB for {lines:,} records)"
            )
            print(
                f"  resume: first line after {resume['first_line']:.2f} s, first request "
                f"after {first_request:.2f} s, the rest ({lines - recorded:,} lines) done in "
                f"{resume['wall']:.1f} s; peak {resume['peak_mib']:.0f} MiB"
            )
        finally:
            proc.terminate()
            proc.wait(10)

        # 4. status, report, retry on the finished job
        st = _measure([*cli, "status", str(job)], env)
        print(
            f"  status: {st['wall']:.2f} s ({st['cpu']:.2f} CPU-s), peak {st['peak_mib']:.0f} MiB"
        )
        counts_file = job / "counts.json"
        saved = counts_file.read_bytes()
        counts_file.unlink()  # as a job directory from before counts.json
        st_old = _measure([*cli, "status", str(job)], env)
        counts_file.write_bytes(saved)
        print(
            f"  status without counts.json (reading the log): {st_old['wall']:.2f} s, "
            f"peak {st_old['peak_mib']:.0f} MiB"
        )
        retry = _measure([*cli, "retry", str(job)], env)
        print(f"  retry with nothing to do: {retry['wall']:.2f} s")
        # Above 5M lines json (and jq on it) would take minutes: list, csv and table only.
        for fmt in ("list", "csv", "table", "json")[: 3 if lines > 5_000_000 else 4]:
            rep = _measure([*cli, "report", str(job), "--format", fmt], env)
            print(
                f"  report --format {fmt:<5}: {rep['wall']:6.2f} s = "
                f"{lines / rep['wall']:>10,.0f} records/s ({rep['cpu']:.2f} CPU-s = "
                f"{lines / rep['cpu']:,.0f} records per CPU-s), peak {rep['peak_mib']:.0f} MiB",
                flush=True,
            )
        # The README's recipe for the final outcome per line, with jq on its output.
        if lines > 5_000_000:
            print(f"  load at end: {os.getloadavg()[0]:.2f}")
            return
        started = time.perf_counter()
        pipe = subprocess.run(
            f"{' '.join(cli)} report {job} --format json | jq -c 'select(.status == \"failed\")'"
            " | wc -l",
            shell=True,
            env=env,
            capture_output=True,
            text=True,
        )
        print(
            f"  report --format json | jq -c 'select(...)': "
            f"{time.perf_counter() - started:.2f} s ({pipe.stdout.strip()} failed)"
        )
    print(f"  load at end: {os.getloadavg()[0]:.2f}")


def main() -> None:
    # A bench stopped with SIGTERM unwinds like Ctrl-C: each `finally` stops its simulator
    # rather than leaving it running, orphaned.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "what",
        nargs="*",
        default=["front"],
        choices=[
            "front",
            "simulator",
            "send",
            "overhead",
            "rate",
            "resume",
            "pace",
            "sdk",
            "archive",
        ],
    )
    parser.add_argument(
        "--resume-lines",
        type=int,
        default=1_000_000,
        help="front: lines of the job stopped and resumed (0: none; default 1,000,000)",
    )
    parser.add_argument(
        "--lines",
        type=int,
        action="append",
        help="front input sizes (default 1,000,000 and 10,000,000); archive: the job's lines "
        "(default 2,000,000)",
    )
    args = parser.parse_args()
    if "front" in args.what:
        bench_front(args.lines or [1_000_000, 10_000_000], args.resume_lines)
    if "simulator" in args.what:
        bench_simulator()
    if "send" in args.what:
        bench_send()
    if "overhead" in args.what:
        bench_overhead()
    if "rate" in args.what:
        bench_rate()
    if "resume" in args.what:
        bench_resume()
    if "pace" in args.what:
        bench_pace()
    if "sdk" in args.what:
        bench_sdk()
    if "archive" in args.what:
        for lines in args.lines or [2_000_000]:
            bench_archive(lines)


if __name__ == "__main__":
    main()
