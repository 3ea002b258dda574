"""``reanalyzer retry JOB_DIR``: send again only the hashes whose final outcome is ``failed``
(or, with ``--status not_configured``, refused for the appliance's configuration).

A retry is a ``Run`` (run/run.py) of the command ``retry``: it reads no input, since each failed
record holds its hash, type, source and line, and it sends exactly as the job's run would, with
the settings job.json recorded for it (``run_settings``; a job.json from before they were
recorded gives its URL, analyses, API, endpoint and sandbox platform). A setting given to
``retry`` on its command line overrides the recorded one; the job's recorded settings override
the environment and the config file, so a job that asked for a sandbox platform keeps its own.
New records supersede the failed ones (the log's rule: a line's last record is its final
outcome); the checkpoint keeps its mark, with the count of what is still failed, and
``summary.json`` is written as a run writes it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from reanalyzer.commands.options import add_setting_options, setting_values
from reanalyzer.core.hashes import HashType
from reanalyzer.core.outcomes import Status
from reanalyzer.core.positions import position
from reanalyzer.errors import ExitCode, JobError, ReanalyzerError
from reanalyzer.record import jobdir
from reanalyzer.record.counts import read_counts
from reanalyzer.record.final import final_records, scan_log
from reanalyzer.record.outcome_log import OUTCOMES_FILE
from reanalyzer.run.logs import configure_logging, say
from reanalyzer.run.resume import ResumeState
from reanalyzer.run.wiring import send_config
from reanalyzer.settings import Settings, load_settings, read_token_file

if TYPE_CHECKING:
    from reanalyzer.run.watch import Watch

log = structlog.get_logger("reanalyzer.commands.retry")

# What a job.json written before run_settings existed holds of the settings, in its identity.
_IDENTITY_SETTINGS = ("url", "analysis", "api", "endpoint", "sandbox_platform", "dedupe")


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job_dir", type=Path, metavar="JOB_DIR", help="the job's directory")
    parser.add_argument(
        "--status",
        type=_statuses,
        default=(Status.FAILED,),
        metavar="S[,S]",
        help="send again the lines whose final outcome is one of these: failed (the default), "
        "not_configured (refused for the appliance's configuration, once it is set up)",
    )
    add_setting_options(parser, "retry")


RETRIABLE = (Status.FAILED, Status.NOT_CONFIGURED)


def _statuses(text: str) -> tuple[Status, ...]:
    """The statuses of a --status list, each one `retry` can send again."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    allowed = {s.value: s for s in RETRIABLE}
    wrong = [n for n in names if n not in allowed]
    if wrong or not names:
        raise argparse.ArgumentTypeError(
            f"{', '.join(wrong) or repr(text)}: retry sends again only "
            f"{' and '.join(allowed)} lines"
        )
    return tuple(dict.fromkeys(allowed[n] for n in names))


def job_settings(job: dict[str, Any]) -> dict[str, Any]:
    """The settings a job's job.json recorded for it: all of its last run's, or (written before
    those were recorded) the ones its identity holds."""
    recorded = job.get(jobdir.RUN_SETTINGS)
    if isinstance(recorded, dict):
        return dict(recorded)
    identity = job.get("settings") or {}
    return {key: identity[key] for key in _IDENTITY_SETTINGS if key in identity}


def retry_settings(args: argparse.Namespace, job: dict[str, Any]) -> Settings:
    """The job's recorded settings, under those given to ``retry`` on its command line."""
    given = {
        name: value for name, value in setting_values(args, "retry").items() if value is not None
    }
    if given.get("token_file") is not None:
        # As for `run`: a token file on the command line beats a REANALYZER_TOKEN.
        given["token"] = read_token_file(Path(given["token_file"]))
    return load_settings(
        {**job_settings(job), **given, "job_dir": args.job_dir}, getattr(args, "config", None)
    )


def run(args: argparse.Namespace) -> int:
    job_file = args.job_dir / jobdir.JOB_FILE
    try:
        job = json.loads(job_file.read_text())
    except FileNotFoundError:
        raise JobError(f"{args.job_dir} is not a job directory (no {jobdir.JOB_FILE})") from None
    except (OSError, ValueError) as exc:
        raise JobError(f"cannot read {job_file}: {exc}") from exc
    if not isinstance(job, dict):
        raise JobError(f"cannot read {job_file}: not a JSON object")
    settings = retry_settings(args, job)
    configure_logging(settings.log_format, settings.log_level)
    statuses = getattr(args, "status", (Status.FAILED,))
    from reanalyzer.run.watch import watched

    job_dir = settings.job_dir or args.job_dir
    return asyncio.run(
        watched(settings, "retry", lambda watch: _retry(job_dir, settings, statuses, watch))
    )


async def _retry(
    job_dir: Path,
    settings: Settings,
    statuses: tuple[Status, ...] = (Status.FAILED,),
    watch: Watch | None = None,
) -> int:
    config = send_config(settings)  # every usage error before the job is locked
    if watch is not None:
        watch.job_dir = job_dir
    lock = jobdir.JobLock(job_dir)
    lock.acquire()
    structlog.contextvars.bind_contextvars(job_id=job_dir.name)  # on every event, as in a run
    try:
        counts = read_counts(job_dir)
        if (
            counts is not None
            and counts.final
            and not any(counts.by_status.get(s, 0) for s in statuses)
        ):
            # What `status` knows, without reading the log: no line ended so.
            say(
                f"reanalyzer: nothing to retry: no line of {job_dir} ended "
                + " or ".join(s.value for s in statuses),
                "retry.nothing_to_do",
                job_dir=str(job_dir),
            )
            return int(ExitCode.OK)
        sources, state = _failed_lines(job_dir / OUTCOMES_FILE, statuses)
        if not state.failed_below:
            ended = " or ".join(statuses)
            say(
                f"reanalyzer: nothing to retry: no line of {job_dir} ended {ended}",
                "retry.nothing_to_do",
                job_dir=str(job_dir),
            )
            return int(ExitCode.OK)
        log.info(
            "retry.started",
            job_dir=str(job_dir),
            retrying=len(state.failed_below),
            url=settings.url,
        )
        # The sending stack (aiohttp, the sender) is imported only now, as for `run`.
        from reanalyzer.run.run import Run

        return await Run(
            settings, config, job_dir, sources, [], state, command="retry", watch=watch
        ).execute()
    except ReanalyzerError as exc:
        exc.job_id = job_dir.name
        raise
    finally:
        lock.release()
        structlog.contextvars.unbind_contextvars("job_id")


def _failed_lines(
    path: Path, statuses: tuple[Status, ...] = (Status.FAILED,)
) -> tuple[list[str], ResumeState]:
    """The sources of the lines whose final outcome is one of `statuses` (failed), and a state
    that sends them again (``done_below``: the lines with another final outcome, not sent
    again)."""
    failed: list[dict[str, Any]] = []
    done = 0
    by_status: Counter[str] = Counter()
    by_type: Counter[str] = Counter()
    last_ts = None
    scan = scan_log(path)
    for record in final_records(path, scan, details=False):
        by_status[record["status"]] += 1
        by_type[record["hash_type"] or "none"] += 1
        last_ts = record["ts"] or last_ts
        if record["status"] in statuses:
            failed.append(record)
        else:
            done += 1
    sources = sorted({r["source"] for r in failed})
    index = {source: i for i, source in enumerate(sources)}
    state = ResumeState(
        done_below=done,
        failed_below={
            position(index[r["source"]], r["line"]): (HashType(r["hash_type"]), r["hash"])
            for r in failed
        },
        records=scan.records,
        by_status=by_status,
        by_type=by_type,
        last_record_at=last_ts,
    )
    return sources, state
