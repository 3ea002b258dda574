"""Where a record is: packed positions, blocks of records and resume points, shared by every stage.

A position packs (source index, line number) into one int, cheap to carry per hash from the
reader to the outcome log and the checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

STDIN = "-"  # the input name that stands for standard input
SOURCE_SHIFT = 40  # a position packs (source index, line number) into one int
LINE_MASK = (1 << SOURCE_SHIFT) - 1


def position(source_index: int, line: int) -> int:
    """Pack a source index and a line number into one int: cheap to carry per hash."""
    return (source_index << SOURCE_SHIFT) | line


def unpack_position(pos: int) -> tuple[int, int]:
    return pos >> SOURCE_SHIFT, pos & LINE_MASK


@dataclass(frozen=True, slots=True)
class Block:
    """Consecutive records of one source: their raw hash fields, in input order."""

    source_index: int
    lines: list[bytes]
    first_line: int  # line number of lines[0] when line_numbers is None
    line_numbers: list[int] | None = None  # set when records do not sit on consecutive lines
    rejects: dict[int, str] = field(default_factory=dict)  # line number -> why the format refused
    # Where the next block starts: its first line number, and its byte offset in the (decoded)
    # stream when known. A checkpoint stores these to resume without rereading.
    end_line: int = 0
    end_offset: int | None = None

    def numbered(self) -> Iterator[tuple[int, bytes]]:
        numbers = self.line_numbers or range(self.first_line, self.first_line + len(self.lines))
        return zip(numbers, self.lines, strict=True)


@dataclass(frozen=True, slots=True)
class ResumePoint:
    """Where reading starts again: a source, its next line, and that line's byte offset."""

    source_index: int
    line: int = 1
    offset: int | None = None  # None: unknown (CSV), so the source is read again from its start

    @property
    def position(self) -> int:
        return position(self.source_index, self.line)


def source_name(path: str) -> str:
    return "<stdin>" if path == STDIN else path
