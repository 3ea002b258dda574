"""Stage 3: tell a hash seen before in this job from a new one, in about 9 bytes per hash.

A Python set of 10 million hash strings costs about a gigabyte; this keeps 8-byte keys instead.
The first 82 bits of a hash identify it: its first 64 bits are an 8-byte key, stored in one of
262,144 shards (a ``bytearray`` each) chosen by 18 more bits (its bits 64-81, mixed with its
last 32 bits and its length so that patterned inputs still spread). A lookup is
``bytearray.find`` in C over the ~36 keys a shard holds at 10 million hashes; an insert is
``+=``. Measured against a sorted ``array`` with ``bisect`` and a ``set``, this is the fastest
of the compact layouts (``scripts/bench.py front``); lookups slow down linearly beyond ~100
million hashes.

Two different hashes are mistaken for each other only if those 82 bits agree. For the
cryptographic digests this tool handles that is a chance of about n²/2⁸³ for a job of n hashes:
about 1 in 1,000 million for 100 million hashes. The price of such a miss is one hash recorded
``duplicate`` instead of sent.
"""

from __future__ import annotations

import struct

_SHARD_BITS = 18
_SHARD_MASK = (1 << _SHARD_BITS) - 1
_KEY_BYTES = 8


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
        # One C call turns every hash into bytes, and struct cuts each into (key, shard bits,
        # last four bytes): no per-hash parsing in Python.
        digests = bytes.fromhex("".join(hashes))
        layout = struct.Struct(f"<{_KEY_BYTES}sI{width - _KEY_BYTES - 8}xI")
        shards = self._shards
        repeats: list[bool] = []
        append = repeats.append
        added = 0
        for key, shard_bits, last_bits in layout.iter_unpack(digests):
            shard = shards[(shard_bits ^ last_bits ^ width) & _SHARD_MASK]
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
