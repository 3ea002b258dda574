"""The progress display: on a terminal it must not start a thread of its own."""

from __future__ import annotations

import threading

from reanalyzer.run.progress import ProgressReporter, Snapshot


def snapshot() -> Snapshot:
    return Snapshot(recorded=5, estimated_total=10, requests=1, retries=0, throttled=0,
                    pace=None, in_flight=0)


async def test_the_terminal_bar_starts_no_thread() -> None:
    """tqdm's monitor thread would keep the front from reading ahead in a forked child."""
    before = threading.active_count()
    async with ProgressReporter(snapshot, on_terminal=True, interval=0.01):
        assert threading.active_count() == before
