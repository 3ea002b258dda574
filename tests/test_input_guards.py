"""Inputs that cannot be trusted to the end (standard-input runs started together, an input that
changes under a running job, a corrupt gzip), each ending with every line read accounted for;
and the job files holding those lines, readable by their owner only.

The CLI runs in subprocesses (asyncio's, so that the simulator in this test's loop keeps serving).
"""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import os
import stat
import sys
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from support import run_cli

from reanalyzer.errors import ExitCode
from reanalyzer.record.outcome_log import OUTCOMES_FILE, read_records
from reanalyzer.simulator import RunningSimulator, SampleKind, SimulatorConfig, start_simulator

TOKEN = "tok-9e4b1c7d2a6f3e80-inputs"

# `python -c` with the job's clock stopped: every run starts "in the same second".
FROZEN_CLOCK = """
import datetime, sys
import reanalyzer.run.job as job
class Frozen(datetime.datetime):
    @classmethod
    def now(cls, tz=None):
        return cls(2026, 12, 1, 8, 28, 33, tzinfo=tz)
job.datetime = Frozen
from reanalyzer.cli import main
sys.exit(main(sys.argv[1:]))
"""


async def cli(
    *args: str, cwd: Path, stdin: bytes = b"", code: str | None = None
) -> tuple[int, str, str]:
    """`python -m reanalyzer ARGS` (or `python -c CODE ARGS`) fed `stdin`: code, out, err."""
    ran = await run_cli(*args, cwd=cwd, token=TOKEN, stdin=stdin, code=code)
    return ran.code, ran.out, ran.err


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    simulator = await start_simulator(SimulatorConfig(token=TOKEN, samples=3000, seed=12))
    yield simulator
    await simulator.aclose()


def held_hashes(sim: RunningSimulator, count: int) -> list[str]:
    """`count` distinct sha1 hashes of samples the simulated appliance holds."""
    hashes = [sample.sha1 for sample in sim.world.samples if sample.kind is SampleKind.PRESENT]
    assert len(hashes) >= count
    return hashes[:count]


def records(job_dir: Path) -> list[dict[str, Any]]:
    return list(read_records(job_dir / OUTCOMES_FILE))


async def test_two_stdin_runs_in_the_same_second_get_a_job_directory_each(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    """Two standard-input runs of the same command started within one second each get a job
    of their own: neither says "already done", and each one's hash is in its own log."""
    first, second = held_hashes(sim, 2)
    for value in (first, second):
        code, _, err = await cli("run", "--url", sim.url, cwd=tmp_path, stdin=f"{value}\n".encode(),
                                 code=FROZEN_CLOCK)
        assert code == ExitCode.OK, err
        assert "already done" not in err
    job_dirs = sorted((tmp_path / "jobs").iterdir())
    assert len(job_dirs) == 2
    assert all(d.name.startswith("stdin-") and "-20261201T082833-" in d.name for d in job_dirs)
    logged = sorted(r["hash"] for d in job_dirs for r in records(d))
    assert logged == sorted([first, second])


async def test_job_files_are_the_owners_only(sim: RunningSimulator, tmp_path: Path) -> None:
    """Under the usual umask 022, a stdin job's directory is created 0700 and every file the run
    writes in it (log, checkpoint, job, summary, lock, spool) 0600: no one else reads them."""
    before = os.umask(0o022)
    try:
        code, _, err = await cli("run", "--url", sim.url, "--job-dir", "job", "-", cwd=tmp_path,
                                 stdin="".join(f"{h}\n" for h in held_hashes(sim, 5)).encode())
    finally:
        os.umask(before)
    assert code == ExitCode.OK, err
    job_dir = tmp_path / "job"
    assert stat.S_IMODE(job_dir.stat().st_mode) == 0o700
    names = {p.name: stat.S_IMODE(p.stat().st_mode) for p in job_dir.iterdir()}
    assert set(names) >= {"outcomes.jsonl", "checkpoint.json", "job.json", "summary.json", "lock",
                          "stdin.spool", "stdin.spool.complete"}
    assert names == dict.fromkeys(names, 0o600)


def corrupt_gzip(data: bytes) -> bytes:
    """`data` gzipped, with two bytes flipped in the middle where zlib then finds its stream
    broken (most flips only fail the CRC check at the end): the first such place from the
    middle on, tried with the gzip module itself."""
    packed = gzip.compress(data, mtime=0)
    for at in range(len(packed) // 2, len(packed) - 16):
        damaged = bytearray(packed)
        damaged[at] ^= 0x55
        damaged[at + 1] ^= 0x55
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(damaged)) as unpacked:
                while unpacked.read1(1 << 16):
                    pass
        except zlib.error:
            return bytes(damaged)
        except (OSError, EOFError):
            continue
    raise AssertionError("no two-byte flip breaks the deflate stream")


async def test_a_corrupt_gzip_is_an_input_error_and_the_lines_before_it_are_recorded(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    """A gzip input whose deflate data breaks mid-way ends the run with exit 3 and a message
    naming the file and where, not a traceback; the lines read before it have their records,
    one each, and the summary says the run was aborted."""
    hashes = [sample.sha1 for sample in sim.world.samples] * 4  # repeats: recorded duplicate
    (tmp_path / "hashes.txt.gz").write_bytes(corrupt_gzip("".join(f"{h}\n" for h in hashes)
                                                          .encode()))
    code, _, err = await cli("run", "--url", sim.url, "--job-dir", "job", "--log-format", "json",
                             "hashes.txt.gz", cwd=tmp_path)
    assert code == ExitCode.INPUT, err
    assert "Traceback" not in err
    error = next(json.loads(line) for line in err.splitlines() if '"reanalyzer.error"' in line)
    assert "hashes.txt.gz" in error["message"]
    assert "at byte" in error["message"]
    assert "decompressed" in error["message"]
    logged = records(tmp_path / "job")
    lines = sorted(r["line"] for r in logged)
    assert lines == list(range(1, len(lines) + 1))
    assert len(lines) > 1000
    assert all(r["hash"] == hashes[r["line"] - 1] for r in logged)
    summary = json.loads((tmp_path / "job" / "summary.json").read_text())
    assert summary["state"] == "aborted"
    assert summary["recorded_total"] == len(lines)


async def test_an_input_changed_under_a_running_job_stops_it_with_exit_3(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    """A job reading standard input, then a file: the file is truncated while the job is still
    on standard input. The run stops with exit 3 naming the file and how it changed, the job is
    not called done, and every line read before has its record."""
    first = held_hashes(sim, 30)
    later = tmp_path / "later.txt"
    later.write_text("".join(f"{h}\n" for h in held_hashes(sim, 600)[30:]))
    env = {k: v for k, v in os.environ.items() if not k.startswith("REANALYZER_")}
    env["REANALYZER_TOKEN"] = TOKEN
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reanalyzer", "run", "--url", sim.url, "--job-dir", "job",
        "--idle-flush", "0.05", "--log-format", "json", "-", "later.txt", cwd=tmp_path, env=env,
        stdin=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None
    proc.stdin.write("".join(f"{h}\n" for h in first).encode())
    await proc.stdin.drain()
    log = tmp_path / "job" / OUTCOMES_FILE
    for _ in range(400):  # the lines of standard input are recorded: the job is under way
        if log.exists() and len(records(tmp_path / "job")) == len(first):
            break
        await asyncio.sleep(0.05)
    with later.open("r+b") as f:  # a nightly export cut short under the running job
        f.truncate(later.stat().st_size // 3)
    proc.stdin.close()
    _, err_bytes = await asyncio.wait_for(proc.communicate(), 60)
    err = err_bytes.decode()
    assert proc.returncode == ExitCode.INPUT, err
    error = next(json.loads(line) for line in err.splitlines() if '"reanalyzer.error"' in line)
    assert "later.txt changed while this job read it" in error["message"]
    assert "shrank" in error["message"]
    summary = json.loads((tmp_path / "job" / "summary.json").read_text())
    assert summary["state"] == "aborted"
    checkpoint = json.loads((tmp_path / "job" / "checkpoint.json").read_text())
    assert not checkpoint["complete"]
    assert sorted((r["source"], r["line"]) for r in records(tmp_path / "job")) == [
        ("<stdin>", line) for line in range(1, len(first) + 1)
    ]
