"""What a summary says is left to do gives a way that works: for a job reading standard input
(whose "same command" is a new job) and for a retry of a job whose input is not all read.

The CLI runs in subprocesses against simulators in this test's loop; the command the summary
gives is then run, and must finish the job.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from support import run_cli

from reanalyzer.errors import ExitCode
from reanalyzer.record.outcome_log import OUTCOMES_FILE, read_records
from reanalyzer.run.summary import UNFINISHED_RETRY, Ending, left_to_do
from reanalyzer.simulator import SimulatorConfig, start_simulator, write_input

TOKEN = "tok-5b2e8c1d0a9f4e37-lefttodo"


async def cli(*args: str, cwd: Path, stdin: Path | None = None) -> tuple[int, str]:
    """Run the CLI (standard input from `stdin`, else /dev/null); its exit code and stderr."""
    ran = await run_cli(*args, cwd=cwd, token=TOKEN, stdin=stdin)
    return ran.code, ran.err


def _summary(job: Path) -> dict[str, Any]:
    return dict(json.loads((job / "summary.json").read_text()))


def _stdin_job(cwd: Path) -> Path:
    (job,) = (cwd / "jobs").iterdir()
    return job


def _lines(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines()
               if line.strip() and not line.lstrip().startswith("#"))


def test_a_stdin_job_is_never_told_to_run_the_same_command() -> None:
    """For a stdin job every ending names `retry DIR` or `run --url U --job-dir DIR`, never
    the same command (which would read another input into another job)."""
    job = Path("jobs/stdin-x")
    endings = [Ending("run", True, None, None, stdin=True, url="http://a"),
               Ending("run", False, "SIGINT", None, stdin=True, url="http://a"),
               Ending("run", False, None, ValueError("x"), stdin=True, url="http://a")]
    failed = left_to_do(endings[0], 3, 0, job)
    assert failed == "3 hashes failed: `reanalyzer retry jobs/stdin-x` retries them"
    for ending in endings[1:]:
        text = left_to_do(ending, 0, 0, job)
        assert "`reanalyzer run --url http://a --job-dir jobs/stdin-x < /dev/null`" in text
        assert "same command" not in text


async def test_a_stdin_jobs_failures_are_retried_as_its_summary_says(tmp_path: Path) -> None:
    """A stdin job whose hashes failed is told `reanalyzer retry DIR`, and that command sends
    them again in the same job, to the end."""
    faulty = await start_simulator(SimulatorConfig(token=TOKEN, samples=300, seed=5,
                                                   error_rate=1.0))
    healthy = await start_simulator(SimulatorConfig(token=TOKEN, samples=300, seed=5))
    try:
        write_input(tmp_path / "mixed.txt", faulty.world, 300, seed=5)
        code, err = await cli("run", "--url", faulty.url, "--max-retries", "0", "--progress",
                              "off", cwd=tmp_path, stdin=tmp_path / "mixed.txt")
        assert code == ExitCode.SOME_FAILED, err
        job = _stdin_job(tmp_path)
        summary = _summary(job)
        rel = job.relative_to(tmp_path)
        assert summary["left_to_do"].endswith(f"failed: `reanalyzer retry {rel}` retries them")
        assert "same command" not in err
        code, err = await cli("retry", str(rel), "--url", healthy.url, cwd=tmp_path)
        assert code == ExitCode.OK, err
        assert _summary(job)["state"] == "done"
        assert list((tmp_path / "jobs").iterdir()) == [job]
    finally:
        await faulty.aclose()
        await healthy.aclose()


async def test_a_stopped_stdin_job_resumes_as_its_summary_says(tmp_path: Path) -> None:
    """A stdin job stopped by a budget is told `reanalyzer run --url U --job-dir DIR <
    /dev/null`; that command, as given, finishes the same job."""
    # The first answer comes after the reader has read all of standard input (a stop before
    # that is told to pipe the input again instead, a case of its own).
    sim = await start_simulator(SimulatorConfig(token=TOKEN, samples=300, seed=6, latency_ms=400))
    try:
        write_input(tmp_path / "mixed.txt", sim.world, 600, seed=6)
        code, err = await cli("run", "--url", sim.url, "--max-requests", "1", "--batch-size",
                              "10", "--concurrency", "1", "--progress", "off", cwd=tmp_path,
                              stdin=tmp_path / "mixed.txt")
        assert code == ExitCode.INTERRUPTED, err
        job = _stdin_job(tmp_path)
        rel = job.relative_to(tmp_path)
        given = f"`reanalyzer run --url {sim.url} --job-dir {rel} < /dev/null`"
        assert given in _summary(job)["left_to_do"]
        assert given in err
        assert "same command" not in err
        code, err = await cli("run", "--url", sim.url, "--job-dir", str(rel), "--progress",
                              "off", cwd=tmp_path)
        assert code == ExitCode.OK, err
        finals = {(r["source"], r["line"]) for r in read_records(job / OUTCOMES_FILE)}
        assert len(finals) == _lines(tmp_path / "mixed.txt")
    finally:
        await sim.aclose()


async def test_a_retry_of_an_unfinished_job_does_not_call_it_done(tmp_path: Path) -> None:
    """`retry` of a job stopped mid-input sends its failures again, but its summary says the
    job's input is not all read and how to go on, its state is not done, and it exits 4."""
    faulty = await start_simulator(SimulatorConfig(token=TOKEN, samples=300, seed=7,
                                                   error_rate=1.0))
    healthy = await start_simulator(SimulatorConfig(token=TOKEN, samples=300, seed=7))
    try:
        write_input(tmp_path / "h.txt", faulty.world, 1000, seed=7)
        code, err = await cli("run", "--url", faulty.url, "--job-dir", "job", "--max-retries",
                              "0", "--max-requests", "2", "--batch-size", "10",
                              "--concurrency", "1", "--progress", "off", "h.txt", cwd=tmp_path)
        assert code == ExitCode.INTERRUPTED, err
        code, err = await cli("retry", "job", "--url", healthy.url, cwd=tmp_path)
        assert code == ExitCode.INTERRUPTED, err
        summary = _summary(tmp_path / "job")
        assert summary["state"] == "stopped", summary
        assert summary["stopped_by"] == UNFINISHED_RETRY
        assert summary["left_to_do"].startswith("the rest of the input, which the job's run")
        assert "--job-dir job" in summary["left_to_do"]
        assert "the job's own run command" in err
    finally:
        await faulty.aclose()
        await healthy.aclose()
