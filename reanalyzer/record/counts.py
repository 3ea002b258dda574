"""``counts.json``: the job's final outcomes counted, kept beside the checkpoint, so that
``status`` and ``retry`` answer without reading the outcome log.

A run writes it with each checkpoint (after the log's fsync, replaced whole: record/atomic.py),
and once more as it ends (``final``): the final outcome of every line in the log by status and
by hash type, the records written, and the run's progress (done, estimated total, rate, ETA). It
is derived: a job directory without it (written before it existed) is read from its log, and a
run rebuilds it from the log whenever it reads the log. A run writes it (not final) before its
first record: until its next checkpoint, a run killed may leave records the file does not count,
so ``retry`` trusts only final counts.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from reanalyzer.record.atomic import write_atomically

COUNTS_FILE = "counts.json"
_VERSION = 1


@dataclass(frozen=True, slots=True)
class Counts:
    records: int  # records in the log, superseded ones included
    by_status: dict[str, int]  # final outcomes (one per input line recorded) per status
    by_hash_type: dict[str, int]  # the same per hash type ("none": a line that is not a hash)
    last_record_at: str | None
    written_at: str
    final: bool  # written as the run ended (not by a checkpoint during it)
    run: dict[str, Any] = field(default_factory=dict)  # the writing run's progress figures


def write_counts(job_dir: Path, counts: Counts) -> None:
    """Replace counts.json whole; raises OSError (the caller decides what that means)."""
    path = job_dir / COUNTS_FILE
    text = json.dumps({"version": _VERSION, **asdict(counts)}, indent=1) + "\n"
    write_atomically(path, text, tmp=path.with_suffix(".tmp"))


def read_counts(job_dir: Path) -> Counts | None:
    """The job's counts, or None when there are none (an older job) or they cannot be read:
    they are derived, the log says the same."""
    try:
        raw = json.loads((job_dir / COUNTS_FILE).read_bytes())
        if not isinstance(raw, dict) or raw.pop("version", None) != _VERSION:
            return None
        return Counts(**raw)
    except (OSError, ValueError, TypeError):
        return None
