"""The final outcome of each input line, read from an outcome log: the one place of the rule.

The final outcome of a line is its last record, and only ``failed`` records are ever superseded
(by a later run that retried them). Streaming readers (``final_records``) read the log twice,
never holding it: pass one (``scan_log``) notes where each line that was ever recorded
``failed`` has its last record, pass two yields every record that is not superseded, in log
order. Memory grows with the number of ``failed`` lines only, and the log may keep growing
under a running job: pass two stops at the records pass one counted. ``load_finals`` reads the
log once into columns, for ``report``, which writes the lines in input order. ``resume``,
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
_FAILED = Status.FAILED.value


@dataclass(frozen=True, slots=True)
class LogScan:
    """Pass one over an outcome log."""

    records: int  # whole records the log held when scanned: pass two reads no further
    last_index: dict[Key, int]  # for each line ever recorded failed: the index of its last record


def scan_log(path: Path, on_segment: SegmentRead | None = None) -> LogScan:
    """Count the log's records and find the last record of every line that ever failed."""
    last_index: dict[Key, int] = {}
    count = 0
    for line, _ in stored_lines(path, damaged=_ignore,  # pass two tells of damaged lines
                                on_segment=on_segment):
        if last_index or line.status == _FAILED:
            source = line.source
            failed = line.status == _FAILED
            for i, number in enumerate(line.line_list()):
                key = (source, number)
                if failed or key in last_index:
                    last_index[key] = count + i
        count += line.count
    return LogScan(count, last_index)


def _ignore(_path: str, _line: int) -> None:
    return None


def final_lines(path: Path, scan: LogScan, damaged: Damaged | None = None,
                details: bool = False, on_segment: SegmentRead | None = None,
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
            keep = [(keep is None or keep[i])
                    and last_index.get((source, n), index + i) == index + i
                    for i, n in enumerate(line.line_list())]
        if keep is None or any(keep):
            yield line, entries, keep
        index += count
        if index >= scan.records:  # before reading on: what follows is not this reader's
            return


def final_records(path: Path, scan: LogScan | None = None, damaged: Damaged | None = None,
                  details: bool = True) -> Iterator[dict[str, Any]]:
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


@dataclass(slots=True)
class Finals:
    """The final records of a log, read at once: its stored lines, and for every final record
    (`order`, in input order) the line it is in and its place there."""

    lines: list[Stored] = field(default_factory=list)
    entries: list[Entries] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # in the order they first appear
    keys: list[int] = field(default_factory=list)  # sorted: (input, line, line index, place)

    def __len__(self) -> int:
        return len(self.keys)

    def places(self) -> Iterator[tuple[int, int]]:
        """(line index, place in it) of every final record, in input order."""
        mask = (1 << _PLACE_BITS) - 1
        line_mask = (1 << _LINE_BITS) - 1
        for k in self.keys:
            yield (k >> _PLACE_BITS) & line_mask, k & mask

    def records(self) -> Iterator[dict[str, Any]]:
        """The final records, whole, in input order."""
        # Lines of a few requests interleave in input order: keep the last ones restored.
        restored: OrderedDict[int, list[dict[str, Any]]] = OrderedDict()
        for at, i in self.places():
            records = restored.get(at)
            if records is None:
                records = restored[at] = line_records(self.lines[at], self.entries[at])
                if len(restored) > 256:
                    restored.popitem(last=False)
            yield records[i]


_PLACE_BITS = 20  # places in a line (< 1M records a line) and lines: packed in one int to sort
_LINE_BITS = 32


def load_finals(path: Path, damaged: Damaged | None = None, details: bool = False,
                statuses: frozenset[str] | None = None) -> Finals:
    """Every final record of a log (of `statuses` only, if given), sorted by (input, line)."""
    finals = Finals()
    lines, entries = finals.lines, finals.entries
    for line, extra in stored_lines(path, damaged, details):
        lines.append(line)
        entries.append(extra)
    source_index: dict[str, int] = {}
    failed = any(line.status == _FAILED for line in lines)
    last: dict[Key, int] = {}
    if failed:  # which records a later one supersedes: only lines that once failed have one
        ever = {(line.source, n) for line in lines if line.status == _FAILED
                for n in line.line_list()}
        for at, line in enumerate(lines):
            for i, n in enumerate(line.line_list()):
                if (line.source, n) in ever:
                    last[(line.source, n)] = (at << _PLACE_BITS) | i
    keys = finals.keys
    for at, line in enumerate(lines):
        if statuses is not None and line.status not in statuses:
            continue
        src = source_index.get(line.source)
        if src is None:
            src = source_index[line.source] = len(source_index)
            finals.sources.append(line.source)
        base = (src << 40) << (_LINE_BITS + _PLACE_BITS)
        here = at << _PLACE_BITS
        numbers = line.line_list()
        if last:
            keys.extend((base | (n << (_LINE_BITS + _PLACE_BITS)) | here | i)
                        for i, n in enumerate(numbers)
                        if last.get((line.source, n), here | i) == here | i)
        else:
            shift = _LINE_BITS + _PLACE_BITS
            keys.extend((base | (n << shift) | here | i) for i, n in enumerate(numbers))
    keys.sort()  # nearly sorted already (the log is written about in input order): fast
    return finals
