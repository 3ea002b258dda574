"""What a resumed run says it does: `job.started`'s "retrying" counts every line recorded
failed that the run sends again, on either side of the checkpoint's mark."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from support import run_cli

from reanalyzer.errors import ExitCode
from reanalyzer.record.outcome_log import OUTCOMES_FILE, read_records
from reanalyzer.simulator import SimulatorConfig, start_simulator, write_input

TOKEN = "tok-0c7d3e9a1b5f4a28-figures"


async def cli(*args: str, cwd: Path, **env: str) -> tuple[int, str]:
    ran = await run_cli(*args, cwd=cwd, token=TOKEN, env=env)
    return ran.code, ran.err


async def test_a_resume_counts_the_failed_lines_it_sends_again(tmp_path: Path) -> None:
    """A run killed before its checkpoint covered its failed records resends them on resume,
    and its job.started says how many: not 0."""
    sim = await start_simulator(SimulatorConfig(token=TOKEN, samples=300, seed=3,
                                                error_rate=0.5, fault_seed=1))
    try:
        write_input(tmp_path / "h.txt", sim.world, 200, seed=3)
        common = ("run", "--url", sim.url, "--job-dir", "job", "--max-retries", "0",
                  "--batch-size", "10", "--concurrency", "1", "--progress", "off",
                  "--log-format", "json")
        code, err = await cli(*common, "h.txt", cwd=tmp_path,
                              REANALYZER_FAILPOINT="journal.after_write:6")
        assert code == -signal.SIGKILL, err
        failed = {(r["source"], r["line"]) for r in read_records(tmp_path / "job" / OUTCOMES_FILE)
                  if r["status"] == "failed"}
        assert failed
        # The figure is logged at the start: one request is enough of the resume.
        code, err = await cli(*common, "--max-requests", "1", "h.txt", cwd=tmp_path)
        assert code == ExitCode.INTERRUPTED, err
        (started,) = [e for line in err.splitlines() if line.startswith("{")
                      if (e := json.loads(line))["event"] == "job.started"]
        assert started["resuming"] is True
        assert started["retrying"] == len(failed)
    finally:
        await sim.aclose()
