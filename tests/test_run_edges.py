"""`run --precheck` end to end (absent samples are recorded not_found and never sent to be
queued), and a failed TLS handshake stopping the job at once."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from reanalyzer.errors import ExitCode, JobError, MisconfiguredError
from reanalyzer.record.outcome_log import OUTCOMES_FILE, read_records
from reanalyzer.run import job
from reanalyzer.settings import load_settings
from reanalyzer.simulator import Endpoint, SampleKind, SimulatorConfig, start_simulator, write_input

TOKEN = "tok-precheck-0b1c2d3e4f"


async def test_precheck_sends_only_what_the_appliance_holds(tmp_path: Path) -> None:
    """Hashes of absent samples end not_found with the pre-check's reason, no reanalysis
    request names them, and held samples are queued as without the pre-check."""
    sim = await start_simulator(SimulatorConfig(token=TOKEN, samples=400, seed=8,
                                                share_absent=0.3))
    try:
        path = tmp_path / "hashes.txt"
        counts = write_input(path, sim.world, 800, seed=8)
        settings = load_settings({"url": sim.url, "token": TOKEN, "job_dir": tmp_path / "job",
                                  "precheck": True, "batch_size": 50})
        assert await job.send_job(settings, [str(path)]) == ExitCode.OK
        absent = {value for sample in sim.world.samples if sample.kind is SampleKind.ABSENT
                  for value in sample.hashes()}
        records = list(read_records(tmp_path / "job" / OUTCOMES_FILE))
        not_found = [r for r in records if r["status"] == "not_found"]
        assert len(not_found) == counts.absent
        assert all(r["hash"] in absent and "pre-check" in r["reason"] for r in not_found)
        sent = {h.lower() for rec in sim.log.records if rec.endpoint is not Endpoint.STATUS
                for h in rec.hashes}
        assert not sent & absent
        assert any(rec.endpoint is Endpoint.STATUS for rec in sim.log.records)
        queued = sum(r["status"] in ("queued", "already_queued") for r in records)
        assert queued == counts.queueable + counts.already_queued
    finally:
        await sim.aclose()


async def test_https_to_a_plain_http_appliance_stops_at_once(tmp_path: Path) -> None:
    """A TLS handshake that fails (https:// to a plain-HTTP port) is a configuration error
    (exit 2) naming the scheme, not an outage retried for the unreachable timeout."""
    sim = await start_simulator(SimulatorConfig(token=TOKEN, samples=50, seed=8))
    try:
        path = tmp_path / "hashes.txt"
        write_input(path, sim.world, 100, seed=8)
        url = sim.url.replace("http://", "https://")
        settings = load_settings({"url": url, "token": TOKEN, "job_dir": tmp_path / "job"})
        with pytest.raises(MisconfiguredError, match="scheme") as stopped:
            await job.send_job(settings, [str(path)])
        assert stopped.value.exit_code == ExitCode.USAGE
    finally:
        await sim.aclose()


async def _cli(*args: str, cwd: Path, token: str | None = TOKEN) -> int:
    """The CLI in a subprocess (its signal handlers need a main thread; the simulator keeps
    serving in this test's loop), with no REANALYZER_* setting but the token given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REANALYZER_")}
    if token is not None:
        env["REANALYZER_TOKEN"] = token
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reanalyzer", *args, env=env, cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL)
    return await asyncio.wait_for(proc.wait(), 60)


@pytest.mark.parametrize(
    ("bad", "token"),
    [
        (["--api", "v2", "--endpoint", "single"], TOKEN),
        (["--api", "v2", "--analysis", "rl_cloud_sandbox"], TOKEN),  # no sandbox platform
        (["--analysis", "cuckoo"], TOKEN),  # a v2 analysis on v1
        (["--url", ""], TOKEN),  # sending needs a URL (the settings alone do not) ...
        ([], None),  # ... and a token
        (["--ca-bundle", "absent.pem"], TOKEN),  # found before the first request
        (["--ca-bundle", "hashes.txt"], TOKEN),  # not a PEM file
        (["--input-format", "csv"], TOKEN),  # no --csv-column
        (["--input-format", "jsonl"], TOKEN),  # no --json-field
    ],
)
async def test_settings_no_request_could_honour_create_no_job(
    tmp_path: Path, bad: list[str], token: str | None
) -> None:
    """A usage error (exit 2) through the CLI leaves nothing behind, wherever it is found: the
    corrected command, with the same --job-dir, starts and finishes the job (not exit 8)."""
    sim = await start_simulator(SimulatorConfig(token=TOKEN, samples=50, seed=8))
    try:
        path = tmp_path / "hashes.txt"
        write_input(path, sim.world, 40, seed=8)
        job_dir = tmp_path / "job"
        common = ["run", "--url", sim.url, "--job-dir", str(job_dir), "--progress", "off"]
        assert await _cli(*common, *bad, str(path), cwd=tmp_path, token=token) == ExitCode.USAGE
        assert not job_dir.exists()
        assert await _cli(*common, str(path), cwd=tmp_path) == ExitCode.OK
        assert (job_dir / OUTCOMES_FILE).exists()
    finally:
        await sim.aclose()


async def test_a_job_of_other_settings_is_refused_naming_what_differs(tmp_path: Path) -> None:
    """A job directory made with other outcome-changing settings is refused (exit 8), naming
    each setting that differs with its value before and now."""
    sim = await start_simulator(SimulatorConfig(token=TOKEN, samples=50, seed=8))
    try:
        path = tmp_path / "hashes.txt"
        write_input(path, sim.world, 100, seed=8)
        first = load_settings({"url": sim.url, "token": TOKEN, "job_dir": tmp_path / "job",
                               "analysis": "cloud,core", "max_requests": 1})
        await job.send_job(first, [str(path)])
        other = load_settings({"url": sim.url.replace("127.0.0.1", "localhost"),
                               "token": TOKEN, "analysis": "core", "job_dir": tmp_path / "job"})
        with pytest.raises(JobError, match=r"analysis was 'cloud,core', now 'core', url was") \
                as refused:
            await job.send_job(other, [str(path)])
        assert refused.value.exit_code == ExitCode.JOB
    finally:
        await sim.aclose()
