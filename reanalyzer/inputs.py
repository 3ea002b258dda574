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
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, cast

from reanalyzer.errors import InputError, JobError

BLOCK_BYTES = 1 << 20
FIRST_BLOCK_BYTES = 1 << 14
_UTF8_BOM = b"\xef\xbb\xbf"
MAX_LINE_BYTES = 64 * 1024  # a CSV row may be long; a hash line is at most ~130 bytes
_CSV_FIELD_LIMIT = 16 * 1024 * 1024
STDIN = "-"
REJECTED = (
    b"\x00rejected\x00"  # stands in for a line the format rejected: never a hash, never blank
)
_GZIP_MAGIC = b"\x1f\x8b"
SOURCE_SHIFT = 40  # a position packs (source index, line number) into one int
LINE_MASK = (1 << SOURCE_SHIFT) - 1


class InputFormat(enum.StrEnum):
    TEXT = "text"  # one hash per line; blank lines and # comments are skipped
    CSV = "csv"  # a header row, the hash in a named column
    JSONL = "jsonl"  # one JSON object per line, the hash in a named field


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


class _Tee(io.RawIOBase):
    """Standard input, copied to a spool file as it is read, so that the job can be resumed."""

    def __init__(self, inner: BinaryIO, spool: Path, opened: BinaryIO | None = None) -> None:
        self._inner = inner
        self._spool_path = spool
        self._spool = opened if opened is not None else spool.open("wb")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        read1 = getattr(self._inner, "read1", self._inner.read)
        data = read1(len(buffer))
        self._spool.write(data)
        self._spool.flush()
        if not data:  # all of stdin is in the spool: a resume may read it in stdin's place
            os.fsync(self._spool.fileno())
            spool_complete_marker(self._spool_path).touch()
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._spool.close()
        super().close()


class _Continued(io.RawIOBase):
    """A resumed job's standard input when an earlier run stopped before its end: the spool of
    what was read, then the rest of the standard input given now, copied on to the spool.

    The input given now must be the same one: its first bytes, as many as the spool holds, are
    read and compared with the spool (not used again). One that differs is refused; one that
    ends first (``< /dev/null``) leaves the rest of the job undone, and reading ends with an
    error that says how to go on, after the spool's lines.
    """

    def __init__(self, inner: BinaryIO, spool: Path) -> None:
        self._inner = inner
        self._spool_path = spool
        self._old: io.BufferedReader | None = spool.open("rb")
        self._held = spool.stat().st_size
        self._tee: _Tee | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._old is not None:
            got = self._old.readinto(buffer)
            if got:
                return got
            self._old.close()
            self._old = None
            self._skip_what_the_spool_holds()
            spool = self._spool_path.open("ab")
            self._tee = _Tee(self._inner, self._spool_path, spool)
        assert self._tee is not None
        return self._tee.readinto(buffer)

    def _skip_what_the_spool_holds(self) -> None:
        read1 = getattr(self._inner, "read1", self._inner.read)
        with self._spool_path.open("rb") as old:
            done = 0
            while done < self._held:
                data = read1(min(self._held - done, BLOCK_BYTES))
                if not data:
                    raise InputError(
                        f"standard input ended after {done:,} bytes, but an earlier run of "
                        f"this job had read {self._held:,} bytes of it and stopped before its "
                        "end: the lines after those are not in the job yet; pipe the whole "
                        "input in again to send them (the lines recorded are not sent twice)"
                    )
                if old.read(len(data)) != data:
                    raise JobError(
                        f"standard input differs from what an earlier run of this job read "
                        f"(within its first {done + len(data):,} bytes): this job goes on "
                        "only with the same input; use --fresh to start it over, or another "
                        "--job-dir"
                    )
                done += len(data)

    def close(self) -> None:
        if self._old is not None:
            self._old.close()
        if self._tee is not None:
            self._tee.close()
        super().close()


def spool_complete_marker(spool: Path) -> Path:
    return spool.with_name(spool.name + ".complete")


def _own_stdin() -> Any:
    try:
        return open(sys.stdin.fileno(), "rb", closefd=False)
    except (AttributeError, OSError, ValueError):  # a stand-in stdin (tests, embedding)
        return sys.stdin.buffer


class _GzipInput(gzip.GzipFile):
    """A gzip stream that also closes the stream under it (GzipFile leaves it open)."""

    def close(self) -> None:
        inner: Any = self.fileobj
        try:
            super().close()
        finally:
            if inner is not None:
                inner.close()


def open_binary(path: str, spool: Path | None = None) -> BinaryIO:
    """The raw byte stream of an input, un-gzipped when it starts with gzip's magic bytes.

    With ``spool``, standard input is also copied there as it is read.
    """
    try:
        if path == STDIN:
            # Our own reader on fd 0, not sys.stdin.buffer: a reader thread still blocked in it
            # when the process exits must not hold the lock the interpreter takes at shutdown.
            raw: Any = _own_stdin()
            if spool is not None and spool.exists():  # a resume, the spool cut short
                raw = io.BufferedReader(_Continued(raw, spool))
            elif spool is not None:
                raw = io.BufferedReader(_Tee(raw, spool))
        else:
            raw = open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise InputError(f"cannot open input {path}: {exc.strerror}") from exc
    # peek() needs a buffered stream; stdin and open(..., "rb") already are one.
    peekable = cast(io.BufferedReader, raw if hasattr(raw, "peek") else io.BufferedReader(raw))
    try:
        magic = peekable.peek(2)[:2]
    except OSError as exc:
        raise InputError(f"cannot read input {source_name(path)}: {exc.strerror}") from exc
    if magic == _GZIP_MAGIC:
        return cast(BinaryIO, _GzipInput(fileobj=peekable, mode="rb"))
    return cast(BinaryIO, peekable)


def skip_bytes(stream: BinaryIO, count: int, source: str) -> None:
    """Move a fresh stream to a byte offset: a seek where possible, else read and discard."""
    if count <= 0:
        return
    try:
        if not isinstance(stream, gzip.GzipFile) and stream.seekable():
            stream.seek(count)
            return
        while count > 0:
            data = stream.read(min(count, BLOCK_BYTES))
            if not data:
                raise InputError(f"input {source} is shorter than when the job began")
            count -= len(data)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InputError(f"cannot read input {source}: {exc}") from exc


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
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise InputError(f"cannot read input {source}: {exc}") from exc
        if not data:
            break
        consumed += len(data)
        if consumed == len(data) and data.startswith(_UTF8_BOM):
            # Windows editors and exports start files with a byte order mark: not part of line
            # 1. (Offsets still count it, so that a resume seeks to the right byte.)
            data = data[len(_UTF8_BOM):]
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
            yield Block(source_index, lines, next_line, rejects=rejects, end_line=end,
                        end_offset=end_offset)
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
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InputError(f"cannot read input {source}: {exc}") from exc
    finally:
        text.detach()  # the caller closes the stream under it


def jsonl_blocks(
    stream: BinaryIO, source_index: int, source: str, name: str, first_line: int = 1,
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
        block = Block(self.source_index, self.lines, 0, self.numbers, self.rejects,
                      end_line=end_line, end_offset=end_offset)
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
    for source_index, path in enumerate(paths):
        if source_index < first.source_index:
            continue
        source = source_name(path)
        stream = open_binary(path, stdin_spool)
        resuming = source_index == first.source_index and first.offset is not None
        line, offset = (first.line, first.offset or 0) if resuming else (1, 0)
        try:
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
        finally:
            stream.close()  # for stdin, our own reader: fd 0 itself stays open
