"""``reanalyzer status JOB_DIR``: what a job is, how far and how fast it got, whether a run is on
it now. Read-only, safe while a run is going: the lock is only probed (a non-blocking shared
flock, let go at once), the checkpoint, ``counts.json`` and ``summary.json`` are replaced whole
by the runner (``record.atomic``). The counts come from ``counts.json`` (in well under a second
for any job); only a job directory without one (written before it existed) has its outcome log
streamed as ``report`` streams it (``record.final``).

Several directories (the shards of one job, or one job per appliance) are shown as one job, and
then the exit code says whether it is finished, so that a dependent step can wait on it. (Over
300 lines for that reason: the view of several is the view of one, summed, beside it.)
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from reanalyzer.commands.report import warn_of_damage
from reanalyzer.core.outcomes import Status
from reanalyzer.core.words import counted
from reanalyzer.errors import ExitCode, JobError
from reanalyzer.record.checkpoint import read_checkpoint
from reanalyzer.record.counts import Counts, read_counts
from reanalyzer.record.final import final_records, scan_log
from reanalyzer.record.jobdir import JOB_FILE, LOCK_FILE, SUMMARY_FILE
from reanalyzer.record.outcome_log import OUTCOMES_FILE

RATE_WINDOW = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds the job's lock."""

    running: bool  # a live process holds the flock
    pid: int | None  # its pid as it wrote it in the lock file (None: not running, or unreadable)
    since: datetime | None  # when it took the lock (the lock file's mtime)


@dataclass(frozen=True, slots=True)
class Progress:
    """The checkpoint's watermark: every input record below it has its outcome recorded."""

    source_index: int
    source: str | None  # the input it is in; None once past the last input
    line: int
    complete: bool  # every input read to its end and every record recorded
    failed: int  # lines whose final outcome is failed: the next run sends them again


@dataclass(frozen=True, slots=True)
class JobStatus:
    job_dir: str
    inputs: list[str]
    settings: dict[str, Any]
    running: bool
    pid: int | None
    progress: Progress | None  # None: no checkpoint yet
    records_written: int  # every record of the log, superseded ones included
    final_total: int  # input lines with a final outcome
    by_status: dict[str, int]
    by_hash_type: dict[str, int]  # "none" for lines that are not a hash
    last_record_at: str | None
    last_run: dict[str, Any] | None  # summary.json of the last finished or stopped run
    recent_rate: float | None  # records/s over the last minute, while a run is going
    notes: list[str] = field(default_factory=list)
    # The running (or last) run's progress, from counts.json: recorded, estimated_total,
    # total_is_estimate, percent, records_per_s, recent_records_per_s, eta_s, command.
    this_run: dict[str, Any] | None = None
    counted_from: str = "counts.json"  # or "outcome log": a job directory from before it

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def probe_lock(job_dir: Path) -> Holder:
    """Whether a process holds JOB_DIR/lock: a non-blocking shared flock, released at once."""
    path = job_dir / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)  # never creates the lock file
    except FileNotFoundError:
        return Holder(False, None, None)
    except OSError as exc:
        raise JobError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 64, 0).decode(errors="replace").strip()
            since = datetime.fromtimestamp(os.fstat(fd).st_mtime, UTC)
            return Holder(True, int(text) if text.isdigit() else None, since)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return Holder(False, None, None)
    finally:
        os.close(fd)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None  # unreadable, or not JSON (written by hand, or by something else)
    return value if isinstance(value, dict) else None


def _journal_ts(when: datetime) -> str:
    """A time as the journal writes it (journal.utc_now): such strings sort as times do."""
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def job_status(job_dir: Path, now: datetime | None = None) -> JobStatus:
    """Everything ``status`` shows, read from the job directory (``now`` for the recent rate)."""
    if not job_dir.is_dir():
        raise JobError(f"no job directory {job_dir}")
    job = _read_json(job_dir / JOB_FILE)
    if job is None:
        raise JobError(f"{job_dir} is not a job directory: no readable {JOB_FILE}")
    inputs = [str(i.get("path", "?")) for i in job.get("inputs", [])]
    holder = probe_lock(job_dir)
    checkpoint = read_checkpoint(job_dir)
    progress = None
    if checkpoint is not None:
        index = checkpoint.source_index
        progress = Progress(
            index,
            inputs[index] if index < len(inputs) else None,
            checkpoint.line,
            checkpoint.complete,
            checkpoint.failed,
        )

    def status(notes: list[str], **counted: Any) -> JobStatus:
        """What both sources of the counts share, and what they counted."""
        if holder.running and holder.pid is None:
            notes.insert(0, "the running process has not written its pid yet")
        return JobStatus(
            job_dir=str(job_dir),
            inputs=inputs,
            settings=dict(job.get("settings", {})),
            running=holder.running,
            pid=holder.pid,
            progress=progress,
            last_run=_read_json(job_dir / SUMMARY_FILE),
            notes=notes,
            **counted,
        )

    counts = read_counts(job_dir)
    if counts is not None:
        notes, counted = _from_counts(holder, counts)
        return status(notes, **counted)

    now = now or datetime.now(UTC)
    window_start = now - RATE_WINDOW
    if holder.since is not None:
        window_start = max(window_start, holder.since)  # a run younger than the window
    cutoff = _journal_ts(window_start)
    by_status: Counter[str] = Counter()
    by_type: Counter[str] = Counter()
    recent = 0
    last_ts: str | None = None
    log_path = job_dir / OUTCOMES_FILE
    scan = scan_log(log_path)
    for rec in final_records(log_path, scan, damaged=warn_of_damage, details=False):
        by_status[rec["status"]] += 1
        by_type[rec.get("hash_type") or "none"] += 1
        last_ts = rec.get("ts")
        # Log order is write order, so only the tail is recent; superseded records written in
        # the window are left out of the rate (a failed line retried within one minute: rare).
        if holder.running and last_ts is not None and last_ts >= cutoff:
            recent += 1
    span = (now - window_start).total_seconds()
    recent_rate = round(recent / span, 1) if holder.running and span > 0 else None

    order = [s.value for s in Status]
    return status(
        [],
        records_written=scan.records,
        final_total=sum(by_status.values()),
        by_status={s: by_status[s] for s in order if by_status[s]}
        | {s: n for s, n in by_status.items() if s not in order},
        by_hash_type=dict(sorted(by_type.items())),
        last_record_at=last_ts,
        recent_rate=recent_rate,
        counted_from="outcome log",
    )


def _from_counts(holder: Holder, counts: Counts) -> tuple[list[str], dict[str, Any]]:
    """The notes and counts of a JobStatus from counts.json: no need to read the log."""
    notes = []
    if not holder.running and not counts.final:
        notes.append(
            f"the last run ended without finishing (killed?): counts as of "
            f"{counts.written_at}; its next run recounts them from the log"
        )
    this_run = dict(counts.run) if counts.run else None
    recent = None
    if holder.running and this_run:
        recent = this_run.get("recent_records_per_s") or this_run.get("records_per_s")
    return notes, {
        "records_written": counts.records,
        "final_total": sum(counts.by_status.values()),
        "by_status": dict(counts.by_status),
        "by_hash_type": dict(counts.by_hash_type),
        "last_record_at": counts.last_record_at,
        "recent_rate": recent,
        "this_run": this_run,
    }


def render_text(st: JobStatus) -> str:
    """The human view of a JobStatus."""
    lines = [f"job        {st.job_dir}"]
    for i, path in enumerate(st.inputs):
        lines.append(f"{'inputs' if i == 0 else '':<10} {path}")
    if st.settings:
        shown = " ".join(f"{k}={v}" for k, v in sorted(st.settings.items()) if v is not None)
        lines.append(f"settings   {shown}")
    if st.running:
        lines.append(f"process    running (pid {st.pid if st.pid is not None else 'unknown'})")
    else:
        lines.append("process    not running")
    lines.append(f"progress   {_progress_text(st)}")
    last = f", last at {st.last_record_at}" if st.last_record_at else ""
    lines.append(f"records    {st.records_written:,} written{last}")
    lines.append(f"outcomes   {st.final_total:,} input lines with a final outcome")
    width = max((len(s) for s in st.by_status), default=0)
    for status, count in st.by_status.items():
        lines.append(f"  {status:<{width}}  {count:>12,}")
    if st.by_hash_type:
        lines.append("by type    " + ", ".join(f"{t} {n:,}" for t, n in st.by_hash_type.items()))
    if st.running and st.this_run:
        lines.append(f"this run   {_this_run_text(st.this_run)}")
    elif st.recent_rate is not None:
        lines.append(f"now        {st.recent_rate:,} records/s over the last minute")
    if st.last_run is not None:
        lines.append(f"last run   {_last_run_text(st.last_run)}")
    lines.extend(f"note       {note}" for note in st.notes)
    return "\n".join(lines)


def _progress_text(st: JobStatus) -> str:
    p = st.progress
    if p is None:
        return "no checkpoint yet"
    retry = f"; {p.failed:,} failed lines for the next run to retry" if p.failed else ""
    if p.complete:
        return "complete: every input read and every line recorded" + retry
    if p.source is None:
        return f"every input read, recording the last lines{retry}"
    where = f"input {p.source_index + 1} of {len(st.inputs)}" if len(st.inputs) > 1 else ""
    return f"recorded up to {p.source} line {p.line:,}" + (f" ({where})" if where else "") + retry


def _this_run_text(run: dict[str, Any]) -> str:
    """done/total (percent), rate and ETA of the run going on."""
    done, total = run.get("recorded") or 0, run.get("estimated_total")
    estimate = "~" if run.get("total_is_estimate") else ""
    text = f"{done:,}"
    if total:
        text += f" of {estimate}{total:,} lines ({run.get('percent')}%)"
    else:
        text += " lines (total not known)"
    rate = run.get("recent_records_per_s") or run.get("records_per_s")
    if rate:
        text += f", {rate:,} records/s"
    if run.get("eta_s") is not None:
        text += f", about {_duration(run['eta_s'])} to go"
    return text


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def _last_run_text(run: dict[str, Any]) -> str:
    state = run.get("state") or "stopped"
    if run.get("command") == "retry":
        state = f"retry {state}"
    if run.get("stopped_by"):
        state += f" ({run['stopped_by']})"
    elif run.get("error"):
        state += f" ({run['error']})"
    parts = [f"{state} in {run.get('elapsed_s', '?')} s"]
    if run.get("hashes_per_s") is not None:
        parts.append(f"{run['hashes_per_s']:,} records/s")
    if "recorded_total" in run:
        parts.append(f"{run['recorded_total']:,} recorded")
    for name in ("requests", "status_requests", "retries", "throttled"):
        if run.get(name) is not None and (run[name] or name != "status_requests"):
            label = {"throttled": "429s", "status_requests": "status requests"}.get(name, name)
            parts.append(f"{run[name]:,} {label}")
    return ", ".join(parts)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "job_dirs",
        metavar="JOB_DIR",
        type=Path,
        nargs="+",
        help="the job directory; several (the shards of one job, or one job per appliance) are "
        "shown as one job, and the exit code says whether all are finished: 0 yes, 1 yes but "
        "some lines failed, 4 not yet (one is running or stopped, or a shard is missing)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object on standard output")
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 0, 1 or 4 as for several directories, with one too (else 0: a view)",
    )


def run(args: argparse.Namespace) -> int:
    code = 0
    if len(args.job_dirs) == 1 and not args.check:
        st = job_status(args.job_dirs[0])
        text = json.dumps(st.to_json(), indent=2) if args.json else render_text(st)
    else:
        merged = several_status(args.job_dirs)
        code = merged.exit_code
        text = json.dumps(merged.to_json(), indent=2) if args.json else render_several(merged)
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return code


# --- several job directories as one job ------------------------------------------------------

# What `status DIR...` exits with: whether the job (every directory, every shard) is finished.
FINISHED = ExitCode.OK
FINISHED_WITH_FAILED = ExitCode.SOME_FAILED  # `retry` them, or run the same command again
NOT_FINISHED = ExitCode.INTERRUPTED  # a run is on it, or it stopped: the same command resumes


def finished(st: JobStatus) -> bool:
    """No run is on the job and its checkpoint says every input line is recorded."""
    return not st.running and st.progress is not None and st.progress.complete


@dataclass(frozen=True, slots=True)
class SeveralStatus:
    """Several job directories as one job: each one's status, and the sums of their lines."""

    jobs: list[tuple[JobStatus, str | None]]  # each directory's status, and its shard (K/N)
    missing_shards: list[str]
    final_total: int
    by_status: dict[str, int]
    by_hash_type: dict[str, int]

    @property
    def unfinished(self) -> list[str]:
        return [st.job_dir for st, _ in self.jobs if not finished(st)]

    @property
    def exit_code(self) -> int:
        if self.unfinished or self.missing_shards:
            return int(NOT_FINISHED)
        failed = self.by_status.get(Status.FAILED.value, 0)
        return int(FINISHED_WITH_FAILED if failed else FINISHED)

    def to_json(self) -> dict[str, Any]:
        return {
            "jobs": [
                {**st.to_json(), "shard": shard, "finished": finished(st)}
                for st, shard in self.jobs
            ],
            "finished": [st.job_dir for st, _ in self.jobs if finished(st)],
            "unfinished": self.unfinished,
            "missing_shards": self.missing_shards,
            "all_finished": not self.unfinished and not self.missing_shards,
            "final_total": self.final_total,
            "by_status": self.by_status,
            "by_hash_type": self.by_hash_type,
            "exit_code": self.exit_code,
        }


def several_status(job_dirs: list[Path], now: datetime | None = None) -> SeveralStatus:
    """The status of several job directories as one job (see commands/several.py)."""
    from reanalyzer.commands.several import members_of

    members, missing = members_of(job_dirs)
    jobs = [
        (job_status(m.job_dir, now), None if m.shard is None else str(m.shard)) for m in members
    ]
    by_status: Counter[str] = Counter()
    by_type: Counter[str] = Counter()
    for st, _ in jobs:
        by_status.update(st.by_status)
        by_type.update(st.by_hash_type)
    order = [s.value for s in Status]
    return SeveralStatus(
        jobs=jobs,
        missing_shards=[str(m) for m in missing],
        final_total=sum(by_status.values()),
        by_status={s: by_status[s] for s in order if by_status[s]}
        | {s: n for s, n in by_status.items() if s not in order},
        by_hash_type=dict(sorted(by_type.items())),
    )


def render_several(merged: SeveralStatus) -> str:
    """The human view of several job directories: one line each, then their sums."""
    lines = [f"jobs       {len(merged.jobs)} directories"]
    width = max(len(st.job_dir) for st, _ in merged.jobs)
    for st, shard in merged.jobs:
        state = (
            "finished"
            if finished(st)
            else f"running (pid {st.pid if st.pid is not None else 'unknown'}): "
            f"{_progress_text(st)}"
            if st.running
            else f"not finished: {_progress_text(st)}"
        )
        where = f"shard {shard}  " if shard else ""
        lines.append(f"  {st.job_dir:<{width}}  {where}{st.final_total:>10,} lines  {state}")
    lines.extend(f"missing    {text}" for text in merged.missing_shards)
    lines.append(f"outcomes   {merged.final_total:,} input lines with a final outcome")
    status_width = max((len(s) for s in merged.by_status), default=0)
    for status, count in merged.by_status.items():
        lines.append(f"  {status:<{status_width}}  {count:>12,}")
    if merged.by_hash_type:
        lines.append(
            "by type    " + ", ".join(f"{t} {n:,}" for t, n in merged.by_hash_type.items())
        )
    done = len(merged.jobs) - len(merged.unfinished)
    verdict = (
        "all finished"
        if merged.exit_code != NOT_FINISHED
        else f"not finished: {done} of {len(merged.jobs)} directories finished"
        + (
            f", {counted(len(merged.missing_shards), 'shard')} missing"
            if merged.missing_shards
            else ""
        )
    )
    lines.append(f"state      {verdict}")
    return "\n".join(lines)
