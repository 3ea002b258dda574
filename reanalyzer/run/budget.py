"""Budgets and guards: when a run must stop on its own, so a bad night cannot burn an appliance.

Pure decisions; the job carries them out by stopping cleanly (resumable, exit code 4).
"""

from __future__ import annotations

from dataclasses import dataclass

from reanalyzer.core.words import counted


@dataclass(frozen=True, slots=True)
class Budget:
    max_requests: int | None = None
    max_failure_rate: float | None = None  # percent of the first `failure_sample` sent hashes
    failure_sample: int = 1000

    def exceeded(self, requests: int, answered: int, failed: int) -> str | None:
        """Why the run must stop now, or None. `answered`/`failed` count, of the first
        `failure_sample` hashes sent, those that have their outcome and those that failed: the
        guard trips as soon as the failures are more than the rate of the whole sample (no
        outcome still to come can undo that), or once the whole sample is answered."""
        if self.max_requests is not None and requests >= self.max_requests:
            sent = counted(requests, "request")
            return f"max-requests: {sent} sent (limit {self.max_requests:,})"
        if self.max_failure_rate is not None and failed:
            sample = max(answered, self.failure_sample)
            rate = 100.0 * failed / sample
            if rate > self.max_failure_rate:
                return (
                    f"max-failure-rate: {failed:,} of the first {sample:,} hashes sent "
                    f"failed ({rate:.1f}%, limit {self.max_failure_rate:g}%); check the "
                    "appliance and the logs"
                )
        return None
