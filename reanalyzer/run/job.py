"""One job, wired end to end: settings and inputs in, outcomes out, an exit code back.

inputs → normalize → dedupe → batching   (front.py)
       → Sender (concurrent, paced, retried)   (sender.py)
       → OutcomeLog (one record per input record)   (journal.py)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from reanalyzer.core.positions import STDIN, Block, ResumePoint, source_name
from reanalyzer.errors import ExitCode, JobError, ReanalyzerError, UsageError
from reanalyzer.read.formats import InputFormat, read_blocks
from reanalyzer.read.front import run_front
from reanalyzer.read.sources import spool_complete_marker
from reanalyzer.record import jobdir
from reanalyzer.record.outcome_log import OUTCOMES_FILE
from reanalyzer.run import dryrun
from reanalyzer.run.logs import configure_logging, say
from reanalyzer.run.resume import ResumeState, load_resume_state
from reanalyzer.send.config import SendConfig
from reanalyzer.settings import Settings

log = structlog.get_logger("reanalyzer.run.job")

STOP_DEADLINE = 30.0  # seconds requests in flight get to finish after a stop signal
STDIN_SPOOL = "stdin.spool"  # standard input, copied as it is read, so a resume can reread it


def send_config(settings: Settings) -> SendConfig:
    """What the sender is told, from the settings (which have checked every value); a setting
    only sending needs (the URL, the token) is required here, before any job directory."""
    if not settings.url:
        raise UsageError(
            "setting url: missing; give --url or REANALYZER_URL (or try `reanalyzer demo`)"
        )
    token = settings.resolved_token()
    if token is None:
        raise UsageError("setting token: missing; set REANALYZER_TOKEN or --token-file")
    return SendConfig(
        url=settings.url,
        token=token.get_secret_value(),
        analysis=settings.analyses,
        endpoint=settings.endpoint,
        api=settings.api,
        sandbox_platform=settings.sandbox_platform,
        concurrency=settings.concurrency,
        rate_limit=settings.rate_limit,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        total_timeout=settings.total_timeout,
        ca_bundle=settings.ca_bundle,
        insecure=settings.insecure,
        trust_env=settings.trust_env,
        max_retries=settings.max_retries,
        max_requests=settings.max_requests,
        unreachable_window=settings.unreachable_timeout,
        unreachable_window_at_start=min(15.0, settings.unreachable_timeout),
    )


def blocks_of(
    settings: Settings,
    inputs: Sequence[str],
    start: ResumePoint | None = None,
    stdin_spool: Path | None = None,
) -> Iterator[Block]:
    input_format = InputFormat(settings.resolved_format)
    column = settings.csv_column or settings.json_field
    if input_format is not InputFormat.TEXT and not column:
        flag = "--csv-column" if input_format is InputFormat.CSV else "--json-field"
        raise UsageError(f"--input-format {input_format.value} needs {flag}")
    if list(inputs).count(STDIN) > 1:
        raise UsageError("standard input ('-') can be read only once per job")
    return read_blocks(inputs, input_format, column, start, stdin_spool)


async def _dry_run(settings: Settings, inputs: Sequence[str], report_format: str) -> int:
    sink = dryrun.DryRunSink([source_name(path) for path in inputs])
    started = time.perf_counter()
    stats = await run_front(
        blocks_of(settings, inputs),
        sink,
        settings.batch_size,
        dedupe=settings.dedupe,
        idle_flush=settings.idle_flush,
    )
    report = dryrun.build_report(sink, stats, time.perf_counter() - started)
    print(dryrun.format_report(report, as_json=report_format == "json"), flush=True)
    if not report["to_send_total"]:  # as a run of it would: no hash is not success
        say(f"reanalyzer: warning: the input held no hash to send ({stats.lines:,} lines read: "
            f"{stats.invalid:,} invalid, {stats.skipped:,} blank or comment)", "job.no_input",
            "warning", lines=stats.lines, invalid=stats.invalid, skipped=stats.skipped)
        return int(ExitCode.NO_INPUT)
    return int(ExitCode.OK)


def _identity(settings: Settings, inputs: Sequence[str]) -> dict[str, Any]:
    outcome_settings = {
        "url": settings.url, "analysis": settings.analysis, "api": settings.api,
        "endpoint": settings.endpoint, "format": settings.resolved_format,
        "column": settings.csv_column or settings.json_field, "dedupe": settings.dedupe,
    }
    if "rl_cloud_sandbox" in settings.analyses:  # (only then: other jobs keep their identity)
        outcome_settings["sandbox_platform"] = settings.sandbox_platform
    return jobdir.job_identity(inputs, outcome_settings)


def _job_dir(settings: Settings, identity: dict[str, Any], inputs: Sequence[str]) -> Path:
    if settings.job_dir is not None:
        return settings.job_dir
    base = jobdir.default_job_dir(identity)
    if STDIN in inputs:  # the same command on other stdin is another job; --job-dir resumes
        return base.with_name(f"{base.name}-{datetime.now(UTC):%Y%m%dT%H%M%S}")
    return base


def _reading_paths(inputs: Sequence[str], job_dir: Path, resuming: bool) -> list[str]:
    """What to read: the inputs, with a resumed job's stdin replaced by its spool."""
    if not resuming or STDIN not in inputs:
        return list(inputs)
    spool = job_dir / STDIN_SPOOL
    if not spool.exists():
        raise JobError(f"job {job_dir} read standard input but has no spool of it; use --fresh")
    if not spool_complete_marker(spool).exists():
        # An earlier run stopped before the end of stdin: read the spool, then the rest of the
        # stdin given now (which must be the same input; see inputs._Continued).
        return list(inputs)
    return [str(spool) if path == STDIN else path for path in inputs]


async def send_job(settings: Settings, inputs: Sequence[str]) -> int:
    """Run (or resume) a job; return its exit code. Errors raise ReanalyzerError."""
    config = send_config(settings)  # every usage error before anything is created
    if len(set(inputs)) < len(inputs):
        raise UsageError("an input is named twice; give each file once")
    identity = _identity(settings, inputs)
    job_dir = _job_dir(settings, identity, inputs)
    try:
        job_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise JobError(f"cannot create job directory {job_dir}: {exc.strerror}") from exc
    lock = jobdir.JobLock(job_dir)
    lock.acquire()
    try:
        resuming = jobdir.prepare(job_dir, identity, settings.fresh)
        structlog.contextvars.bind_contextvars(job_id=job_dir.name)
        sources = [source_name(path) for path in inputs]
        state = (load_resume_state(job_dir, sources, settings.dedupe) if resuming
                 else ResumeState())
        if state.nothing_to_do:
            say(f"reanalyzer: job {job_dir} is already done: every input line has its final "
                f"outcome in {job_dir / OUTCOMES_FILE}", "job.already_done", job_dir=str(job_dir))
            return int(ExitCode.OK)
        log.info("job.started", job_dir=str(job_dir), inputs=list(inputs), resuming=resuming,
                 resume_from=f"{state.start.source_index}:{state.start.line}",
                 retrying=len(state.failed_below), url=settings.url)
        # The sending stack (aiohttp, the sender) is imported only now: a finished job is
        # recognised, and a usage error reported, without paying for it.
        from reanalyzer.run.run import Run

        run = Run(settings, config, job_dir, sources,
                  _reading_paths(inputs, job_dir, resuming), state)
        return await run.execute()
    except ReanalyzerError as exc:
        exc.job_id = job_dir.name  # the CLI's error event names the job, like every other
        raise
    finally:
        lock.release()
        structlog.contextvars.unbind_contextvars("job_id")


def run_job(settings: Settings, inputs: Sequence[str], report_format: str = "text") -> int:
    configure_logging(settings.log_format, settings.log_level)
    if settings.dry_run:
        return asyncio.run(_dry_run(settings, inputs, report_format))
    return asyncio.run(send_job(settings, inputs))
