"""The front of the pipeline: inputs → normalize → dedupe → batching, as one async stream.

Reading runs in a thread (files and pipes block; a trickle on stdin must not stall the loop's
idle flush); sorting, dedupe and batching run on the loop, block by block. What the front decides
on its own (invalid lines, duplicates) and the chunks to send both go to a ``FrontSink``.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from reanalyzer.batching import Batcher, Chunk
from reanalyzer.dedupe import SeenSet
from reanalyzer.hashes import HashType
from reanalyzer.inputs import Block
from reanalyzer.normalize import sort_block

_QUEUE_BLOCKS = 4  # blocks read ahead: enough to keep the loop busy, little memory


@dataclass(frozen=True, slots=True)
class LocalOutcomes:
    """Outcomes the front decides without the appliance, for the lines of one block."""

    invalid: list[tuple[int, str]]  # (position, reason)
    duplicates: list[tuple[HashType, str, int]]  # (type, hash, position)


@dataclass(slots=True)
class FrontStats:
    """What the front has seen so far; every non-skipped line is in exactly one count."""

    lines: int = 0  # every physical line or record, skipped ones included
    skipped: int = 0  # blank lines and comments: not records
    invalid: int = 0
    duplicates: int = 0
    chunks: int = 0
    hashes: Counter[HashType] = field(default_factory=Counter)  # distinct, to be sent

    @property
    def records(self) -> int:
        return self.lines - self.skipped

    @property
    def to_send(self) -> int:
        return sum(self.hashes.values())


class FrontSink(Protocol):
    async def settled(self, outcomes: LocalOutcomes) -> None: ...

    async def chunk(self, chunk: Chunk) -> None: ...


class _End:
    pass


_END = _End()


class _Reader:
    """A thread that reads blocks into the loop's queue, at most _QUEUE_BLOCKS ahead.

    The thread never creates a coroutine: it hands items over with call_soon_threadsafe and waits
    for room on a semaphore that the loop releases as it takes items, so stopping is always clean.
    """

    def __init__(self, blocks: Iterator[Block]) -> None:
        self.queue: asyncio.Queue[Block | BaseException | _End] = asyncio.Queue()
        self._blocks = blocks
        self._loop = asyncio.get_running_loop()
        self._room = threading.Semaphore(_QUEUE_BLOCKS)
        self._stop = threading.Event()
        threading.Thread(target=self._work, name="reanalyzer-reader", daemon=True).start()

    async def get(self) -> Block | BaseException | _End:
        item = await self.queue.get()
        self._room.release()
        return item

    def stop(self) -> None:
        self._stop.set()

    def _put(self, item: Block | BaseException | _End) -> bool:
        while not self._room.acquire(timeout=0.1):
            if self._stop.is_set():
                return False
        if self._stop.is_set():
            return False
        try:
            self._loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            return False
        return True

    def _work(self) -> None:
        try:
            for block in self._blocks:
                if not self._put(block):
                    return
        except BaseException as exc:  # handed to the loop, which raises it there
            self._put(exc)
            return
        self._put(_END)


async def run_front(
    blocks: Iterator[Block],
    sink: FrontSink,
    batch_size: int,
    *,
    dedupe: bool = True,
    idle_flush: float = 0.5,
    stats: FrontStats | None = None,
) -> FrontStats:
    """Stream every block through the front into the sink; return what was seen."""
    stats = stats if stats is not None else FrontStats()
    seen = SeenSet() if dedupe else None
    batcher = Batcher(batch_size)
    reader = _Reader(blocks)
    getter: asyncio.Future[Block | BaseException | _End] | None = None
    try:
        while True:
            # asyncio.wait, unlike wait_for, never cancels the getter: no block can be lost
            # between a timeout and the queue handing it over.
            if getter is None:
                getter = asyncio.ensure_future(reader.get())
            done, _ = await asyncio.wait({getter}, timeout=idle_flush if batcher.pending else None)
            if not done:
                await _send_all(sink, batcher.flush(), stats)
                continue
            item, getter = getter.result(), None
            if isinstance(item, _End):
                break
            if isinstance(item, BaseException):
                raise item
            await _process(item, sink, batcher, seen, stats)
        await _send_all(sink, batcher.flush(), stats)
    finally:
        reader.stop()
        if getter is not None:
            getter.cancel()
    return stats


async def _process(
    block: Block, sink: FrontSink, batcher: Batcher, seen: SeenSet | None, stats: FrontStats
) -> None:
    sorted_block = sort_block(block)
    stats.lines += len(block.lines)
    stats.skipped += sorted_block.skipped
    stats.invalid += len(sorted_block.invalid)
    duplicates: list[tuple[HashType, str, int]] = []
    chunks: list[Chunk] = []
    for hash_type, hashes in sorted_block.hashes.items():
        positions = sorted_block.positions[hash_type]
        if seen is not None:
            repeats = seen.mark_repeats(hashes)
            if any(repeats):
                duplicates += [
                    (hash_type, h, p)
                    for h, p, r in zip(hashes, positions, repeats, strict=True)
                    if r
                ]
                hashes = [h for h, r in zip(hashes, repeats, strict=True) if not r]
                positions = [p for p, r in zip(positions, repeats, strict=True) if not r]
        stats.hashes[hash_type] += len(hashes)
        chunks += batcher.add(hash_type, hashes, positions)
    stats.duplicates += len(duplicates)
    if sorted_block.invalid or duplicates:
        await sink.settled(LocalOutcomes(sorted_block.invalid, duplicates))
    await _send_all(sink, chunks, stats)


async def _send_all(sink: FrontSink, chunks: list[Chunk], stats: FrontStats) -> None:
    for chunk in chunks:
        stats.chunks += 1
        await sink.chunk(chunk)
