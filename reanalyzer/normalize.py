"""Stage 2: normalize and validate each line of a block, sorting hashes by type.

A line is stripped of surrounding whitespace; a blank line or a ``#`` comment is skipped; what
remains must be hex of a hash's length (md5 32, sha1 40, sha256 64, sha512 128) and is lowercased.
Anything else is an ``invalid`` outcome with a reason. This is the hottest loop of the tool, so it
works on bytes, checks hex with ``bytes.translate`` (C), and decodes each type's hashes in one call.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reanalyzer.hashes import TYPE_BY_LENGTH, HashType
from reanalyzer.inputs import Block, position

_HEX_BYTES = b"0123456789abcdefABCDEF"
_COMMENT = ord("#")
_EXCERPT = 60


@dataclass(slots=True)
class SortedBlock:
    """A block's lines, sorted: hashes by type (with their positions), invalid lines, skipped."""

    hashes: dict[HashType, list[str]] = field(default_factory=dict)
    positions: dict[HashType, list[int]] = field(default_factory=dict)
    invalid: list[tuple[int, str]] = field(default_factory=list)  # (position, reason)
    skipped: int = 0  # blank lines and comments: not records, so no outcome

    @property
    def hash_count(self) -> int:
        return sum(len(hashes) for hashes in self.hashes.values())


def explain_invalid(raw: bytes) -> str:
    """Why a stripped, non-blank line is not a hash, in words a person understands."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "not valid UTF-8"
    excerpt = text if len(text) <= _EXCERPT else text[:_EXCERPT] + "…"
    if raw.translate(None, _HEX_BYTES):
        return f"not a hash (not hexadecimal): {excerpt!r}"
    lengths = ", ".join(f"{t.value} {n}" for n, t in TYPE_BY_LENGTH.items())
    return f"not a hash ({len(raw)} hex digits; expected {lengths}): {excerpt!r}"


def sort_block(block: Block) -> SortedBlock:
    """Sort every line of a block into exactly one of: a hash of a type, invalid, or skipped."""
    by_length: dict[int, list[bytes]] = {n: [] for n in TYPE_BY_LENGTH}
    pos_by_length: dict[int, list[int]] = {n: [] for n in TYPE_BY_LENGTH}
    invalid: list[tuple[int, str]] = []
    skipped = 0
    base = position(block.source_index, 0)
    hex_bytes = _HEX_BYTES
    for line_number, raw in block.numbered():
        stripped = raw.strip()
        hashes = by_length.get(len(stripped))
        if hashes is not None and not stripped.translate(None, hex_bytes):
            hashes.append(stripped)
            pos_by_length[len(stripped)].append(base + line_number)
        elif not stripped or stripped[0] == _COMMENT:
            skipped += 1
        else:
            reason = block.rejects.get(line_number) or explain_invalid(stripped)
            invalid.append((base + line_number, reason))
    result = SortedBlock(invalid=invalid, skipped=skipped)
    for length, raw_hashes in by_length.items():
        if raw_hashes:
            hash_type = TYPE_BY_LENGTH[length]
            # One join, lower and decode per type instead of one per line.
            result.hashes[hash_type] = b"\n".join(raw_hashes).lower().decode("ascii").split("\n")
            result.positions[hash_type] = pos_by_length[length]
    return result
