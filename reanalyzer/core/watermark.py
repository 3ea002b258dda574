"""The low watermark: below it every input record has its outcome recorded (pure; no I/O).

Blocks are registered in input order with the number of hashes they still wait for; as outcomes
are recorded the oldest finished blocks fall below the mark, which is where a resume starts.
``record.checkpoint`` makes the mark durable.
"""

from __future__ import annotations

import operator
from bisect import bisect_left, bisect_right
from collections import deque
from dataclasses import dataclass

from reanalyzer.core.positions import Block, ResumePoint, position


@dataclass(slots=True)
class _OpenBlock:
    first: int  # position of the block's first line
    pending: int  # hashes of the block sent and not yet recorded
    registered: bool  # its hash count is known (set once the front has batched it)
    end_line: int
    end_offset: int | None
    source_index: int


class Watermark:
    """Tracks which input blocks are fully recorded, oldest first; ``mark`` is the resume point."""

    def __init__(self, start: ResumePoint | None = None) -> None:
        self.mark = start or ResumePoint(0, 1, 0)
        self._blocks: deque[_OpenBlock] = deque()
        self._firsts: list[int] = []  # first positions of the blocks, for bisect; trimmed lazily
        self._source = self.mark.source_index
        self._sources: int | None = None  # how many inputs, once reading has ended

    def open_block(self, block: Block) -> None:
        """A block the front is about to sort: none of its records is recorded yet."""
        self._start_sources_until(block.source_index)
        first_line = block.line_numbers[0] if block.line_numbers else block.first_line
        self._push(
            _OpenBlock(
                position(block.source_index, first_line),
                0,
                False,
                block.end_line,
                block.end_offset,
                block.source_index,
            )
        )

    def register(self, pending: int) -> None:
        """The newest block sends this many hashes; its other records are already recorded."""
        newest = self._blocks[-1]
        newest.pending += pending
        newest.registered = True
        self._advance()

    def recorded(self, positions: tuple[int, ...] | list[int]) -> None:
        """The outcomes of these sent hashes are recorded."""
        trimmed = len(self._firsts) - len(self._blocks)
        blocks, firsts = self._blocks, self._firsts
        if all(map(operator.lt, positions, positions[1:])):
            # A chunk's positions ascend (the front batches blocks in input order): count them
            # a block at a time, two bisects per block rather than one per hash.
            i, n = 0, len(positions)
            while i < n:
                k = bisect_right(firsts, positions[i]) - 1
                j = bisect_left(positions, firsts[k + 1], i) if k + 1 < len(firsts) else n
                blocks[k - trimmed].pending -= j - i
                i = j
        else:
            for pos in positions:
                blocks[bisect_right(firsts, pos) - 1 - trimmed].pending -= 1
        self._advance()

    def finish(self, sources: int) -> None:
        """Every input was read to its end."""
        self._sources = sources
        self._start_sources_until(sources)

    @property
    def complete(self) -> bool:
        """Reading reached the end of the last input, and everything read is recorded."""
        return self._sources is not None and not self._blocks

    def _start_sources_until(self, source_index: int) -> None:
        # A new source begins: once all before it is recorded, the mark moves to its start.
        while self._source < source_index:
            self._source += 1
            self._push(_OpenBlock(position(self._source, 0), 0, True, 1, 0, self._source))

    def _push(self, block: _OpenBlock) -> None:
        self._blocks.append(block)
        self._firsts.append(block.first)
        self._advance()

    def _advance(self) -> None:
        blocks = self._blocks
        while blocks and blocks[0].registered and blocks[0].pending == 0:
            done = blocks.popleft()
            if done.end_offset is not None or done.source_index != self.mark.source_index:
                self.mark = ResumePoint(done.source_index, done.end_line, done.end_offset)
            else:  # no byte offset here (CSV, mid over-long line): resume rereads the source
                self.mark = ResumePoint(done.source_index, done.end_line, None)
        if len(self._firsts) > 2 * len(blocks) + 64:
            del self._firsts[: len(self._firsts) - len(blocks)]

    def __repr__(self) -> str:
        return f"<Watermark at {self.mark} with {len(self._blocks)} blocks open>"
