"""``reanalyzer status``: what a job is, how far and how fast, and whether a run is on it."""

from __future__ import annotations

import argparse
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from reanalyzer.commands import status
from reanalyzer.core.outcomes import Status
from reanalyzer.errors import ExitCode, JobError
from reanalyzer.record.checkpoint import Checkpoint, write_checkpoint
from reanalyzer.record.jobdir import JOB_FILE, LOCK_FILE, SUMMARY_FILE, JobLock
from reanalyzer.record.outcome_log import OUTCOMES_FILE, record

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def ts(seconds_ago: float) -> str:
    when = NOW - timedelta(seconds=seconds_ago)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def rec(line: int, status_: Status, hash_type: str | None = "sha1", seconds_ago: float = 300,
        source: str = "a.txt") -> dict[str, Any]:
    value = None if hash_type is None else f"{line:040x}"
    return record(hash_value=value, hash_type=hash_type, status=status_, source=source,
                  line=line, ts=ts(seconds_ago))


def make_job(job_dir: Path, records: list[dict[str, Any]],
             inputs: tuple[str, ...] = ("/data/a.txt", "/data/b.txt")) -> Path:
    job_dir.mkdir(parents=True, exist_ok=True)
    identity = {"inputs": [{"path": p, "size": 1, "mtime_ns": 1} for p in inputs],
                "settings": {"analysis": "core", "url": "https://a1000.example"}}
    (job_dir / JOB_FILE).write_text(json.dumps(identity))
    (job_dir / OUTCOMES_FILE).write_text("".join(json.dumps(r) + "\n" for r in records))
    return job_dir


def test_counts_are_of_final_outcomes(tmp_path: Path) -> None:
    """Counts per status and per type are of final outcomes; records written include all."""
    job = make_job(tmp_path, [
        rec(1, Status.FAILED), rec(2, Status.QUEUED, "md5"), rec(3, Status.INVALID, None),
        rec(1, Status.QUEUED, seconds_ago=100),
    ])
    st = status.job_status(job, now=NOW)
    assert st.records_written == 4
    assert st.final_total == 3
    assert st.by_status == {"queued": 2, "invalid": 1}
    assert st.by_hash_type == {"md5": 1, "none": 1, "sha1": 1}
    assert st.last_record_at == ts(100)
    assert st.inputs == ["/data/a.txt", "/data/b.txt"]
    assert (st.running, st.pid, st.recent_rate, st.progress, st.last_run) == (
        False, None, None, None, None)


def test_progress_comes_from_the_checkpoint(tmp_path: Path) -> None:
    """The watermark names its input and line, and the text says how many failed wait."""
    job = make_job(tmp_path, [])
    write_checkpoint(job, Checkpoint(1, 4321, 100, complete=False, failed=3))
    st = status.job_status(job, now=NOW)
    assert st.progress == status.Progress(1, "/data/b.txt", 4321, False, 3)
    text = status.render_text(st)
    assert "recorded up to /data/b.txt line 4,321 (input 2 of 2); 3 failed lines" in text


def test_a_complete_job_says_so(tmp_path: Path) -> None:
    """A complete checkpoint (past the last input) reads as complete."""
    job = make_job(tmp_path, [rec(1, Status.QUEUED)])
    write_checkpoint(job, Checkpoint(2, 1, 0, complete=True, failed=0))
    st = status.job_status(job, now=NOW)
    assert st.progress is not None
    assert st.progress.source is None
    assert "complete: every input read" in status.render_text(st)


def test_last_run_comes_from_the_summary(tmp_path: Path) -> None:
    """summary.json's elapsed time and rate are shown; a half-written one is ignored."""
    job = make_job(tmp_path, [])
    summary = {"state": "stopped", "stopped_by": "SIGTERM", "elapsed_s": 12.5,
               "recorded_total": 1000, "hashes_per_s": 80.0, "requests": 10, "retries": 1,
               "throttled": 0}
    (job / SUMMARY_FILE).write_text(json.dumps(summary))
    st = status.job_status(job, now=NOW)
    assert st.last_run == summary
    assert "stopped (SIGTERM) in 12.5 s, 80.0 records/s" in status.render_text(st)
    (job / SUMMARY_FILE).write_text('{"state": "sto')
    assert status.job_status(job, now=NOW).last_run is None


def test_a_retry_s_summary_says_it_was_a_retry(tmp_path: Path) -> None:
    """The last run shown is named a retry when `retry` wrote summary.json."""
    job = make_job(tmp_path, [])
    summary = {"command": "retry", "state": "done", "stopped_by": None, "error": None,
               "elapsed_s": 2.0, "recorded_total": 5, "hashes_per_s": 2.5}
    (job / SUMMARY_FILE).write_text(json.dumps(summary))
    assert "last run   retry done in 2.0 s" in status.render_text(status.job_status(job, now=NOW))


def test_a_held_lock_means_running_with_its_pid(tmp_path: Path) -> None:
    """While a run holds the lock, status names its pid; once released, not running."""
    job = make_job(tmp_path, [])
    lock = JobLock(job)
    lock.acquire()
    try:
        holder = status.probe_lock(job)
        assert (holder.running, holder.pid) == (True, os.getpid())
        assert f"running (pid {os.getpid()})" in status.render_text(status.job_status(job))
    finally:
        lock.release()
    assert status.probe_lock(job) == status.Holder(False, None, None)
    lock.acquire()  # the probe let go of the lock: a run can still take it
    lock.release()
    assert "process    not running" in status.render_text(status.job_status(job))


def test_probe_never_creates_the_lock_file(tmp_path: Path) -> None:
    """Status is read-only: a job without a lock file is simply not running."""
    job = make_job(tmp_path, [])
    assert not status.probe_lock(job).running
    assert not (job / LOCK_FILE).exists()


def test_recent_rate_counts_records_of_the_last_minute(tmp_path: Path) -> None:
    """While running, the rate is the records written in the last minute per second."""
    records = [rec(i, Status.QUEUED, seconds_ago=90) for i in range(1, 11)]
    records += [rec(i, Status.QUEUED, seconds_ago=20) for i in range(11, 41)]
    job = make_job(tmp_path, records)
    lock = JobLock(job)
    lock.acquire()
    try:
        stamp = (NOW - timedelta(hours=1)).timestamp()
        os.utime(job / LOCK_FILE, (stamp, stamp))
        assert status.job_status(job, now=NOW).recent_rate == 0.5  # 30 records / 60 s
        stamp = (NOW - timedelta(seconds=40)).timestamp()  # a run younger than a minute
        os.utime(job / LOCK_FILE, (stamp, stamp))
        assert status.job_status(job, now=NOW).recent_rate == 0.8  # 30 records / 40 s
    finally:
        lock.release()


def test_a_job_just_begun_has_no_log_yet(tmp_path: Path) -> None:
    """Before any record, status shows zero counts rather than failing."""
    job = make_job(tmp_path, [])
    (job / OUTCOMES_FILE).unlink()
    st = status.job_status(job, now=NOW)
    assert (st.records_written, st.final_total, st.last_record_at) == (0, 0, None)


def test_torn_tail_is_not_counted(tmp_path: Path) -> None:
    """A record still being written is not counted yet."""
    job = make_job(tmp_path, [rec(1, Status.QUEUED)])
    with (job / OUTCOMES_FILE).open("a") as f:
        f.write('{"hash": "ab')
    assert status.job_status(job, now=NOW).records_written == 1


def test_not_a_job_dir_is_a_job_error(tmp_path: Path) -> None:
    """A missing directory, or one without job.json, exits 8."""
    with pytest.raises(JobError, match="no job directory") as exc:
        status.job_status(tmp_path / "nope")
    assert exc.value.exit_code == ExitCode.JOB
    with pytest.raises(JobError, match="not a job directory"):
        status.job_status(tmp_path)


def test_json_output_is_one_object(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints the whole status as one JSON object on stdout."""
    job = make_job(tmp_path, [rec(1, Status.NOT_FOUND)])
    parser = argparse.ArgumentParser()
    status.configure_parser(parser)
    assert status.run(parser.parse_args([str(job), "--json"])) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["by_status"] == {"not_found": 1}
    assert shown["running"] is False
    assert shown["settings"]["analysis"] == "core"
