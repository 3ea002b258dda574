"""Stage 4: bucket hashes by type and cut each bucket into chunks of at most ``batch_size``.

One bulk request holds one hash type, so each type has its own bucket. Full chunks leave as soon
as they fill; a partial one leaves at the end of the input or when the pipeline has been idle for
a moment (``flush``), so that a slow trickle on stdin is still sent promptly.
"""

from __future__ import annotations

from dataclasses import dataclass

from reanalyzer.core.hashes import HashType


@dataclass(frozen=True, slots=True)
class Chunk:
    """The hashes of one request: one type, at most batch_size, each with its input position."""

    hash_type: HashType
    hashes: tuple[str, ...]
    positions: tuple[int, ...]  # inputs.position(source, line) of each hash, same order

    def __len__(self) -> int:
        return len(self.hashes)


class Batcher:
    """Per-type buckets that emit chunks of at most batch_size hashes.

    `batch_size` may change between chunks (the sending side learns the largest the appliance
    takes): `put` then `take` cut each chunk at the size of the moment it leaves.
    """

    def __init__(self, batch_size: int) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.batch_size = batch_size
        self._hashes: dict[HashType, list[str]] = {t: [] for t in HashType}
        self._positions: dict[HashType, list[int]] = {t: [] for t in HashType}
        self._taken: dict[HashType, int] = dict.fromkeys(HashType, 0)  # left in bucket, sent

    def __repr__(self) -> str:
        pending = {t.value: len(h) - self._taken[t] for t, h in self._hashes.items() if h}
        return f"<Batcher size={self.batch_size} pending={pending}>"

    @property
    def pending(self) -> int:
        return sum(len(hashes) - self._taken[t] for t, hashes in self._hashes.items())

    def add(self, hash_type: HashType, hashes: list[str], positions: list[int]) -> list[Chunk]:
        """Add hashes of one type; return the chunks that are now full."""
        self.put(hash_type, hashes, positions)
        chunks = []
        while (chunk := self.take()) is not None:
            chunks.append(chunk)
        return chunks

    def put(self, hash_type: HashType, hashes: list[str], positions: list[int]) -> None:
        """Add hashes of one type, to leave in chunks by `take`."""
        bucket, bucket_positions = self._hashes[hash_type], self._positions[hash_type]
        if taken := self._taken[hash_type]:  # drop what was taken, once per put, not per chunk
            del bucket[:taken]
            del bucket_positions[:taken]
            self._taken[hash_type] = 0
        bucket += hashes
        bucket_positions += positions

    def take(self) -> Chunk | None:
        """One full chunk at the batch size now, or None when no bucket holds one."""
        size = self.batch_size
        for hash_type, bucket in self._hashes.items():
            start = self._taken[hash_type]
            if len(bucket) - start >= size:
                end = start + size
                self._taken[hash_type] = end
                return Chunk(
                    hash_type,
                    tuple(bucket[start:end]),
                    tuple(self._positions[hash_type][start:end]),
                )
        return None

    def flush(self) -> list[Chunk]:
        """Every partial chunk, one per type that has pending hashes."""
        chunks = []
        for hash_type, bucket in self._hashes.items():
            start = self._taken[hash_type]
            positions = self._positions[hash_type]
            if len(bucket) > start:
                chunks.append(Chunk(hash_type, tuple(bucket[start:]), tuple(positions[start:])))
            bucket.clear()
            positions.clear()
            self._taken[hash_type] = 0
        return chunks
