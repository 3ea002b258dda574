"""How fast to send: a rate gate, and the policy that settles its rate under the appliance's limit.

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

Over 300 lines, as one concern: how fast to send, the spacing of grants and the policy that
chooses their rate being read (and tested) together.

    RateGate (Protocol)         what the sender needs: acquire, throttled, rate
    └── AdaptiveGate            a PacedGate driven by the Settle policy (a Pace per 429)
        └── PacedGate           even spacing + "never more than R in any window" + job-wide pause
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

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
        refresh: Callable[[], None] | None = None,
    ) -> None:
        self._clock = clock or SystemClock()
        self._window = window
        # At most rate*window grants in any window+margin span: what arrives at the appliance
        # bunched by up to `margin` (an event-loop stall, a slow send) still fits its window.
        self._span = window + margin
        self._headroom = headroom
        self._rate: float | None = None
        self._cap: int | None = None  # grants in any window; None: floor(rate x window)
        self._interval = 0.0
        # Called before each look at the clock while a caller waits, so that a rate that changes
        # with time (AdaptiveGate's) applies to a caller already waiting, not to the next one.
        self._refresh = refresh
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

    def set_rate(self, rate: float | None, cap: int | None = None) -> None:
        """Grant `rate` per second from now on, and at most `cap` in any window (default: the
        rate's whole part), so that a pace just under an appliance's limit of N per second can
        still send N in its second, not N-1."""
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive or None")
        faster = rate is None or self._rate is None or rate > self._rate
        self._rate = rate
        self._cap = cap
        # A pace given with its own cap (AdaptiveGate's) has its margin in it already.
        headroom = self._headroom if cap is None else 0.0
        self._interval = 0.0 if rate is None else (1.0 + headroom) / rate
        if faster and self._granted:
            # A slot set at a slower rate would hold a waiting caller to it.
            self._next_slot = min(self._next_slot, self._granted[-1] + self._interval)
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
                if self._refresh is not None:
                    self._refresh()
                now = self._clock.now()
                pause = self._paused_until - now
                wait = max(pause, self._next_slot - now, self._window_wait(now))
                if wait <= 0:
                    break
                if self._refresh is not None and wait > pause:
                    # A changing rate is looked at again every quarter second; a pause is whole.
                    wait = min(wait, max(pause, 0.25))
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
        if self._cap is not None:
            return max(1, self._cap)
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
class Pace:
    """Where the adaptive pace stands; `Settle` gives the next one after each 429."""

    ceiling: float | None  # requests/s accepted in the second before the last 429; None: no 429
    probe_from: float  # monotonic time at which the climb above `share x ceiling` starts
    hold: float  # the quiet seconds before `probe_from`, doubled while probes confirm the ceiling


@dataclass(frozen=True, slots=True)
class Settle:
    """Pacing under an undisclosed limit, as pure arithmetic on a clock.

    Halving on a 429 cannot settle close under a limit; what the appliance tells can:
    - The ceiling: on a 429 its window is full, so the requests it accepted from us in the
      second before are its limit (or the part a competitor leaves us). The pace becomes
      `share` of that at once, whatever it was before: a 429 at start-up measures the limit as
      well as any other.
    - Probing: after `hold` quiet seconds the pace climbs, by `lift` per second for `gentle`
      seconds (an unchanged limit answers a 429 a request or two above it), then by `climb` per
      second compounded: a raised limit, a competitor gone or a ceiling measured tiny is left
      behind within seconds, never pinning the pace low.
    - The time between 429s: a probe that finds the same ceiling (within `same`) doubles the
      hold, up to `max_hold`, so that a steady limit is probed ever less often (each probe costs
      a 429 or two) and a changed one is still found within `max_hold` + a few seconds.
    - Retry-After: the sender's pause for the 429 (see AdaptiveGate for whom it holds).
    Never above `limit` (--rate-limit). Measured on bench.py pace.
    """

    limit: float | None = None
    share: float = 0.98
    hold: float = 4.0
    max_hold: float = 16.0
    same: float = 0.05
    lift: float = 0.03
    gentle: float = 3.0
    climb: float = 0.5
    minimum: float = 0.2  # requests/s: a ceiling is never taken lower than this

    def start(self) -> Pace:
        return Pace(None, math.inf, self.hold)

    def rate(self, pace: Pace, now: float) -> float | None:
        """Requests per second at `now`; None: unlimited (no 429 yet, no --rate-limit)."""
        if pace.ceiling is None:
            return self.limit
        rate = self.share * pace.ceiling
        climbing = now - pace.probe_from
        if climbing > 0:
            gentle = min(climbing, self.gentle)
            # Past ~60 s of climbing without a 429 the appliance has no limit worth pacing for;
            # the exponent is bounded so that the float cannot overflow.
            steep = min(climbing - gentle, 60.0)
            rate *= (1.0 + self.lift * gentle) * (1.0 + self.climb) ** steep
        return rate if self.limit is None else min(rate, self.limit)

    def cap(self, pace: Pace, rate: float | None) -> int | None:
        """Grants allowed in any one-second window: the whole ceiling (the appliance takes that
        many in its second), or the climbing rate's; None: the gate's own (from the rate)."""
        if pace.ceiling is None or rate is None:
            return None
        return max(1, math.floor(max(pace.ceiling, rate)))

    def probing(self, pace: Pace, now: float) -> bool:
        """True while the pace climbs above the ceiling on purpose."""
        return pace.ceiling is not None and now > pace.probe_from

    def throttled(self, pace: Pace, now: float, accepted: float, pause: float) -> Pace:
        """A 429 at `now`, after `accepted` requests were accepted in the second before it; the
        job pauses `pause` seconds unless the 429 was a probe's."""
        ceiling = max(accepted, self.minimum)
        probing = self.probing(pace, now)
        confirmed = (
            probing
            and pace.ceiling is not None
            and abs(ceiling - pace.ceiling) <= self.same * pace.ceiling
        )
        hold = min(2 * pace.hold, self.max_hold) if confirmed else self.hold
        if confirmed and pace.ceiling is not None:
            # The same limit read again: a reading falls one short when the oldest request of
            # the appliance's second had just left it, so the larger of the two is the better.
            ceiling = max(ceiling, pace.ceiling)
        quiet_from = now if probing else now + pause
        return Pace(ceiling, quiet_from + hold, hold)

    def refused_too(self, pace: Pace) -> Pace:
        """Another 429 for a request in flight at the last one: it was counted as accepted."""
        if pace.ceiling is None:
            return pace
        return Pace(max(pace.ceiling - 1.0, self.minimum), pace.probe_from, pace.hold)


class AdaptiveGate:
    """A PacedGate whose rate follows `Settle`, measured from the grants and the 429s it sees.

    A 429 while settled (or before any) pauses every request for the pause the appliance asked
    (Retry-After): the limit fell, or a competitor came, and the window is full. A 429 drawn by a
    probe says only that the appliance is at its limit: it holds back the request that drew it
    (its retry waits out the pause) while the others go on at the pace just measured, below the
    limit; a job-wide second lost to every probe would cost 5-10% of the rate.
    """

    def __init__(
        self, rate_limit: float | None, clock: Clock | None = None, settle: Settle | None = None
    ) -> None:
        self._clock = clock or SystemClock()
        self._settle = settle or Settle(limit=rate_limit)
        self._pace = self._settle.start()
        self._gate = PacedGate(rate_limit, self._clock, refresh=self._recover)
        self._epoch = 0
        self._refused: deque[float] = deque()  # times of the 429s of the last second
        self._wholesale = True  # the last signal paused the whole job (else: only its request)
        self._signalled = -math.inf  # when the pace last moved on a 429
        self._held: weakref.WeakKeyDictionary[asyncio.Task[Any], float] = (
            weakref.WeakKeyDictionary()
        )  # a probe's 429: its request waits until then

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def rate(self) -> float | None:
        return self._gate.rate

    @property
    def pace(self) -> Pace:
        return self._pace

    async def acquire(self) -> None:
        task = _current_task()
        until = self._held.pop(task, None) if task is not None else None
        if until is not None and until > self._clock.now():
            await self._clock.sleep(until - self._clock.now())
        await self._gate.acquire()

    def restart(self) -> None:
        self._gate.restart()

    def throttled(self, sent_in_epoch: int, pause: float) -> bool:
        """A 429 (its request sent in `sent_in_epoch`) and its pause. The 429s of the requests in
        flight together count as one signal: only one of the current epoch moves the pace."""
        now = self._clock.now()
        self._refused.append(now)
        current = sent_in_epoch == self._epoch
        if current:
            self._wholesale = not self._settle.probing(self._pace, now)
            self._pace = self._settle.throttled(self._pace, now, self._accepted(now), pause)
            self._epoch += 1
            self._signalled = now
        elif sent_in_epoch == self._epoch - 1 and now - self._signalled < 1.0:
            self._pace = self._settle.refused_too(self._pace)
        self._recover()
        task = _current_task()
        if self._wholesale or task is None:
            self._gate.pause_until(now + pause)
        else:
            self._held[task] = max(self._held.get(task, now), now + pause)
        return current

    def _accepted(self, now: float) -> float:
        """Requests per second the appliance accepted over the last second: grants less 429s
        (requests still in flight count as accepted; at a few ms of latency, a fraction of one)."""
        while self._refused and self._refused[0] <= now - 1.0:
            self._refused.popleft()
        return max(0.0, self._gate.observed_rate() - len(self._refused))

    def _recover(self) -> None:
        rate = self._settle.rate(self._pace, self._clock.now())
        if rate != self._gate.rate:
            self._gate.set_rate(rate, self._settle.cap(self._pace, rate))

    def set_ceiling(self, ceiling: float | None) -> None:
        """A new ceiling (a timetable's switch, the operator's control file). Lower: the rate
        drops to it now. Higher (or none): the adaptation starts afresh under it (what drew a
        429 at another hour says little about this one)."""
        before = self._settle.limit
        self._settle = dataclasses.replace(self._settle, limit=ceiling)
        if ceiling is None or (before is not None and ceiling > before):
            self._pace = self._settle.start()
        self._recover()

    def __repr__(self) -> str:
        return f"<AdaptiveGate epoch={self._epoch} {self._pace} {self._gate!r}>"


def _current_task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no running loop: a caller outside asyncio holds the whole gate
        return None
