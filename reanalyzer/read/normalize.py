"""Stage 2: normalize and validate each line of a block, sorting hashes by type.

A line is stripped of surrounding whitespace; a blank line or a ``#`` comment is skipped; what
remains must be hex of a hash's length (md5 32, sha1 40, sha256 64, sha512 128) and is lowercased.
Anything else is an ``invalid`` outcome with a reason. This is the hottest loop of the tool, so it
works on bytes, checks hex with ``bytes.translate`` (C), and decodes each type's hashes in one call.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from reanalyzer.core.hashes import TYPE_BY_LENGTH, HashType
from reanalyzer.core.positions import Block, position

_HEX_BYTES = b"0123456789abcdefABCDEF"
_HEX_TEXT = frozenset(_HEX_BYTES.decode())
_COMMENT = ord("#")
_EXCERPT = 60


@dataclass(slots=True)
class SortedBlock:
    """A block's lines, sorted: hashes by type (with their positions), invalid lines, skipped."""

    hashes: dict[HashType, list[str]] = field(default_factory=dict)
    positions: dict[HashType, list[int]] = field(default_factory=dict)
    invalid: list[tuple[int, str]] = field(default_factory=list)  # (position, reason)
    skipped: int = 0  # blank lines and comments: not records, so no outcome
    # Per type, its hashes as one lowercase ASCII text, a newline after each but the last, as
    # sorted: dedupe reads its keys from it in place. Not pickled; dropped where hashes are.
    joined: dict[HashType, bytes] = field(default_factory=dict)
    # Per type, its hashes and positions as they cross to the loop (see __getstate__), where
    # dedupe made them so (from `joined`, without the repeats) in place of the lists: a type
    # in `wire` has empty lists until `unwire` makes them again.
    wire: dict[HashType, tuple[str, bytes]] = field(default_factory=dict)

    @property
    def hash_count(self) -> int:
        in_wire = sum(text.count("\n") + 1 for text, _ in self.wire.values() if text)
        return sum(len(hashes) for hashes in self.hashes.values()) + in_wire

    def unwire(self) -> None:
        """The lists of every type again (a block that crossed no pipe)."""
        for hash_type, (text, raw) in self.wire.items():
            self.hashes[hash_type] = text.split("\n") if text else []
            self.positions[hash_type] = _int64s(raw)
        self.wire = {}

    # A sorted block crosses from the read-ahead child to the loop pickled. Pickled as lists,
    # its hashes and positions cost the loop ~0.5 µs a line to load, about as much as all the
    # rest it does for a line; as one string and one array per type, splitting runs in C.
    def __getstate__(self) -> object:
        wire = self.wire
        hashes = {t: wire[t][0] if t in wire else "\n".join(h) for t, h in self.hashes.items()}
        positions = {
            t: wire[t][1] if t in wire else array("q", p).tobytes()
            for t, p in self.positions.items()
        }
        return hashes, positions, self.invalid, self.skipped

    def __setstate__(self, state: tuple[Any, Any, list[tuple[int, str]], int]) -> None:
        hashes, positions, self.invalid, self.skipped = state
        self.hashes = {t: joined.split("\n") if joined else [] for t, joined in hashes.items()}
        self.positions = {t: _int64s(raw) for t, raw in positions.items()}
        self.joined = {}
        self.wire = {}


def _int64s(raw: bytes) -> list[int]:
    values = array("q")
    values.frombytes(raw)
    return values.tolist()


def explain_invalid(raw: bytes) -> str:
    """Why a stripped, non-blank line is not a hash, in words a person understands."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "not valid UTF-8"
    if raw.translate(None, _HEX_BYTES):
        # The cause is the first character that is not hex, named whole; only the line quoted
        # around it is cut, so that a long line cannot hide it ("<sha256>,file.exe").
        at = next(i for i, char in enumerate(text) if char not in _HEX_TEXT)
        return (
            f"not a hash (not hexadecimal): {text[at]!r} at character {at + 1} of "
            f"{_excerpt(text, at)!r}"
        )
    excerpt = _excerpt(text, 0)
    lengths = ", ".join(f"{t.value} {n}" for n, t in TYPE_BY_LENGTH.items())
    return f"not a hash ({len(raw)} hex digits; expected {lengths}): {excerpt!r}"


def _excerpt(text: str, around: int) -> str:
    """The line, or at most _EXCERPT characters of it showing the one at `around`."""
    if len(text) <= _EXCERPT:
        return text
    start = max(0, min(around - _EXCERPT // 2, len(text) - _EXCERPT))
    cut = text[start : start + _EXCERPT]
    return ("…" if start else "") + cut + ("…" if start + _EXCERPT < len(text) else "")


def sort_block(block: Block) -> SortedBlock:
    """Sort every line of a block into exactly one of: a hash of a type, invalid, or skipped."""
    # The loop runs once per input line, so it does the least it can: C-level strip (map),
    # one dict lookup that yields both appenders, and positions offset in bulk afterwards.
    hashes_by: dict[int, list[bytes]] = {n: [] for n in TYPE_BY_LENGTH}
    lines_by: dict[int, list[int]] = {n: [] for n in TYPE_BY_LENGTH}
    appenders = {n: (hashes_by[n].append, lines_by[n].append) for n in TYPE_BY_LENGTH}
    get = appenders.get
    hex_bytes = _HEX_BYTES
    invalid: list[tuple[int, str]] = []
    skipped = 0
    base = position(block.source_index, 0)
    strips = map(bytes.strip, block.lines)
    numbered: Iterator[tuple[int, bytes]] = (
        zip(block.line_numbers, strips, strict=True)
        if block.line_numbers
        else enumerate(strips, block.first_line)
    )
    for line_number, stripped in numbered:
        append = get(len(stripped))
        if append is not None and not stripped.translate(None, hex_bytes):
            append[0](stripped)
            append[1](line_number)
        elif not stripped or stripped[0] == _COMMENT:
            skipped += 1
        else:
            reason = block.rejects.get(line_number) or explain_invalid(stripped)
            invalid.append((base + line_number, reason))
    result = SortedBlock(invalid=invalid, skipped=skipped)
    for length, raw_hashes in hashes_by.items():
        if raw_hashes:
            hash_type = TYPE_BY_LENGTH[length]
            # One join, lower and decode per type instead of one per line.
            joined = result.joined[hash_type] = b"\n".join(raw_hashes).lower()
            result.hashes[hash_type] = joined.decode("ascii").split("\n")
            lines = lines_by[length]
            result.positions[hash_type] = [base + n for n in lines] if base else lines
    return result
