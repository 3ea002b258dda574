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
        """Why the run must stop now, or None. `answered`/`failed` count sent hashes only."""
        if self.max_requests is not None and requests >= self.max_requests:
            sent = counted(requests, "request")
            return f"max-requests: {sent} sent (limit {self.max_requests:,})"
        if self.max_failure_rate is not None and answered >= self.failure_sample:
            rate = 100.0 * failed / answered
            if rate > self.max_failure_rate:
                return (f"max-failure-rate: {rate:.1f}% of the first {answered:,} hashes failed "
                        f"(limit {self.max_failure_rate:g}%); check the appliance and the logs")
        return None
