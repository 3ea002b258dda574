"""One job, wired end to end: settings and inputs in, outcomes out, an exit code back.

inputs → normalize → dedupe → batching   (front.py)
       → Sender (concurrent, paced, retried)   (sender.py)
       → OutcomeLog (one record per input record)   (journal.py)
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from reanalyzer import dryrun, jobdir
from reanalyzer.batching import Chunk
from reanalyzer.client import SendConfig
from reanalyzer.errors import ExitCode, JobError, UsageError
from reanalyzer.front import FrontStats, LocalOutcomes, run_front
from reanalyzer.inputs import STDIN, Block, InputFormat, read_blocks, source_name, unpack_position
from reanalyzer.journal import OUTCOMES_FILE, OutcomeLog, final_outcomes, record, utc_now
from reanalyzer.logs import configure_logging
from reanalyzer.outcomes import Status, Verdict
from reanalyzer.sender import Sender
from reanalyzer.settings import Settings

log = structlog.get_logger("reanalyzer.job")

STOP_DEADLINE = 30.0  # seconds requests in flight get to finish after a stop signal


def _blocks(settings: Settings, inputs: Sequence[str]) -> Iterator[Block]:
    input_format = InputFormat(settings.resolved_format)
    column = settings.csv_column or settings.json_field
    if input_format is not InputFormat.TEXT and not column:
        flag = "--csv-column" if input_format is InputFormat.CSV else "--json-field"
        raise UsageError(f"--format {input_format.value} needs {flag}")
    if list(inputs).count(STDIN) > 1:
        raise UsageError("standard input ('-') can be read only once per job")
    return read_blocks(inputs, input_format, column)


def send_config(settings: Settings) -> SendConfig:
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
    )


class SendingSink:
    """Sends chunks concurrently (at most a window of them ahead) and records every outcome."""

    def __init__(
        self,
        sender: Sender,
        journal: OutcomeLog,
        sources: list[str],
        window: int,
        already_final: set[tuple[str, int]],
    ) -> None:
        self.sender = sender
        self.journal = journal
        self.sources = sources
        self.already_final = already_final
        self.counts: Counter[Status] = Counter()
        self.resumed = 0
        self._window = asyncio.Semaphore(window)
        self._tasks: set[asyncio.Task[None]] = set()
        self.error: BaseException | None = None

    def _ref(self, pos: int) -> tuple[str, int]:
        source_index, line = unpack_position(pos)
        return self.sources[source_index], line

    def _fresh(self, pos: int) -> bool:
        """False for a line an earlier run already gave a final outcome: nothing to do."""
        if self.already_final and self._ref(pos) in self.already_final:
            self.resumed += 1
            return False
        return True

    async def settled(self, outcomes: LocalOutcomes) -> None:
        ts = utc_now()
        records = []
        for pos, reason in outcomes.invalid:
            if self._fresh(pos):
                source, line = self._ref(pos)
                records.append(
                    record(
                        hash_value=None,
                        hash_type=None,
                        status=Status.INVALID,
                        source=source,
                        line=line,
                        ts=ts,
                        reason=reason,
                    )
                )
        for hash_type, value, pos in outcomes.duplicates:
            if self._fresh(pos):
                source, line = self._ref(pos)
                records.append(
                    record(
                        hash_value=value,
                        hash_type=hash_type.value,
                        status=Status.DUPLICATE,
                        source=source,
                        line=line,
                        ts=ts,
                        reason="seen earlier in this job",
                    )
                )
        self._write(records)

    async def chunk(self, chunk: Chunk) -> None:
        if self.error is not None:
            raise self.error
        if self.already_final:
            keep = [i for i, pos in enumerate(chunk.positions) if self._fresh(pos)]
            if not keep:
                return
            if len(keep) < len(chunk):
                chunk = Chunk(
                    chunk.hash_type,
                    tuple(chunk.hashes[i] for i in keep),
                    tuple(chunk.positions[i] for i in keep),
                )
        await self._window.acquire()
        task = asyncio.create_task(self._send(chunk))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, chunk: Chunk) -> None:
        try:
            verdicts = await self.sender.send(chunk.hash_type, chunk.hashes)
            self._write(self._chunk_records(chunk, verdicts))
        except BaseException as exc:  # the first error stops the job; the front sees it
            if self.error is None:
                self.error = exc
        finally:
            self._window.release()

    def _chunk_records(self, chunk: Chunk, verdicts: dict[str, Verdict]) -> list[dict[str, Any]]:
        ts = utc_now()
        records = []
        for value, pos in zip(chunk.hashes, chunk.positions, strict=True):
            verdict = verdicts.get(value) or Verdict(Status.FAILED, reason="no verdict")
            source, line = self._ref(pos)
            records.append(
                record(
                    hash_value=value,
                    hash_type=chunk.hash_type.value,
                    status=verdict.status,
                    source=source,
                    line=line,
                    ts=ts,
                    reason=verdict.reason,
                    http_status=verdict.http_status,
                    attempts=verdict.attempts,
                    analyses=[(a.name, a.code, a.message) for a in verdict.analyses],
                    detail=verdict.detail,
                )
            )
        return records

    def _write(self, records: list[dict[str, Any]]) -> None:
        self.journal.write(records)
        for r in records:
            self.counts[Status(r["status"])] += 1

    async def drain(self, deadline: float | None = None) -> bool:
        """Wait for the chunks in flight; False if the deadline (seconds) ran out first."""
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=deadline)
            if pending:
                for task in pending:
                    task.cancel()
                await asyncio.wait(pending)
                return False
        return True


async def _dry_run(settings: Settings, inputs: Sequence[str], report_format: str) -> int:
    sink = dryrun.DryRunSink([source_name(path) for path in inputs])
    started = time.perf_counter()
    stats = await run_front(
        _blocks(settings, inputs),
        sink,
        settings.batch_size,
        dedupe=settings.dedupe,
        idle_flush=settings.idle_flush,
    )
    report = dryrun.build_report(sink, stats, time.perf_counter() - started)
    print(dryrun.format_report(report, as_json=report_format == "json"), flush=True)
    return int(ExitCode.OK)


def _identity(settings: Settings, inputs: Sequence[str]) -> dict[str, Any]:
    return jobdir.job_identity(
        inputs,
        {
            "url": settings.url,
            "analysis": settings.analysis,
            "api": settings.api,
            "endpoint": settings.endpoint,
            "format": settings.resolved_format,
            "column": settings.csv_column or settings.json_field,
            "dedupe": settings.dedupe,
        },
    )


def _job_dir(settings: Settings, identity: dict[str, Any], inputs: Sequence[str]) -> Path:
    if settings.job_dir is not None:
        return settings.job_dir
    base = jobdir.default_job_dir(identity)
    if STDIN in inputs:  # stdin is not spooled yet, so each stdin job is a new one
        return base.with_name(f"{base.name}-{datetime.now(UTC):%Y%m%dT%H%M%S}")
    return base


async def send_job(settings: Settings, inputs: Sequence[str]) -> int:
    config = send_config(settings)
    identity = _identity(settings, inputs)
    job_dir = _job_dir(settings, identity, inputs)
    lock = jobdir.JobLock(job_dir)
    resuming = jobdir.prepare(job_dir, identity, settings.fresh)
    lock.acquire()
    try:
        if resuming and STDIN in inputs:
            raise JobError(
                f"job {job_dir} read standard input, which cannot be resumed yet; "
                "use --fresh or a new --job-dir"
            )
        outcomes_path = job_dir / OUTCOMES_FILE
        already_final = (
            {
                key
                for key, r in final_outcomes(outcomes_path).items()
                if r["status"] != Status.FAILED.value
            }
            if resuming
            else set()
        )
        structlog.contextvars.bind_contextvars(job_id=job_dir.name)
        log.info(
            "job.started",
            job_dir=str(job_dir),
            inputs=list(inputs),
            resuming=resuming,
            already_final=len(already_final),
            url=settings.url,
        )
        return await _run_sending(settings, inputs, config, job_dir, already_final)
    finally:
        lock.release()


async def _run_sending(
    settings: Settings,
    inputs: Sequence[str],
    config: SendConfig,
    job_dir: Path,
    already_final: set[tuple[str, int]],
) -> int:
    started = time.monotonic()
    journal = OutcomeLog(job_dir / OUTCOMES_FILE)
    stats = FrontStats()
    stopped_by: str | None = None
    loop = asyncio.get_running_loop()
    try:
        async with Sender(config) as sender:
            sink = SendingSink(
                sender,
                journal,
                [source_name(p) for p in inputs],
                window=config.concurrency * 2,
                already_final=already_final,
            )
            front = asyncio.create_task(
                run_front(
                    _blocks(settings, inputs),
                    sink,
                    settings.batch_size,
                    dedupe=settings.dedupe,
                    idle_flush=settings.idle_flush,
                    stats=stats,
                )
            )

            def stop(signame: str) -> None:
                nonlocal stopped_by
                if stopped_by is not None:  # a second signal: out at once; the log stays whole
                    journal.close()
                    print(f"reanalyzer: {signame} again: exiting now", file=sys.stderr)
                    raise SystemExit(int(ExitCode.INTERRUPTED))
                stopped_by = signame
                print(
                    f"reanalyzer: {signame}: stopping; requests in flight get "
                    f"{STOP_DEADLINE:.0f} s to finish",
                    file=sys.stderr,
                )
                front.cancel()

            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop, sig.name)
            try:
                try:
                    await front
                except asyncio.CancelledError:
                    if stopped_by is None:
                        raise
                finished = await sink.drain(STOP_DEADLINE if stopped_by else None)
                if sink.error is not None:
                    raise sink.error
            finally:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)
                if not front.done():
                    front.cancel()
    finally:
        journal.close()
    elapsed = time.monotonic() - started
    counts = sink.counts
    summary = {
        "job_dir": str(job_dir),
        "elapsed_s": round(elapsed, 2),
        "records": stats.records,
        "already_done": sink.resumed,
        "recorded": {s.value: counts[s] for s in Status if counts[s]},
        "requests": sender.stats.requests,
        "retries": sender.stats.retries,
        "throttled": sender.stats.throttled,
        "hashes_per_s": round(sum(counts.values()) / elapsed, 1) if elapsed > 0 else None,
        "stopped_by": stopped_by,
    }
    (job_dir / jobdir.SUMMARY_FILE).write_text(__import__("json").dumps(summary, indent=2) + "\n")
    log.info("job.finished", **summary)
    print(_summary_text(summary, finished), file=sys.stderr)
    if stopped_by:
        print("reanalyzer: run the same command again to resume", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    return int(ExitCode.SOME_FAILED if counts[Status.FAILED] else ExitCode.OK)


def _summary_text(summary: dict[str, Any], finished: bool) -> str:
    lines = [
        f"reanalyzer: {'done' if finished else 'stopped'} in {summary['elapsed_s']} s; "
        f"outcomes in {summary['job_dir']}/{OUTCOMES_FILE}"
    ]
    for status, count in summary["recorded"].items():
        lines.append(f"  {status:<15} {count:>12,}")
    if summary["already_done"]:
        lines.append(f"  {'(earlier runs)':<15} {summary['already_done']:>12,}")
    lines.append(
        f"  requests {summary['requests']:,}, retries {summary['retries']:,}, "
        f"429s {summary['throttled']:,}"
    )
    return "\n".join(lines)


def run_job(settings: Settings, inputs: Sequence[str], report_format: str = "text") -> int:
    configure_logging(settings.log_format, settings.log_level)
    if settings.dry_run:
        return asyncio.run(_dry_run(settings, inputs, report_format))
    return asyncio.run(send_job(settings, inputs))
