"""`run --precheck` end to end: absent samples are recorded not_found and never sent to be
queued; every other line gets its usual outcome."""

from __future__ import annotations

from pathlib import Path

from reanalyzer import job
from reanalyzer.errors import ExitCode
from reanalyzer.journal import OUTCOMES_FILE, read_records
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
