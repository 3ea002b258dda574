"""When to try again: a retry policy as a value, and the parsing of ``Retry-After``.

Pure: randomness and the wall clock are passed in, so tests choose them.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Capped exponential backoff with full jitter (the AWS architecture blog's "full jitter").

    Retry number n (1-based) waits uniform(0, min(cap, base * 2**(n-1))) seconds. A `Retry-After`
    from the appliance is honoured instead, up to `retry_after_cap` so a wild value cannot stall
    the job for hours.
    """

    max_retries: int = 5
    base: float = 0.5
    cap: float = 30.0
    retry_after_cap: float = 300.0

    def exhausted(self, retries_done: int) -> bool:
        """True when `retries_done` retries have been spent and no more may follow."""
        return retries_done >= self.max_retries

    def ceiling(self, retry_number: int) -> float:
        """The largest backoff retry `retry_number` (1-based) can draw."""
        exponent = min(max(retry_number, 1) - 1, 62)  # 2**62 * base is far past any cap
        return min(self.cap, self.base * (2.0**exponent))

    def backoff(self, retry_number: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry `retry_number`; `rand` returns a float in [0, 1)."""
        return rand() * self.ceiling(retry_number)

    def delay(
        self,
        retry_number: int,
        retry_after: float | None = None,
        rand: Callable[[], float] = random.random,
    ) -> float:
        """The wait before retry `retry_number`: the appliance's `Retry-After` when it gave one."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.retry_after_cap)
        return self.backoff(retry_number, rand)


def parse_retry_after(
    value: str | None, now: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta seconds or an HTTP date.

    None when absent or unparseable; a date in the past gives 0.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if seconds == seconds and seconds != float("inf") else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; an "-0000" zone parses as naive
        when = when.replace(tzinfo=UTC)
    return max((when - now()).total_seconds(), 0.0)
