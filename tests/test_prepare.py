"""The front's two steps ahead of the loop: what dedupe hands on, across a pipe or not, is
exactly the block without its repeats; and the block's sort of keys is exact."""

from __future__ import annotations

import hashlib
import pickle

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from reanalyzer.core.hashes import hash_type_of
from reanalyzer.core.positions import Block
from reanalyzer.read.dedupe import _sorted
from reanalyzer.read.prepare import deduped, sorted_blocks

_DIGESTS = (hashlib.md5, hashlib.sha1, hashlib.sha256, hashlib.sha512)


def _line(seed: int, upper: bool) -> bytes:
    value = _DIGESTS[seed % 4](str(seed).encode()).hexdigest()
    return (value.upper() if upper else value).encode()


def _expected(blocks: list[list[bytes]]) -> list[tuple[dict[str, list[tuple[str, int]]], int]]:
    """Per block: per type, the first sightings (hash, line number) in order; the repeats."""
    seen: set[str] = set()
    out = []
    line = 1
    for lines in blocks:
        kept: dict[str, list[tuple[str, int]]] = {}
        repeats = 0
        for raw in lines:
            value = raw.decode().lower()
            if value in seen:
                repeats += 1
            else:
                seen.add(value)
                kept.setdefault(str(hash_type_of(value)), []).append((value, line))
            line += 1
        out.append((kept, repeats))
    return out


def _blocks(blocks: list[list[bytes]]) -> list[Block]:
    made, line = [], 1
    for lines in blocks:
        made.append(Block(0, lines, line, end_line=line + len(lines)))
        line += len(lines)
    return made


@settings(max_examples=40)
@given(
    st.lists(
        st.lists(st.tuples(st.integers(0, 30), st.booleans()), min_size=1, max_size=40),
        min_size=1,
        max_size=5,
    ),
    st.booleans(),
)
def test_what_dedupe_hands_on_is_the_block_without_its_repeats(
    draws: list[list[tuple[int, bool]]], piped: bool
) -> None:
    """Whether the block crosses a pipe (pickled from its text) or not (`unwire`), the loop
    gets each type's first sightings with their positions, in input order, and the repeats."""
    blocks = [[_line(seed, upper) for seed, upper in block] for block in draws]
    got = deduped(sorted_blocks(iter(_blocks(blocks)), None), None, None)
    for prepared, (kept, repeats) in zip(got, _expected(blocks), strict=True):
        sorted_block = prepared.sorted_block
        if piped:
            sorted_block = pickle.loads(pickle.dumps(sorted_block))
        sorted_block.unwire()
        assert sorted_block.wire == {}
        by_type = {
            t.value: list(zip(sorted_block.hashes[t], sorted_block.positions[t], strict=True))
            for t in sorted_block.hashes
            if sorted_block.hashes[t]
        }
        assert by_type == kept
        assert len(prepared.duplicates) == repeats


def test_a_block_whose_hashes_are_all_repeats_hands_on_none() -> None:
    lines = [_line(1, False), _line(5, False)]
    _, second = deduped(sorted_blocks(iter(_blocks([lines, lines[::-1]])), None), None, None)
    assert second.sorted_block.hash_count == 0
    again = pickle.loads(pickle.dumps(second.sorted_block))
    assert again.hash_count == 0
    assert all(h == [] for h in again.hashes.values())
    assert [d[1] for d in second.duplicates] == [lines[1].decode(), lines[0].decode()]


def test_the_sort_of_a_block_is_exact_when_keys_share_their_top_bits() -> None:
    """Keys that agree in the 48 bits the fast sort orders by, but differ below, are still
    sorted exactly, and a key's repeats are found after it in input order."""
    top = np.uint64(0xABCDEF012345) << np.uint64(16)
    a, b, c = top | np.uint64(9), top | np.uint64(3), np.uint64(5)
    keys = np.array([a, b, c, a, b, a], dtype=np.uint64)
    ordered, order, same = _sorted(keys)
    assert ordered.tolist() == sorted(keys.tolist())
    assert keys[order].tolist() == ordered.tolist()
    assert same.tolist() == (ordered[1:] == ordered[:-1]).tolist()
    runs = {int(k): [int(i) for i in order[ordered == k]] for k in set(keys.tolist())}
    assert all(indices == sorted(indices) for indices in runs.values())


def test_the_sort_of_a_block_keeps_input_order_among_equal_keys() -> None:
    rng = np.random.default_rng(3)
    keys = rng.integers(1, 2**63, 500, dtype=np.uint64)[rng.integers(0, 200, 4000)]
    ordered, order, same = _sorted(keys)
    assert np.all(ordered[1:] >= ordered[:-1])
    firsts = {}
    for i, k in enumerate(keys.tolist()):
        firsts.setdefault(k, i)
    starts = np.flatnonzero(np.concatenate(([True], ~same)))
    assert sorted(order[starts].tolist()) == sorted(firsts.values())
