"""What a resumed run must know about the job so far, read from its checkpoint and outcome log.

Below the checkpoint's mark every record is in the log: nothing there is read again, except the
hashes whose final outcome is ``failed`` (sent again) and, for dedupe, every hash recorded. Above
the mark the input is read again, and the lines the log already gives a final outcome are
skipped. A finished job with nothing failed is recognised from the checkpoint alone.

Reading the log of a big job takes seconds: the resume says so at once (how much there is to
read, about how long it takes), then how far it got every second. What it reads it also counts,
the final outcomes by status and type, from which the run keeps ``counts.json`` current.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from reanalyzer.core.hashes import HashType
from reanalyzer.core.outcomes import Status
from reanalyzer.core.positions import ResumePoint, position
from reanalyzer.read.batching import Chunk
from reanalyzer.record import segments
from reanalyzer.record.checkpoint import Checkpoint, read_checkpoint
from reanalyzer.record.counts import read_counts
from reanalyzer.record.final import final_lines, scan_log
from reanalyzer.record.outcome_log import OUTCOMES_FILE, stored_lines
from reanalyzer.run.logs import say

_FAILED = Status.FAILED.value
_SEEN_BATCH = 10_000  # hashes of one length handed to the dedupe set at once: few MB of text


@dataclass(slots=True)
class ResumeState:
    """Where to start reading, what is already done above it, and what to send again."""

    start: ResumePoint = field(default_factory=lambda: ResumePoint(0, 1, 0))
    complete: bool = False  # the checkpoint says all input is read and recorded
    done_above: set[int] = field(default_factory=set)  # positions >= start with a final outcome
    failed_above: set[int] = field(default_factory=set)  # positions >= start recorded failed
    failed_below: dict[int, tuple[HashType, str]] = field(default_factory=dict)  # to send again
    # Every hash recorded below start, when dedupe is on: a reader of them for the process that
    # holds the dedupe set (the reading child), so that the set is built in that one only.
    seen_from: Callable[[], Iterator[list[str]]] | None = None
    records: int = 0  # records in the log, superseded ones included
    done_below: int = 0  # lines below start with a final outcome other than failed
    hashed: int = 0  # lines whose final record is of a hash (not of an invalid line)
    # The final outcomes in the log, by status and by hash type; None: not known (a finished
    # job recognised from its checkpoint, whose counts.json is missing).
    by_status: Counter[str] | None = field(default_factory=Counter)
    by_type: Counter[str] | None = field(default_factory=Counter)
    last_record_at: str | None = None

    def failed_chunks(self, batch_size: int) -> Iterator[Chunk]:
        """The lines recorded `failed` below the mark, in input order, as chunks of one hash
        type each, to be sent again."""
        by_type: dict[HashType, list[tuple[str, int]]] = {}
        for pos, (hash_type, value) in sorted(self.failed_below.items()):
            by_type.setdefault(hash_type, []).append((value, pos))
        for hash_type, items in by_type.items():
            for i in range(0, len(items), batch_size):
                part = items[i : i + batch_size]
                yield Chunk(hash_type, tuple(v for v, _ in part), tuple(p for _, p in part))

    @property
    def retrying(self) -> int:
        """The lines recorded failed that this run sends again, on either side of the mark."""
        return len(self.failed_below) + len(self.failed_above)

    @property
    def nothing_to_do(self) -> bool:
        return self.complete and not self.failed_below and not self.done_above


def load_resume_state(job_dir: Path, sources: Sequence[str], dedupe: bool) -> ResumeState:
    checkpoint = read_checkpoint(job_dir)
    if checkpoint is not None and checkpoint.complete and checkpoint.failed == 0:
        state = ResumeState(checkpoint.resume_point, complete=True)  # no need to read the log
        counts = read_counts(job_dir)
        if counts is None:
            state.by_status = state.by_type = None
        else:
            state.records = counts.records
            state.by_status, state.by_type = Counter(counts.by_status), Counter(counts.by_hash_type)
            state.last_record_at = counts.last_record_at
        return state
    return _scan_log(job_dir / OUTCOMES_FILE, checkpoint, sources, dedupe)


# How fast a log is read, to say how long it will take before it is read (bench.py archive):
# bytes a second of compressed segments (their details are not read) and of plain ones.
_COMPRESSED_BYTES_PER_S = 15e6
_PLAIN_BYTES_PER_S = 100e6


class _Talker:
    """Says what the resume is reading, then how far it got, at most every `interval` s."""

    def __init__(self, path: Path, interval: float = 1.0) -> None:
        found = segments.segments(path)
        self.sizes = [_size(seg.path) for seg in found]
        self.compressed = sum(
            size for size, seg in zip(self.sizes, found, strict=True) if seg.compressed
        )
        self.total = sum(self.sizes)
        self.interval = interval
        self.started = time.monotonic()
        self.last = self.started
        self.passes = 1

    def start(self) -> None:
        expected = (
            self.compressed / _COMPRESSED_BYTES_PER_S
            + (self.total - self.compressed) / _PLAIN_BYTES_PER_S
        )
        say(
            f"reanalyzer: resuming: reading the outcome log ({self.total / 1e6:,.1f} MB in "
            f"{len(self.sizes)} segment{'s' if len(self.sizes) != 1 else ''}) to see what is "
            f"done; about {max(expected, 0.1):,.1f} s",
            "job.resume_reading",
            bytes=self.total,
            segments=len(self.sizes),
            expected_s=round(expected, 1),
        )

    def segment_read(self, done: int, count: int) -> None:
        now = time.monotonic()
        if now - self.last < self.interval or count != len(self.sizes):
            return
        self.last = now
        # Read twice (pass one counts, pass two reads the finals): the second pass's share.
        share = ((self.passes - 1) * self.total + sum(self.sizes[:done])) / (2 * self.total)
        elapsed = now - self.started
        eta = elapsed * (1 - share) / share if share > 0 else None
        say(
            f"reanalyzer: resuming: {share:.0%} of the outcome log read in {elapsed:,.1f} s"
            + (f", about {eta:,.1f} s to go" if eta is not None else ""),
            "job.resume_progress",
            percent=round(100 * share, 1),
            elapsed_s=round(elapsed, 1),
            eta_s=None if eta is None else round(eta, 1),
        )

    def second_pass(self) -> None:
        self.passes = 2


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _scan_log(
    path: Path, checkpoint: Checkpoint | None, sources: Sequence[str], dedupe: bool
) -> ResumeState:
    state = ResumeState(checkpoint.resume_point if checkpoint else ResumePoint(0, 1, 0))
    state.complete = bool(checkpoint and checkpoint.complete)
    mark = state.start.position
    index_of = {name: i for i, name in enumerate(sources)}
    talker = _Talker(path)
    if talker.total:
        talker.start()
    scan = scan_log(path, on_segment=talker.segment_read)
    talker.second_pass()
    state.records = scan.records
    by_status: Counter[str] = Counter()
    by_type: Counter[str] = Counter()
    last_ts: str | None = None
    done_above, failed_below = state.done_above, state.failed_below
    failed_above = state.failed_above
    for line, _, keep in final_lines(path, scan, on_segment=talker.segment_read):
        status, failed = line.status, line.status == _FAILED
        hash_type = line.hash_type
        values, numbers = line.hash_list(), line.line_list()
        kept = len(numbers) if keep is None else sum(keep)
        by_status[status] += kept
        by_type[hash_type or "none"] += kept
        last_ts = line.ts if line.ts is not None else last_ts
        if hash_type is not None:
            state.hashed += kept
        source_index = index_of.get(line.source)
        if source_index is None:
            continue  # job.json guarantees the same inputs; a foreign record changes nothing
        base = position(source_index, 0)
        for i, (value, number) in enumerate(zip(values, numbers, strict=True)):
            if keep is not None and not keep[i]:
                continue
            pos = base | number
            if pos >= mark:
                (failed_above if failed else done_above).add(pos)
                continue
            if failed:
                if hash_type is not None and value is not None:  # (failed: always a hash)
                    failed_below[pos] = (HashType(hash_type), value)
            else:
                state.done_below += 1
    if dedupe:  # built by the reading child (read/front.py), not here: held once
        state.seen_from = partial(recorded_hashes, path, sources, mark, scan.records)
    state.by_status, state.by_type, state.last_record_at = by_status, by_type, last_ts
    return state


def recorded_hashes(
    path: Path, sources: Sequence[str], mark: int, records: int
) -> Iterator[list[str]]:
    """The hashes the log's first `records` records hold below the mark (those a resumed run
    does not read again), a list of one length at a time, for the dedupe set. A superseded
    record holds the same line, so the same hash; a duplicate's hash is another line's."""
    index_of = {name: i for i, name in enumerate(sources)}
    pending: defaultdict[int, list[str]] = defaultdict(list)  # by hash length
    left = records
    # Stored lines, not records: a line's hashes and line numbers side by side, no dict each.
    lines = stored_lines(path) if records > 0 else iter(())
    for line, _ in lines:
        hashes, numbers = line.hash_list(), line.line_list()
        if len(hashes) > left:
            hashes, numbers = hashes[:left], numbers[:left]
        left -= len(hashes)
        source_index = index_of.get(line.source)
        if line.status != Status.DUPLICATE and source_index is not None and hashes:
            _note(hashes, numbers, position(source_index, 0), mark, pending)
            for length, bucket in list(pending.items()):
                if len(bucket) >= _SEEN_BATCH:
                    yield bucket
                    pending[length] = []
        if left <= 0:
            break  # before reading on: what follows is not this reader's to judge
    yield from (bucket for bucket in pending.values() if bucket)


def _note(
    hashes: list[str | None],
    numbers: list[int],
    base: int,
    mark: int,
    pending: defaultdict[int, list[str]],
) -> None:
    """The hashes of one stored line below the mark, into `pending` by length."""
    if base + max(numbers) < mark:  # the whole line is below it: most lines
        for value in hashes:
            if value is not None:
                pending[len(value)].append(value)
        return
    for value, number in zip(hashes, numbers, strict=True):
        if value is not None and base + number < mark:
            pending[len(value)].append(value)
