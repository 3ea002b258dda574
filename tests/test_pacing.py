"""Pacing: no more than R in any one-second window, no burst, job-wide pauses, and settling
under an undisclosed limit."""

from __future__ import annotations

import asyncio
import bisect
import heapq
import math
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import pytest

from reanalyzer.send.pacing import AdaptiveGate, Pace, PacedGate, Settle, SystemClock


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


def test_settle_arithmetic() -> None:
    """A 429 sets the pace just under the rate accepted before it; the pace holds, then climbs
    gently, then compounding; never above --rate-limit."""
    settle = Settle(share=0.98, hold=4.0, lift=0.03, gentle=3.0, climb=0.5)
    pace = settle.throttled(settle.start(), now=10.0, accepted=20.0, pause=1.0)
    assert pace == Pace(20.0, 10.0 + 1.0 + 4.0, 4.0)
    assert settle.rate(pace, 12.0) == pytest.approx(19.6)
    assert settle.rate(pace, 15.0) == pytest.approx(19.6)
    assert settle.rate(pace, 17.0) == pytest.approx(19.6 * 1.06)
    assert settle.rate(pace, 20.0) == pytest.approx(19.6 * 1.09 * 1.5**2)
    assert settle.cap(pace, 19.6) == 20
    assert settle.rate(pace, 1e9) < 1e12  # bounded, not an overflow
    capped = Settle(limit=25.0)
    assert capped.rate(capped.start(), 0.0) == 25.0
    assert capped.rate(capped.throttled(capped.start(), 0.0, 20.0, 1.0), 100.0) == 25.0


def test_a_start_up_429_measuring_nothing_does_not_pin_the_pace() -> None:
    """A 429 after almost nothing was accepted gives the minimum, and the climb leaves it within
    seconds."""
    settle = Settle()
    pace = settle.throttled(settle.start(), now=0.0, accepted=0.0, pause=1.0)
    assert pace.ceiling == settle.minimum
    assert (settle.rate(pace, 25.0) or 0.0) > 50.0


def test_a_probe_confirming_the_ceiling_doubles_the_hold_and_keeps_the_larger_reading() -> None:
    """The time between 429s grows while probes find the same limit; another limit resets it."""
    settle = Settle(hold=4.0, max_hold=16.0)
    pace = settle.throttled(settle.start(), now=0.0, accepted=20.0, pause=1.0)
    assert not settle.probing(pace, 4.9)
    assert settle.probing(pace, 5.1)
    pace = settle.throttled(pace, now=7.0, accepted=19.0, pause=1.0)  # a probe's 429
    assert pace == Pace(20.0, 7.0 + 8.0, 8.0)  # no pause counted: the job went on
    pace = settle.throttled(pace, now=17.0, accepted=20.0, pause=1.0)
    assert pace.hold == 16.0
    pace = settle.throttled(pace, now=40.0, accepted=20.0, pause=1.0)
    assert pace.hold == 16.0
    pace = settle.throttled(pace, now=60.0, accepted=40.0, pause=1.0)  # the limit rose
    assert pace == Pace(40.0, 64.0, 4.0)
    pace = settle.throttled(pace, now=62.0, accepted=30.0, pause=1.0)  # a 429 while settled
    assert pace == Pace(30.0, 62.0 + 1.0 + 4.0, 4.0)
    assert settle.refused_too(pace).ceiling == 29.0


def test_in_flight_429s_move_the_pace_once(clock: Any) -> None:
    """Several 429s for requests sent in the same epoch move the pace once (each later one
    counts one request fewer as accepted), and all pause."""
    gate = AdaptiveGate(100.0, clock)
    gate._gate._granted.extend([clock.now() - 0.5] * 60)  # 60 grants in the last second
    epoch = gate.epoch
    assert gate.throttled(epoch, 2.0) is True
    assert gate.throttled(epoch, 3.0) is False
    assert gate.pace.ceiling == 58.0  # 60 granted, 2 refused
    assert gate.rate == pytest.approx(0.98 * 58.0)
    assert gate.epoch == epoch + 1


class VirtualClock:
    """Time shared by many tasks: each sleeper wakes at its own time, in order, and time jumps
    to the next wake-up once every task is waiting (unlike FakeClock, where each sleep moves
    everyone's time). For rate tests with many callers in flight."""

    def __init__(self, start: float = 0.0) -> None:
        self.time = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = 0

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        future = asyncio.get_running_loop().create_future()
        self._seq += 1
        heapq.heappush(self._sleepers, (self.time + max(seconds, 0.0), self._seq, future))
        await future

    async def run(self, *coros: Coroutine[Any, Any, None]) -> None:
        """Run `coros` to their end on this clock."""
        tasks = [asyncio.ensure_future(c) for c in coros]
        while not all(t.done() for t in tasks):
            for _ in range(20):  # let every task that can run reach its next sleep
                await asyncio.sleep(0)
            if self._sleepers:
                wake, _, future = heapq.heappop(self._sleepers)
                self.time = max(self.time, wake)
                future.set_result(None)
        for t in tasks:
            t.result()


async def test_a_probes_429_holds_back_only_the_request_that_drew_it() -> None:
    """A 429 while probing: its request waits out Retry-After, the others go on at the pace."""
    clock = VirtualClock()
    gate = AdaptiveGate(None, clock)
    gate.throttled(gate.epoch, 1.0)  # outside any task: the whole gate pauses
    times: dict[str, list[float]] = {"drew": [], "other": []}

    async def drew() -> None:
        await clock.sleep(30.0)  # probing by now
        assert gate.pace.ceiling is not None
        assert gate._settle.probing(gate.pace, clock.now())
        gate.throttled(gate.epoch, 2.0)
        await gate.acquire()
        times["drew"].append(clock.now())

    async def other() -> None:
        await clock.sleep(30.0)
        for _ in range(3):
            await gate.acquire()
            times["other"].append(clock.now())

    await clock.run(drew(), other())
    assert times["drew"][0] >= 32.0
    assert times["other"][0] < 31.0


@dataclass
class Run:
    """What the appliance model saw: times of accepted and of refused requests."""

    accepted: list[float] = field(default_factory=list)
    refused: list[float] = field(default_factory=list)

    def rate(self, start: float, end: float) -> float:
        return sum(1 for t in self.accepted if start <= t < end) / (end - start)

    def share_refused(self, after: float) -> float:
        refused = sum(1 for t in self.refused if t >= after)
        return refused / (refused + sum(1 for t in self.accepted if t >= after))

    def recovered(self, to: float, after: float) -> float:
        """Seconds after `after` until a one-second window first holds `to` accepted."""
        times = sorted(t for t in self.accepted if t >= after)
        for i, t in enumerate(times):
            if bisect.bisect_left(times, t + 1.0) - i >= to:
                return t + 1.0 - after
        return math.inf


async def against_limit(
    limit: Callable[[float], float], seconds: float = 40.0, callers: int = 4, rtt: float = 0.005
) -> Run:
    """The gate unlimited at first, against an appliance of `limit(t)` requests in any sliding
    second (refused ones not counted, Retry-After in whole seconds), `callers` in flight."""
    clock = VirtualClock()
    gate = AdaptiveGate(None, clock)
    window: deque[float] = deque()
    run = Run()

    async def caller() -> None:
        while clock.now() < seconds:
            await gate.acquire()
            epoch = gate.epoch
            await clock.sleep(rtt / 2)
            now = clock.now()
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) < limit(now):
                window.append(now)
                run.accepted.append(now)
                await clock.sleep(rtt / 2)
            else:
                retry_after = max(1, math.ceil(window[0] + 1.0 - now))
                await clock.sleep(rtt / 2)
                run.refused.append(clock.now())
                gate.throttled(epoch, retry_after)

    await clock.run(*(caller() for _ in range(callers)))
    return run


@pytest.mark.parametrize("limit", [5, 20, 100])
@pytest.mark.parametrize("callers", [4, 16])
async def test_settles_at_an_undisclosed_limit(limit: int, callers: int) -> None:
    """Unlimited at first, the pace settles at >= 0.95 of the limit, <= 2% refused after 10 s."""
    run = await against_limit(lambda t: limit, callers=callers)
    assert run.rate(10.0, 40.0) >= 0.95 * limit
    assert run.share_refused(after=10.0) <= 0.02


async def test_finds_a_raised_limit_within_30_seconds() -> None:
    """When the limit rises from 20 to 40 at 10 s, 36 a second are accepted within 30 s."""
    run = await against_limit(lambda t: 20 if t < 10.0 else 40)
    assert run.recovered(36, after=10.0) <= 30.0


async def test_a_429_at_start_up_does_not_leave_the_pace_low() -> None:
    """A limit of 1 in the first second, 50 after: 45 a second within 30 s of it."""
    run = await against_limit(lambda t: 1 if t < 1.0 else 50)
    assert run.recovered(45, after=1.0) <= 30.0


async def test_a_competitor_gone_leaves_the_pace_low_no_longer() -> None:
    """Sharing a limit of 40 with a competitor that takes 30 until 10 s: 36 within 30 s after."""
    run = await against_limit(lambda t: 10 if t < 10.0 else 40)
    assert run.recovered(36, after=10.0) <= 30.0


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
