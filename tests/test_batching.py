"""Stage 4: per-type buckets cut into chunks of at most batch_size, never mixing types."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from reanalyzer.core.hashes import HashType
from reanalyzer.read.batching import Batcher, Chunk

# One add() call: a type and how many hashes it carries; hashes and positions are made unique
# by a running counter so that any loss, duplication or reordering is visible.
adds = st.lists(st.tuples(st.sampled_from(list(HashType)), st.integers(0, 25)), max_size=30)


def run_batcher(batch_size: int, calls: list[tuple[HashType, int]]) -> tuple[
    dict[HashType, list[tuple[str, int]]], list[Chunk], list[Chunk]
]:
    batcher = Batcher(batch_size)
    given_in: dict[HashType, list[tuple[str, int]]] = {t: [] for t in HashType}
    full: list[Chunk] = []
    counter = 0
    for hash_type, count in calls:
        items = []
        for _ in range(count):
            counter += 1
            items.append((f"{counter:0{hash_type.hex_length}x}", counter))
        given_in[hash_type] += items
        full += batcher.add(hash_type, [h for h, _ in items], [p for _, p in items])
    return given_in, full, batcher.flush()


@settings(max_examples=75)
@given(batch_size=st.integers(1, 12), calls=adds)
def test_chunks_keep_every_hash_in_order_by_type(
    batch_size: int, calls: list[tuple[HashType, int]]
) -> None:
    """No hash is lost or invented, each type's order is kept, and positions travel with their hash.
    """
    given_in, full, partial = run_batcher(batch_size, calls)
    for hash_type in HashType:
        out = [
            pair
            for chunk in full + partial
            if chunk.hash_type is hash_type
            for pair in zip(chunk.hashes, chunk.positions, strict=True)
        ]
        assert out == given_in[hash_type]


@settings(max_examples=75)
@given(batch_size=st.integers(1, 12), calls=adds)
def test_no_chunk_over_size_or_of_two_types(
    batch_size: int, calls: list[tuple[HashType, int]]
) -> None:
    """Chunks from add() are exactly batch_size; flushed ones are smaller, one per type; none mixes
    types.
    """
    _, full, partial = run_batcher(batch_size, calls)
    for chunk in full:
        assert len(chunk) == batch_size == len(chunk.positions)
    for chunk in partial:
        assert 0 < len(chunk) < batch_size
    assert len({c.hash_type for c in partial}) == len(partial)
    for chunk in full + partial:
        assert {len(h) for h in chunk.hashes} == {chunk.hash_type.hex_length}


def test_add_returns_nothing_until_a_chunk_is_full() -> None:
    """Hashes wait in their bucket until batch_size of one type have arrived."""
    batcher = Batcher(3)
    assert batcher.add(HashType.MD5, ["a" * 32, "b" * 32], [1, 2]) == []
    assert batcher.add(HashType.SHA1, ["c" * 40], [3]) == []
    assert batcher.pending == 3
    (chunk,) = batcher.add(HashType.MD5, ["d" * 32, "e" * 32], [4, 5])
    assert chunk == Chunk(HashType.MD5, ("a" * 32, "b" * 32, "d" * 32), (1, 2, 4))
    assert batcher.pending == 2


def test_one_big_add_is_cut_into_several_chunks() -> None:
    """An add of 7 hashes with batch_size 3 returns two full chunks and keeps one pending."""
    batcher = Batcher(3)
    hashes = [f"{i:064x}" for i in range(7)]
    chunks = batcher.add(HashType.SHA256, hashes, list(range(7)))
    assert [c.positions for c in chunks] == [(0, 1, 2), (3, 4, 5)]
    assert batcher.pending == 1


def test_flush_emits_partials_once() -> None:
    """flush() returns one partial chunk per type with pending hashes, then nothing."""
    batcher = Batcher(10)
    batcher.add(HashType.MD5, ["a" * 32], [7])
    batcher.add(HashType.SHA512, ["b" * 128, "c" * 128], [8, 9])
    flushed = batcher.flush()
    assert sorted((c.hash_type.value, c.positions) for c in flushed) == [
        ("md5", (7,)),
        ("sha512", (8, 9)),
    ]
    assert batcher.pending == 0
    assert batcher.flush() == []


def test_batch_size_must_be_positive() -> None:
    """A batch size below 1 is refused."""
    import pytest

    with pytest.raises(ValueError, match="at least 1"):
        Batcher(0)
