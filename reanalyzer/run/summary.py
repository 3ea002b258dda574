"""The summary of a run (``run`` or ``retry``): built here, printed, and kept as summary.json.

Both commands build it with ``build_summary``, so ``summary.json`` has one shape whichever wrote
it; ``left_to_do`` says in words what the operator should do next.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from reanalyzer.core.outcomes import Status
from reanalyzer.core.words import counted

Command = Literal["run", "retry"]


UNFINISHED_RETRY = "retry of an unfinished job"  # stopped_by of a retry with input left


@dataclass(frozen=True, slots=True)
class Ending:
    """How a run ended, as far as what is left to do is concerned."""

    command: Command
    finished: bool  # all the run had to send was sent and recorded, without error
    stopped_by: str | None  # the signal or budget that stopped it early
    error: BaseException | None  # the error that ended it
    input_left: bool = False  # (retry) the job's own run has not read all of its input
    # A job reading standard input: "the same command" would start another job.
    stdin: bool = False
    url: str | None = None  # the appliance, for the resume command of a stdin job

    @property
    def done(self) -> bool:
        """The job has nothing left but what its failures say: no input left unread."""
        return self.finished and not self.input_left


def build_summary(
    *,
    ending: Ending,
    job_dir: Path,
    elapsed: float,
    counts: Mapping[Status, int],
    by_type: Mapping[str, int],
    already_recorded: int,
    requests: int,
    retries: int,
    throttled: int,
    status_requests: int = 0,
    unremembered: int = 0,
) -> dict[str, Any]:
    """The summary's fields; ``already_recorded`` counts lines an earlier run gave a final
    outcome, which this one did not send again; ``unremembered``, hashes sent while the dedupe
    set was full (--dedupe-memory): a repeat of one was sent again. ``requests`` counts every
    request sent, of which ``status_requests`` asked the status endpoint (--precheck): they are
    shown apart."""
    recorded = sum(counts.values())
    error = ending.error
    return {
        "command": ending.command,
        "job_dir": str(job_dir),
        "state": "done" if ending.done else ("aborted" if error else "stopped"),
        "stopped_by": ending.stopped_by,
        "error": str(error) if error else None,
        "elapsed_s": round(elapsed, 2),
        "recorded": {s.value: counts[s] for s in Status if counts.get(s)},
        "recorded_by_type": {t: n for t, n in sorted(by_type.items()) if n},  # hash types only
        "recorded_total": recorded,
        "already_recorded": already_recorded,
        "unremembered": unremembered,
        "requests": requests - status_requests,
        "status_requests": status_requests,
        "retries": retries,
        "throttled": throttled,
        "hashes_per_s": round(recorded / elapsed, 1) if elapsed > 0 else None,
        "left_to_do": left_to_do(
            ending, counts.get(Status.FAILED, 0), counts.get(Status.NOT_CONFIGURED, 0), job_dir
        ),
    }


def resume_hint(ending: Ending, job_dir: Path | None = None) -> str:
    """How to go on with the job's input, in words: "the same command" only where it finds the
    job again (a stdin job gets a new directory per run) and reads its input (a retry does
    not)."""
    where = job_dir or "JOB_DIR"
    if ending.stdin:
        return (
            f"`reanalyzer run --url {ending.url or 'URL'} --job-dir {where} < /dev/null` "
            "resumes it (pipe the same input in instead of /dev/null if its end was not "
            "read yet)"
        )
    if ending.command == "retry":
        return (
            f"run the job's own run command again (or `reanalyzer run --url "
            f"{ending.url or 'URL'} --job-dir {where} INPUT...`) to go on"
        )
    return "run the same command again to resume"


def left_to_do(
    ending: Ending, failed: int, not_configured: int = 0, job_dir: Path | None = None
) -> str:
    """What is left of the job after this run, and how to go on, in words."""
    where = job_dir or "JOB_DIR"
    # A stdin job's "same command" would be a new job: `retry` sends its failures again.
    again = (
        f"`reanalyzer retry {where}` retries them"
        if ending.stdin
        else "run the same command again to retry them"
    )
    if ending.finished and ending.input_left:
        also = f"; {counted(failed, 'hash', 'hashes')} still failed" if failed else ""
        return (
            f"the rest of the input, which the job's run has not all read: "
            f"{resume_hint(ending, job_dir)}{also}"
        )
    if ending.finished and not_configured:
        also = f"; {failed:,} hashes failed: {again}" if failed else ""
        return (
            f"{not_configured:,} hashes refused for the appliance's configuration "
            "(not_configured): set it up (or change --analysis), then `reanalyzer retry "
            f"{where} --status not_configured`{also}"
        )
    if ending.finished and failed:
        return f"{counted(failed, 'hash', 'hashes')} failed: {again}"
    if ending.finished:
        return "nothing: every input line has its final outcome"
    if ending.error is not None:
        if ending.command == "retry":
            return "fix the error shown last, then run the same command again"
        if ending.stdin:
            return f"fix the error shown last, then {resume_hint(ending, job_dir)}"
        return "fix the error shown last, then run the same command again to resume"
    if ending.command == "retry":
        return "the rest of the failed hashes: run the same command again to retry them"
    return f"the rest of the input: {resume_hint(ending, job_dir)}"


def summary_text(summary: Mapping[str, Any]) -> str:
    """The summary as printed at the end of a run."""
    what = "retry " if summary["command"] == "retry" else ""
    lines = [
        f"reanalyzer: {what}{summary['state']} in {summary['elapsed_s']} s "
        f"({summary['hashes_per_s'] or 0:,} records/s); outcomes in "
        f"{summary['job_dir']} (reanalyzer report {summary['job_dir']})"
    ]
    for status, count in summary["recorded"].items():
        lines.append(f"  {status:<15} {count:>12,}")
    if summary["already_recorded"]:
        lines.append(f"  {'(earlier runs)':<15} {summary['already_recorded']:>12,}")
    if summary.get("unremembered"):  # (absent from a summary.json of an earlier version)
        lines.append(
            f"  unremembered {summary['unremembered']:>15,} (sent with the dedupe set "
            "full, past --dedupe-memory: a later repeat went again)"
        )
    if summary["recorded_by_type"]:
        lines.append(
            "  by type: " + ", ".join(f"{t} {n:,}" for t, n in summary["recorded_by_type"].items())
        )
    status = summary.get("status_requests") or 0  # (a summary.json of an earlier version)
    lines.append(
        f"  requests {summary['requests']:,}"
        + (f", status requests {status:,}" if status else "")
        + f", retries {summary['retries']:,}, 429s {summary['throttled']:,}"
    )
    lines.append(f"  left to do: {summary['left_to_do']}")
    return "\n".join(lines)
