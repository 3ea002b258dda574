"""The final outcome of each input line, read from an outcome log: the one place of the rule.

The final outcome of a line is its last record, and only ``failed`` and ``not_configured``
records are ever superseded (by a later run, or ``retry``, that sent them again). So the log
is streamed twice, never held in memory: pass one (``scan_log``) notes where each line that was
ever recorded so has its last record, pass two (``final_records``) yields every record that is
not superseded, in log order. Memory grows with the number of such lines only, and the log may
keep growing under a running job: pass two stops at the records pass one counted. ``resume``,
``report``, ``status`` and ``retry`` all read final outcomes through here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reanalyzer.core.outcomes import Status
from reanalyzer.record.outcome_log import Damaged, numbered_records, parse_record

Key = tuple[str, int]  # (source, line): an input line
# The statuses a later record of the same line may supersede: `failed` (a run sends it again)
# and `not_configured` (`retry --status not_configured` does, once the appliance is set up).
SUPERSEDABLE = frozenset({Status.FAILED.value, Status.NOT_CONFIGURED.value})


@dataclass(frozen=True, slots=True)
class LogScan:
    """Pass one over an outcome log."""

    records: int  # whole records the log held when scanned: pass two reads no further
    last_index: dict[Key, int]  # each line ever recorded supersedable: the index of its last one


def scan_log(path: Path) -> LogScan:
    """Count the log's whole records and find the last record of every line that ever failed."""
    last_index: dict[Key, int] = {}
    count = 0
    try:
        f = path.open("rb")
    except FileNotFoundError:
        return LogScan(0, last_index)
    with f:
        for raw in f:
            if not raw.endswith(b"\n"):  # torn or still being written: not a record yet
                break
            # Until a line has a record a later one may supersede, none can: skip parsing.
            if last_index or b'"failed"' in raw or b'"not_configured"' in raw:
                rec = parse_record(raw)  # None: a damaged line, which pass two tells of
                if rec is not None:
                    key = (rec["source"], rec["line"])
                    if key in last_index or rec["status"] in SUPERSEDABLE:
                        last_index[key] = count
            count += 1
    return LogScan(count, last_index)


def final_records(path: Path, scan: LogScan | None = None,
                  damaged: Damaged | None = None) -> Iterator[dict[str, Any]]:
    """The final record of every input line, in log order (pass two; runs pass one if needed).
    A line that is not a record raises JobError naming it, or is told to `damaged` and read
    past (see `outcome_log.numbered_records`)."""
    scan = scan or scan_log(path)
    last_index = scan.last_index
    for index, rec in numbered_records(path, damaged, stop=scan.records):
        if not last_index or last_index.get((rec["source"], rec["line"]), index) == index:
            yield rec


def count_final(path: Path, status: Status) -> int:
    """How many input lines have `status` as their final outcome."""
    return sum(1 for rec in final_records(path) if rec["status"] == status)
