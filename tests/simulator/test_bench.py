"""The throughput probe the lead's scripts/bench.py calls."""

from __future__ import annotations

from reanalyzer.simulator.bench import measure_throughput


async def test_measure_throughput_runs() -> None:
    """A short probe serves some bulk requests and reports a positive rate."""
    assert await measure_throughput(0.2, batch=10, concurrency=2) > 0
