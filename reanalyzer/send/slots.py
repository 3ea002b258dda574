"""A semaphore whose size can change while it is held: the job's concurrency, changed live.

asyncio.Semaphore has a fixed size. ``Slots`` grants in arrival order (FIFO) while fewer than
``size`` are taken; a smaller size takes effect as slots are given back (none is taken away
from a request in flight), a larger one wakes waiters at once.
"""

from __future__ import annotations

import asyncio
from collections import deque
from types import TracebackType


class Slots:
    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self._size = size
        self._taken = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def size(self) -> int:
        return self._size

    @property
    def taken(self) -> int:
        return self._taken

    def resize(self, size: int) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self._size = size
        self._wake()

    async def acquire(self) -> None:
        if self._taken < self._size and not self._waiters:
            self._taken += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # granted: the slot was taken on this waiter's behalf
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # granted, then cancelled before it could use the slot
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        self._taken -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self._taken < self._size:
            waiter = self._waiters.popleft()
            if waiter.done():
                continue
            self._taken += 1
            waiter.set_result(None)

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
