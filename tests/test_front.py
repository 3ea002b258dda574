"""The front of the pipeline end to end: blocks in, local outcomes and chunks out to a sink."""

from __future__ import annotations

import asyncio
import hashlib
import os
import select
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reanalyzer.core.hashes import HashType
from reanalyzer.core.positions import Block, position
from reanalyzer.errors import InputError
from reanalyzer.read.batching import Chunk
from reanalyzer.read.formats import InputFormat, read_blocks
from reanalyzer.read.front import FrontStats, LocalOutcomes, run_front


class FakeSink:
    """Keeps what the front hands over; can signal the first chunk to a waiting test."""

    def __init__(self) -> None:
        self.chunks: list[Chunk] = []
        self.settled_outcomes: list[LocalOutcomes] = []
        self.got_chunk = asyncio.Event()

    async def settled(self, outcomes: LocalOutcomes) -> None:
        self.settled_outcomes.append(outcomes)

    async def chunk(self, chunk: Chunk) -> None:
        self.chunks.append(chunk)
        self.got_chunk.set()

    @property
    def invalid(self) -> list[tuple[int, str]]:
        return [i for o in self.settled_outcomes for i in o.invalid]

    @property
    def duplicates(self) -> list[tuple[HashType, str, int]]:
        return [d for o in self.settled_outcomes for d in o.duplicates]


class Release:
    """A one-way signal from the test to an input generator, which may run in a thread or in a
    forked child of the test (see `readahead`): a pipe crosses both."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        self._set = False

    def wait(self, timeout: float) -> bool:
        ready, _, _ = select.select([self._read], [], [], timeout)
        return bool(ready)

    def set(self) -> None:
        if not self._set:
            os.write(self._write, b"x")
            self._set = True

    def is_set(self) -> bool:
        return self._set


def md5(i: int) -> str:
    return hashlib.md5(str(i).encode()).hexdigest()


def sha1(i: int) -> str:
    return hashlib.sha1(str(i).encode()).hexdigest()


line_kind = st.one_of(
    st.integers(0, 30).map(lambda i: md5(i).encode()),
    st.integers(0, 30).map(lambda i: b"  " + sha1(i).upper().encode()),
    st.sampled_from([b"", b"# comment", b"junk", b"\xff\xfe", b"a" * 33]),
)


@settings(max_examples=30, suppress_health_check=[HealthCheck.too_slow])
@given(
    blocks=st.lists(st.lists(line_kind, max_size=20), max_size=5),
    batch_size=st.integers(1, 7),
    dedupe=st.booleans(),
)
async def test_counts_add_up(blocks: list[list[bytes]], batch_size: int, dedupe: bool) -> None:
    """records == to_send + duplicates + invalid, and the sink saw every hash, duplicate and invalid
    line once.
    """
    numbered, line = [], 1
    for lines in blocks:
        numbered.append(Block(0, lines, line))
        line += len(lines)
    sink = FakeSink()
    stats = await run_front(iter(numbered), sink, batch_size, dedupe=dedupe, idle_flush=5)
    assert stats.lines == line - 1
    assert stats.records == stats.to_send + stats.duplicates + stats.invalid
    assert stats.chunks == len(sink.chunks)
    assert all(len(c) <= batch_size for c in sink.chunks)
    sent = [(c.hash_type, h) for c in sink.chunks for h in c.hashes]
    assert len(sent) == stats.to_send
    assert len(sink.invalid) == stats.invalid
    assert len(sink.duplicates) == stats.duplicates
    if dedupe:
        assert len(set(sent)) == len(sent), "a hash was sent twice"
    else:
        assert stats.duplicates == 0
    positions = [p for c in sink.chunks for p in c.positions]
    positions += [p for p, _ in sink.invalid] + [p for _, _, p in sink.duplicates]
    assert sorted(positions) == sorted(set(positions))
    assert len(positions) == stats.records


async def test_example_counts() -> None:
    """A small mixed block gives the expected counts per type, duplicates and invalid lines."""
    lines = [md5(1).encode(), md5(1).upper().encode(), sha1(1).encode(), b"", b"# x", b"zz",
             md5(2).encode(), b" " + sha1(1).encode()]
    sink = FakeSink()
    stats = await run_front(iter([Block(2, lines, 1)]), sink, 100)
    assert (stats.lines, stats.skipped, stats.invalid, stats.duplicates) == (8, 2, 1, 2)
    assert stats.hashes == {HashType.MD5: 2, HashType.SHA1: 1}
    assert sorted(d[2] for d in sink.duplicates) == [position(2, 2), position(2, 8)]
    assert sink.invalid[0][0] == position(2, 6)
    assert sorted((c.hash_type.value, len(c)) for c in sink.chunks) == [("md5", 2), ("sha1", 1)]


async def test_duplicates_across_blocks_are_caught() -> None:
    """A hash repeated in a later block is a duplicate, not sent again."""
    blocks = [Block(0, [md5(1).encode()], 1), Block(1, [md5(1).encode()], 1)]
    sink = FakeSink()
    stats = await run_front(iter(blocks), sink, 1)
    assert stats.duplicates == 1
    assert stats.to_send == 1
    assert sink.duplicates == [(HashType.MD5, md5(1), position(1, 1))]


async def test_idle_flush_sends_a_partial_chunk_of_a_slow_trickle() -> None:
    """A partial chunk goes out after idle_flush while the input is still open, before the rest
    arrives.
    """
    release = Release()

    def trickle() -> Iterator[Block]:
        yield Block(0, [md5(1).encode(), sha1(1).encode()], 1)
        if not release.wait(timeout=10):  # bounded: the test releases it
            return
        yield Block(0, [md5(2).encode()], 3)

    sink = FakeSink()
    task = asyncio.create_task(run_front(trickle(), sink, 100, idle_flush=0.05))
    try:
        await asyncio.wait_for(sink.got_chunk.wait(), timeout=5)
        assert not release.is_set()
        assert not task.done()
        # One flush hands over both types' partial chunks (the fake sink never suspends).
        assert {c.hashes for c in sink.chunks} == {(md5(1),), (sha1(1),)}
    finally:
        release.set()
    stats = await asyncio.wait_for(task, timeout=5)
    assert [c.hashes for c in sink.chunks][-1] == (md5(2),)
    assert stats.chunks == 3
    assert stats.to_send == 3


async def test_no_flush_while_nothing_is_pending() -> None:
    """With nothing pending the front waits for input without sending empty chunks."""
    release = Release()

    def slow() -> Iterator[Block]:
        release.wait(timeout=10)
        yield Block(0, [md5(1).encode()], 1)

    sink = FakeSink()
    task = asyncio.create_task(run_front(slow(), sink, 100, idle_flush=0.01))
    await asyncio.sleep(0.05)  # several idle_flush periods of an empty batcher
    assert sink.chunks == []
    release.set()
    await asyncio.wait_for(task, timeout=5)
    assert [c.hashes for c in sink.chunks] == [(md5(1),)]


async def test_reader_error_propagates(tmp_path: Path) -> None:
    """A missing input raises InputError out of run_front."""
    sink = FakeSink()
    blocks = read_blocks([str(tmp_path / "missing.txt")], InputFormat.TEXT)
    with pytest.raises(InputError, match=r"missing\.txt"):
        await asyncio.wait_for(run_front(blocks, sink, 10), timeout=5)


async def test_reader_error_after_some_blocks_propagates() -> None:
    """An InputError raised after some blocks still propagates, after those blocks were processed.
    """

    def failing() -> Iterator[Block]:
        yield Block(0, [md5(1).encode()], 1)
        raise InputError("cannot read input x: boom")

    sink = FakeSink()
    stats = FrontStats()
    with pytest.raises(InputError, match="boom"):
        await asyncio.wait_for(run_front(failing(), sink, 10, stats=stats), timeout=5)
    assert stats.lines == 1


async def test_full_chunks_leave_before_the_end() -> None:
    """Full chunks are sent while input is still being read."""
    release = Release()

    def two_parts() -> Iterator[Block]:
        yield Block(0, [md5(i).encode() for i in range(4)], 1)
        release.wait(timeout=10)
        yield Block(0, [md5(9).encode()], 5)

    sink = FakeSink()
    task = asyncio.create_task(run_front(two_parts(), sink, 2, idle_flush=30))
    try:
        await asyncio.wait_for(sink.got_chunk.wait(), timeout=5)
        assert all(len(c) == 2 for c in sink.chunks)
    finally:
        release.set()
    stats = await asyncio.wait_for(task, timeout=5)
    assert [len(c) for c in sink.chunks] == [2, 2, 1]
    assert stats.to_send == 5


async def test_the_hashes_read_before_a_reader_error_are_sent() -> None:
    """Hashes waiting for a full batch when reading fails are handed over before the error is
    raised, so that the lines read are all recorded (no idle flush comes to their rescue)."""

    def failing() -> Iterator[Block]:
        yield Block(0, [md5(i).encode() for i in range(3)], 1)
        raise InputError("cannot read input x: boom")

    sink = FakeSink()
    with pytest.raises(InputError, match="boom"):
        await asyncio.wait_for(run_front(failing(), sink, 10, idle_flush=30), timeout=5)
    assert [len(c) for c in sink.chunks] == [3]
