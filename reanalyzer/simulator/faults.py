"""Faults on demand: latency, a hidden rate limit, 5xx answers and dropped connections."""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable
from typing import Protocol

from reanalyzer.simulator.answers import Reply
from reanalyzer.simulator.config import SimulatorConfig


class Clock(Protocol):
    """Monotonic seconds; tests pass a fake so that rate tests never sleep."""

    def __call__(self) -> float: ...


_REASONS = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def html_error(status: int) -> Reply:
    """A 5xx as the appliance's front proxy sends it: HTML, not JSON."""
    title = f"{status} {_REASONS.get(status, 'Error')}"
    body = (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    )
    return Reply(status, body.encode(), content_type="text/html")


class RateWindow:
    """At most `rate` requests in any sliding second; requests it refuses do not count.

    The limit is not disclosed to clients (no X-RateLimit headers), only Retry-After on a 429,
    as the appliance documents no rate limit at all.
    """

    def __init__(self, rate: float, clock: Clock) -> None:
        if rate <= 0:
            raise ValueError("rate_limit must be positive")
        # Under one request per second the window widens so that the rate still holds.
        self._window = max(1.0, 1.0 / rate)
        self._capacity = max(1, math.floor(rate * self._window))
        self._clock = clock
        self._times: deque[float] = deque()

    def __repr__(self) -> str:
        return f"<RateWindow {self._capacity}/{self._window}s used={len(self._times)}>"

    def admit(self) -> int | None:
        """None if the request may go on, else the whole seconds to put in Retry-After."""
        now = self._clock()
        while self._times and self._times[0] <= now - self._window:
            self._times.popleft()
        if len(self._times) < self._capacity:
            self._times.append(now)
            return None
        return max(1, math.ceil(self._times[0] + self._window - now))


def throttled(retry_after: int) -> Reply:
    """A 429 in Django REST framework's words, with Retry-After in seconds."""
    body = f'{{"detail":"Request was throttled. Expected available in {retry_after} seconds."}}'
    return Reply(429, body.encode(), headers=(("Retry-After", str(retry_after)),))


class Dice:
    """The random faults, from one seeded generator so that a run can be replayed."""

    def __init__(self, config: SimulatorConfig, rng: Callable[[], float] | None = None) -> None:
        self._rng = rng or random.Random(config.fault_seed).random
        self._latency = config.latency_ms / 1000
        self._jitter = config.latency_jitter_ms / 1000
        self._error_rate = config.error_rate
        self._drop_rate = config.drop_rate

    def delay(self) -> float:
        """Seconds to wait before answering."""
        if not self._jitter:
            return self._latency
        return self._latency + self._jitter * self._rng()

    def server_error(self) -> Reply | None:
        """A 5xx to answer instead of doing the work, or None."""
        if self._error_rate and self._rng() < self._error_rate:
            return html_error((500, 502, 503, 504)[int(self._rng() * 4) % 4])
        return None

    def drop(self) -> bool:
        """Whether to cut the connection once the work is done."""
        return bool(self._drop_rate) and self._rng() < self._drop_rate
