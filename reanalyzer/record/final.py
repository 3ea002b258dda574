"""The final outcome of each input line, read from an outcome log: the one place of the rule.

The final outcome of a line is its last record, and only ``failed`` and ``not_configured``
records are ever superseded (by a later run, or ``retry``, that sent them again). Streaming
readers (``final_records``) read the log twice, never holding it: pass one (``scan_log``) notes
where each line that was ever recorded so has its last record, pass two yields every record
that is not superseded, in log order. Memory grows with the number of such lines only, and the
log may keep growing under a running job: pass two stops at the records pass one counted.
``load_finals`` reads the log once into columns, for ``report``, which writes the lines in input
order. ``resume``,
``report``, ``status`` and ``retry`` all read final outcomes through here.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reanalyzer.core.outcomes import Status
from reanalyzer.record.outcome_log import (
    Damaged,
    Entries,
    SegmentRead,
    Stored,
    line_records,
    stored_lines,
)

Key = tuple[str, int]  # (source, line): an input line
# The statuses a later record of the same line may supersede: `failed` (a run sends it again)
# and `not_configured` (`retry --status not_configured` does, once the appliance is set up).
SUPERSEDABLE = frozenset({Status.FAILED.value, Status.NOT_CONFIGURED.value})


@dataclass(frozen=True, slots=True)
class LogScan:
    """Pass one over an outcome log."""

    records: int  # whole records the log held when scanned: pass two reads no further
    last_index: dict[Key, int]  # each line ever recorded supersedable: the index of its last one


def scan_log(path: Path, on_segment: SegmentRead | None = None) -> LogScan:
    """Count the log's records and find the last record of every line that ever failed."""
    last_index: dict[Key, int] = {}
    count = 0
    for line, _ in stored_lines(
        path,
        damaged=_ignore,  # pass two tells of damaged lines
        on_segment=on_segment,
    ):
        if last_index or line.status in SUPERSEDABLE:
            source = line.source
            failed = line.status in SUPERSEDABLE
            for i, number in enumerate(line.line_list()):
                key = (source, number)
                if failed or key in last_index:
                    last_index[key] = count + i
        count += line.count
    return LogScan(count, last_index)


def _ignore(_path: str, _line: int) -> None:
    return None


def final_lines(
    path: Path,
    scan: LogScan,
    damaged: Damaged | None = None,
    details: bool = False,
    on_segment: SegmentRead | None = None,
) -> Iterator[tuple[Stored, Entries, list[bool] | None]]:
    """Pass two: every stored line of the log up to the records `scan` counted, with which of
    its records are final (None: all of them)."""
    last_index = scan.last_index
    index = 0
    if scan.records == 0:
        return
    for line, entries in stored_lines(path, damaged, details, on_segment):
        count = line.count
        if index + count > scan.records:  # written after the scan: not this reader's
            keep = [i < scan.records - index for i in range(count)]
        else:
            keep = None
        if last_index:
            source = line.source
            keep = [
                (keep is None or keep[i]) and last_index.get((source, n), index + i) == index + i
                for i, n in enumerate(line.line_list())
            ]
        if keep is None or any(keep):
            yield line, entries, keep
        index += count
        if index >= scan.records:  # before reading on: what follows is not this reader's
            return


def final_records(
    path: Path, scan: LogScan | None = None, damaged: Damaged | None = None, details: bool = True
) -> Iterator[dict[str, Any]]:
    """The final record of every input line, in log order (pass two; runs pass one if needed).
    A line that is not a record raises JobError naming it, or is told to `damaged` and read
    past (see `outcome_log.numbered_records`). Without `details`, each detail is left empty."""
    scan = scan or scan_log(path)
    for line, entries, keep in final_lines(path, scan, damaged, details):
        records = line_records(line, entries)
        if keep is None:
            yield from records
        else:
            yield from (rec for rec, kept in zip(records, keep, strict=True) if kept)


def count_final(path: Path, status: Status) -> int:
    """How many input lines have `status` as their final outcome."""
    return sum(1 for rec in final_records(path) if rec["status"] == status)


@dataclass(slots=True)
class Finals:
    """The final records of a log, read at once into columns: its stored lines, and per record
    of the log (in log order) its hash, line number and the stored line it is in; `order` is
    the final records' indexes in input order."""

    lines: list[Stored] = field(default_factory=list)
    entries: list[Entries] = field(default_factory=list)
    hashes: list[str | None] = field(default_factory=list)
    numbers: list[int] = field(default_factory=list)
    line_of: list[int] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)  # per stored line: its first record's index
    order: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.order)

    def records(self) -> Iterator[dict[str, Any]]:
        """The final records, whole, in input order."""
        # Lines of a few requests interleave in input order: keep the last ones restored.
        restored: OrderedDict[int, list[dict[str, Any]]] = OrderedDict()
        line_of, starts = self.line_of, self.starts
        for index in self.order:
            at = line_of[index]
            records = restored.get(at)
            if records is None:
                records = restored[at] = line_records(self.lines[at], self.entries[at])
                if len(restored) > 256:
                    restored.popitem(last=False)
            yield records[index - starts[at]]


def load_finals(
    path: Path,
    damaged: Damaged | None = None,
    details: bool = False,
    statuses: frozenset[str] | None = None,
) -> Finals:
    """Every final record of a log (of `statuses` only, if given), in input order: by input
    (in the order they first appear in the log, which is the job's), then line."""
    finals = Finals()
    lines, entries = finals.lines, finals.entries
    hashes, numbers, line_of = finals.hashes, finals.numbers, finals.line_of
    sources: dict[str, int] = {}
    source_of: list[int] = []  # per stored line
    for at, (line, extra) in enumerate(stored_lines(path, damaged, details, whole=True)):
        lines.append(line)
        entries.append(extra)
        finals.starts.append(len(numbers))
        hashes.extend(line.hash_list())
        numbers.extend(line.line_list())
        line_of.extend([at] * line.count)
        source_of.append(sources.setdefault(line.source, len(sources)))
    keep: list[int] | range = range(len(numbers))
    wanted = statuses
    if any(line.status in SUPERSEDABLE for line in lines):
        # Which records a later one supersedes: only lines once failed (or not_configured).
        ever = {
            (source_of[line_of[r]], numbers[r])
            for r in range(len(numbers))
            if lines[line_of[r]].status in SUPERSEDABLE
        }
        last: dict[tuple[int, int], int] = {}
        for r, n in enumerate(numbers):
            key = (source_of[line_of[r]], n)
            if key in ever:
                last[key] = r
        superseded = set(range(len(numbers))) - set(last.values())
        superseded = {r for r in superseded if (source_of[line_of[r]], numbers[r]) in ever}
        keep = [r for r in keep if r not in superseded]
    if wanted is not None:
        status_of = [line.status in wanted for line in lines]
        keep = [r for r in keep if status_of[line_of[r]]]
    if len(sources) == 1:
        position = numbers
    else:
        position = [(source_of[at] << 40) | n for at, n in zip(line_of, numbers, strict=True)]
    # The log is written about in input order (requests of one type interleave): fast.
    finals.order = sorted(keep, key=position.__getitem__)
    return finals
