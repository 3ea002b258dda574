"""Counting a job's final outcomes as a run records them, for ``counts.json``.

The job's counts before this run (read with its log by ``resume``, or from its counts.json),
plus what this run recorded, less the ``failed`` records it superseded: a line recorded failed
before and recorded again (sent again from below the mark, or read again above it) changes its
final outcome, not the number of lines.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from reanalyzer.core.outcomes import Status
from reanalyzer.record.counts import Counts
from reanalyzer.record.outcome_log import utc_now
from reanalyzer.run.resume import ResumeState


class CountsKeeper:
    """The job's final outcomes as counted before this run (None: not known), the run's
    progress figures (a callable), and the records of this run that superseded a failed one."""

    def __init__(
        self,
        records: int,
        by_status: Counter[str] | None,
        by_type: Counter[str] | None,
        last_record_at: str | None,
        figures: Callable[[], dict[str, Any]],
        failed_above: set[int] | None = None,
    ) -> None:
        self.records = records
        self.by_status = by_status
        self.by_type = by_type
        self.last_record_at = last_record_at
        self.figures = figures
        # Lines above the mark recorded failed: read again, their new record supersedes that.
        self.failed_above = failed_above or set()
        self.resent = 0  # records of lines recorded failed before
        self.resent_by_type: Counter[str] = Counter()

    @classmethod
    def of(cls, state: ResumeState, figures: Callable[[], dict[str, Any]]) -> CountsKeeper:
        """The keeper of a run that starts from `state`."""
        return cls(
            state.records,
            state.by_status,
            state.by_type,
            state.last_record_at,
            figures,
            state.failed_above,
        )

    def recorded(self, positions: Sequence[int], hash_type: str, tracked: bool) -> None:
        """Records written for `positions`: sent again (`tracked` False: all were failed), or
        read from the input (those above the mark that were failed)."""
        if not tracked:
            self.resent += len(positions)
            self.resent_by_type[hash_type] += len(positions)
        else:
            self.superseding(positions, hash_type)

    def superseding(self, positions: Sequence[int], hash_type: str) -> None:
        if not self.failed_above:
            return
        again = [pos for pos in positions if pos in self.failed_above]
        if again:
            self.failed_above.difference_update(again)
            self.resent += len(again)
            self.resent_by_type[hash_type] += len(again)

    def counts(
        self,
        recorded: Counter[Status],
        recorded_by_type: Counter[str],
        last_ts: str | None,
        final: bool,
    ) -> Counts | None:
        """The job's counts now, given this run's records by status and by hash type (of a
        hash: invalid lines are counted as type "none" here)."""
        if self.by_status is None or self.by_type is None:
            return None
        by_status = Counter(self.by_status)
        by_status.update({status.value: n for status, n in recorded.items()})
        by_status[Status.FAILED.value] -= self.resent
        by_type = Counter(self.by_type)
        by_type.update(recorded_by_type)
        by_type.subtract(self.resent_by_type)
        by_type["none"] += recorded[Status.INVALID]
        order = [s.value for s in Status]
        written = sum(recorded.values())
        return Counts(
            records=self.records + written,
            by_status={s: by_status[s] for s in order if by_status[s] > 0}
            | {s: n for s, n in by_status.items() if s not in order and n > 0},
            by_hash_type={t: n for t, n in sorted(by_type.items()) if n > 0},
            last_record_at=last_ts if written else self.last_record_at,
            written_at=utc_now(),
            final=final,
            run=self.figures(),
        )
