"""An outcome log damaged in the middle (a line that is not a record): `run` refuses to resume
from it, naming the file and the line (exit 8); `status` and `report` read past it with a
warning naming them. The CLI runs in subprocesses, against the simulator."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from support import run_cli

from reanalyzer.errors import ExitCode
from reanalyzer.record.outcome_log import OUTCOMES_FILE, read_records
from reanalyzer.simulator import SimulatorConfig, start_simulator, write_input

TOKEN = "tok-3c8e5a1f7b2d4960-damaged"


async def cli(*args: str, cwd: Path) -> tuple[int, str, str]:
    ran = await run_cli(*args, cwd=cwd, token=TOKEN)
    return ran.code, ran.out, ran.err


async def test_a_damaged_line_in_the_outcome_log(tmp_path: Path) -> None:
    """A failed record in the middle of the log overwritten with garbage: the next run exits 8
    naming the log and the line, without a traceback; status and report exit 0, warn of that
    file and line, and show every other record."""
    sim = await start_simulator(SimulatorConfig(token=TOKEN, samples=300, seed=5,
                                                error_rate=0.5, fault_seed=3))
    try:
        write_input(tmp_path / "hashes.txt", sim.world, 400, seed=4)
        run = ("run", "--url", sim.url, "--job-dir", "job", "--max-retries", "0",
               "--batch-size", "20", "hashes.txt")
        code, _, err = await cli(*run, cwd=tmp_path)
        assert code == ExitCode.SOME_FAILED, err
        total = len(list(read_records(tmp_path / "job" / OUTCOMES_FILE)))
        # The run closed its log into a compressed segment: damage a line of it.
        log = tmp_path / "job" / "outcomes.000001.jsonl.gz"
        lines = gzip.decompress(log.read_bytes()).splitlines(keepends=True)
        middle = len(lines) // 2
        damaged = next(i for i in range(middle, len(lines)) if b'"failed"' in lines[i])
        lost = len(json.loads(lines[damaged])["lines"])  # the records that line held
        lines[damaged] = b"\x00\x17garbage" + lines[damaged][12:]  # still ends in a newline
        log.write_bytes(gzip.compress(b"".join(lines)))

        code, _, err = await cli(*run, cwd=tmp_path)
        assert code == ExitCode.JOB, err
        assert "Traceback" not in err
        assert f"{log.relative_to(tmp_path)}, line {damaged + 1:,}" in err

        # status answers from counts.json without reading the log; without it (a job directory
        # from before it) it reads the log, past the damaged line.
        (tmp_path / "job" / "counts.json").unlink()
        code, out, err = await cli("status", "job", "--json", cwd=tmp_path)
        assert code == ExitCode.OK, err
        assert f"line {damaged + 1:,} is not a whole record" in err
        assert json.loads(out)["final_total"] == total - lost

        code, out, err = await cli("report", "job", "--format", "json", cwd=tmp_path)
        assert code == ExitCode.OK, err
        assert f"{log.relative_to(tmp_path)} line {damaged + 1:,} is not a whole record" in err
        assert len(out.splitlines()) == total - lost
    finally:
        await sim.aclose()
