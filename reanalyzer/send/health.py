"""The appliance's health, as the answers so far tell it: pure decisions on a clock, no I/O.

The sender reports what each request got (a usable answer, a failure without one, a 429, a 413)
and carries out what `Health` decides: retry after a delay, give up, stop the job, pause, split.

- Unreachable, chosen rule: a failure without a usable answer (no connection, reset, timeout,
  408, 5xx) extends a streak shared by all requests; any usable answer ends it. Once the streak
  reaches `unreachable_after` the appliance counts as down: retries stop consuming the requests'
  budgets (so an outage does not turn every hash in flight into `failed`), and when no usable
  answer has come for the outage window the job stops (UnreachableError). The window is shorter
  while the appliance has never answered at all: most likely a wrong URL or a closed port.
- Throttled (429): the job pauses for Retry-After, or for a backoff that grows with the 429s in a
  row across requests; a request may draw `max_throttled` of them, then its hashes are `failed`.
- Learned 413: the largest batch of each kind of request. A 413 halves it below what drew it;
  then the job's own requests search upward (binary search between the largest size answered
  and the smallest refused: 100 refused, 50, 75 refused, 62, 68 refused, 65 refused, 63, 64),
  and the largest size answered is kept for the rest of the job; every later send of that kind
  is sliced to it, and a refused request is sent again in parts, no hash lost.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from reanalyzer.send.backoff import RetryPolicy, parse_retry_after
from reanalyzer.send.config import SendConfig
from reanalyzer.send.pacing import Clock


class Next(enum.StrEnum):
    RETRY = "retry"  # send the same request again after `AfterFailure.delay`
    GIVE_UP = "give_up"  # the request is out of retries: its hashes become `failed`
    UNREACHABLE = "unreachable"  # no usable answer for the whole window: stop the job


@dataclass(frozen=True, slots=True)
class AfterFailure:
    """What to do after a failure without a usable answer."""

    next: Next
    delay: float = 0.0  # RETRY: seconds to wait first
    outage: bool = False  # the appliance looks down: this retry spends no retry of the request
    reason: str = ""  # UNREACHABLE: why, in words


@dataclass(frozen=True, slots=True)
class Pause:
    """A 429's job-wide pause."""

    seconds: float
    retry_after: float | None  # what the appliance asked for, if it said (parsed)


@dataclass(frozen=True, slots=True)
class Split:
    """The parts of a request the appliance refused whole."""

    parts: list[Sequence[str]]
    learned: int | None = None  # a 413 lowered the largest batch of its kind to this


@dataclass(slots=True, kw_only=True)
class Health:
    """Outage, throttle and largest-batch state of one job; every decision reads `clock.now()`.

    `appliance` names it in the unreachable message; `rand` (backoff jitter) and `wall_now` (for
    Retry-After dates) are injected so that tests decide them. `max_batch` holds the largest
    batch per kind of request ("reanalyze", "status"); None: as given.
    """

    clock: Clock
    policy: RetryPolicy
    appliance: str
    unreachable_after: int
    window: float  # seconds without a usable answer that stop the job ...
    window_at_start: float  # ... or these, while the appliance never answered
    max_throttled: int
    max_batch: dict[str, int | None]
    rand: Callable[[], float]
    wall_now: Callable[[], datetime]
    streak: int = 0  # failures in a row without a usable answer, across requests
    throttle_streak: int = 0  # 429s in a row across requests, for the backoff without Retry-After
    answered_once: bool = False
    last_answer: float = field(default=0.0)
    last_heard: float = field(default=0.0)  # the last HTTP answer of any kind (a 5xx, a 429)
    # The 413 search, per kind: the largest batch answered, the smallest refused (413).
    largest_answered: dict[str, int] = field(default_factory=dict)
    smallest_refused: dict[str, int] = field(default_factory=dict)
    # Kinds with a probe (a larger batch) out. A probe that gets no answer at all (it failed)
    # leaves it set: the job then keeps to the largest size answered, which is safe.
    probing: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.last_answer = self.last_heard = self.clock.now()

    @classmethod
    def of(
        cls,
        config: SendConfig,
        clock: Clock,
        max_batch: int | None,
        *,
        rand: Callable[[], float],
        wall_now: Callable[[], datetime],
    ) -> Health:
        """The health of a job sent with `config`, in batches of at most `max_batch`."""
        return cls(
            clock=clock,
            appliance=config.base_url,
            rand=rand,
            wall_now=wall_now,
            policy=RetryPolicy(config.max_retries, config.backoff_base, config.backoff_cap),
            unreachable_after=config.unreachable_after,
            window=config.unreachable_window,
            window_at_start=config.unreachable_window_at_start,
            max_throttled=config.max_throttled,
            max_batch={
                "reanalyze": 1 if config.endpoint == "single" else max_batch,
                "status": max_batch,
            },
        )

    def start(self) -> None:
        """The job starts sending now: silence counts from here."""
        self.last_answer = self.last_heard = self.clock.now()

    def heard(self) -> None:
        """An HTTP answer of any kind came: the appliance is not silent."""
        self.last_heard = self.clock.now()

    def overdue(self, waiting_since: float) -> str | None:
        """Why the job must stop now, or None, while requests are in flight and have been since
        `waiting_since`: no answer of any kind for the outage window. The watchdog of an
        appliance that accepts connections and never answers, whatever the read timeout (a
        failure, which `failed` judges, may come only when that runs out)."""
        silent = self.clock.now() - max(self.last_heard, waiting_since)
        if silent < self.outage_window():
            return None
        return (
            f"the appliance at {self.appliance} has not answered for {silent:.0f} s "
            "(requests in flight, no answer; the connection was accepted)"
        )

    def answered(self, kind: str | None = None, size: int = 0) -> None:
        """A usable answer (a verdict, or a whole-request refusal): the appliance is up. With
        `kind`, a request of `size` hashes was answered whole (see `answered_batch`)."""
        if kind is not None:
            self.answered_batch(kind, size)
        self.answered_once = True
        self.streak = self.throttle_streak = 0
        self.last_answer = self.clock.now()

    def failed(self, reason: str, retries: int) -> AfterFailure:
        """A failure without a usable answer, to a request that has spent `retries` retries."""
        self.streak += 1
        if self.streak < self.unreachable_after:
            if self.policy.exhausted(retries):
                return AfterFailure(Next.GIVE_UP)
            return AfterFailure(Next.RETRY, self.policy.delay(retries + 1, rand=self.rand))
        silent = self.clock.now() - self.last_answer
        window = self.outage_window()
        if silent >= window:
            return AfterFailure(
                Next.UNREACHABLE,
                outage=True,
                reason=(
                    f"the appliance at {self.appliance} gave no usable answer for {silent:.0f} s "
                    f"({self.streak} failures in a row, last: {reason})"
                ),
            )
        # Try again when the window ends at the latest: its failure then stops the job on time.
        delay = self.policy.delay(self.streak, rand=self.rand)
        delay = min(delay, max(window - silent, 0.0) + 0.01)
        return AfterFailure(Next.RETRY, delay, outage=True)

    def name_unresolved(self, reason: str) -> str | None:
        """The appliance's host name did not resolve: before it ever answered, a misspelt
        --url, said at once (the message); once it has answered, a resolver's moment (None),
        retried as any failure without an answer."""
        if self.answered_once:
            return None
        return (
            f"{reason}: no appliance at {self.appliance}; check the host name in --url "
            "(and the DNS of this machine)"
        )

    def outage_window(self) -> float:
        """Seconds without a usable answer that mean the appliance is unreachable. One that
        never answered at all is most likely a wrong URL or a closed port: say so soon, rather
        than after the patience an outage mid-job deserves."""
        if self.answered_once:
            return self.window
        return min(self.window, self.window_at_start)

    def throttled(self, retry_after: str | None, throttles: int) -> Pause | None:
        """A 429 (with its Retry-After header), the request's `throttles`-th: the job-wide
        pause, or None when the request has drawn too many and its hashes are `failed`."""
        if throttles > self.max_throttled:
            return None
        self.throttle_streak += 1
        asked = parse_retry_after(retry_after, self.wall_now)
        return Pause(self.policy.delay(self.throttle_streak, asked, self.rand), asked)

    def largest(self, kind: str) -> int | None:
        return self.max_batch[kind]

    def learned(self, kind: str) -> int | None:
        """The largest batch of `kind` the appliance takes, once a 413 has been drawn and the
        search is over (every size up to the one refused tried); None until then."""
        answered, refused = self.largest_answered.get(kind), self.smallest_refused.get(kind)
        if answered is None or refused is None or answered + 1 < refused:
            return None
        return answered

    def batch_to_cut(self, kind: str) -> int | None:
        """The size to cut batches of `kind` at before they are sent: the top of the 413 search
        (just below the smallest refused), so that a probe has hashes enough to try; `parts`
        slices each to what the job knows the appliance takes. None: as given."""
        refused = self.smallest_refused.get(kind)
        return self.max_batch[kind] if refused is None else max(1, refused - 1)

    def answered_batch(self, kind: str, size: int) -> int | None:
        """A request of `kind` and `size` hashes was answered: after a 413, probe a larger batch
        (halfway to the smallest refused). The new largest batch, if it changed."""
        current = self.max_batch[kind]
        if current is not None and size >= current:
            self.probing.discard(kind)
        if size <= self.largest_answered.get(kind, 0):
            return None
        self.largest_answered[kind] = size
        refused = self.smallest_refused.get(kind)
        if refused is None:
            return None
        largest = max(size, (size + refused) // 2)
        if largest == current:
            return None
        self.max_batch[kind] = largest
        return largest

    def parts(self, kind: str, hashes: Sequence[str]) -> list[Sequence[str]]:
        """`hashes` in requests of `kind` the appliance takes, as far as the job knows."""
        largest = self.max_batch[kind]
        if not largest:
            return [hashes]
        answered = self.largest_answered.get(kind, largest)
        if answered >= largest or len(hashes) <= answered:
            return chunked(hashes, largest)
        # A probe of a larger batch: one request at a time tries it, the others keep to the
        # largest answered, so that a refusal costs one 413, not one per request in flight.
        if kind in self.probing:
            return chunked(hashes, answered)
        self.probing.add(kind)
        return [hashes[:largest], *chunked(hashes[largest:], answered)]

    def split(self, kind: str, batch: Sequence[str], *, too_large: bool) -> Split:
        """A request refused whole: in halves, to find the sample it was refused for; or, for a
        413 (`too_large`), in parts of the largest batch left, below what drew it."""
        if not too_large:
            return Split(halves(batch))
        self.probing.discard(kind)
        refused = min(len(batch), self.smallest_refused.get(kind, len(batch)))
        self.smallest_refused[kind] = refused
        answered = min(self.largest_answered.get(kind, 0), refused - 1)
        # Halfway between the largest answered and the smallest refused; half, if none answered.
        smaller = max(1, (answered + refused) // 2 if answered else len(batch) // 2)
        largest = self.max_batch[kind]
        learned = None
        if largest is None or smaller < largest:
            largest = learned = self.max_batch[kind] = smaller
        return Split(chunked(batch, largest), learned)

    def __repr__(self) -> str:
        return (
            f"<Health streak={self.streak} throttle_streak={self.throttle_streak} "
            f"answered_once={self.answered_once} max_batch={self.max_batch}>"
        )


def chunked(hashes: Sequence[str], size: int) -> list[Sequence[str]]:
    """Consecutive slices of at most `size` (>= 1): together exactly `hashes`, in order."""
    size = max(1, size)
    return [hashes[i : i + size] for i in range(0, len(hashes), size)]


def halves(hashes: Sequence[str]) -> list[Sequence[str]]:
    """Two non-empty halves of a request of two or more hashes (the first the larger)."""
    mid = (len(hashes) + 1) // 2
    return [hashes[:mid], hashes[mid:]]
