"""Job directories written by reanalyzer before its stage layout (commit 9f49e4b) still resume,
report and answer `status` under today's code.

tests/data/jobs_of_v1/ holds two jobs made by that code from hashes.txt against the simulator
(500 lines, 30% 5xx, --batch-size 20 --max-retries 0): `stopped` by --max-requests 8, and
`failed`, finished with failures. A test puts the input where job.json says it was.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from reanalyzer.errors import ExitCode
from reanalyzer.record.outcome_log import OUTCOMES_FILE, read_records
from reanalyzer.simulator import SimulatorConfig, start_simulator

DATA = Path(__file__).parent / "data" / "jobs_of_v1"
TOKEN = "tok-old-job-0123456789"


def _old_job(tmp_path: Path, name: str) -> Path:
    """A copy of an old job, its input placed as job.json records it (path, size, mtime)."""
    job = tmp_path / "job"
    shutil.copytree(DATA / name, job)
    spec = json.loads((job / "job.json").read_text())
    (entry,) = spec["inputs"]
    hashes = tmp_path / "hashes.txt"
    shutil.copyfile(DATA / "hashes.txt", hashes)
    os.utime(hashes, ns=(entry["mtime_ns"], entry["mtime_ns"]))
    assert hashes.stat().st_size == entry["size"]
    entry["path"] = str(hashes)
    (job / "job.json").write_text(json.dumps(spec))
    return job


async def _cli(*args: str, cwd: Path) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reanalyzer", *args, cwd=cwd,
        env={**os.environ, "REANALYZER_TOKEN": TOKEN}, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _finals(job: Path) -> dict[tuple[str, int], dict[str, object]]:
    return {(r["source"], r["line"]): r for r in read_records(job / OUTCOMES_FILE)}


def _lines() -> int:
    return sum(1 for line in (DATA / "hashes.txt").read_text().splitlines()
               if line.strip() and not line.lstrip().startswith("#"))


@pytest.mark.parametrize("name", ["stopped", "failed"])
async def test_an_old_job_resumes_to_one_final_outcome_per_line(
        tmp_path: Path, name: str) -> None:
    """The same command on an old job sends only what it had not finished (its failures
    included), keeps every final record it had, and ends with one outcome per input line."""
    job = _old_job(tmp_path, name)
    before = {k: r for k, r in _finals(job).items() if r["status"] != "failed"}
    sim = await start_simulator(SimulatorConfig(token=TOKEN, samples=300, seed=2))
    try:
        spec = json.loads((job / "job.json").read_text())
        # The appliance moved (the job is the same), and the old code kept a host as typed.
        spec["settings"]["url"] = sim.url.replace("127.0.0.1", "LOCALHOST")
        (job / "job.json").write_text(json.dumps(spec))
        url = sim.url.replace("127.0.0.1", "localhost")
        code, _, err = await _cli("run", "--url", url, "--job-dir", "job", "--batch-size",
                                  "20", "--progress", "off", "hashes.txt", cwd=tmp_path)
        assert code == ExitCode.OK, err
        resent = {h.lower() for rec in sim.log.records for h in rec.hashes}
    finally:
        await sim.aclose()
    after = _finals(job)
    assert len(after) == _lines()
    assert all(r["status"] != "failed" for r in after.values())
    for key, record in before.items():
        assert after[key] == record
    assert not resent & {r["hash"] for r in before.values() if r["hash"]
                         and r["status"] not in ("duplicate", "invalid")}
    code, out, _ = await _cli("status", "job", "--json", cwd=tmp_path)
    assert code == ExitCode.OK
    assert sum(json.loads(out)["by_status"].values()) == _lines()
    code, out, _ = await _cli("report", "job", "--format", "json", cwd=tmp_path)
    assert code == ExitCode.OK
    assert len(out.splitlines()) == _lines()


async def test_an_old_job_answers_status_and_report_as_it_stands(tmp_path: Path) -> None:
    """`status` and `report` read an old, unfinished job without a run: its counts and its
    final records, failures included."""
    job = _old_job(tmp_path, "stopped")
    finals = _finals(job)
    code, out, err = await _cli("status", "job", "--json", cwd=tmp_path)
    assert code == ExitCode.OK, err
    by_status = json.loads(out)["by_status"]
    assert sum(by_status.values()) == len(finals)
    assert by_status.get("failed", 0) == sum(r["status"] == "failed" for r in finals.values())
    code, out, err = await _cli("report", "job", "--status", "failed", "--format", "list",
                                cwd=tmp_path)
    assert code == ExitCode.OK, err
    assert set(out.split()) == {r["hash"] for r in finals.values() if r["status"] == "failed"}
