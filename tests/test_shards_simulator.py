"""Four shards of one input at once against one simulator, through the real CLI in
subprocesses: no hash is sent by two shards, and `report` over their directories gives one
final record per input line with the statuses of one unsharded run; a shard killed with
SIGKILL and rerun alone ends the same.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from support import StartSim, simulators

from reanalyzer.core.shards import shard_of
from reanalyzer.errors import ExitCode
from reanalyzer.record.outcome_log import OUTCOMES_FILE
from reanalyzer.simulator import RunningSimulator, write_input

TOKEN = "tok-41c09e7d2b8a4f65-shards"
SHARDS = 4
LINES = 2400



@pytest.fixture
async def start() -> AsyncIterator[StartSim]:
    """Simulators of one world (same seed), each fresh; closed afterwards."""
    async with simulators(TOKEN, samples=600, seed=11) as start:
        yield start


def _env() -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("REANALYZER_", "SLURM_", "AWS_BATCH_", "JOB_COMPLETION"))}
    return {**clean, "REANALYZER_TOKEN": TOKEN}


async def _spawn(*args: str, cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reanalyzer", *args, cwd=cwd, env=_env(),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)


async def _cli(*args: str, cwd: Path) -> tuple[int, str, str]:
    proc = await _spawn(*args, cwd=cwd)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _run_args(sim: RunningSimulator, job_dir: str, *extra: str) -> list[str]:
    return ["run", "--url", sim.url, "--job-dir", job_dir, "--batch-size", "20",
            "--concurrency", "2", "--idle-flush", "0.05", "--progress", "off", *extra,
            "hashes.txt"]


async def _report(cwd: Path, *dirs: str) -> list[dict[str, Any]]:
    code, out, err = await _cli("report", *dirs, "--format", "json", cwd=cwd)
    assert code == ExitCode.OK, err
    return [json.loads(line) for line in out.splitlines()]


def _one_per_line(records: list[dict[str, Any]]) -> dict[tuple[str, int], str]:
    lines = Counter((r["source"], r["line"]) for r in records)
    assert max(lines.values()) == 1, [k for k, n in lines.items() if n > 1][:5]
    return {(r["source"], r["line"]): r["status"] for r in records}


async def _unsharded(start: StartSim, cwd: Path) -> dict[tuple[str, int], str]:
    sim = await start()
    code, _, err = await _cli(*_run_args(sim, "whole"), cwd=cwd)
    assert code == ExitCode.OK, err
    return _one_per_line(await _report(cwd, "whole"))


def _sent(sim: RunningSimulator) -> Counter[str]:
    return Counter(h.lower() for r in sim.log.records for h in r.hashes)


def _shard_dirs() -> list[str]:
    return [f"shard{k}" for k in range(SHARDS)]


async def test_four_shards_at_once_add_up_to_one_unsharded_run(
        start: StartSim, tmp_path: Path) -> None:
    """Four shards run at once against one appliance send each hash once between them, and
    their merged report is the unsharded run's, line for line; status says all finished."""
    sim = await start()
    counts = write_input(tmp_path / "hashes.txt", sim.world, LINES, seed=4)
    assert counts.invalid
    assert counts.duplicates
    assert all(counts.by_type.values())  # every hash type, in mixed case
    procs = [await _spawn(*_run_args(sim, d, "--shard", f"{k}/{SHARDS}"), cwd=tmp_path)
             for k, d in enumerate(_shard_dirs())]
    for proc in procs:
        _, err = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode == ExitCode.OK, err.decode()
        assert "job.shard" in err.decode()

    sent = _sent(sim)
    assert max(sent.values()) == 1  # no hash sent twice, so none by two shards
    assert len(sent) == counts.distinct
    for k, job_dir in enumerate(_shard_dirs()):
        lines = (tmp_path / job_dir / OUTCOMES_FILE).read_text().splitlines()
        hashed = [json.loads(line)["hash"] for line in lines]
        assert all(shard_of(h, SHARDS) == k for h in hashed if h is not None)
        assert all(h is not None for h in hashed) or k == 0  # invalid lines: shard 0's

    merged = _one_per_line(await _report(tmp_path, *_shard_dirs()))
    whole = await _unsharded(start, tmp_path)
    assert merged == whole
    assert len(merged) == counts.lines - counts.blank - counts.comments

    code, out, err = await _cli("status", "--json", *_shard_dirs(), cwd=tmp_path)
    assert code == ExitCode.OK, err
    assert json.loads(out)["final_total"] == len(whole)


async def test_a_shard_killed_and_rerun_alone_ends_the_same(
        start: StartSim, tmp_path: Path) -> None:
    """Shard 1 killed with SIGKILL mid-run while the others finish; status says the job is not
    finished; shard 1 rerun alone completes it, and the merged report is the unsharded run's
    (a hash in flight at the kill may read already_queued the second time)."""
    sim = await start(latency_ms=60)
    write_input(tmp_path / "hashes.txt", sim.world, LINES, seed=4)
    procs = [await _spawn(*_run_args(sim, d, "--shard", f"{k}/{SHARDS}"), cwd=tmp_path)
             for k, d in enumerate(_shard_dirs())]
    victim_log = tmp_path / "shard1" / OUTCOMES_FILE
    for _ in range(600):
        if victim_log.exists() and len(victim_log.read_bytes().splitlines()) >= 60:
            break
        await asyncio.sleep(0.05)
    procs[1].send_signal(signal.SIGKILL)
    codes = []
    for proc in procs:
        await asyncio.wait_for(proc.communicate(), 120)
        codes.append(proc.returncode)
    assert codes[1] == -signal.SIGKILL, "the shard finished before it could be killed"
    assert [c for k, c in enumerate(codes) if k != 1] == [ExitCode.OK] * (SHARDS - 1)

    code, out, _ = await _cli("status", "--json", *_shard_dirs(), cwd=tmp_path)
    assert code == ExitCode.INTERRUPTED
    assert json.loads(out)["unfinished"] == ["shard1"]

    code, _, err = await _cli(*_run_args(sim, "shard1", "--shard", f"1/{SHARDS}"), cwd=tmp_path)
    assert code == ExitCode.OK, err
    code, _, err = await _cli("status", *_shard_dirs(), cwd=tmp_path)
    assert code == ExitCode.OK, err

    sent = _sent(sim)
    twice = {h for h, n in sent.items() if n > 1}
    assert all(shard_of(h, SHARDS) == 1 for h in twice)  # only the killed shard sent again
    merged = await _report(tmp_path, *_shard_dirs())
    got = _one_per_line(merged)
    whole = await _unsharded(start, tmp_path)
    assert got.keys() == whole.keys()
    hash_of = {(r["source"], r["line"]): r["hash"] for r in merged}
    for key, want in whole.items():
        if got[key] != want:  # its first 201 answer was lost with the killed process
            assert (want, got[key]) == ("queued", "already_queued"), key
            assert hash_of[key] in twice, key
