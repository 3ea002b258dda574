"""Pacing: no more than R in any one-second window, no burst, job-wide pauses, and AIMD."""

from __future__ import annotations

import asyncio
import bisect
import math
import time
from typing import Any

import pytest

from reanalyzer.send.pacing import AdaptiveGate, Aimd, PacedGate, SystemClock


def max_in_any_window(times: list[float], window: float = 1.0) -> int:
    """The largest number of events in any half-open window [t, t + window)."""
    times = sorted(times)
    return max((bisect.bisect_left(times, t + window) - i for i, t in enumerate(times)), default=0)


async def grant_times(
    gate: PacedGate | AdaptiveGate, clock: Any, n: int, tasks: int
) -> list[float]:
    times: list[float] = []

    async def worker(count: int) -> None:
        for _ in range(count):
            await gate.acquire()
            times.append(clock.now())

    await asyncio.gather(*(worker(n // tasks) for _ in range(tasks)))
    return times


@pytest.mark.parametrize("rate", [1.0, 2.5, 10.0, 200.0])
async def test_never_more_than_rate_in_any_second_and_at_least_95_percent(
    clock: Any, rate: float
) -> None:
    """With 8 eager callers, any one-second window holds at most R grants, and R is nearly met
    (for a fractional R, "at most R in a window" means at most floor(R), so that is the target)."""
    gate = PacedGate(rate, clock)
    times = await grant_times(gate, clock, 8 * int(rate * 5 + 1), tasks=8)
    assert max_in_any_window(times) <= int(rate)
    span = times[-1] - times[0]
    assert (len(times) - 1) / span >= 0.95 * min(rate, math.floor(rate))


async def test_no_burst_at_start_or_after_idle(clock: Any) -> None:
    """The first grants are spaced like the rest, and an idle spell earns no burst."""
    gate = PacedGate(10.0, clock)
    first = await grant_times(gate, clock, 3, tasks=3)
    assert first[1] - first[0] >= 0.1
    assert first[2] - first[1] >= 0.1
    clock.time += 60.0
    later = await grant_times(gate, clock, 3, tasks=3)
    assert later[1] - later[0] >= 0.1


async def test_unlimited_gate_never_sleeps(clock: Any) -> None:
    """Rate None passes every caller at once."""
    gate = PacedGate(None, clock)
    await grant_times(gate, clock, 100, tasks=4)
    assert clock.slept == []
    assert gate.observed_rate() == 100


async def test_pause_holds_every_caller_until_it_ends(clock: Any) -> None:
    """A pause (after a 429) holds back grants, also on an unlimited gate."""
    gate = PacedGate(None, clock)
    gate.pause_until(clock.now() + 5.0)
    start = clock.now()
    times = await grant_times(gate, clock, 4, tasks=2)
    assert min(times) >= start + 5.0


def test_aimd_arithmetic() -> None:
    """Halve on 429 (from the observed rate when unlimited), climb slower near the trip rate,
    never above the ceiling."""
    aimd = Aimd(ceiling=40.0, decrease=0.5, increase_share=0.05, minimum=0.2)
    assert aimd.lowered(40.0, observed=99.0) == 20.0
    assert aimd.lowered(None, observed=30.0) == 15.0
    assert aimd.lowered(0.1, observed=0.0) == 0.2
    assert aimd.raised(20.0, 1.0, tripped_at=40.0) == pytest.approx(22.0)
    assert aimd.raised(38.0, 1.0, tripped_at=40.0) == pytest.approx(38.2)
    assert aimd.raised(39.9, 10.0, tripped_at=40.0) == 40.0


def test_in_flight_429s_lower_the_rate_once(clock: Any) -> None:
    """Several 429s for requests sent in the same epoch halve the rate once, and all pause."""
    gate = AdaptiveGate(100.0, clock)
    epoch = gate.epoch
    assert gate.throttled(epoch, 2.0) is True
    assert gate.throttled(epoch, 3.0) is False
    assert gate.rate == 50.0
    assert gate.epoch == epoch + 1


async def test_aimd_settles_just_under_an_undisclosed_limit(clock: Any) -> None:
    """Started unlimited against an appliance that answers 429 over 20 requests/s, the rate drops
    and then holds most of the limit, drawing few 429s once settled."""
    limit = 20
    gate = AdaptiveGate(None, clock)
    sent: list[float] = []
    throttled_at: list[float] = []
    while clock.now() < 1000.0 + 300.0:
        await gate.acquire()
        epoch = gate.epoch
        now = clock.now()
        sent.append(now)
        recent = len(sent) - bisect.bisect_right(sent, now - 1.0)
        if recent > limit:
            throttled_at.append(now)
            gate.throttled(epoch, 1.0)
        if len(sent) > 100_000:
            pytest.fail("the gate never slowed down")
    last_minute = [t for t in sent if t >= 1000.0 + 240.0]
    assert len(last_minute) / 60.0 >= 0.7 * limit
    assert len([t for t in throttled_at if t >= 1000.0 + 240.0]) <= 3
    assert gate.rate is not None
    assert gate.rate <= limit * 1.1


async def test_real_clock_short_run_respects_the_rate() -> None:
    """About one real second at 40/s with 8 callers: at most 40 in any window, and no burst."""
    gate = PacedGate(40.0, SystemClock())
    times: list[float] = []
    deadline = time.monotonic() + 1.1

    async def worker() -> None:
        while time.monotonic() < deadline:
            await gate.acquire()
            times.append(time.monotonic())

    await asyncio.gather(*(worker() for _ in range(8)))
    assert max_in_any_window(times) <= 40
    assert len(times) >= 40
    assert times[1] - times[0] >= 0.02
