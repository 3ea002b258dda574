"""The operator's round trip: a faulty run ends with exit 1, `report` lists what failed, and
`retry` sends exactly that again, after the fault is gone, until every line is accepted.

The CLI runs in subprocesses (asyncio's, so that the simulators in this test's loop keep serving).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support import run_cli

from reanalyzer.errors import ExitCode
from reanalyzer.record.outcome_log import OUTCOMES_FILE, read_records
from reanalyzer.simulator import RunningSimulator, SimulatorConfig, start_simulator, write_input

TOKEN = "tok-5d2a77c0e1f94b3a-operator"


async def cli(*args: str, cwd: Path, token: str = TOKEN) -> tuple[int, str, str]:
    ran = await run_cli(*args, cwd=cwd, token=token)
    return ran.code, ran.out, ran.err


def final_statuses(job_dir: Path) -> dict[tuple[str, int], dict[str, object]]:
    return {(r["source"], r["line"]): r for r in read_records(job_dir / OUTCOMES_FILE)}


@pytest.fixture
async def simulators() -> AsyncIterator[tuple[RunningSimulator, RunningSimulator]]:
    """The same world twice: one appliance answering 5xx half the time, one healthy."""
    common = {"token": TOKEN, "samples": 300, "seed": 5}
    faulty = await start_simulator(SimulatorConfig(**common, error_rate=0.5, fault_seed=3))
    healthy = await start_simulator(SimulatorConfig(**common))
    yield faulty, healthy
    await faulty.aclose()
    await healthy.aclose()


async def test_report_and_retry_round_trip(
    simulators: tuple[RunningSimulator, RunningSimulator], tmp_path: Path
) -> None:
    """The failed hashes of a faulty run, listed by `report` and sent again by `retry` against
    the healthy appliance, all end accepted or with their appliance's answer; none is lost."""
    faulty, healthy = simulators
    write_input(tmp_path / "hashes.txt", faulty.world, 600, seed=4)
    code, _, err = await cli("run", "--url", faulty.url, "--job-dir", "job", "--max-retries",
                             "0", "--batch-size", "20", "hashes.txt", cwd=tmp_path)
    assert code == ExitCode.SOME_FAILED, err
    before = final_statuses(tmp_path / "job")
    failed = {key for key, r in before.items() if r["status"] == "failed"}
    assert failed

    code, listed, _ = await cli("report", "job", "--status", "failed", "--format", "list",
                                cwd=tmp_path)
    assert code == ExitCode.OK
    assert set(listed.split()) == {before[key]["hash"] for key in failed}

    code, _, err = await cli("retry", "job", "--url", healthy.url, cwd=tmp_path)
    assert code == ExitCode.OK, err
    after = final_statuses(tmp_path / "job")
    assert after.keys() == before.keys()  # every line still has exactly one final outcome
    assert all(r["status"] != "failed" for r in after.values())
    for key in set(before) - failed:  # what was final stays as it was
        assert after[key] == before[key]
    retried_lines = [r for r in read_records(tmp_path / "job" / OUTCOMES_FILE)][-len(failed):]
    assert {(r["source"], r["line"]) for r in retried_lines} == failed

    code, out, _ = await cli("status", "job", "--json", cwd=tmp_path)
    assert code == ExitCode.OK
    assert "failed" not in json.loads(out)["by_status"]
    summary = json.loads((tmp_path / "job" / "summary.json").read_text())
    assert summary["left_to_do"] == "nothing: every input line has its final outcome"


async def test_a_retry_of_a_job_stopped_early_says_the_rest_is_left(
    simulators: tuple[RunningSimulator, RunningSimulator], tmp_path: Path
) -> None:
    """Retrying the failures of a job whose run stopped before the end of its input does not
    call the job finished."""
    faulty, healthy = simulators
    write_input(tmp_path / "hashes.txt", faulty.world, 600, seed=4)
    code, _, err = await cli("run", "--url", faulty.url, "--job-dir", "job", "--max-retries",
                             "0", "--batch-size", "20", "--max-requests", "10", "hashes.txt",
                             cwd=tmp_path)
    assert code == ExitCode.INTERRUPTED, err
    code, _, err = await cli("retry", "job", "--url", healthy.url, cwd=tmp_path)
    assert code == ExitCode.INTERRUPTED, err  # not done: the job's run goes on with it
    summary = json.loads((tmp_path / "job" / "summary.json").read_text())
    assert summary["left_to_do"].startswith("the rest of the input")


async def test_every_event_of_a_failed_run_and_a_retry_names_the_job(
    simulators: tuple[RunningSimulator, RunningSimulator], tmp_path: Path
) -> None:
    """JSON logs: the last event of a run that fails (here on a token the appliance refuses)
    names its job, as do a retry's events."""
    faulty, healthy = simulators
    write_input(tmp_path / "hashes.txt", faulty.world, 200, seed=4)
    code, _, err = await cli("run", "--url", faulty.url, "--job-dir", "job", "--max-retries",
                             "0", "--batch-size", "20", "hashes.txt", cwd=tmp_path)
    assert code == ExitCode.SOME_FAILED, err
    code, _, err = await cli("run", "--url", healthy.url, "--job-dir", "refused",
                             "hashes.txt", cwd=tmp_path, token="not-the-token")
    assert code == ExitCode.CREDENTIALS, err
    events = [json.loads(line) for line in err.splitlines()]
    assert events[-1]["event"] == "reanalyzer.error"
    assert all(e.get("job_id") == "refused" for e in events), events
    code, _, err = await cli("retry", "job", "--url", healthy.url, cwd=tmp_path)
    assert code == ExitCode.OK, err
    assert all(json.loads(line).get("job_id") == "job" for line in err.splitlines()), err
