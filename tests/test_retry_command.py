"""`reanalyzer retry` is a run of the job's failed lines, with the job's own recorded settings.

The CLI runs in subprocesses (asyncio's, so that the simulators in this test's loop keep serving)
against a faulty appliance first, then retries against a healthy one whose request log shows
what was really sent.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support import run_cli

from reanalyzer.errors import ExitCode
from reanalyzer.record.jobdir import JOB_FILE, RUN_SETTINGS, SUMMARY_FILE
from reanalyzer.record.outcome_log import OUTCOMES_FILE, read_records
from reanalyzer.run.job import recorded_settings
from reanalyzer.settings import load_settings
from reanalyzer.simulator import (
    Endpoint,
    RunningSimulator,
    SimulatorConfig,
    start_simulator,
    write_input,
)

TOKEN = "tok-41e0c9d27b8a4f65-retrycmd"  # distinctive, so that a leak is found by grep
SANDBOX_JOB = ("--api", "v2", "--analysis", "rl_cloud_sandbox", "--sandbox-platform",
               "windows10")


async def cli(*args: str, cwd: Path, **env: str) -> tuple[int, str, str]:
    ran = await run_cli(*args, cwd=cwd, token=TOKEN, env=env)
    return ran.code, ran.out, ran.err


def final_statuses(job_dir: Path) -> dict[tuple[str, int], str]:
    return {(r["source"], r["line"]): r["status"] for r in read_records(job_dir / OUTCOMES_FILE)}


@pytest.fixture
async def simulators() -> AsyncIterator[tuple[RunningSimulator, RunningSimulator]]:
    """The same world twice: one appliance answering 5xx half the time, one healthy."""
    common = {"token": TOKEN, "samples": 200, "seed": 8}
    faulty = await start_simulator(SimulatorConfig(**common, error_rate=0.5, fault_seed=2))
    healthy = await start_simulator(SimulatorConfig(**common))
    yield faulty, healthy
    await faulty.aclose()
    await healthy.aclose()


async def _failed_sandbox_job(faulty: RunningSimulator, tmp_path: Path) -> int:
    """A sandbox job run against the faulty appliance; the number of lines it left failed."""
    write_input(tmp_path / "hashes.txt", faulty.world, 300, seed=6)
    code, _, err = await cli("run", "--url", faulty.url, "--job-dir", "job", "--max-retries",
                             "0", "--batch-size", "20", *SANDBOX_JOB, "hashes.txt", cwd=tmp_path)
    assert code == ExitCode.SOME_FAILED, err
    failed = sum(s == "failed" for s in final_statuses(tmp_path / "job").values())
    assert failed
    return failed


def _assert_sent_with_windows10(healthy: RunningSimulator, failed: int) -> None:
    requests = healthy.log.records
    assert sum(r.hash_count for r in requests) == failed  # the failed lines, and only they
    assert {r.endpoint for r in requests} == {Endpoint.BULK_V2}
    assert {r.values.get("analysis") for r in requests} == {"rl_cloud_sandbox"}
    assert {r.values.get("rl_cloud_sandbox_platform") for r in requests} == {"windows10"}


async def test_a_retry_of_a_sandbox_job_sends_the_job_s_own_platform(
    simulators: tuple[RunningSimulator, RunningSimulator], tmp_path: Path
) -> None:
    """Retrying an rl_cloud_sandbox job sends with its recorded platform, not the one the
    environment names, and needs no --sandbox-platform."""
    faulty, healthy = simulators
    failed = await _failed_sandbox_job(faulty, tmp_path)
    code, _, err = await cli("retry", "job", "--url", healthy.url, cwd=tmp_path,
                             REANALYZER_SANDBOX_PLATFORM="linux")
    assert code == ExitCode.OK, err
    _assert_sent_with_windows10(healthy, failed)
    assert "failed" not in final_statuses(tmp_path / "job").values()
    assert TOKEN not in (tmp_path / "job" / JOB_FILE).read_text()


async def test_a_retry_writes_a_summary_of_the_same_shape_as_a_run(
    simulators: tuple[RunningSimulator, RunningSimulator], tmp_path: Path
) -> None:
    """summary.json after a retry has the same keys as after a run, and says it was a retry."""
    faulty, healthy = simulators
    failed = await _failed_sandbox_job(faulty, tmp_path)
    after_run = json.loads((tmp_path / "job" / SUMMARY_FILE).read_text())
    code, _, err = await cli("retry", "job", "--url", healthy.url, cwd=tmp_path)
    assert code == ExitCode.OK, err
    after_retry = json.loads((tmp_path / "job" / SUMMARY_FILE).read_text())
    assert after_retry.keys() == after_run.keys()
    assert (after_run["command"], after_retry["command"]) == ("run", "retry")
    assert after_retry["recorded_total"] == failed
    assert after_retry["already_recorded"] == after_run["recorded_total"] - failed
    assert after_retry["left_to_do"] == "nothing: every input line has its final outcome"


async def test_a_job_json_from_before_run_settings_still_retries_and_resumes(
    simulators: tuple[RunningSimulator, RunningSimulator], tmp_path: Path
) -> None:
    """A job.json as the previous version wrote it (the identity alone) retries with the
    settings its identity holds, the sandbox platform included, and its run still resumes."""
    faulty, healthy = simulators
    failed = await _failed_sandbox_job(faulty, tmp_path)
    job_file = tmp_path / "job" / JOB_FILE
    job = json.loads(job_file.read_text())
    del job[RUN_SETTINGS]
    job_file.write_text(json.dumps(job, indent=2, sort_keys=True) + "\n")
    code, _, err = await cli("retry", "job", "--url", healthy.url, cwd=tmp_path,
                             REANALYZER_SANDBOX_PLATFORM="linux")
    assert code == ExitCode.OK, err
    _assert_sent_with_windows10(healthy, failed)
    code, _, err = await cli("run", "--url", faulty.url, "--job-dir", "job", "--max-retries",
                             "0", "--batch-size", "20", *SANDBOX_JOB, "hashes.txt", cwd=tmp_path)
    assert code == ExitCode.OK, err
    assert "already done" in err
    assert json.loads(job_file.read_text())[RUN_SETTINGS]["sandbox_platform"] == "windows10"


def test_recorded_settings_hold_neither_the_token_nor_one_run_s_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What job.json records leaves out the token and the settings of one invocation."""
    for name in list(os.environ):
        if name.startswith("REANALYZER_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no developer's .env
    settings = load_settings({"url": "https://a1000.example.com", "token": TOKEN,
                              "max_requests": 10, "log_level": "debug", "concurrency": 7})
    recorded = recorded_settings(settings)
    assert TOKEN not in json.dumps(recorded)
    assert not {"token", "token_file", "max_requests", "log_level", "job_dir"} & recorded.keys()
    assert recorded["concurrency"] == 7
    assert recorded["url"] == "https://a1000.example.com"
