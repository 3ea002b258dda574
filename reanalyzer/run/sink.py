"""Stage 5-6: send chunks concurrently and record every outcome, keeping the checkpoint current.

``SendingSink`` is the front's sink in a real run. It keeps at most ``window`` chunks in flight
(backpressure on the front), writes one batch of records per answer, tells the ``Watermark``
which lines are recorded, and writes the checkpoint at most every ``checkpoint_interval``
seconds, after fsyncing the log, so the checkpoint never claims what the disk does not hold.
With each checkpoint it writes ``counts.json`` (``CountsKeeper``): the job's final outcomes
counted, the log's before this run (``ResumeState``) plus what this run recorded.

A little over 300 lines for one concern: every way a chunk's lines reach the log (answered,
invalid, duplicate, a retry, a stop) is counted for the summary, the failure-rate sample and
``counts.json`` in the one place that writes them, so that the three cannot disagree.
"""

from __future__ import annotations

import asyncio
import itertools
import operator
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import structlog

from reanalyzer.core import failpoints
from reanalyzer.core.outcomes import Status, Verdict, Verdicts
from reanalyzer.core.positions import LINE_MASK, SOURCE_SHIFT, unpack_position
from reanalyzer.core.watermark import Watermark
from reanalyzer.errors import SendingStopped
from reanalyzer.read.batching import Chunk
from reanalyzer.read.front import LocalOutcomes
from reanalyzer.record.checkpoint import Checkpoint, write_checkpoint
from reanalyzer.record.counts import write_counts
from reanalyzer.record.jobdir import write_learned_batch
from reanalyzer.record.outcome_log import OutcomeLog, encode_record, encode_verdicts, utc_now
from reanalyzer.run.counts import CountsKeeper
from reanalyzer.run.logs import say
from reanalyzer.send.sender import Sender
from reanalyzer.send.slots import Slots

log = structlog.get_logger("reanalyzer.run.sink")

CHECKPOINT_INTERVAL = 1.0
_NOT_HELD = Verdict(
    Status.NOT_FOUND, attempts=1, reason="not on the appliance (status pre-check); not queued"
)
_status_of = operator.attrgetter("status")
log = structlog.get_logger("reanalyzer.run.sink")


class SendingSink:
    """Sends chunks (at most a window of them at once) and records every outcome."""

    def __init__(
        self,
        sender: Sender,
        journal: OutcomeLog,
        sources: list[str],
        *,
        window: int,
        job_dir: Path,
        watermark: Watermark,
        done_above: set[int] | None = None,
        checkpoint_interval: float = CHECKPOINT_INTERVAL,
        failure_sample: int = 1000,
        on_recorded: Callable[[], None] | None = None,
        precheck: bool = False,
        counts: CountsKeeper | None = None,
    ) -> None:
        self.sender = sender
        self.journal = journal
        self.sources = sources
        self.job_dir = job_dir
        self.watermark = watermark
        self.done_above = done_above or set()
        self.checkpoint_interval = checkpoint_interval
        self.counts: Counter[Status] = Counter()
        self.by_type: Counter[str] = Counter()  # records of a hash per type (invalid: none)
        self.skipped_done = 0  # lines an earlier run already recorded
        # The first `failure_sample` hashes sent (in the order sent, not the order their
        # outcomes come: failures come last, after their retries), for the failure-rate guard.
        self.failure_sample = failure_sample
        self.sample_sent = 0
        self.sample_answered = 0
        self.sample_failed = 0
        self.unsent = 0  # hashes of chunks not sent because the run was stopping
        self.on_recorded = on_recorded
        self.error: BaseException | None = None
        # Set with `error`: the run stops reading at once, even while its input is idle.
        self.failed = asyncio.Event()
        self.precheck = precheck
        self.keeper = counts
        self.last_ts: str | None = None
        self._batches = 0
        self._told_not_configured = False
        self._window = Slots(window)  # resizable: the operator may change concurrency live
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_checkpoint = time.monotonic()
        self._learned_batch: int | None = None  # as last written to the job directory

    def resize_window(self, window: int) -> None:
        """At most `window` chunks in flight from now on (a live change of concurrency)."""
        self._window.resize(window)

    # --- the front's sink -------------------------------------------------------------------

    async def settled(self, outcomes: LocalOutcomes) -> None:
        ts = self.last_ts = utc_now()
        lines = []
        for pos, reason in outcomes.invalid:
            if self._fresh(pos):
                source, line = self._ref(pos)
                lines.append(
                    encode_record(
                        hash_value=None,
                        hash_type=None,
                        status=Status.INVALID,
                        source=source,
                        line=line,
                        ts=ts,
                        reason=reason,
                    )
                )
        invalid = len(lines)
        by_type: Counter[str] = Counter()
        for hash_type, value, pos in outcomes.duplicates:
            if self._fresh(pos):
                if self.keeper is not None:
                    self.keeper.superseding([pos], hash_type.value)
                source, line = self._ref(pos)
                lines.append(
                    encode_record(
                        hash_value=value,
                        hash_type=hash_type.value,
                        status=Status.DUPLICATE,
                        source=source,
                        line=line,
                        ts=ts,
                        reason="seen earlier in this job",
                    )
                )
                by_type[hash_type.value] += 1
        self.journal.write_lines(lines)
        self.counts[Status.INVALID] += invalid  # counted once written, as below
        self.counts[Status.DUPLICATE] += len(lines) - invalid
        self.by_type.update(by_type)

    async def chunk(self, chunk: Chunk) -> None:
        """Send a chunk of the input (its lines are tracked by the watermark)."""
        if self.done_above:
            done = [pos for pos in chunk.positions if pos in self.done_above]
            if done:
                self.skipped_done += len(done)
                self.watermark.recorded(done)
                keep = [i for i, pos in enumerate(chunk.positions) if pos not in self.done_above]
                if not keep:
                    return
                chunk = Chunk(
                    chunk.hash_type,
                    tuple(chunk.hashes[i] for i in keep),
                    tuple(chunk.positions[i] for i in keep),
                )
        await self._start(chunk, tracked=True)

    async def retry(self, chunk: Chunk) -> None:
        """Send again hashes recorded `failed` below the watermark (not tracked by it)."""
        await self._start(chunk, tracked=False)

    # --- sending and recording --------------------------------------------------------------

    async def _start(self, chunk: Chunk, tracked: bool) -> None:
        if self.error is not None:
            raise self.error
        await self._window.acquire()
        task = asyncio.create_task(self._send(chunk, tracked))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answers(self, chunk: Chunk) -> Mapping[str, Verdict]:
        """The appliance's verdict on every hash of a chunk; with the pre-check, hashes the
        appliance does not hold are `not_found` without being queued."""
        if not self.precheck:
            return await self.sender.send(chunk.hash_type, chunk.hashes)
        held = await self.sender.precheck(chunk.hash_type, chunk.hashes)
        verdicts = Verdicts({h: _NOT_HELD for h in chunk.hashes if h not in held})
        to_send = [h for h in chunk.hashes if h in held]
        if to_send:
            verdicts.update(await self.sender.send(chunk.hash_type, to_send))
        return verdicts

    async def _send(self, chunk: Chunk, tracked: bool) -> None:
        # Every log event of this request names its batch, whatever task logs it.
        self._batches += 1
        structlog.contextvars.bind_contextvars(batch_id=self._batches)
        in_sample = min(len(chunk.hashes), self.failure_sample - self.sample_sent)
        in_sample = max(in_sample, 0)  # the first hashes of this chunk that are in the sample
        self.sample_sent += in_sample
        try:
            verdicts = await self._answers(chunk)
            failpoints.hit("sender.after_response")
            lines, counted = self._chunk_lines(chunk, verdicts)
            if in_sample:
                self.sample_answered += in_sample
                self.sample_failed += (
                    counted[Status.FAILED]
                    if in_sample == len(chunk.hashes)
                    else _failed_among(verdicts, chunk.hashes[:in_sample])
                )
            self.journal.write_lines(lines)
            # Counted once written: a summary after a full disk claims only what the log holds.
            self.counts.update(counted)
            if counted[Status.NOT_CONFIGURED] and not self._told_not_configured:
                self._tell_not_configured(verdicts)
            recorded = len(chunk.hashes)  # (a log line holds the records of one verdict)
            self.by_type[chunk.hash_type.value] += recorded
            if self.keeper is not None:
                self.keeper.recorded(chunk.positions, chunk.hash_type.value, tracked)
            if tracked:
                self.watermark.recorded(chunk.positions)
            self.maybe_checkpoint()
            if self.on_recorded is not None:
                self.on_recorded()
        except asyncio.CancelledError:
            raise
        except SendingStopped:
            self.unsent += len(chunk.hashes)  # not recorded: the resume sends them
            # The sender's own cap on requests may be what stopped it (a budget spent on
            # requests that never settled anything): the run must learn so and stop for it.
            if self.on_recorded is not None:
                self.on_recorded()
        except BaseException as exc:  # the first error stops the job; the front sees it
            if self.error is None:
                self.error = exc
                self.failed.set()
        finally:
            self._window.release()

    def _tell_not_configured(self, verdicts: Mapping[str, Verdict]) -> None:
        """Once a run: the appliance refuses an analysis for its configuration, not a sample's;
        every hash sent will be refused alike until it is set up."""
        self._told_not_configured = True
        reason = next(
            (v.reason for v in verdicts.values() if v.status is Status.NOT_CONFIGURED), None
        )
        say(
            f"reanalyzer: the appliance refuses the analyses asked for its configuration, not "
            f"the samples ({reason}): they are recorded not_configured; set the appliance up "
            f"(or change --analysis), then `reanalyzer retry {self.job_dir} --status "
            "not_configured`",
            "job.not_configured",
            "warning",
            reason=reason,
        )

    def _chunk_lines(
        self, chunk: Chunk, verdicts: Mapping[str, Verdict]
    ) -> tuple[list[str], Counter[Status]]:
        """The encoded records of a chunk's hashes, and how many have each status."""
        hashes = chunk.hashes
        aligned = verdicts.aligned_with(hashes) if isinstance(verdicts, Verdicts) else None
        if aligned is not None:  # one answer, in the order sent: the usual case
            ordered, own = aligned
        else:
            if isinstance(verdicts, Verdicts):  # shared verdicts, each hash's detail beside them
                shared, details = verdicts.shared, verdicts.details
            else:
                shared, details = dict(verdicts), {}
            no_answer = Verdict(Status.FAILED, reason="no answer for it")
            # map runs in C; `None in` a list of Verdicts would call their Python __eq__ per item.
            ordered = list(map(shared.get, hashes, itertools.repeat(no_answer, len(hashes))))
            own = [details.get(h) or v.detail for h, v in zip(hashes, ordered, strict=True)]
        positions = chunk.positions
        if positions[0] >> SOURCE_SHIFT == positions[-1] >> SOURCE_SHIFT:  # the usual case
            sources: Sequence[str] = [self.sources[positions[0] >> SOURCE_SHIFT]] * len(positions)
        else:
            sources = [self.sources[pos >> SOURCE_SHIFT] for pos in positions]
        lines = [pos & LINE_MASK for pos in positions]
        if ordered.count(ordered[0]) == len(ordered):  # one verdict for all: the usual case
            counted = Counter({ordered[0].status: len(ordered)})
        else:
            counted = Counter(map(_status_of, ordered))
        self.last_ts = ts = utc_now()
        encoded = encode_verdicts(chunk.hash_type.value, hashes, sources, lines, ordered, ts, own)
        return encoded, counted

    def _ref(self, pos: int) -> tuple[str, int]:
        source_index, line = unpack_position(pos)
        return self.sources[source_index], line

    def _fresh(self, pos: int) -> bool:
        """False for a line an earlier run already gave a final outcome: nothing to do."""
        if self.done_above and pos in self.done_above:
            self.skipped_done += 1
            return False
        return True

    # --- the checkpoint and the end ---------------------------------------------------------

    def maybe_checkpoint(self) -> None:
        if time.monotonic() - self._last_checkpoint >= self.checkpoint_interval:
            self.checkpoint()

    def checkpoint(self, final: bool = False) -> None:
        self.journal.sync()
        mark = self.watermark.mark
        write_checkpoint(
            self.job_dir,
            Checkpoint(
                source_index=mark.source_index,
                line=mark.line,
                offset=mark.offset,
                complete=self.watermark.complete and not self._tasks,
                failed=self.counts[Status.FAILED],
            ),
        )
        self.write_counts(final)
        self._last_checkpoint = time.monotonic()
        learned = self.sender.health.learned("reanalyze")
        if learned is not None and learned != self._learned_batch:
            log.info("job.batch_learned", max_batch=learned)
            try:
                write_learned_batch(self.job_dir, learned)
            except OSError as exc:  # a hint for resumes: the job goes on without it
                log.warning("job.learned_not_written", error=str(exc))
            self._learned_batch = learned

    def write_counts(self, final: bool) -> None:
        """Replace counts.json (after the log's fsync); a failure only costs `status` speed."""
        counts = (
            None
            if self.keeper is None
            else self.keeper.counts(self.counts, self.by_type, self.last_ts, final)
        )
        if counts is None:
            return
        try:
            write_counts(self.job_dir, counts)
        except OSError as exc:
            log.warning("job.counts_not_written", error=str(exc))

    async def drain(self, deadline: float | None = None) -> bool:
        """Wait for the chunks in flight; False if the deadline (seconds) ran out first."""
        if not self._tasks:
            return True
        _, pending = await asyncio.wait(set(self._tasks), timeout=deadline)
        if not pending:
            return True
        for task in pending:
            task.cancel()
        await asyncio.wait(pending)
        return False


def _failed_among(verdicts: Mapping[str, Verdict], hashes: Sequence[str]) -> int:
    """How many of `hashes` got `failed` (one without a verdict counts as failed, as recorded)."""
    return sum(1 for h in hashes if (v := verdicts.get(h)) is None or v.status is Status.FAILED)
