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
    """Per-type buckets that emit chunks of at most batch_size hashes."""

    def __init__(self, batch_size: int) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.batch_size = batch_size
        self._hashes: dict[HashType, list[str]] = {t: [] for t in HashType}
        self._positions: dict[HashType, list[int]] = {t: [] for t in HashType}

    def __repr__(self) -> str:
        pending = {t.value: len(h) for t, h in self._hashes.items() if h}
        return f"<Batcher size={self.batch_size} pending={pending}>"

    @property
    def pending(self) -> int:
        return sum(len(hashes) for hashes in self._hashes.values())

    def add(self, hash_type: HashType, hashes: list[str], positions: list[int]) -> list[Chunk]:
        """Add hashes of one type; return the chunks that are now full."""
        bucket = self._hashes[hash_type]
        bucket_positions = self._positions[hash_type]
        bucket += hashes
        bucket_positions += positions
        size = self.batch_size
        if len(bucket) < size:
            return []
        full = len(bucket) - len(bucket) % size
        chunks = [
            Chunk(hash_type, tuple(bucket[i : i + size]), tuple(bucket_positions[i : i + size]))
            for i in range(0, full, size)
        ]
        del bucket[:full]
        del bucket_positions[:full]
        return chunks

    def flush(self) -> list[Chunk]:
        """Every partial chunk, one per type that has pending hashes."""
        chunks = []
        for hash_type, bucket in self._hashes.items():
            if bucket:
                positions = self._positions[hash_type]
                chunks.append(Chunk(hash_type, tuple(bucket), tuple(positions)))
                bucket.clear()
                positions.clear()
        return chunks
