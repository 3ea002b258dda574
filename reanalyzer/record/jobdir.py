"""The job directory: its layout, its lock, and the fingerprint that guards a resume.

JOB_DIR/
  job.json              what the job is: inputs and the settings that change outcomes (its
                        identity), and the settings of its last run (run_settings)
  outcomes.jsonl        the outcome log's open segment: one record per input record, a line
                        per answer (record/outcome_log.py)
  outcomes.NNNNNN.jsonl.gz, details.NNNNNN.jsonl.gz
                        its closed segments, compressed (record/segments.py)
  checkpoint.json       the low watermark of the records written (record/checkpoint.py)
  counts.json           the final outcomes counted, beside the checkpoint (record/counts.py)
  lock                  held (flock) by the run working on the job; holds its pid
  stdin.spool           standard input, copied as it is read, so that a stdin job resumes
  stdin.spool.complete  present once the spool holds all of standard input
  summary.json          the last run's summary
  learned.json          what the job learned of the appliance: the largest batch it takes

job.json, checkpoint.json, summary.json and learned.json are replaced whole (record/atomic.py).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reanalyzer.core.analyses import canonical
from reanalyzer.core.private import PRIVATE_FILE
from reanalyzer.errors import InputError, JobError
from reanalyzer.record import segments
from reanalyzer.record.atomic import write_atomically
from reanalyzer.record.counts import COUNTS_FILE

JOB_FILE = "job.json"
# job.json's entry for every setting of the job's last run but the token and those of one run
# (run/job.py decides which); not part of the identity: a resume may change them.
RUN_SETTINGS = "run_settings"
LOCK_FILE = "lock"
SUMMARY_FILE = "summary.json"
STDIN_SPOOL = "stdin.spool"  # standard input, copied as it is read, so a resume can reread it
LEARNED_FILE = "learned.json"


def write_learned_batch(job_dir: Path, size: int) -> None:
    """Keep the largest batch the appliance takes (found after a 413), for the job's resumes."""
    path = job_dir / LEARNED_FILE
    write_atomically(path, json.dumps({"max_batch": size}) + "\n", tmp=path.with_suffix(".tmp"))


def read_learned_batch(job_dir: Path) -> int | None:
    """The largest batch an earlier run found; None if none did. Only a hint: a file that cannot
    be read is as none (the run then finds the size again, by its 413s)."""
    try:
        size = json.loads((job_dir / LEARNED_FILE).read_bytes()).get("max_batch")
    except (OSError, ValueError, AttributeError):
        return None
    return size if isinstance(size, int) and not isinstance(size, bool) and size >= 1 else None


def job_identity(inputs: Sequence[str], outcome_settings: dict[str, Any]) -> dict[str, Any]:
    """What must match for a run to continue a job: the inputs (path, size, modification time:
    a file rewritten since is another job) and the settings that change outcomes."""
    described: list[dict[str, Any]] = []
    for path in inputs:
        if path == "-":
            described.append({"path": "-"})
            continue
        try:
            stat = Path(path).stat()
        except OSError as exc:
            raise InputError(f"cannot open input {path}: {exc.strerror}") from exc
        if Path(path).is_dir():
            raise InputError(f"input {path} is a directory; give the files in it")
        described.append(
            {"path": str(Path(path).resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        )
    return {"inputs": described, "settings": outcome_settings}


def _comparable(recorded: dict[str, Any]) -> dict[str, Any]:
    """A recorded identity as this version spells it: an earlier version kept the analyses in
    the order given (`core,cloud`), which is the same job as `cloud,core`, and the URL's scheme
    and host as typed (`HTTP://A1000`), which is the same appliance as `http://a1000`."""
    settings = recorded.get("settings")
    if not isinstance(settings, dict):
        return recorded
    settings = dict(settings)
    if isinstance(settings.get("analysis"), str):
        settings["analysis"] = canonical(settings["analysis"])
    if isinstance(settings.get("url"), str):
        parts = urllib.parse.urlsplit(settings["url"])
        settings["url"] = urllib.parse.urlunsplit(
            parts._replace(scheme=parts.scheme.lower(), netloc=parts.netloc.lower())
        )
    return {**recorded, "settings": settings}


def _difference(recorded: dict[str, Any], identity: dict[str, Any]) -> str:
    """What differs between a job's identity and this run's, in words."""
    if recorded.get("inputs") != identity["inputs"]:
        return (
            "its inputs differ (an input file changed since the job began, or other files "
            "were given)"
        )
    before, now = recorded.get("settings") or {}, identity["settings"]
    changed = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
    return "its settings differ: " + ", ".join(
        f"{k} was {before.get(k)!r}, now {now.get(k)!r}" for k in changed
    )


def write_summary(job_dir: Path, summary: dict[str, Any]) -> None:
    """Replace the job's summary whole, or raise OSError and leave the last one as it was."""
    path = job_dir / SUMMARY_FILE
    write_atomically(path, json.dumps(summary, indent=2) + "\n", tmp=path.with_suffix(".tmp"))


def default_job_dir(identity: dict[str, Any]) -> Path:
    """jobs/<first input's name>-<fingerprint>: the same command finds the same job again."""
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:10]
    first = identity["inputs"][0]["path"] if identity["inputs"] else "-"
    stem = "stdin" if first == "-" else Path(first).name.split(".")[0] or "input"
    return Path("jobs") / f"{stem}-{digest}"


class JobLock:
    """An exclusive flock on JOB_DIR/lock: released by the kernel when its process dies."""

    def __init__(self, job_dir: Path) -> None:
        self.path = job_dir / LOCK_FILE
        self._fd = -1

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
        except OSError as exc:
            raise JobError(f"cannot use job directory {self.path.parent}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise JobError(
                f"job directory {self.path.parent} is in use by another run (pid {holder}); "
                "wait for it or stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing drops the flock
            self._fd = -1


def prepare(
    job_dir: Path, identity: dict[str, Any], fresh: bool, run_settings: dict[str, Any] | None = None
) -> bool:
    """Check (or start) the job in its directory, which exists and whose lock this run holds,
    and record this run's settings in job.json; True when an earlier run's outcomes are
    continued."""
    job_file = job_dir / JOB_FILE
    resuming = job_file.exists() and not fresh
    if resuming:
        try:
            recorded = json.loads(job_file.read_text())
        except (OSError, ValueError) as exc:
            raise JobError(f"cannot read {job_file}: {exc}") from exc
        # A job.json written before run_settings existed has the identity alone: still the job.
        if _comparable({k: v for k, v in recorded.items() if k != RUN_SETTINGS}) != identity:
            difference = _difference(recorded, identity)
            raise JobError(
                f"job directory {job_dir} belongs to a different job: {difference}; use "
                "another --job-dir, or --fresh to start this one over"
            )
        if run_settings is None or recorded.get(RUN_SETTINGS) == run_settings:
            return True
    if fresh:
        for path in segments.all_files(job_dir / "outcomes.jsonl"):
            path.unlink(missing_ok=True)
        for name in (
            "outcomes.jsonl",
            SUMMARY_FILE,
            "checkpoint.json",
            COUNTS_FILE,
            "stdin.spool",
            "stdin.spool.complete",
            LEARNED_FILE,
        ):
            (job_dir / name).unlink(missing_ok=True)
    job = {**identity, RUN_SETTINGS: run_settings} if run_settings is not None else identity
    try:
        write_atomically(
            job_file,
            json.dumps(job, indent=2, sort_keys=True) + "\n",
            tmp=job_file.with_suffix(".tmp"),
        )
    except OSError as exc:
        raise JobError(f"cannot write {job_file}: {exc.strerror}") from exc
    return resuming
