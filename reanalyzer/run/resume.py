"""What a resumed run must know about the job so far, read from its checkpoint and outcome log.

Below the checkpoint's mark every record is in the log: nothing there is read again, except the
hashes whose final outcome is ``failed`` (sent again) and, for dedupe, every hash recorded. Above
the mark the input is read again, and the lines the log already gives a final outcome are
skipped. A finished job with nothing failed is recognised from the checkpoint alone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from reanalyzer.core.hashes import HashType
from reanalyzer.core.outcomes import Status
from reanalyzer.core.positions import ResumePoint, position
from reanalyzer.read.batching import Chunk
from reanalyzer.record.checkpoint import Checkpoint, read_checkpoint
from reanalyzer.record.final import final_records, scan_log
from reanalyzer.record.outcome_log import OUTCOMES_FILE, numbered_records

_FAILED = Status.FAILED.value
_SEEN_BATCH = 10_000  # hashes of one length handed to the dedupe set at once: few MB of text


@dataclass(slots=True)
class ResumeState:
    """Where to start reading, what is already done above it, and what to send again."""

    start: ResumePoint = field(default_factory=lambda: ResumePoint(0, 1, 0))
    complete: bool = False  # the checkpoint says all input is read and recorded
    done_above: set[int] = field(default_factory=set)  # positions >= start with a final outcome
    failed_below: dict[int, tuple[HashType, str]] = field(default_factory=dict)  # to send again
    # Every hash recorded below start, when dedupe is on: a reader of them for the process that
    # holds the dedupe set (the reading child), so that the set is built in that one only.
    seen_from: Callable[[], Iterator[list[str]]] | None = None
    records: int = 0  # records in the log, superseded ones included
    done_below: int = 0  # lines below start with a final outcome other than failed
    hashed: int = 0  # lines whose final record is of a hash (not of an invalid line)

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
    def nothing_to_do(self) -> bool:
        return self.complete and not self.failed_below and not self.done_above


def load_resume_state(job_dir: Path, sources: Sequence[str], dedupe: bool) -> ResumeState:
    checkpoint = read_checkpoint(job_dir)
    if checkpoint is not None and checkpoint.complete and checkpoint.failed == 0:
        return ResumeState(checkpoint.resume_point, complete=True)  # no need to read the log
    return _scan_log(job_dir / OUTCOMES_FILE, checkpoint, sources, dedupe)


def _scan_log(
    path: Path, checkpoint: Checkpoint | None, sources: Sequence[str], dedupe: bool
) -> ResumeState:
    state = ResumeState(checkpoint.resume_point if checkpoint else ResumePoint(0, 1, 0))
    state.complete = bool(checkpoint and checkpoint.complete)
    mark = state.start.position
    index_of = {name: i for i, name in enumerate(sources)}
    scan = scan_log(path)
    state.records = scan.records
    for record in final_records(path, scan):
        if record["hash"] is not None:
            state.hashed += 1
        source_index = index_of.get(record["source"])
        if source_index is None:
            continue  # job.json guarantees the same inputs; a foreign record changes nothing
        pos = position(source_index, record["line"])
        failed = record["status"] == _FAILED
        if pos >= mark:
            if not failed:
                state.done_above.add(pos)
            continue
        value = record["hash"]
        if failed:
            state.failed_below[pos] = (HashType(record["hash_type"]), value)
        else:
            state.done_below += 1
    if dedupe:
        state.seen_from = partial(recorded_hashes, path, sources, mark, scan.records)
    return state


def recorded_hashes(path: Path, sources: Sequence[str], mark: int,
                    records: int) -> Iterator[list[str]]:
    """The hashes the log's first `records` records hold below the mark (those a resumed run
    does not read again), a list of one length at a time, for the dedupe set. A superseded
    record holds the same line, so the same hash; a duplicate's hash is another line's."""
    index_of = {name: i for i, name in enumerate(sources)}
    pending: defaultdict[int, list[str]] = defaultdict(list)  # by hash length
    for _, record in numbered_records(path, stop=records):
        value = record["hash"]
        if value is None or record["status"] == Status.DUPLICATE:
            continue
        source_index = index_of.get(record["source"])
        if source_index is None or position(source_index, record["line"]) >= mark:
            continue
        bucket = pending[len(value)]
        bucket.append(value)
        if len(bucket) >= _SEEN_BATCH:
            yield bucket
            pending[len(value)] = []
    yield from (bucket for bucket in pending.values() if bucket)
