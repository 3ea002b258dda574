"""Stage 3: tell a hash seen before in this job from a new one, in about 9 bytes per hash.

A Python set of 10 million hash strings costs about a gigabyte; this keeps 8-byte keys instead.
A hash is kept as an 8-byte key (its last 8 bytes) in one of 262,144 shards (a ``bytearray``
each), chosen by 18 bits folded from two more of its 4-byte words and mixed with its length, so
that hash types never mix and patterned inputs (sequential or repeated digits) still differ. A
lookup is ``bytearray.find`` in C over the ~36 keys a shard holds at 10 million hashes; an
insert is ``+=``. Measured against a sorted ``array`` with ``bisect`` and against SQLite, this
was the fastest compact layout (``scripts/bench.py front``); lookups slow down linearly beyond
~100 million hashes.

Two different hashes of one type are mistaken for each other only if both their key and their
shard agree: for the cryptographic digests this tool handles a chance of about n²/2⁸³ for a job
of n hashes, about 1 in 1,000 million for 100 million hashes. The price of such a miss is one
hash recorded ``duplicate`` instead of sent.
"""

from __future__ import annotations

import struct

_SHARD_BITS = 18
_SHARD_MASK = (1 << _SHARD_BITS) - 1
_KEY_BYTES = 8
_TYPE_SPREAD = 0x9E3779B1  # spreads the hash length over the shard bits: types never mix


class SeenSet:
    """The hashes of one job that have been seen, as compact keys."""

    def __init__(self) -> None:
        self._shards = [bytearray() for _ in range(1 << _SHARD_BITS)]
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def __repr__(self) -> str:
        return f"<SeenSet {self._count} hashes in {self.nbytes // 1024} KiB>"

    @property
    def nbytes(self) -> int:
        return sum(len(shard) for shard in self._shards)

    def add(self, value: str) -> bool:
        """Record a normalized hash; True if it had not been seen before."""
        return not self.mark_repeats([value])[0]

    def mark_repeats(self, hashes: list[str]) -> list[bool]:
        """Record hashes of one type in order; True where seen before (earlier, or in the list)."""
        if not hashes:
            return []
        width = len(hashes[0]) // 2
        # One C call turns every hash into bytes, and struct cuts each into two 4-byte words
        # for the shard and the last 8 bytes as the key: no per-hash parsing in Python. The
        # key is the end of the hash because patterned inputs (counters) vary at the end.
        digests = bytes.fromhex("".join(hashes))
        layout = "<II8s" if width < 20 else f"<I4xI{width - 20}x8s"
        tag = width * _TYPE_SPREAD
        shards = self._shards
        repeats: list[bool] = []
        append = repeats.append
        added = 0
        for word, other, key in struct.iter_unpack(layout, digests):
            mixed = word ^ other
            shard = shards[(mixed ^ (mixed >> _SHARD_BITS) ^ tag) & _SHARD_MASK]
            found = shard.find(key)
            # A match must sit on a key boundary; a misaligned one is two keys' bytes by chance.
            while found > 0 and found % _KEY_BYTES:
                found = shard.find(key, found + 1)
            if found < 0:
                shard += key
                added += 1
                append(False)
            else:
                append(True)
        self._count += added
        return repeats
