"""The watchdog of requests waiting for their answers: a request waits up to the read timeout
(60 s by default, and any value may be set), so silence judged only when a request fails may
be judged far too late. While requests are in flight, `Health.overdue` is asked every moment
whether the appliance has been silent for the outage window; when it has, the requests still
waiting are cut off (cancelled) and end with the job's UnreachableError.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from reanalyzer.send.health import Health
from reanalyzer.send.pacing import Clock


class Watchdog:
    """Keeps the tasks sending a request; `run` cuts them off when the appliance is silent."""

    def __init__(self, health: Health, clock: Clock) -> None:
        self._health = health
        self._clock = clock
        self._busy_since = 0.0  # when requests went in flight, none being before
        self._sending: set[asyncio.Task[Any]] = set()
        self._cut_off: set[asyncio.Task[Any]] = set()

    def sending(self) -> asyncio.Task[Any]:
        """The current task sends a request now, until `done`."""
        task = asyncio.current_task()
        assert task is not None
        if not self._sending:
            self._busy_since = self._clock.now()
        self._sending.add(task)
        return task

    def done(self, task: asyncio.Task[Any]) -> None:
        self._sending.discard(task)

    def cut_off(self, task: asyncio.Task[Any]) -> bool:
        """Whether `task` was cancelled by the watchdog (then no longer counted as cancelled:
        it ends with the job's error instead)."""
        if task not in self._cut_off:
            return False
        task.uncancel()
        return True

    async def run(self, silent: Callable[[str], None]) -> None:
        """Until cancelled: once the appliance is overdue, tell `silent` why (it makes the job's
        error) and cut off every request still waiting."""
        while True:
            await asyncio.sleep(max(0.05, min(1.0, self._health.outage_window() / 10)))
            reason = self._health.overdue(self._busy_since) if self._sending else None
            if reason is None:
                continue
            silent(reason)
            self._cut_off |= self._sending
            for task in self._sending:
                task.cancel()
