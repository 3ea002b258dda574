"""The front of the pipeline: inputs → normalize → dedupe → batching, as one async stream.

Reading, sorting and dedupe (`prepare`) run ahead of the loop, in a child process or a
thread (see `readahead`: files and pipes block, and a trickle on stdin must not stall the loop's
idle flush); batching runs on the loop, block by block. What the front decides on its own
(invalid lines, duplicates) and the chunks to send both go to a ``FrontSink``.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from reanalyzer.core.hashes import HashType
from reanalyzer.core.positions import Block, position
from reanalyzer.core.shards import Shard
from reanalyzer.core.watermark import Watermark
from reanalyzer.errors import InputError
from reanalyzer.read import readahead
from reanalyzer.read.batching import Batcher, Chunk
from reanalyzer.read.prepare import Prepared, deduped, sorted_blocks

log = structlog.get_logger("reanalyzer.read.front")


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
    other_shards: int = 0  # records another shard records (--shard): not this worker's
    chunks: int = 0
    hashes: Counter[HashType] = field(default_factory=Counter)  # distinct, to be sent
    source_index: int = 0  # where reading is: the input ...
    offset: int | None = None  # ... and the byte offset in it (None: not known)
    unremembered: int = 0  # new hashes sent with the dedupe set full (--dedupe-memory)
    reader_peak_rss_kib: int | None = None  # of the read-ahead child, once it has ended

    @property
    def records(self) -> int:
        """This worker's records (with --shard: of its shard)."""
        return self.lines - self.skipped - self.other_shards

    @property
    def to_send(self) -> int:
        return sum(self.hashes.values())


class FrontSink(Protocol):
    async def settled(self, outcomes: LocalOutcomes) -> None: ...

    async def chunk(self, chunk: Chunk) -> None: ...


async def run_front(
    blocks: Iterator[Block],
    sink: FrontSink,
    batch_size: int,
    *,
    dedupe: bool = True,
    idle_flush: float = 0.5,
    stats: FrontStats | None = None,
    seen_from: Callable[[], Iterator[list[str]]] | None = None,
    dedupe_memory: int | None = None,
    watermark: Watermark | None = None,
    skip_below: int = 0,
    shard: Shard | None = None,
    batch_size_now: Callable[[], int] | None = None,
    input_bytes: int | None = None,
) -> FrontStats:
    """Stream every block through the front into the sink; return what was seen.

    A resumed job passes ``seen_from``, a reader of the hashes of its recorded part (called
    where the dedupe set is held: in the reading child), the ``watermark`` to keep up to date,
    and ``skip_below``: lines before that position are read again but are already recorded,
    so they go nowhere. With a ``shard``, only its records
    go on (see core/shards.py); the others are counted in ``other_shards``. The dedupe set
    holds at most ``dedupe_memory`` bytes (None: no bound); past it, new hashes go on
    unremembered (counted in ``unremembered``, warned about once). ``batch_size_now``,
    read before each block, is the batch size the sending side takes now (smaller after a 413).
    ``input_bytes``, the inputs' size if known, sizes the dedupe set ahead.
    """
    front = _Front(
        sink,
        Batcher(batch_size),
        stats if stats is not None else FrontStats(),
        watermark,
        skip_below,
        batch_size_now,
        dedupe_memory,
    )
    prepared = sorted_blocks(blocks, shard)
    if dedupe:
        prepared = deduped(prepared, dedupe_memory, seen_from, input_bytes)
    reader = readahead.start(prepared)
    getter: asyncio.Future[Prepared | BaseException | readahead.End] | None = None
    try:
        while True:
            # asyncio.wait, unlike wait_for, never cancels the getter: no block can be lost
            # between a timeout and the queue handing it over.
            if getter is None:
                getter = asyncio.ensure_future(reader.get())
            idle = idle_flush if front.batcher.pending else None
            done, _ = await asyncio.wait({getter}, timeout=idle)
            if not done:
                await front.send(front.batcher.flush())
                continue
            item, getter = getter.result(), None
            if isinstance(item, readahead.End):
                break
            if isinstance(item, BaseException):
                if isinstance(item, InputError):  # the lines read before it still go out
                    await front.send(front.batcher.flush())
                raise item
            await front.process(item)
        await front.send(front.batcher.flush())
    finally:
        reader.stop()
        if getter is not None:
            getter.cancel()
    front.stats.reader_peak_rss_kib = reader.peak_rss_kib
    return front.stats


@dataclass(slots=True)
class _Front:
    sink: FrontSink
    batcher: Batcher
    stats: FrontStats
    watermark: Watermark | None
    skip_below: int
    batch_size_now: Callable[[], int] | None = None
    dedupe_memory: int | None = None

    async def process(self, prepared: Prepared) -> None:
        block, sorted_block = prepared.block, prepared.sorted_block
        sorted_block.unwire()  # a block from a thread: what dedupe left as text, as lists
        if self.watermark is not None:
            self.watermark.open_block(block)
        stats = self.stats
        stats.lines += prepared.lines
        stats.source_index, stats.offset = block.source_index, block.end_offset
        stats.skipped += sorted_block.skipped
        stats.other_shards += prepared.other_shards
        if prepared.unremembered:
            if not stats.unremembered:
                log.warning(
                    "front.dedupe_full",
                    dedupe_memory=self.dedupe_memory,
                    message="the dedupe set has reached --dedupe-memory: new hashes "
                    "are no longer remembered; a later repeat of one is sent again "
                    "(the appliance answers already_queued)",
                )
            stats.unremembered += prepared.unremembered
        invalid, duplicates = sorted_block.invalid, prepared.duplicates
        # A resumed job rereads lines it already recorded only where it had no byte offset.
        first_line = block.line_numbers[0] if block.line_numbers else block.first_line
        skipping = position(block.source_index, first_line) < self.skip_below
        pending = 0
        for hash_type, hashes in sorted_block.hashes.items():
            positions = sorted_block.positions[hash_type]
            if skipping:
                kept = [i for i, p in enumerate(positions) if p >= self.skip_below]
                hashes = [hashes[i] for i in kept]
                positions = [positions[i] for i in kept]
            stats.hashes[hash_type] += len(hashes)
            pending += len(hashes)
            self.batcher.put(hash_type, hashes, positions)
        if skipping:
            invalid = [item for item in invalid if item[0] >= self.skip_below]
            duplicates = [item for item in duplicates if item[2] >= self.skip_below]
        stats.invalid += len(invalid)
        stats.duplicates += len(duplicates)
        if invalid or duplicates:
            await self.sink.settled(LocalOutcomes(invalid, duplicates))
        if self.watermark is not None:
            self.watermark.register(pending)
        await self.send_full()

    async def send_full(self) -> None:
        """The full chunks, each cut at the batch size of the moment it leaves: after a 413 the
        rest of a block goes at the size the appliance takes, not at that size and a rest."""
        while True:
            if self.batch_size_now is not None:
                self.batcher.batch_size = max(1, self.batch_size_now())
            chunk = self.batcher.take()
            if chunk is None:
                return
            self.stats.chunks += 1
            await self.sink.chunk(chunk)

    async def send(self, chunks: list[Chunk]) -> None:
        for chunk in chunks:
            self.stats.chunks += 1
            await self.sink.chunk(chunk)
