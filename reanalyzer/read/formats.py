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
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from reanalyzer.core.positions import Block, ResumePoint, source_name
from reanalyzer.errors import InputError
from reanalyzer.read.sources import BLOCK_BYTES, check_unchanged, open_binary, skip_bytes, stamp

FIRST_BLOCK_BYTES = 1 << 14
_UTF8_BOM = b"\xef\xbb\xbf"
MAX_LINE_BYTES = 64 * 1024  # a CSV row may be long; a hash line is at most ~130 bytes
_CSV_FIELD_LIMIT = 16 * 1024 * 1024
REJECTED = (
    b"\x00rejected\x00"  # stands in for a line the format rejected: never a hash, never blank
)


class InputFormat(enum.StrEnum):
    TEXT = "text"  # one hash per line; blank lines and # comments are skipped
    CSV = "csv"  # a header row, the hash in a named column
    JSONL = "jsonl"  # one JSON object per line, the hash in a named field


def _read_some(stream: BinaryIO, size: int) -> bytes:
    """Whatever is available, up to size: a trickle on a pipe is not held back."""
    read1 = getattr(stream, "read1", None)
    return bytes(read1(size)) if read1 is not None else stream.read(size)


def text_blocks(
    stream: BinaryIO, source_index: int, source: str, first_line: int = 1, offset: int = 0
) -> Iterator[Block]:
    """Blocks of physical lines; an over-long line becomes one REJECTED line, never a huge one."""
    tail = b""
    next_line = first_line
    consumed = offset
    skipping_long_line = False
    # The first blocks are small, so that the first requests go out within milliseconds of
    # the start (a whole block is sorted and deduplicated before any of it is sent); then
    # they grow to BLOCK_BYTES, where the cost per block no longer shows.
    size = FIRST_BLOCK_BYTES
    while True:
        try:
            data = _read_some(stream, size)
            size = min(size * 4, BLOCK_BYTES)
        except (OSError, EOFError, zlib.error) as exc:  # zlib.error: corrupt gzip data
            unpacked = " of its decompressed data" if isinstance(stream, gzip.GzipFile) else ""
            raise InputError(
                f"cannot read input {source} at byte {consumed:,}{unpacked} (line "
                f"{next_line:,}): {exc}"
            ) from exc
        if not data:
            break
        consumed += len(data)
        if consumed == len(data) and data.startswith(_UTF8_BOM):
            # Windows editors and exports start files with a byte order mark: not part of line
            # 1. (Offsets still count it, so that a resume seeks to the right byte.)
            data = data[len(_UTF8_BOM) :]
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
        if lines and max(map(len, lines)) > MAX_LINE_BYTES:  # in C: most blocks have none
            for offset, line in enumerate(lines):
                if len(line) > MAX_LINE_BYTES:
                    lines[offset] = REJECTED
                    rejects[next_line + offset] = f"line longer than {MAX_LINE_BYTES} bytes"
        if lines:
            # Mid-way through an over-long line there is no line boundary to resume from.
            end_offset = None if skipping_long_line else consumed - len(tail)
            end = next_line + len(lines)
            yield Block(
                source_index, lines, next_line, rejects=rejects, end_line=end, end_offset=end_offset
            )
            next_line = end
    if tail and not skipping_long_line:
        yield Block(source_index, [tail], next_line, end_line=next_line + 1, end_offset=consumed)


def _text_stream(stream: BinaryIO) -> io.TextIOWrapper:
    return io.TextIOWrapper(stream, encoding="utf-8", errors="surrogateescape", newline="")


def csv_blocks(stream: BinaryIO, source_index: int, source: str, column: str) -> Iterator[Block]:
    """The named column of each CSV row after the header; rows may span lines."""
    # A field may be long (it is then one invalid record), but not unbounded.
    csv.field_size_limit(max(csv.field_size_limit(), _CSV_FIELD_LIMIT))
    text = _text_stream(stream)
    reader = csv.reader(text)
    try:
        header = next(reader, None)
        if header is None:
            return
        names = [name.lstrip("\ufeff").strip() for name in header]
        if column not in names:
            raise InputError(
                f"input {source} has no CSV column {column!r} (its columns: {', '.join(names)})"
            )
        index = names.index(column)
        batch = _RecordBatch(source_index)
        for row in reader:
            if not row:
                batch.add(reader.line_num, b"")  # a blank line: skipped, like in text input
            elif index >= len(row):
                batch.reject(reader.line_num, f"row has no {column!r} column")
            elif not row[index].strip():
                batch.reject(reader.line_num, f"empty {column!r} field")
            elif len(row[index]) > MAX_LINE_BYTES:
                batch.reject(reader.line_num, f"field longer than {MAX_LINE_BYTES} bytes")
            else:
                batch.add(reader.line_num, row[index].encode("utf-8", "surrogateescape"))
            if batch.full:
                yield batch.take()
        if batch.lines:
            yield batch.take()
    except csv.Error as exc:
        raise InputError(f"input {source}: malformed CSV at line {reader.line_num}: {exc}") from exc
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(
            f"cannot read input {source} after line {reader.line_num:,}: {exc}"
        ) from exc
    finally:
        text.detach()  # the caller closes the stream under it


def jsonl_blocks(
    stream: BinaryIO,
    source_index: int,
    source: str,
    name: str,
    first_line: int = 1,
    offset: int = 0,
) -> Iterator[Block]:
    """The named field of each JSON object, one object per line."""
    batch = _RecordBatch(source_index)
    for block in text_blocks(stream, source_index, source, first_line, offset):
        for line_number, line in block.numbered():
            if line_number in block.rejects:
                batch.reject(line_number, block.rejects[line_number])
                continue
            if not line.strip():
                batch.add(line_number, b"")  # a blank line: skipped, like in text input
                continue
            try:
                record = json.loads(line.decode("utf-8"))
            except UnicodeDecodeError:
                batch.reject(line_number, "not valid UTF-8")
                continue
            except (ValueError, RecursionError):  # deep nesting is a RecursionError
                batch.reject(line_number, "not a JSON object")
                continue
            value = record.get(name) if isinstance(record, dict) else None
            if not isinstance(value, str):
                batch.reject(line_number, f"no string field {name!r}")
                continue
            try:
                batch.add(line_number, value.encode("utf-8"))
            except UnicodeEncodeError:  # a lone surrogate escape such as "\ud800"
                batch.reject(line_number, "field is not valid Unicode")
        if batch.full:
            yield batch.take(block.end_line, block.end_offset)
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

    def take(self, end_line: int = 0, end_offset: int | None = None) -> Block:
        """The records so far; the end is known only at a boundary of the underlying text."""
        end_line = end_line or (self.numbers[-1] + 1 if self.numbers else 0)
        block = Block(
            self.source_index,
            self.lines,
            0,
            self.numbers,
            self.rejects,
            end_line=end_line,
            end_offset=end_offset,
        )
        self.lines, self.numbers, self.rejects = [], [], {}
        return block


def read_blocks(
    paths: Sequence[str],
    input_format: InputFormat,
    column: str | None = None,
    start: ResumePoint | None = None,
    stdin_spool: Path | None = None,
) -> Iterator[Block]:
    """Every input in order from ``start``, as blocks. Blocking: the front runs it ahead of
    the loop, in a child process or a thread (see `readahead`).

    Standard input is copied to ``stdin_spool`` as it is read (a resumed job reads the spool
    instead: pass the spool's path in place of ``-``).
    """
    first = start or ResumePoint(0)
    # Each file as reading starts: one that is not the same when its reading ends (or when it
    # is opened, for the later inputs) was truncated, rewritten or replaced under the job.
    stamps = [stamp(path) for path in paths]
    for source_index, path in enumerate(paths):
        if source_index < first.source_index:
            continue
        source = source_name(path)
        stream = open_binary(path, stdin_spool)
        resuming = source_index == first.source_index and first.offset is not None
        line, offset = (first.line, first.offset or 0) if resuming else (1, 0)
        try:
            check_unchanged(path, stamps[source_index], stream)
            if resuming:
                skip_bytes(stream, offset, source)
            if input_format is InputFormat.CSV:
                assert column is not None
                yield from csv_blocks(stream, source_index, source, column)
            elif input_format is InputFormat.JSONL:
                assert column is not None
                yield from jsonl_blocks(stream, source_index, source, column, line, offset)
            else:
                yield from text_blocks(stream, source_index, source, line, offset)
            check_unchanged(path, stamps[source_index], stream)
        finally:
            stream.close()  # for stdin, our own reader: fd 0 itself stays open
