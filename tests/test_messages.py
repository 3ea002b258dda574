"""Counts in what a person reads say "1 attempt", "1 request", never "1 attempts". The CLI runs
in subprocesses (asyncio's, so that the simulator in this test's loop keeps serving)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from reanalyzer.core.words import counted
from reanalyzer.errors import ExitCode
from reanalyzer.record.outcome_log import OUTCOMES_FILE, read_records
from reanalyzer.simulator import SimulatorConfig, start_simulator, write_input

TOKEN = "tok-61d0a9e3f5c24b78-messages"


async def run(url: str, *args: str, cwd: Path) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REANALYZER_")}
    env["REANALYZER_TOKEN"] = TOKEN
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reanalyzer", "run", "--url", url, "--log-format", "json", *args,
        cwd=cwd, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, err.decode()


def test_counted_is_singular_for_one_only() -> None:
    """One thing is singular, none and many are plural, with the plural given or an s."""
    assert counted(1, "attempt") == "1 attempt"
    assert counted(0, "attempt") == "0 attempts"
    assert counted(1200, "hash", "hashes") == "1,200 hashes"


async def test_a_hash_given_up_after_one_attempt_says_so_in_the_singular(tmp_path: Path) -> None:
    """With --max-retries 0, the failed records' reason reads "gave up after 1 attempt"."""
    sim = await start_simulator(SimulatorConfig(token=TOKEN, samples=200, seed=5,
                                                error_rate=0.5, fault_seed=3))
    try:
        write_input(tmp_path / "hashes.txt", sim.world, 300, seed=4)
        code, err = await run(sim.url, "--job-dir", "job", "--max-retries", "0", "--batch-size",
                              "20", "hashes.txt", cwd=tmp_path)
    finally:
        await sim.aclose()
    assert code == ExitCode.SOME_FAILED, err
    failed = [r for r in read_records(tmp_path / "job" / OUTCOMES_FILE) if r["status"] == "failed"]
    assert failed
    assert all(r["reason"].startswith("gave up after 1 attempt: ") for r in failed)


async def test_a_budget_of_one_request_says_one_request(tmp_path: Path) -> None:
    """--max-requests 1 stops the run (exit 4) saying "1 request sent", not "1 requests"."""
    sim = await start_simulator(SimulatorConfig(token=TOKEN, samples=200, seed=5))
    try:
        write_input(tmp_path / "hashes.txt", sim.world, 300, seed=4)
        code, err = await run(sim.url, "--job-dir", "job", "--max-requests", "1", "--batch-size",
                              "20", "hashes.txt", cwd=tmp_path)
    finally:
        await sim.aclose()
    assert code == ExitCode.INTERRUPTED, err
    summary = json.loads((tmp_path / "job" / "summary.json").read_text())
    assert summary["stopped_by"] == "max-requests: 1 request sent (limit 1)"
