"""The progress display: on a terminal it must not start a thread of its own, and shows its
rate in lines per second."""

from __future__ import annotations

import io
import sys
import threading

import pytest
import tqdm.std

from reanalyzer.run.progress import ProgressReporter, Snapshot


def snapshot() -> Snapshot:
    return Snapshot(recorded=5, estimated_total=10, requests=1, retries=0, throttled=0,
                    pace=None, in_flight=0)


async def test_the_terminal_bar_starts_no_thread() -> None:
    """tqdm's monitor thread would keep the front from reading ahead in a forked child."""
    before = threading.active_count()
    async with ProgressReporter(snapshot, on_terminal=True, interval=0.01):
        assert threading.active_count() == before


@pytest.mark.parametrize("total", [10, None], ids=["known-total", "no-total"])
async def test_a_slow_rate_is_shown_in_lines_per_second(
    monkeypatch: pytest.MonkeyPatch, total: int | None
) -> None:
    """5 lines in 27.5 s show as "0.18 lines/s", never as tqdm's inverse "5.50s/ lines"."""
    now = [1000.0]
    monkeypatch.setattr(tqdm.std, "time", lambda: now[0])  # tqdm's clock, read at each draw
    screen = io.StringIO()
    monkeypatch.setattr(sys, "stderr", screen)
    slow = Snapshot(recorded=5, estimated_total=total, requests=1, retries=0, throttled=0,
                    pace=None, in_flight=0)
    async with ProgressReporter(lambda: slow, on_terminal=True, interval=3600):
        now[0] += 27.5
    drawn = screen.getvalue()
    assert "0.18 lines/s" in drawn
    assert "s/ lines" not in drawn
