"""How fast to send: a rate gate, and the AIMD rule that adapts its rate to the appliance's 429s.

Two parts keep `--rate-limit R`: even spacing of grants (1/R apart, exact sleeps, no polling, no
burst at start) and a hard cap of R grants in any one-second window, the latter by
asyncio-throttle's `Throttler` on the real clock. asyncio-throttle cannot do the spacing itself:
as `Throttler(1, period=1/R)` it polls every `retry_interval` and each grant starts a full period
after the previous *actual* grant, so lateness accumulates. Measured with 8 callers for 3 s: at
R=200 it reached 84% of R whatever the interval (period/10 .. period/50), at R=500 81-91% at 12-87%
of a core; at R=50, 92-96% at 7-12% of a core. Behind the spacing, as the cap, it is rarely full,
so it polls rarely (its `retry_interval` is a quarter of the spacing) and costs next to nothing.
It reads `time.monotonic` itself, so it serves only a gate on the system clock; the gate's own
window of grant times (which also gives the observed rate AIMD needs) holds the same cap on any
clock, fake test clocks included.

    RateGate (Protocol)         what the sender needs: acquire, throttled, rate
    └── AdaptiveGate            a PacedGate driven by the Aimd rule
        └── PacedGate           even spacing + "never more than R in any window" + job-wide pause
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from asyncio_throttle.throttler import Throttler


class Clock(Protocol):
    """Monotonic time and sleeping, so that rate tests run on a fake clock without waiting."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class RateGate(Protocol):
    """The sender's seam for pacing: wait for a slot; report a 429; read the current rate."""

    @property
    def epoch(self) -> int: ...  # bumped on every rate decrease; a 429 from an older epoch is stale

    @property
    def rate(self) -> float | None: ...  # requests per second now; None means unlimited

    async def acquire(self) -> None: ...

    def throttled(self, sent_in_epoch: int, pause: float) -> bool: ...  # True if the rate dropped

    def restart(self) -> None: ...  # count the last grant as made now (it arrived late)


@runtime_checkable
class CeilingGate(Protocol):
    """A gate whose ceiling (--rate-limit) can change while the job runs."""

    def set_ceiling(self, ceiling: float | None) -> None: ...


class PacedGate:
    """Grants at most `rate` per second, evenly spaced, FIFO, with a job-wide pause.

    Spacing alone keeps any one-second window at `rate`; `headroom` spaces grants a little wider
    (2% by default) so that network jitter between us and the appliance cannot push R+1 requests
    into one of *its* one-second windows. The sliding-window caps (R grants in any 1 s + `margin`,
    ours on `clock`, then asyncio-throttle's on the real clock) are then only safety nets.
    """

    def __init__(
        self,
        rate: float | None,
        clock: Clock | None = None,
        *,
        window: float = 1.0,
        headroom: float = 0.02,
        margin: float = 0.03,
    ) -> None:
        self._clock = clock or SystemClock()
        self._window = window
        # At most rate*window grants in any window+margin span: what arrives at the appliance
        # bunched by up to `margin` (an event-loop stall, a slow send) still fits its window.
        self._span = window + margin
        self._headroom = headroom
        self._rate: float | None = None
        self._interval = 0.0
        self._next_slot = -math.inf
        self._paused_until = -math.inf
        self._granted: deque[float] = deque()  # grant times within the last window
        self._lock = asyncio.Lock()  # FIFO: the waiter that came first is granted first
        # asyncio-throttle reads time.monotonic itself: usable only when that is our clock too.
        self._throttler = (
            Throttler(rate_limit=1, period=self._span)
            if isinstance(self._clock, SystemClock)
            else None
        )
        self.set_rate(rate)

    @property
    def rate(self) -> float | None:
        return self._rate

    def set_rate(self, rate: float | None) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive or None")
        self._rate = rate
        self._interval = 0.0 if rate is None else (1.0 + self._headroom) / rate
        if self._throttler is not None and rate is not None:
            self._throttler.rate_limit = self._window_cap()
            # Full only if the spacing fell behind; then a quarter of a slot is fine enough.
            self._throttler.retry_interval = min(max(self._interval / 4, 0.001), 0.05)

    def pause_until(self, when: float) -> None:
        """No grant before `when` (monotonic); a later pause extends an earlier one."""
        self._paused_until = max(self._paused_until, when)

    def restart(self) -> None:
        """Count the last grant as made now: the job's first request reaches the appliance late
        (a new connection, first use of every code path), so spacing counts from its answer."""
        now = self._clock.now()
        if self._granted:
            self._granted[-1] = max(self._granted[-1], now)
        self._next_slot = max(self._next_slot, now + self._interval)

    def observed_rate(self) -> float:
        """Grants per second over the last window (what we really sent, whatever the setting)."""
        horizon = self._clock.now() - self._window
        return sum(1 for t in self._granted if t > horizon) / self._window

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = self._clock.now()
                wait = max(self._paused_until - now, self._next_slot - now, self._window_wait(now))
                if wait <= 0:
                    break
                await self._clock.sleep(wait)
            if self._throttler is not None and self._rate is not None:
                await self._throttler.acquire()  # type: ignore[no-untyped-call]  # unannotated library
                now = self._clock.now()
            self._grant(now)

    def _grant(self, now: float) -> None:
        # Continue from the slot just used when we woke a little late, so oversleeping does not
        # accumulate into a lower rate; after an idle spell start afresh, so idling earns no burst.
        base = self._next_slot if now - self._next_slot < self._interval else now
        self._next_slot = base + self._interval
        self._granted.append(now)
        self._forget_before(now - self._span)

    def _window_wait(self, now: float) -> float:
        if self._rate is None:
            return 0.0
        cap = self._window_cap()
        self._forget_before(now - self._span)
        if len(self._granted) < cap:
            return 0.0
        # The grant `cap` places back must leave the span before another may enter it.
        return self._granted[-cap] + self._span - now

    def _window_cap(self) -> int:
        return max(1, math.floor((self._rate or 0.0) * self._window))

    def _forget_before(self, horizon: float) -> None:
        while self._granted and self._granted[0] <= horizon:
            self._granted.popleft()

    def __repr__(self) -> str:
        return (
            f"<PacedGate rate={self._rate} next_slot={self._next_slot:.3f} "
            f"paused_until={self._paused_until:.3f}>"
        )


@dataclass(frozen=True, slots=True)
class Aimd:
    """Additive increase, multiplicative decrease of the request rate, as pure arithmetic.

    On a 429 the rate becomes `decrease` x the current one (or x what was really sent, when no rate
    was set). Then it climbs back by `increase_share` of the rate that drew the 429 per second, but
    ten times slower once within 90% of it, so that a job settles just under the appliance's
    undisclosed limit and only probes above it gently. It never exceeds `ceiling` (--rate-limit).
    """

    ceiling: float | None = None
    decrease: float = 0.5
    increase_share: float = 0.05
    minimum: float = 0.2

    def lowered(self, rate: float | None, observed: float) -> float:
        base = rate if rate is not None else observed
        return max(self.minimum, base * self.decrease)

    def raised(self, rate: float, elapsed: float, tripped_at: float) -> float | None:
        """The rate after `elapsed` seconds without a 429; None when back to unlimited."""
        step = max(self.increase_share * tripped_at, self.minimum) * elapsed
        if rate >= 0.9 * tripped_at:
            step /= 10
        new = rate + step
        if self.ceiling is not None and new >= self.ceiling:
            return self.ceiling
        return new


class AdaptiveGate:
    """A PacedGate whose rate follows `Aimd`: lowered on 429, recovered lazily on each acquire."""

    def __init__(
        self, rate_limit: float | None, clock: Clock | None = None, aimd: Aimd | None = None
    ) -> None:
        self._clock = clock or SystemClock()
        self._aimd = aimd or Aimd(ceiling=rate_limit)
        self._gate = PacedGate(rate_limit, self._clock)
        self._epoch = 0
        self._tripped_at: float | None = None  # the rate that drew the last 429
        self._last_update = self._clock.now()

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def rate(self) -> float | None:
        return self._gate.rate

    async def acquire(self) -> None:
        self._recover()
        await self._gate.acquire()

    def restart(self) -> None:
        self._gate.restart()

    def throttled(self, sent_in_epoch: int, pause: float) -> bool:
        """Pause every request for `pause` seconds; lower the rate once per epoch, so that the 429s
        of the requests in flight together count as one signal, not as many halvings."""
        now = self._clock.now()
        self._gate.pause_until(now + pause)
        if sent_in_epoch != self._epoch:
            return False
        observed = self._gate.observed_rate()
        current = self._gate.rate
        self._tripped_at = current if current is not None else max(observed, self._aimd.minimum)
        self._gate.set_rate(self._aimd.lowered(current, observed))
        self._epoch += 1
        self._last_update = now + pause  # recovery starts when the pause ends
        return True

    def _recover(self) -> None:
        now = self._clock.now()
        elapsed = now - self._last_update
        if elapsed <= 0:
            return
        self._last_update = now
        rate = self._gate.rate
        if rate is None or self._tripped_at is None:
            return
        self._gate.set_rate(self._aimd.raised(rate, elapsed, self._tripped_at))

    def set_ceiling(self, ceiling: float | None) -> None:
        """A new ceiling (a timetable's switch, the operator's control file). Lower than the
        rate: the rate drops to it now. Higher: the rate goes up to it and the adaptation
        starts afresh under it (what drew a 429 at another hour says little about this one)."""
        self._aimd = dataclasses.replace(self._aimd, ceiling=ceiling)
        rate = self._gate.rate
        if ceiling is None or rate is None or rate < ceiling:
            self._tripped_at = None
            self._gate.set_rate(ceiling)
        elif rate > ceiling:
            self._gate.set_rate(ceiling)

    def __repr__(self) -> str:
        return f"<AdaptiveGate epoch={self._epoch} tripped_at={self._tripped_at} {self._gate!r}>"
