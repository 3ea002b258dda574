"""Stage 3: tell a hash seen before in this job from a new one, in about 9 bytes per hash.

A Python set of 10 million hash strings costs about a gigabyte; this keeps one 8-byte key per
distinct hash in sorted numpy arrays, and takes a whole block of hashes at a time, so that the
cost per hash is a few vectorised passes in C rather than Python bytecode:

- a key is every 8 hex digits of the hash, as a 64-bit word, folded together by xor and
  multiplication by an odd constant, starting from a value of the hash's length: every digit
  counts (patterned inputs, counters or repeated digits, still differ), and the four types
  start apart (they share a key only by the chance below);
- the keys of a block are sorted once (with their indices in their low 16 bits: a plain sort);
  equal neighbours are the block's own repeats, and of each the first in input order is the
  one kept as new;
- a bit array (three bits a key in one 64-bit word, 8 bits a key when the input's size is
  known, else 4-8) tells most new keys at once, with one read a key: only its false alarms
  (about 4% at 8 bits a key, 16% at 4) and the true repeats are looked up in the runs;
- the keys seen so far are in a few sorted runs (LSM-style: each block's new keys are a run,
  sorted already; neighbours of like size are merged, up to a cap of an eighth of the set, so
  that a merge takes at most about 1.5 bytes a key more, for a moment). A run of 65,536 keys or
  more has a directory (one entry per 32 keys or more), so that a lookup is a few independent
  reads for the whole block at once rather than a binary search's dependent ones.

Exact up to a budget of memory (``--dedupe-memory``, ``BYTES_PER_HASH`` a hash): past it, new
keys are no longer kept (``unremembered`` counts them): such a hash, repeated in a later block,
is sent again, and the appliance answers ``already_queued``; nothing is recorded wrongly.

Two different hashes are mistaken for each other only if their 64-bit keys agree: for the
cryptographic digests this tool handles, a chance of about n²/2⁶⁵ for a job of n distinct
hashes, about 1 in 370,000 at 10 million and 1 in 3,700 at 100 million. The price of such a miss
is one hash recorded ``duplicate`` instead of sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import numpy as np

from reanalyzer.read.runs import SortedRun

K = TypeVar("K")

BYTES_PER_HASH = 9  # what the budget allows each remembered hash: its key, bits, merge room
_U64 = (1 << 64) - 1
_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)
_LENGTH_SEED = 0xD6E8FEB86659FD93  # times the byte length: each type starts from its own value
_FIRST_FILTER_BITS = 1 << 20
_MIN_BITS_PER_KEY = 4  # the bit array doubles below this: 4-8 bits per key, 0.5-1 byte
_EXPECTED_BITS_PER_KEY = 8  # sized from an estimate of the hashes to come: a byte a key
_MIN_CAP = 1 << 20  # keys a merged run may reach whatever the set's size
_INDEX_MASK = np.uint64(0xFFFF)  # a block's keys have their indices in 16 bits (1 MiB)
_Array = np.ndarray[Any, Any]


def keys_of(hashes: list[str], joined: bytes | None = None) -> _Array:
    """The 64-bit keys of normalized hashes of one type (lowercase hex of one length), read
    from `joined` (the same hashes as ASCII, a newline after each but the last) if given."""
    count, chars = len(hashes), len(hashes[0])
    text = ("\n".join(hashes).encode("ascii") if joined is None else joined) + b"\n"
    # The hex digits themselves, 8 at a time, as words read in place (a row a line, its
    # newline stepped over; numpy reads unaligned words, on x86 at full speed): no decoding,
    # no copy; then every word folded in, one vectorised pass per word.
    words = np.ndarray((count, chars // 8), dtype="<u8", buffer=text, strides=(chars + 1, 8))
    keys = np.full(count, (chars * _LENGTH_SEED) & _U64, dtype=np.uint64)
    for i in range(chars // 8):
        keys ^= words[:, i]
        keys *= _MULTIPLIER
    keys ^= keys >> np.uint64(29)  # the top bits order the runs, the low ones place the bits
    return keys


def _sorted(keys: _Array) -> tuple[_Array, _Array, _Array]:
    """Keys sorted, where each was, and where a key equals the one before it; equal keys in
    input order."""
    count = len(keys)
    if count <= _INDEX_MASK:
        # A key's top 48 bits and its index in one word: a plain sort (about twice as fast as
        # argsort, which moves the indices beside the keys) orders both. Exact when equal top
        # bits mean equal keys, as about always (else argsort).
        packed = (keys & ~_INDEX_MASK) | np.arange(count, dtype=np.uint64)
        packed.sort()
        order = (packed & _INDEX_MASK).astype(np.intp)
        ordered = keys[order]
        same = ordered[1:] == ordered[:-1]
        if np.array_equal(same, (packed[1:] ^ packed[:-1]) <= _INDEX_MASK):
            return ordered, order, same
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    return ordered, order, ordered[1:] == ordered[:-1]


class SeenSet:
    """The hashes of one job that have been seen, as compact keys, within `memory` bytes."""

    def __init__(self, memory: int | None = None) -> None:
        self.capacity = None if memory is None else max(0, memory // BYTES_PER_HASH)
        self.unremembered = 0  # new hashes not kept: the budget was spent
        self._runs: list[SortedRun] = []  # oldest (and largest) first
        self._count = 0
        self._blocks = _FIRST_FILTER_BITS // 64  # 64-bit words
        self._bits = np.zeros(self._blocks, dtype=np.uint64)

    def __len__(self) -> int:
        return self._count

    def __repr__(self) -> str:
        return f"<SeenSet {self._count} hashes in {self.nbytes // 1024} KiB>"

    @property
    def nbytes(self) -> int:
        return sum(run.keys.nbytes for run in self._runs)

    @property
    def full(self) -> bool:
        return self.capacity is not None and self._count >= self.capacity

    def add(self, value: str) -> bool:
        """Record a normalized hash; True if it had not been seen before."""
        return not self.mark_repeats([value])[0]

    def mark_repeats(self, hashes: list[str]) -> list[bool]:
        """Record hashes of one type in order; True where seen before (earlier, or in the list)."""
        found = self.repeats({0: hashes}).get(0)
        return [False] * len(hashes) if found is None else (~found[1]).tolist()

    def repeats(
        self, hashes_by: Mapping[K, list[str]], joined_by: Mapping[K, bytes] | None = None
    ) -> dict[K, tuple[_Array, _Array]]:
        """Record a block's hashes, one list per type, each in input order; for each type with
        any hash seen before (earlier, or earlier in its list), their indices and, per hash,
        whether it is new (a bool array). `joined_by`: per type, its hashes as one text (see
        `keys_of`)."""
        parts = [(k, hashes) for k, hashes in hashes_by.items() if hashes]
        if not parts:
            return {}
        joined = joined_by or {}
        keys = np.concatenate([keys_of(hashes, joined.get(k)) for k, hashes in parts])
        repeat = self._repeat_mask(keys)
        found: dict[K, tuple[_Array, _Array]] = {}
        start = 0
        for k, hashes in parts:
            mine = repeat[start : start + len(hashes)]
            where = np.flatnonzero(mine)
            if len(where):
                found[k] = where, ~mine
            start += len(hashes)
        return found

    def _repeat_mask(self, keys: _Array) -> _Array:
        ordered, order, same = _sorted(keys)
        repeat = np.zeros(len(keys), dtype=bool)
        if same.any():
            # Equal keys sit side by side, the first in input order first: the others are
            # repeats.
            starts = np.flatnonzero(np.concatenate(([True], ~same)))
            repeat[order] = True
            repeat[order[starts]] = False
            ordered, order = ordered[starts], order[starts]
        # The keys' places in the bit array serve twice: to look, then to set those of new keys.
        at, bit = self._slots(ordered)
        known = self._known(ordered, at, bit)
        if known is not None:
            repeat[order[known]] = True
            new = ~known
            ordered, at, bit = ordered[new], at[new], bit[new]
        self._remember(ordered, at, bit)
        return repeat

    def _known(self, ordered: _Array, at: _Array, bit: _Array) -> _Array | None:
        """Which of distinct sorted keys are in the set (None: none is)."""
        if not self._runs:
            return None
        maybe = np.flatnonzero(self._bits[at] & bit == bit)
        if not len(maybe):
            return None
        candidates = ordered[maybe]
        known = np.zeros(len(ordered), dtype=bool)
        for run in reversed(self._runs):  # the newest first: repeats are mostly of recent ones
            hit = run.holds(candidates)
            if hit.any():
                known[maybe[hit]] = True
                miss = ~hit
                candidates, maybe = candidates[miss], maybe[miss]
                if not len(maybe):
                    break
        return known

    def _slots(self, keys: _Array) -> tuple[_Array, _Array]:
        """Three bits of each key in the bit array, as (word, mask) pairs: all in one 64-bit
        word chosen by the key's top bits (sorted keys read and write the array in order), at
        places in it chosen by three 6-bit fields of its low bits; one read tests them. (Three
        rather than two: half the false alarms at 8 bits a key, each a search in every run.)"""
        # (top 32 bits x words) >> 32: any number of words, in the keys' order
        at = (((keys >> np.uint64(32)) * np.uint64(self._blocks)) >> np.uint64(32)).astype(np.intp)
        one = np.uint64(1)
        six = np.uint64(63)
        bit = one << (keys & six)
        bit |= one << ((keys >> np.uint64(6)) & six)
        bit |= one << ((keys >> np.uint64(12)) & six)
        return at, bit

    def _set_bits(self, at: _Array, bit: _Array) -> None:
        # A fancy |= keeps one of two keys' bits set in the same word at once: those lost (a
        # few in a block of new keys) are set again until none is; far cheaper than
        # bitwise_or.at.
        while len(at):
            self._bits[at] |= bit
            lost = self._bits[at] & bit != bit
            at, bit = at[lost], bit[lost]

    def _remember(self, new: _Array, at: _Array, bit: _Array) -> None:
        """Keep new distinct keys (sorted, with their slots), as far as the budget allows."""
        if self.capacity is not None:
            room = max(0, self.capacity - self._count)
            if len(new) > room:
                self.unremembered += len(new) - room
                new, at, bit = new[:room], at[:room], bit[:room]
        if not len(new):
            return
        self._count += len(new)
        if self._count * _MIN_BITS_PER_KEY > len(self._bits) * 64:
            self._grow_bits()
            at, bit = self._slots(new)  # in the new array
        self._set_bits(at, bit)
        runs = self._runs
        runs.append(SortedRun(new))
        cap = max(_MIN_CAP, self._count // 8)
        merged = True
        while merged:  # neighbours of like size merge, the newest first, up to the cap
            merged = False
            for i in range(len(runs) - 2, -1, -1):
                older, newer = runs[i].keys, runs[i + 1].keys
                if len(older) <= 2 * len(newer) and len(older) + len(newer) <= cap:
                    # The older run grown in place (realloc: a large array's pages are
                    # remapped, not copied) rather than both copied into a third array, which
                    # held the pair twice for a moment; timsort merges the two in one pass.
                    both = older if older.flags.owndata else older.copy()
                    del older
                    size = len(both)
                    both.resize(size + len(newer), refcheck=False)  # no view of it exists
                    both[size:] = newer
                    del newer
                    runs[i : i + 2] = []
                    both.sort(kind="stable")
                    runs.insert(i, SortedRun(both))
                    merged = True
                    break

    def expect(self, count: int) -> None:
        """Size the bit array for about `count` hashes in all (an estimate from the input's
        size), at 8 bits each, once: growing it later means setting every key's bits again."""
        if self.capacity is not None:
            count = min(count, self.capacity)
        blocks = -(-count * _EXPECTED_BITS_PER_KEY // 64)
        if blocks > self._blocks:
            self._rebuild_bits(blocks)

    def _grow_bits(self) -> None:
        blocks = self._blocks
        while self._count * _MIN_BITS_PER_KEY > blocks * 64:
            blocks *= 2
        self._rebuild_bits(blocks)

    def _rebuild_bits(self, blocks: int) -> None:
        self._blocks = blocks
        self._bits = np.zeros(blocks, dtype=np.uint64)
        for run in self._runs:
            for i in range(0, len(run.keys), 1 << 20):  # bounded temporaries
                self._set_bits(*self._slots(run.keys[i : i + (1 << 20)]))
