"""One job, wired end to end: settings and inputs in, outcomes out, an exit code back.

inputs → normalize → dedupe → batching   (read/front.py)
       → Sender (concurrent, paced, retried)   (send/sender.py)
       → OutcomeLog (one record per input record)   (record/outcome_log.py)
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from pydantic import SecretStr

from reanalyzer.core.positions import STDIN, source_name
from reanalyzer.core.private import PRIVATE_DIR
from reanalyzer.errors import ExitCode, JobError, ReanalyzerError, UsageError
from reanalyzer.read.front import run_front
from reanalyzer.read.sizes import input_sizes
from reanalyzer.read.sources import spool_complete_marker
from reanalyzer.record import jobdir
from reanalyzer.record.outcome_log import OUTCOMES_FILE
from reanalyzer.run import dryrun
from reanalyzer.run.logs import configure_logging, say
from reanalyzer.run.resume import ResumeState, load_resume_state
from reanalyzer.run.watch import Watch, watched
from reanalyzer.run.wiring import blocks_of, send_config
from reanalyzer.settings import Settings

log = structlog.get_logger("reanalyzer.run.job")


async def _dry_run(settings: Settings, inputs: Sequence[str], report_format: str) -> int:
    sink = dryrun.DryRunSink([source_name(path) for path in inputs])
    started = time.perf_counter()
    shard = settings.resolved_shard
    stats = await run_front(
        blocks_of(settings, inputs),
        sink,
        settings.batch_size,
        dedupe=settings.dedupe,
        dedupe_memory=settings.dedupe_memory_bytes,
        input_bytes=sum(sizes) if (sizes := input_sizes(inputs)[0]) else None,
        idle_flush=settings.idle_flush,
        shard=shard,
    )
    report = dryrun.build_report(sink, stats, time.perf_counter() - started, shard)
    print(dryrun.format_report(report, as_json=report_format == "json"), flush=True)
    # As a run of it would: no hash is not success (a shard whose slice holds none is).
    if not report["to_send_total"] and not stats.other_shards:
        say(
            f"reanalyzer: warning: the input held no hash to send ({stats.lines:,} lines read: "
            f"{stats.invalid:,} invalid, {stats.skipped:,} blank or comment)",
            "job.no_input",
            "warning",
            lines=stats.lines,
            invalid=stats.invalid,
            skipped=stats.skipped,
        )
        return int(ExitCode.NO_INPUT)
    return int(ExitCode.OK)


def warn_unknown_analyses(settings: Settings) -> None:
    """One line about analysis names this version does not know: they are sent all the same."""
    warning = settings.analysis_names.warning()
    if warning is not None:
        say(
            f"reanalyzer: warning: {warning}",
            "job.unknown_analysis",
            "warning",
            names=list(settings.analysis_names.unknown),
        )


def _identity(
    settings: Settings, inputs: Sequence[str], *, as_given: bool = False
) -> dict[str, Any]:
    """What identifies the job; the analyses in their one spelling (`cloud,core` for
    `core,cloud`), or `as_given`: as earlier versions spelled them, to find their job again."""
    analysis = settings.analysis if as_given else ",".join(settings.analyses)
    outcome_settings = {
        "url": settings.url,
        "analysis": analysis,
        "api": settings.api,
        "endpoint": settings.endpoint,
        "format": settings.resolved_format,
        "column": settings.csv_column or settings.json_field,
        "dedupe": settings.dedupe,
    }
    if "rl_cloud_sandbox" in settings.analyses:  # (only then: other jobs keep their identity)
        outcome_settings["sandbox_platform"] = settings.sandbox_platform
    shard = settings.resolved_shard
    if shard is not None:  # (only then, too) a resume with another K or N is another job
        outcome_settings["shard"] = str(shard)
    return jobdir.job_identity(inputs, outcome_settings)


# Settings of one invocation rather than of the job: not recorded in job.json, so that `retry`
# takes them from its own command line and environment. The budgets bound one run's window; the
# token (and any other secret) is never written anywhere.
_NOT_RECORDED = frozenset(
    {
        "token",
        "token_file",
        "job_dir",
        "fresh",
        "dry_run",
        "progress",
        "progress_interval",
        "log_format",
        "log_level",
        "max_duration",
        "max_requests",
        "max_failure_rate",
        "failure_sample",
        "shard",
        "shard_count",
        # Where this run reports (a ping URL is a capability): each command is told its own.
        "metrics_file",
        "pushgateway",
        "ping_url",
        "notify_url",
        "notify_on",
    }
)


def recorded_settings(settings: Settings) -> dict[str, Any]:
    """The settings job.json keeps for the job's later commands (``retry`` sends with them)."""
    secret = {
        name
        for name in type(settings).model_fields
        if isinstance(getattr(settings, name), SecretStr)
    }
    return settings.model_dump(mode="json", exclude=set(_NOT_RECORDED | secret))


def _job_dir(settings: Settings, identity: dict[str, Any], inputs: Sequence[str]) -> Path:
    if settings.job_dir is not None:
        return settings.job_dir
    shard = settings.resolved_shard
    if shard is not None:
        # The shards of one job share the id of the job, and each names its own:
        # jobs/hashes-<id>-shard-2of8, so that jobs/hashes-<id>-shard-* are all of them.
        unsharded = {
            **identity,
            "settings": {k: v for k, v in identity["settings"].items() if k != "shard"},
        }
        base = jobdir.default_job_dir(unsharded)
        base = base.with_name(f"{base.name}-{shard.label}")
    else:
        base = jobdir.default_job_dir(identity)
        if not base.exists() and STDIN not in inputs:
            # A job an earlier version began under the analyses as spelled then (`core,cloud`)
            # is this one: resume it rather than start it over.
            earlier = jobdir.default_job_dir(_identity(settings, inputs, as_given=True))
            if (earlier / jobdir.JOB_FILE).exists():
                return earlier
    if STDIN in inputs:  # the same command on other stdin is another job; --job-dir resumes
        # The time tells a person which run it was; the random part keeps two runs started in
        # the same second (a loop in a script) out of each other's directory.
        started = f"{datetime.now(UTC):%Y%m%dT%H%M%S}"
        return base.with_name(f"{base.name}-{started}-{secrets.token_hex(3)}")
    return base


def _reading_paths(inputs: Sequence[str], job_dir: Path, resuming: bool) -> list[str]:
    """What to read: the inputs, with a resumed job's stdin replaced by its spool."""
    if not resuming or STDIN not in inputs:
        return list(inputs)
    spool = job_dir / jobdir.STDIN_SPOOL
    if not spool.exists():
        raise JobError(f"job {job_dir} read standard input but has no spool of it; use --fresh")
    if not spool_complete_marker(spool).exists():
        # An earlier run stopped before the end of stdin: read the spool, then the rest of the
        # stdin given now (which must be the same input; see inputs._Continued).
        return list(inputs)
    return [str(spool) if path == STDIN else path for path in inputs]


async def send_job(settings: Settings, inputs: Sequence[str], watch: Watch | None = None) -> int:
    """Run (or resume) a job; return its exit code. Errors raise ReanalyzerError. `watch`:
    the pings, metrics and live control of the run (run/watch.py)."""
    config = send_config(settings)  # every usage error before anything is created
    if len(set(inputs)) < len(inputs):
        raise UsageError("an input is named twice; give each file once")
    identity = _identity(settings, inputs)
    job_dir = _job_dir(settings, identity, inputs)
    if watch is not None:
        watch.job_dir = job_dir
    try:
        job_dir.mkdir(PRIVATE_DIR, parents=True, exist_ok=True)
    except OSError as exc:
        raise JobError(f"cannot create job directory {job_dir}: {exc.strerror}") from exc
    lock = jobdir.JobLock(job_dir)
    lock.acquire()
    try:
        resuming = jobdir.prepare(job_dir, identity, settings.fresh, recorded_settings(settings))
        structlog.contextvars.bind_contextvars(job_id=job_dir.name)
        sources = [source_name(path) for path in inputs]
        state = load_resume_state(job_dir, sources, settings.dedupe) if resuming else ResumeState()
        if state.nothing_to_do:
            say(
                f"reanalyzer: job {job_dir} is already done: every input line has its final "
                f"outcome in {job_dir / OUTCOMES_FILE}",
                "job.already_done",
                job_dir=str(job_dir),
            )
            return int(ExitCode.OK)
        log.info(
            "job.started",
            job_dir=str(job_dir),
            inputs=list(inputs),
            resuming=resuming,
            resume_from=f"{state.start.source_index}:{state.start.line}",
            retrying=state.retrying,
            url=settings.url,
        )
        _log_shard_pace(settings)
        # The sending stack (aiohttp, the sender) is imported only now: a finished job is
        # recognised, and a usage error reported, without paying for it.
        from reanalyzer.run.run import Run

        run = Run(
            settings,
            config,
            job_dir,
            sources,
            _reading_paths(inputs, job_dir, resuming),
            state,
            watch=watch,
        )
        return await run.execute()
    except ReanalyzerError as exc:
        exc.job_id = job_dir.name  # the CLI's error event names the job, like every other
        raise
    finally:
        lock.release()
        structlog.contextvars.unbind_contextvars("job_id")


def _log_shard_pace(settings: Settings) -> None:
    """A shard says what pace it assumes: --rate-limit is per worker, so N shards at once ask
    the appliance for N times it (see the README's Shards section)."""
    shard = settings.resolved_shard
    if shard is None:
        return
    rate = settings.rate_limit
    if isinstance(rate, str):  # a timetable: each rate in it is this worker's own
        say(
            f"reanalyzer: shard {shard}: the --rate-limit timetable {rate} is this worker's "
            f"own; {shard.count} shards at once ask the appliance for {shard.count} times each "
            "rate in it",
            "job.shard",
            "info",
            shard=str(shard),
            shard_index=shard.index,
            shard_count=shard.count,
            rate_limit=rate,
            all_shards_rate=None,
        )
        return
    if rate is None:
        text = (
            f"reanalyzer: shard {shard}: no --rate-limit: this worker adapts to the "
            "appliance's 429 answers on its own, as each other shard does"
        )
    else:
        text = (
            f"reanalyzer: shard {shard}: --rate-limit {rate:g}/s is this worker's own; "
            f"{shard.count} shards at once ask the appliance for up to "
            f"{rate * shard.count:g}/s"
        )
    say(
        text,
        "job.shard",
        "info",
        shard=str(shard),
        shard_index=shard.index,
        shard_count=shard.count,
        rate_limit=rate,
        all_shards_rate=None if rate is None else rate * shard.count,
    )


def run_job(settings: Settings, inputs: Sequence[str], report_format: str = "text") -> int:
    configure_logging(settings.log_format, settings.log_level)
    warn_unknown_analyses(settings)
    if settings.dry_run:
        return asyncio.run(_dry_run(settings, inputs, report_format))
    return asyncio.run(watched(settings, "run", lambda watch: send_job(settings, inputs, watch)))
