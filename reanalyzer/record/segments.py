"""The outcome log's files: the open segment a run appends to, and closed, compressed segments.

JOB_DIR/outcomes.jsonl is the open segment: plain JSON lines, appended to (record/outcome_log.py).
Once it holds ``SEGMENT_BYTES`` (and when a run ends) it is closed: renamed to
``outcomes.NNNNNN.jsonl``, then compressed, off the event loop, into two gzip files made from it
line for line: ``outcomes.NNNNNN.jsonl.gz`` (each line without its ``details``, which is all that
``status``, ``report --format list|csv`` and a resume read, ~30 bytes a record) and
``details.NNNNNN.jsonl.gz`` (each line's ``details`` array, or null: the sample's other hashes,
most of a record's bytes). ``details`` is written first, ``outcomes`` renamed last: its name
says the pair is whole, and only then is the plain segment removed. A crash at any step leaves
the plain segment, which the next run compresses again.

Segments are read in order (closed ones by number, then the open one); a reader racing a run
that closes a segment reads the plain file it opened, or the compressed pair.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from reanalyzer.record.atomic import fsync_directory
from reanalyzer.record.gz import GzWriter, Inflated, gunzip, whole_lines

SEGMENT_BYTES = 64 << 20  # an open segment is closed once it holds this much
READ_CHUNK = 1 << 20  # what a bounded reader inflates and decodes at once (larger is slower)
_CLOSED = re.compile(r"outcomes\.(\d{6,})\.jsonl(\.gz)?$")
_DETAILS_KEY = b',"details":'
_V1_START = b'{"hash":'  # a record of one line, as the log held before v2: kept whole


@dataclass(frozen=True, slots=True)
class Segment:
    """One segment of a log: a plain file (details within its lines), or a compressed pair."""

    path: Path  # the plain file, or the compressed lines without details
    details: Path | None  # the compressed details beside them; None for a plain file

    @property
    def compressed(self) -> bool:
        return self.details is not None


def details_path(directory: Path, number: int) -> Path:
    return directory / f"details.{number:06d}.jsonl.gz"


def closed_path(directory: Path, number: int, compressed: bool) -> Path:
    return directory / f"outcomes.{number:06d}.jsonl{'.gz' if compressed else ''}"


def closed_numbers(directory: Path) -> dict[int, bool]:
    """The closed segments of a log: number → whether its compressed pair is whole."""
    numbers: dict[int, bool] = {}
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return numbers
    for name in names:
        match = _CLOSED.match(name)
        if match:
            number = int(match.group(1))
            numbers[number] = numbers.get(number, False) or match.group(2) is not None
    return numbers


def segments(open_path: Path) -> list[Segment]:
    """Every segment of the log whose open segment is `open_path`, in order."""
    directory = open_path.parent
    found = []
    for number, compressed in sorted(closed_numbers(directory).items()):
        if compressed:
            found.append(
                Segment(closed_path(directory, number, True), details_path(directory, number))
            )
        else:
            found.append(Segment(closed_path(directory, number, False), None))
    if open_path.exists():
        found.append(Segment(open_path, None))
    return found


def all_files(open_path: Path) -> list[Path]:
    """Every file of the log (for --fresh and for measuring its size)."""
    directory = open_path.parent
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    pattern = re.compile(r"(outcomes|details)\.\d{6,}\.jsonl(\.gz)?(\.tmp)?$")
    files = [directory / name for name in names if pattern.match(name)]
    return files + ([open_path] if open_path.exists() else [])


def read_segment(segment: Segment) -> tuple[bytes, bytes | None]:
    """The lines of a segment (a plain one: up to its last newline), and its details' lines.
    A compressed file that cannot be read raises OSError (EOFError, gzip.BadGzipFile are)."""
    if segment.details is None:
        try:
            data = _read_plain(segment.path)
        except FileNotFoundError:  # compressed since it was listed
            number = int(_CLOSED.match(segment.path.name).group(1))  # type: ignore[union-attr]
            directory = segment.path.parent
            return read_segment(
                Segment(closed_path(directory, number, True), details_path(directory, number))
            )
        return data, None
    return gunzip(segment.path), None


def segment_chunks(segment: Segment) -> Iterator[bytes]:
    """A segment's lines in pieces of about ``READ_CHUNK`` bytes, each ending at a newline (a
    plain segment's torn last line left out): what a reader of bounded memory holds at once.
    A compressed file that cannot be read raises OSError."""
    if segment.details is None:
        try:
            stream = open(segment.path, "rb")  # noqa: SIM115 (closed below, or handed on)
        except FileNotFoundError:  # compressed since it was listed
            number = int(_CLOSED.match(segment.path.name).group(1))  # type: ignore[union-attr]
            directory = segment.path.parent
            yield from segment_chunks(
                Segment(closed_path(directory, number, True), details_path(directory, number))
            )
            return
        with stream:
            yield from whole_lines(stream.read, READ_CHUNK)
        return
    with open(segment.path, "rb") as stream:
        yield from whole_lines(Inflated(stream, segment.path).read, READ_CHUNK)


def read_details(segment: Segment) -> bytes | None:
    return None if segment.details is None else gunzip(segment.details)


def _read_plain(path: Path) -> bytes:
    data = path.read_bytes()
    return data[: data.rfind(b"\n") + 1]


def split_lines(data: bytes) -> tuple[bytes, bytes]:
    """A plain segment's lines without their details, and the details (or null), line for
    line."""
    main, details = [], []
    for line in data.splitlines(keepends=True):
        cut = -1 if line.startswith(_V1_START) else line.rfind(_DETAILS_KEY)
        if cut < 0 or not line.endswith(b"]}\n"):
            main.append(line)
            details.append(b"null\n")
        else:
            main.append(line[:cut] + b"}\n")
            details.append(line[cut + len(_DETAILS_KEY) : -2] + b"\n")
    return b"".join(main), b"".join(details)


def compress_segment(directory: Path, number: int) -> None:
    """Turn closed plain segment `number` into its compressed pair, then remove it."""
    plain = closed_path(directory, number, False)
    main_gz = closed_path(directory, number, True)
    if main_gz.exists():  # done before a crash: only the plain file was left
        plain.unlink(missing_ok=True)
        return
    details_gz = details_path(directory, number)
    # A piece at a time (the run's memory does not grow by a segment's size as it closes one),
    # both at level 1: the lines are mostly hex digits, which compress about as well at 1 as
    # at 6 (a segment's lines 1.8% larger) three times faster; at 6, compressing its lines took
    # a sixth of the run's CPU per hash at 20 ms latency (bench.py send).
    with GzWriter(details_gz, 1) as details_out, GzWriter(main_gz, 1) as main_out:
        with open(plain, "rb") as stream:
            for piece in whole_lines(stream.read, READ_CHUNK):
                main, details = split_lines(piece)
                details_out.write(details)
                main_out.write(main)
        details_out.commit()  # details first: the main file's name says the pair is whole
        main_out.commit()
    fsync_directory(directory)
    plain.unlink()
    fsync_directory(directory)


class Closer:
    """Closes open segments and compresses them in a thread, one at a time, in order."""

    def __init__(self, open_path: Path) -> None:
        self.open_path = open_path
        self.directory = open_path.parent
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def pending(self) -> list[int]:
        """Closed segments not compressed yet (a crash, or a run that ended first)."""
        return sorted(n for n, done in closed_numbers(self.directory).items() if not done)

    def close_open_segment(self) -> None:
        """Rename the open segment to the next closed number (the caller reopens it)."""
        numbers = closed_numbers(self.directory)
        number = max(numbers, default=0) + 1
        os.replace(self.open_path, closed_path(self.directory, number, False))
        fsync_directory(self.directory)

    def compress_in_background(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return  # it takes the next pending segment when it is done with this one
        self._thread = threading.Thread(
            target=self._compress_pending, daemon=True, name="outcome-log-compress"
        )
        self._thread.start()

    def _compress_pending(self) -> None:
        try:
            while True:
                todo = self.pending()
                if not todo:
                    return
                compress_segment(self.directory, todo[0])
        except BaseException as exc:  # the plain segment stays: the next run tries again
            self.error = exc

    def finish(self) -> None:
        """Compress every pending segment, here and now (waiting for the thread first)."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._compress_pending()
