"""Budgets and guards: each stops the run cleanly with exit 4, and the same command resumes."""

from __future__ import annotations

from pathlib import Path

import pytest

from reanalyzer.errors import ExitCode
from reanalyzer.record.outcome_log import OUTCOMES_FILE, read_records
from reanalyzer.run import job
from reanalyzer.run.budget import Budget
from reanalyzer.settings import load_settings
from reanalyzer.simulator import SimulatorConfig, start_simulator, write_input

TOKEN = "tok-budget-9e8d7c6b5a"


def test_no_budget_never_stops() -> None:
    """Without limits, nothing is ever exceeded."""
    assert Budget().exceeded(10**9, 10**9, 10**9) is None


def test_max_requests() -> None:
    """The request budget stops the run once that many requests were sent."""
    assert Budget(max_requests=10).exceeded(9, 0, 0) is None
    assert "max-requests" in (Budget(max_requests=10).exceeded(10, 0, 0) or "")


def test_failure_rate_judged_on_the_first_sample_only() -> None:
    """The failure guard judges the whole sample: it stops only above the rate of it."""
    budget = Budget(max_failure_rate=10.0, failure_sample=100)
    assert budget.exceeded(5, 50, 10) is None  # 10 of 100 is not more than 10%, whatever comes
    assert budget.exceeded(5, 100, 10) is None  # 10% is not more than 10%
    assert "max-failure-rate" in (budget.exceeded(5, 100, 11) or "")


def test_failure_rate_trips_before_the_sample_is_complete() -> None:
    """Once more than the rate of the whole sample has failed, no outcome still to come can undo
    it: the guard stops the run at once, before the rest of the sample is answered."""
    budget = Budget(max_failure_rate=10.0, failure_sample=100)
    assert budget.exceeded(5, 30, 10) is None
    assert "11 of the first 100 hashes sent failed" in (budget.exceeded(5, 30, 11) or "")


@pytest.mark.parametrize(
    "limit", [{"max_duration": 0.3}, {"max_requests": 5}, {"max_failure_rate": 5.0,
                                                            "failure_sample": 100}]
)
async def test_a_budget_stops_cleanly_and_the_job_resumes(
    tmp_path: Path, limit: dict[str, float]
) -> None:
    """A run stopped by a budget returns 4 with part of the input recorded; the same job
    without the budget (the failures fixed) then finishes with every line recorded once."""
    faulty = "max_failure_rate" in limit
    sim = await start_simulator(SimulatorConfig(
        token=TOKEN, samples=2000, seed=4, latency_ms=20,
        error_rate=0.5 if faulty else 0.0))
    healthy = await start_simulator(SimulatorConfig(token=TOKEN, samples=2000, seed=4))
    try:
        path = tmp_path / "hashes.txt"
        counts = write_input(path, sim.world, 4000, seed=4)
        common = {"token": TOKEN, "job_dir": tmp_path / "job", "batch_size": 20,
                  "max_retries": 0, "unreachable_timeout": 60.0}
        settings = load_settings({**common, "url": sim.url, **limit})
        assert await job.send_job(settings, [str(path)]) == ExitCode.INTERRUPTED
        first = list(read_records(tmp_path / "job" / OUTCOMES_FILE))
        expected = counts.lines - counts.blank - counts.comments
        assert 0 < len({(r["source"], r["line"]) for r in first}) < expected

        # The same command resumes; after failures, the job is run again on a healthy
        # appliance (another URL is another job, hence fresh).
        settings = load_settings({**common, "url": sim.url if not faulty else healthy.url,
                                  "fresh": faulty})
        assert await job.send_job(settings, [str(path)]) == ExitCode.OK
        final = {(r["source"], r["line"]): r
                 for r in read_records(tmp_path / "job" / OUTCOMES_FILE)}
        assert len(final) == expected
        assert not any(r["status"] == "failed" for r in final.values())
    finally:
        await sim.aclose()
        await healthy.aclose()


async def test_max_requests_is_a_hard_cap_at_any_concurrency(tmp_path: Path) -> None:
    """However many requests may be in flight, no more than --max-requests reach the
    appliance; what was not sent is not recorded, and the resume sends it."""
    sim = await start_simulator(SimulatorConfig(token=TOKEN, samples=2000, seed=4, latency_ms=20))
    try:
        path = tmp_path / "hashes.txt"
        counts = write_input(path, sim.world, 4000, seed=4)
        common = {"token": TOKEN, "job_dir": tmp_path / "job", "batch_size": 20,
                  "url": sim.url, "concurrency": 16}
        settings = load_settings({**common, "max_requests": 10})
        assert await job.send_job(settings, [str(path)]) == ExitCode.INTERRUPTED
        assert len(sim.log.records) == 10
        assert await job.send_job(load_settings(common), [str(path)]) == ExitCode.OK
        final = {(r["source"], r["line"]) for r in read_records(tmp_path / "job" / OUTCOMES_FILE)}
        assert len(final) == counts.lines - counts.blank - counts.comments
    finally:
        await sim.aclose()
