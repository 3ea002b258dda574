"""A run of a job: the front feeding the sender, outcomes recorded, stops, progress, summary.

``job.send_job`` decides whether there is anything to do and prepares the job directory; this
module carries a run out, and is imported only then (it brings aiohttp and the sending stack).
``reanalyzer retry`` is a run too, of the command ``retry``: it reads no input and sends only
the job's failed lines, and it leaves the checkpoint's mark to the job's own runs.

Over 300 lines for that one concern: every way a run ends (done, stopped by a signal or a
budget, an error, a retry's mark) is carried out here, and stops, budgets, progress and counts
all act on one run's state, where the story of a run reads whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import os
import signal
import time
from pathlib import Path

import structlog

from reanalyzer.core.outcomes import Status
from reanalyzer.core.watermark import Watermark
from reanalyzer.errors import ExitCode, ReanalyzerError
from reanalyzer.read.front import FrontStats, run_front
from reanalyzer.read.sizes import input_sizes
from reanalyzer.record import jobdir
from reanalyzer.record.checkpoint import read_checkpoint, write_checkpoint
from reanalyzer.record.final import count_final
from reanalyzer.record.outcome_log import OUTCOMES_FILE, OutcomeLog
from reanalyzer.run.budget import Budget
from reanalyzer.run.counts import CountsKeeper
from reanalyzer.run.logs import fold_into_progress_line, say
from reanalyzer.run.progress import ProgressReporter, RateMeter, Snapshot, figures, share_read
from reanalyzer.run.resume import ResumeState
from reanalyzer.run.signals import OnSignal, StopSignals
from reanalyzer.run.sink import CHECKPOINT_INTERVAL, SendingSink
from reanalyzer.run.summary import (
    UNFINISHED_RETRY,
    Command,
    Ending,
    build_summary,
    resume_hint,
    summary_text,
)
from reanalyzer.run.watch import Watch, watching
from reanalyzer.run.wiring import blocks_of
from reanalyzer.send.config import SendConfig
from reanalyzer.send.sender import Sender, SenderStats
from reanalyzer.settings import Settings

log = structlog.get_logger("reanalyzer.run.job")

STOP_DEADLINE = 30.0  # seconds requests in flight get to finish after a stop signal


class Run:
    """One run of a job: the front feeding the sender, the outcome log, stops and the summary.

    ``command`` is ``run`` (read ``paths``, send what they hold and ``state.failed_below``) or
    ``retry`` (read nothing, send ``state.failed_below`` only)."""

    def __init__(
        self,
        settings: Settings,
        config: SendConfig,
        job_dir: Path,
        sources: list[str],
        paths: list[str],
        state: ResumeState,
        command: Command = "run",
        watch: Watch | None = None,
    ) -> None:
        self.command, self.watch = command, watch  # watch: pings, metrics, live control
        self.reads_input = command != "retry"
        self.settings = settings
        self.config = config
        self.job_dir = job_dir
        self.sources = sources
        self.paths = paths
        self.state = state
        self.stats = FrontStats()
        self.budget = Budget(
            settings.max_requests, settings.max_failure_rate, settings.failure_sample
        )
        self.stopped_by: str | None = None  # why the run stopped before the end of its input
        self.started = time.monotonic()
        self._front_task: asyncio.Task[None] | None = None
        self._sink: SendingSink | None = None
        self._sender: Sender | None = None
        self._signals = StopSignals()
        self._stopping = asyncio.Event()  # set by request_stop
        self._sizes, self._sizes_estimated = input_sizes(paths)  # (gzip: an estimate)
        self._meter = RateMeter()
        self._input_left = False  # (retry) the job's own run has not read all of its input

    async def execute(self) -> int:
        journal = OutcomeLog(self.job_dir / OUTCOMES_FILE)
        error: BaseException | None = None
        finished = False
        loop = asyncio.get_running_loop()
        # Our handlers stay until the end: a second signal during the drain must exit at once.
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal, sig.name)
        try:
            # The largest batch the appliance takes, as an earlier run found it after a 413.
            learned = jobdir.read_learned_batch(self.job_dir)
            async with Sender(self.config, max_batch=learned) as sender:
                watermark = Watermark(self.state.start)
                # A retry never checkpoints as it goes: the mark belongs to the job's runs.
                interval = CHECKPOINT_INTERVAL if self.reads_input else math.inf
                sink = SendingSink(
                    sender,
                    journal,
                    self.sources,
                    window=self.config.concurrency * 2,
                    job_dir=self.job_dir,
                    watermark=watermark,
                    done_above=self.state.done_above,
                    checkpoint_interval=interval,
                    failure_sample=self.settings.failure_sample,
                    on_recorded=self._check_budget,
                    precheck=self.settings.precheck,
                    counts=CountsKeeper.of(self.state, self._figures),
                )
                self._sink, self._sender = sink, sender
                sink.write_counts(final=False)  # (final once the run ends: see record/counts.py)
                async with self._progress() as progress, watching(self.watch, sink, progress):
                    # The window covers the drain too: once the front has read everything,
                    # the sink may still hold batches not yet sent.
                    timer = self._start_window()
                    try:
                        try:
                            finished = await self._feed(sink, watermark)
                        except ReanalyzerError as exc:
                            error = exc
                        drained = await self._drain(sink, error)
                    finally:
                        if timer is not None:
                            timer.cancel()
                error = error or sink.error
                # A stop that came after the last line was read, and whose requests all
                # finished, leaves nothing to resume: the run is done.
                finished = finished and drained and not sink.unsent
                if finished and error is None:
                    self.stopped_by = None
                try:
                    if self.reads_input:
                        sink.checkpoint(final=True)
                    else:
                        self._keep_mark(sink)
                except ReanalyzerError as exc:  # the disk: the log stays readable
                    error = error or exc
                if self._input_left and finished and error is None:
                    # A retry sent all it had to, but the job's own run had not read all of its
                    # input: the job is not done, and its run command goes on with it.
                    self.stopped_by = UNFINISHED_RETRY
                self._summarize(sink, sender.stats, finished and error is None, error)
        finally:
            fold_into_progress_line(False)
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            try:
                journal.close()
            except ReanalyzerError as exc:
                error = error or exc
        if error is not None:
            raise error
        if self.stopped_by:
            how = (
                "run the same command again to resume"
                if self.command == "retry" and self.stopped_by != UNFINISHED_RETRY
                else resume_hint(self._ending(True, None), self.job_dir)
            )
            say(
                f"reanalyzer: stopped ({self.stopped_by}); {how}",
                "job.resumable",
                reason=self.stopped_by,
            )
            return int(ExitCode.INTERRUPTED)
        if (
            not sum(sink.by_type.values()) and not self.state.hashed and not self.stats.other_shards
        ):  # (a shard whose slice holds none: done)
            # An empty nightly export must not pass for a job done: no hash, nothing sent.
            stats = self.stats
            say(
                f"reanalyzer: warning: the input held no hash to send ({stats.lines:,} lines "
                f"read: {stats.invalid:,} invalid, {stats.skipped:,} blank or comment); nothing "
                f"was sent (exit {int(ExitCode.NO_INPUT)})",
                "job.no_input",
                "warning",
                lines=stats.lines,
                invalid=stats.invalid,
                skipped=stats.skipped,
            )
            return int(ExitCode.NO_INPUT)
        unsettled = sink.counts[Status.FAILED] + sink.counts[Status.NOT_CONFIGURED]
        return int(ExitCode.SOME_FAILED if unsettled else ExitCode.OK)

    def _progress(self) -> ProgressReporter:
        reporter = ProgressReporter.for_mode(
            self.settings.progress, self._snapshot, self.settings.progress_interval
        )
        fold_into_progress_line(reporter.on_terminal)
        return reporter

    def _snapshot(self) -> Snapshot:
        assert self._sink is not None
        assert self._sender is not None
        stats = self._sender.stats
        recorded = sum(self._sink.counts.values())
        return Snapshot(
            recorded=recorded,
            estimated_total=self._estimated_total(),
            requests=stats.requests - stats.status_requests,
            retries=stats.retries,
            throttled=stats.throttled,
            pace=stats.rate,
            in_flight=stats.in_flight,  # requests sent, not yet answered
            status_requests=stats.status_requests,
            total_is_estimate=self._sizes_estimated and self.reads_input,
            recent_rate=self._meter.update(time.monotonic(), recorded),
        )

    def _figures(self) -> dict[str, object]:  # for counts.json, and so for `status`
        return {"command": self.command, **figures(self._snapshot(), self.started)}

    def _estimated_total(self) -> int | None:
        """The records this run will write: records read so far, scaled by the share of the
        bytes read (the reader is ahead of the records, so both are taken from it)."""
        if not self.reads_input:
            return len(self.state.failed_below)
        fraction = share_read(
            self._sizes, self.state.start, self.stats.source_index, self.stats.offset
        )
        if fraction is None or fraction < 0.001:
            return None
        return round((self.stats.records + len(self.state.failed_below)) / fraction)

    def request_stop(self, reason: str, hint: str = "") -> None:
        """Stop reading input; what is in flight is finished and recorded. Idempotent."""
        if self.stopped_by is not None:
            return
        self.stopped_by = reason
        self._stopping.set()
        if self._sender is not None:  # what has not gone out by now stays for the resume
            self._sender.stop_new_requests()
        say(
            f"reanalyzer: {reason}: stopping; requests in flight get {STOP_DEADLINE:.0f} s "
            f"to finish{hint}",
            "job.stopping",
            "warning",
            reason=reason,
        )
        if self._front_task is not None:
            self._front_task.cancel()

    def _on_signal(self, signame: str) -> None:
        meaning = self._signals.received()
        if meaning is OnSignal.SAME:  # e.g. GNU timeout's copy to the process group: no news
            return
        if meaning is OnSignal.NOW:
            # A second signal: out at once. Each record and checkpoint is written whole, so
            # nothing is corrupted; what was in flight is sent again by the resume.
            say(
                f"reanalyzer: {signame} again: exiting now; the same command resumes",
                "job.exiting_now",
                "warning",
                signal=signame,
            )
            os._exit(int(ExitCode.INTERRUPTED))
        self.request_stop(signame, hint=" (again, a moment later, to exit at once)")

    def _check_budget(self) -> None:
        sink, sender = self._sink, self._sender
        if sink is None or sender is None or self.stopped_by is not None:
            return
        reason = self.budget.exceeded(
            sender.stats.requests, sink.sample_answered, sink.sample_failed
        )
        if reason is not None:
            self.request_stop(reason)

    def _start_window(self) -> asyncio.TimerHandle | None:
        """The --max-duration timer, from now until the last request is answered."""
        if self.settings.max_duration is None:
            return None
        window = self.settings.max_duration
        return asyncio.get_running_loop().call_later(
            window, self.request_stop, f"max-duration: {window:g} s"
        )

    async def _drain(self, sink: SendingSink, error: BaseException | None) -> bool:
        """Wait for the chunks the sink holds; a stop (now, or one that comes while waiting)
        gives those in flight STOP_DEADLINE seconds. False if that ran out."""
        if self.stopped_by or error:
            return await sink.drain(STOP_DEADLINE)
        draining = asyncio.ensure_future(sink.drain(None))
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({draining, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if draining.done():
            return draining.result()
        draining.cancel()  # (only the wait: the sink's tasks are left to the drain below)
        with contextlib.suppress(asyncio.CancelledError):
            await draining
        return await sink.drain(STOP_DEADLINE)

    async def _feed(self, sink: SendingSink, watermark: Watermark) -> bool:
        """Send the earlier failures again, then the input; True if all of it was read."""
        front = self._front_task = asyncio.create_task(self._front(sink, watermark))
        # A request that fails for good ends the run now, not when the front next hands over
        # a chunk: reading may wait on an idle pipe for ever.
        failed = asyncio.ensure_future(sink.failed.wait())
        try:
            await asyncio.wait({front, failed}, return_when=asyncio.FIRST_COMPLETED)
            if not front.done():
                front.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await front
                assert sink.error is not None
                raise sink.error  # as the front raises it when it hands over its next chunk
            await front
            return True
        except asyncio.CancelledError:
            if self.stopped_by is None:
                raise
            return False
        finally:
            failed.cancel()
            if not front.done():
                front.cancel()

    async def _front(self, sink: SendingSink, watermark: Watermark) -> None:
        if not self.reads_input:
            await self._send_failed(sink)
            return
        start = self.state.start
        blocks = blocks_of(self.settings, self.paths, start, self.job_dir / jobdir.STDIN_SPOOL)
        # The failed records of earlier runs go again beside the inputs' lines. Their task runs
        # only once the front has forked its reader (run_front does so before it first waits):
        # a request can start a resolver thread, and a process with threads reads in a thread.
        retries = asyncio.create_task(self._send_failed(sink))
        try:
            await run_front(
                blocks,
                sink,
                self.settings.batch_size,
                dedupe=self.settings.dedupe,
                idle_flush=self.settings.idle_flush,
                stats=self.stats,
                seen_from=self.state.seen_from,
                dedupe_memory=self.settings.dedupe_memory_bytes,
                watermark=watermark,
                skip_below=start.position if start.offset is None else 0,
                shard=self.settings.resolved_shard,
                batch_size_now=self._batch_size_now,
                input_bytes=sum(self._sizes) if self._sizes else None,
            )
            await retries
        finally:
            if not retries.done():
                retries.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await retries
        watermark.finish(len(self.paths))

    def _batch_size_now(self) -> int:
        """The batch size to cut chunks at: the setting, or the largest the appliance takes."""
        largest = self._sender.health.batch_to_cut("reanalyze") if self._sender else None
        return min(self.settings.batch_size, largest or self.settings.batch_size)

    async def _send_failed(self, sink: SendingSink) -> None:
        for chunk in self.state.failed_chunks(self.settings.batch_size):
            await sink.retry(chunk)

    def _keep_mark(self, sink: SendingSink) -> None:
        """A retry's checkpoint: the job's mark as it was, with the count of what is still
        failed (each line sent again that got no other outcome, a stopped retry's unsent ones
        included)."""
        sink.journal.sync()
        sink.write_counts(final=True)
        checkpoint = read_checkpoint(self.job_dir)
        self._input_left = checkpoint is None or not checkpoint.complete
        if checkpoint is None:
            return
        # From the log: the lines sent again need not all have been failed (not_configured).
        still_failed = count_final(self.job_dir / OUTCOMES_FILE, Status.FAILED)
        write_checkpoint(self.job_dir, dataclasses.replace(checkpoint, failed=still_failed))

    def _ending(self, finished: bool, error: BaseException | None) -> Ending:
        # A job reading stdin has its spool: the same command would start another job.
        stdin = (self.job_dir / jobdir.STDIN_SPOOL).exists()
        return Ending(
            self.command,
            finished,
            self.stopped_by,
            error,
            self._input_left,
            stdin=stdin,
            url=self.settings.url,
        )

    def _summarize(
        self,
        sink: SendingSink,
        sender_stats: SenderStats,
        finished: bool,
        error: BaseException | None,
    ) -> None:
        ending = self._ending(finished, error)
        summary = build_summary(
            ending=ending,
            job_dir=self.job_dir,
            elapsed=time.monotonic() - self.started,
            counts=sink.counts,
            by_type=sink.by_type,
            # Lines an earlier run gave a final outcome, not sent again (a line, not a record:
            # a failed record another one superseded is not counted).
            already_recorded=self.state.done_below + sink.skipped_done,
            requests=sender_stats.requests,
            retries=sender_stats.retries,
            throttled=sender_stats.throttled,
            status_requests=sender_stats.status_requests,
            unremembered=self.stats.unremembered,
        )
        try:
            jobdir.write_summary(self.job_dir, summary)
        except OSError as exc:
            log.warning("job.summary_not_written", error=str(exc))
        if self.watch is not None:
            self.watch.summary = summary
        say(summary_text(summary), "job.finished", **summary)
