"""What a stop signal means, given the ones before it: a pure decision on a clock.

GNU `timeout` (and a terminal's Ctrl-C, and some supervisors) deliver the same request twice in
a moment: `timeout -s INT` signals the runner, then its process group, the runner included. Only
a signal that comes a while after the first one is a person's "now, not cleanly".
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field

SAME_REQUEST_WINDOW = 1.0  # seconds after the first signal in which another is the same request


class OnSignal(enum.StrEnum):
    STOP = "stop"  # the first: stop cleanly (finish what is in flight, record, checkpoint)
    SAME = "same"  # within the window after the first: the same request again; nothing to do
    NOW = "now"  # later: exit at once


@dataclass(slots=True)
class StopSignals:
    """The stop signals a run has had; `now` is monotonic time in seconds."""

    now: Callable[[], float] = time.monotonic
    window: float = SAME_REQUEST_WINDOW
    first: float | None = field(default=None)

    def received(self) -> OnSignal:
        """What the signal that has just arrived asks for."""
        at = self.now()
        if self.first is None:
            self.first = at
            return OnSignal.STOP
        return OnSignal.SAME if at - self.first < self.window else OnSignal.NOW
