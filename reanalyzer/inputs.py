"""Stage 1: stream the inputs (files, stdin, gzip; text, CSV or JSON lines) as blocks of lines.

Reading is by large blocks and splitting is done in C (``bytes.split``), because per-line Python
work is what limits the front of the pipeline. A block knows its source and line numbers, so every
line can be accounted for later. Lines the format itself rejects (a CSV row without the column, a
JSON line that does not parse, an over-long line) travel as ``REJECTED`` placeholders with their
reason in ``Block.rejects``.
"""

from __future__ import annotations

import csv
import enum
import gzip
import io
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, cast

from reanalyzer.errors import InputError

BLOCK_BYTES = 1 << 20
MAX_LINE_BYTES = 64 * 1024  # a CSV row may be long; a hash line is at most ~130 bytes
STDIN = "-"
REJECTED = (
    b"\x00rejected\x00"  # stands in for a line the format rejected: never a hash, never blank
)
_GZIP_MAGIC = b"\x1f\x8b"
_SOURCE_SHIFT = 40  # a position packs (source index, line number) into one int


class InputFormat(enum.StrEnum):
    TEXT = "text"  # one hash per line; blank lines and # comments are skipped
    CSV = "csv"  # a header row, the hash in a named column
    JSONL = "jsonl"  # one JSON object per line, the hash in a named field


def position(source_index: int, line: int) -> int:
    """Pack a source index and a line number into one int: cheap to carry per hash."""
    return (source_index << _SOURCE_SHIFT) | line


def unpack_position(pos: int) -> tuple[int, int]:
    return pos >> _SOURCE_SHIFT, pos & ((1 << _SOURCE_SHIFT) - 1)


@dataclass(frozen=True, slots=True)
class Block:
    """Consecutive records of one source: their raw hash fields, in input order."""

    source_index: int
    lines: list[bytes]
    first_line: int  # line number of lines[0] when line_numbers is None
    line_numbers: list[int] | None = None  # set when records do not sit on consecutive lines
    rejects: dict[int, str] = field(default_factory=dict)  # line number -> why the format refused

    def numbered(self) -> Iterator[tuple[int, bytes]]:
        numbers = self.line_numbers or range(self.first_line, self.first_line + len(self.lines))
        return zip(numbers, self.lines, strict=True)


def source_name(path: str) -> str:
    return "<stdin>" if path == STDIN else path


def open_binary(path: str) -> BinaryIO:
    """The raw byte stream of an input, un-gzipped when it starts with gzip's magic bytes."""
    try:
        raw: BinaryIO = sys.stdin.buffer if path == STDIN else open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise InputError(f"cannot open input {path}: {exc.strerror}") from exc
    # peek() needs a buffered stream; stdin and open(..., "rb") already are one.
    peekable = cast(io.BufferedReader, raw if hasattr(raw, "peek") else io.BufferedReader(raw))
    try:
        magic = peekable.peek(2)[:2]
    except OSError as exc:
        raise InputError(f"cannot read input {source_name(path)}: {exc.strerror}") from exc
    if magic == _GZIP_MAGIC:
        return cast(BinaryIO, gzip.GzipFile(fileobj=peekable, mode="rb"))
    return cast(BinaryIO, peekable)


def _read_some(stream: BinaryIO, size: int) -> bytes:
    """Whatever is available, up to size: a trickle on a pipe is not held back."""
    read1 = getattr(stream, "read1", None)
    return bytes(read1(size)) if read1 is not None else stream.read(size)


def text_blocks(stream: BinaryIO, source_index: int, source: str) -> Iterator[Block]:
    """Blocks of physical lines; an over-long line becomes one REJECTED line, never a huge one."""
    tail = b""
    next_line = 1
    skipping_long_line = False
    while True:
        try:
            data = _read_some(stream, BLOCK_BYTES)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise InputError(f"cannot read input {source}: {exc}") from exc
        if not data:
            break
        lines = data.split(b"\n")
        lines[0] = tail + lines[0]
        tail = lines.pop()
        rejects: dict[int, str] = {}
        if skipping_long_line:
            # The first piece ends the over-long line already reported: drop it, keep numbering.
            if lines:
                lines.pop(0)
                skipping_long_line = False
            else:
                tail = b""
        if len(tail) > MAX_LINE_BYTES and not skipping_long_line:
            lines.append(REJECTED)
            rejects[next_line + len(lines) - 1] = f"line longer than {MAX_LINE_BYTES} bytes"
            tail, skipping_long_line = b"", True
        for offset, line in enumerate(lines):
            if len(line) > MAX_LINE_BYTES:
                lines[offset] = REJECTED
                rejects[next_line + offset] = f"line longer than {MAX_LINE_BYTES} bytes"
        if lines:
            yield Block(source_index, lines, next_line, rejects=rejects)
            next_line += len(lines)
    if tail and not skipping_long_line:
        yield Block(source_index, [tail], next_line)


def _text_stream(stream: BinaryIO) -> io.TextIOWrapper:
    return io.TextIOWrapper(stream, encoding="utf-8", errors="surrogateescape", newline="")


def csv_blocks(stream: BinaryIO, source_index: int, source: str, column: str) -> Iterator[Block]:
    """The named column of each CSV row after the header; rows may span lines."""
    reader = csv.reader(_text_stream(stream))
    try:
        header = next(reader, None)
        if header is None:
            return
        names = [name.strip().lstrip("\ufeff") for name in header]
        if column not in names:
            raise InputError(
                f"input {source} has no CSV column {column!r} (its columns: {', '.join(names)})"
            )
        index = names.index(column)
        batch = _RecordBatch(source_index)
        for row in reader:
            if not row:
                continue  # a blank line, skipped like in text input
            if index < len(row):
                batch.add(reader.line_num, row[index].encode("utf-8", "surrogateescape"))
            else:
                batch.reject(reader.line_num, f"row has no {column!r} column")
            if batch.full:
                yield batch.take()
        if batch.lines:
            yield batch.take()
    except csv.Error as exc:
        raise InputError(f"input {source}: malformed CSV at line {reader.line_num}: {exc}") from exc
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InputError(f"cannot read input {source}: {exc}") from exc


def jsonl_blocks(stream: BinaryIO, source_index: int, source: str, name: str) -> Iterator[Block]:
    """The named field of each JSON object, one object per line."""
    batch = _RecordBatch(source_index)
    for block in text_blocks(stream, source_index, source):
        for line_number, line in block.numbered():
            if line_number in block.rejects:
                batch.reject(line_number, block.rejects[line_number])
                continue
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                batch.reject(line_number, "not a JSON object")
                continue
            value = record.get(name) if isinstance(record, dict) else None
            if isinstance(value, str):
                batch.add(line_number, value.encode("utf-8", "surrogateescape"))
            else:
                batch.reject(line_number, f"no string field {name!r}")
        if batch.full:
            yield batch.take()
    if batch.lines:
        yield batch.take()


class _RecordBatch:
    """Collects records with explicit line numbers into Blocks of a bounded size."""

    def __init__(self, source_index: int) -> None:
        self.source_index = source_index
        self.lines: list[bytes] = []
        self.numbers: list[int] = []
        self.rejects: dict[int, str] = {}

    @property
    def full(self) -> bool:
        return len(self.lines) >= 8192

    def add(self, line_number: int, value: bytes) -> None:
        self.lines.append(value)
        self.numbers.append(line_number)

    def reject(self, line_number: int, reason: str) -> None:
        self.add(line_number, REJECTED)
        self.rejects[line_number] = reason

    def take(self) -> Block:
        block = Block(self.source_index, self.lines, 0, self.numbers, self.rejects)
        self.lines, self.numbers, self.rejects = [], [], {}
        return block


def read_blocks(
    paths: Sequence[str],
    input_format: InputFormat,
    column: str | None = None,
) -> Iterator[Block]:
    """Every input in order, as blocks. Blocking: the pipeline runs it in a thread."""
    for source_index, path in enumerate(paths):
        source = source_name(path)
        stream = open_binary(path)
        try:
            if input_format is InputFormat.CSV:
                assert column is not None
                yield from csv_blocks(stream, source_index, source, column)
            elif input_format is InputFormat.JSONL:
                assert column is not None
                yield from jsonl_blocks(stream, source_index, source, column)
            else:
                yield from text_blocks(stream, source_index, source)
        finally:
            if path != STDIN:
                stream.close()
