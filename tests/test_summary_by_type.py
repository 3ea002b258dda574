"""The summary's counts by hash type name hash types only: invalid lines are counted under their
status, never as a type "none" (nor as "none 0" when there are none), in text and summary.json."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from reanalyzer.simulator import SimulatorConfig, start_simulator, write_input

TOKEN = "tok-bytype-7e3a-SECRET"


async def _cli(*args: str, cwd: Path) -> tuple[int, str]:
    """The CLI in a subprocess with console logs; its exit code and stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REANALYZER_")}
    env["REANALYZER_TOKEN"] = TOKEN
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reanalyzer", *args, "--log-format", "console", "--progress", "off",
        env=env, cwd=cwd, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, err.decode()


@pytest.mark.parametrize("junk", [0.0, 0.2], ids=["no-invalid", "some-invalid"])
async def test_by_type_names_hash_types_only(tmp_path: Path, junk: float) -> None:
    """A first run and its resume list no type 'none' by type: invalid lines are under
    `invalid` only."""
    sim = await start_simulator(SimulatorConfig(token=TOKEN, samples=200, seed=3))
    try:
        path = tmp_path / "hashes.txt"
        write_input(path, sim.world, 400, seed=3, junk_share=junk)
        job_dir = tmp_path / "job"
        common = ["run", "--url", sim.url, "--job-dir", str(job_dir), "--batch-size", "20"]
        code, err = await _cli(*common, "--max-requests", "3", str(path), cwd=tmp_path)
        assert code == 4, err
        code, err = await _cli(*common, str(path), cwd=tmp_path)
        assert code in (0, 1), err
        by_type_line = next(line for line in err.splitlines() if "by type:" in line)
        assert "none" not in by_type_line
        summary = json.loads((job_dir / "summary.json").read_text())
        assert "none" not in summary["recorded_by_type"]
        assert all(summary["recorded_by_type"].values())
        hashed = summary["recorded_total"] - summary["recorded"].get("invalid", 0)
        assert sum(summary["recorded_by_type"].values()) == hashed
    finally:
        await sim.aclose()
