"""The front's CPU-heavy half, in two steps run ahead of the loop: sort, then dedupe.

``sorted_blocks`` sorts each block's lines into hashes by type, invalid lines and skipped ones,
and drops the records of other shards; ``deduped`` takes a block's repeats out of it and holds
the dedupe set. Both run where `readahead` runs them (the reading child where the platform
forks), so that the loop's process gets blocks ready to batch and the set is held in one
process only.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import chain, compress
from typing import TYPE_CHECKING

from reanalyzer.core.hashes import HashType
from reanalyzer.core.positions import Block
from reanalyzer.core.shards import Shard, shards_of
from reanalyzer.read.normalize import SortedBlock, sort_block

if TYPE_CHECKING:
    from reanalyzer.read.dedupe import SeenSet


@dataclass(slots=True)
class Prepared:
    """A block sorted and deduplicated: the CPU-heavy part, done ahead of the loop so that
    the loop stays free to read answers and send requests on time."""

    block: Block  # where the block sits (its lines are dropped: they are sorted already)
    lines: int  # how many lines it had
    sorted_block: SortedBlock  # its hashes and positions without the repeats
    duplicates: list[tuple[HashType, str, int]]
    other_shards: int = 0  # its records that another shard records
    unremembered: int = 0  # its new hashes the dedupe set had no room left for
    text_bytes: int = 0  # the bytes its lines took, newlines included (the first block only)


def _keep_shard(sorted_block: SortedBlock, shard: Shard) -> int:
    """Drop the records of other shards from a sorted block; how many were dropped."""
    if shard.count == 1:
        return 0
    dropped = 0
    for hash_type, hashes in sorted_block.hashes.items():
        mine = shard.index
        owners = shards_of(hashes, shard.count)
        positions = sorted_block.positions[hash_type]
        kept = [i for i, owner in enumerate(owners) if owner == mine]
        if len(kept) < len(hashes):
            dropped += len(hashes) - len(kept)
            sorted_block.joined.pop(hash_type, None)
            sorted_block.hashes[hash_type] = [hashes[i] for i in kept]
            sorted_block.positions[hash_type] = [positions[i] for i in kept]
    if not shard.records_invalid:
        dropped += len(sorted_block.invalid)
        sorted_block.invalid = []
    return dropped


def sorted_blocks(blocks: Iterator[Block], shard: Shard | None) -> Iterator[Prepared]:
    """Stage 1: each block sorted, other shards' records dropped (before dedupe:
    a hash and its repeats are in one shard, and the set holds this one's only)."""
    first = True
    for block in blocks:
        sorted_block = sort_block(block)
        other_shards = _keep_shard(sorted_block, shard) if shard is not None else 0
        # Only where the block sits goes on (from a child process, pickled).
        where = Block(
            block.source_index,
            [],
            block.first_line,
            block.line_numbers[:1] if block.line_numbers else None,
            end_line=block.end_line,
            end_offset=block.end_offset,
        )
        text_bytes = 0
        if first and block.lines:
            text_bytes, first = sum(map(len, block.lines)) + len(block.lines), False
        yield Prepared(where, len(block.lines), sorted_block, [], other_shards, 0, text_bytes)


def _drop_repeats(prepared: Prepared, seen: SeenSet) -> None:
    import numpy as np  # here only: see deduped

    sorted_block = prepared.sorted_block
    before = seen.unremembered
    joined = sorted_block.joined
    found = seen.repeats(sorted_block.hashes, joined)
    duplicates = prepared.duplicates
    for hash_type, (repeats, keep) in found.items():
        hashes = sorted_block.hashes[hash_type]
        positions = sorted_block.positions[hash_type]
        duplicates += [(hash_type, hashes[i], positions[i]) for i in repeats.tolist()]
        text = joined.get(hash_type)
        if text is None:  # no text of the hashes (another shard's were taken out)
            sorted_block.hashes[hash_type] = list(compress(hashes, keep.tolist()))
            sorted_block.positions[hash_type] = list(compress(positions, keep.tolist()))
            continue
        # What crosses to the loop, made from the text in C: the rows of the hashes kept (each
        # hash and its newline), and their positions as int64s; not lists to join again.
        rows = np.frombuffer(text + b"\n", dtype=np.uint8).reshape(len(hashes), -1)
        kept = rows[keep].tobytes()[:-1].decode("ascii")
        at = np.frombuffer(array("q", positions), dtype=np.int64)[keep].tobytes()
        sorted_block.wire[hash_type] = kept, at
        sorted_block.hashes[hash_type], sorted_block.positions[hash_type] = [], []
    sorted_block.joined = {}  # read: the hashes kept are fewer
    prepared.unremembered = seen.unremembered - before


def deduped(
    prepared: Iterator[Prepared],
    memory: int | None,
    seen_from: Callable[[], Iterator[list[str]]] | None,
    input_bytes: int | None = None,
) -> Iterator[Prepared]:
    """Stage 2: the repeats taken out of each block, in input order. The dedupe set is made,
    and a resumed job's recorded hashes read into it, where this runs (the reading child), so
    that it is held in one process only. numpy, too, is imported here only: it starts
    threads, and a process with threads must not fork (see readahead)."""
    from reanalyzer.read.dedupe import SeenSet

    seen = SeenSet(memory)
    items = iter(prepared)
    first = next(items, None)
    if input_bytes and first is not None and first.text_bytes:
        # Sized once for the lines the whole input holds at the first block's bytes a line
        # (a resumed job's recorded ones included), rather than grown as it fills.
        seen.expect(input_bytes * first.lines // first.text_bytes)
    if seen_from is not None:
        for hashes in seen_from():
            seen.repeats({0: hashes})
        seen.unremembered = 0  # only this run's input counts: those hashes went out before
    if first is None:
        return
    for item in chain((first,), items):
        _drop_repeats(item, seen)
        yield item
