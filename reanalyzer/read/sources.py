"""Opening an input: files, standard input (spooled so that a stdin job resumes) and gzip.

gzip is recognised here, and only here, by its first bytes (``is_gzip``); so are the compressed
and archive formats the tool does not read (``unread_format``), named in an input error rather
than read as junk lines.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

from reanalyzer.core.positions import STDIN, source_name
from reanalyzer.core.private import PRIVATE_FILE, open_private
from reanalyzer.errors import InputError, JobError

BLOCK_BYTES = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"


def is_gzip(first_bytes: bytes) -> bool:
    """Whether a stream that starts with these bytes is gzip."""
    return first_bytes[:2] == GZIP_MAGIC


# Formats that are not read, by their magic bytes: (name, how to turn one into text on a pipe).
UNREAD_FORMATS: tuple[tuple[bytes, str, str], ...] = (
    (b"\xfd7zXZ\x00", "xz-compressed", "xz -dc"),
    (b"BZh", "bzip2-compressed", "bzip2 -dc"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed", "zstd -dc"),
    (b"PK\x03\x04", "a zip archive", "unzip -p"),
    (b"PK\x05\x06", "a zip archive", "unzip -p"),
)
_MAGIC_BYTES = max(len(magic) for magic, _, _ in UNREAD_FORMATS)


def unread_format(first_bytes: bytes) -> tuple[str, str] | None:
    """(what it is, the command that decompresses it) if a stream starting with these bytes is
    a compressed or archive format that is not read; None otherwise. (bzip2's "BZh" is followed
    by the block size digit, so a text line starting "BZh" is not taken for it.)"""
    for magic, name, command in UNREAD_FORMATS:
        if first_bytes.startswith(magic):
            if magic == b"BZh" and not first_bytes[3:4].isdigit():
                continue
            return name, command
    return None


class _Tee(io.RawIOBase):
    """Standard input, copied to a spool file as it is read, so that the job can be resumed."""

    def __init__(self, inner: BinaryIO, spool: Path, opened: BinaryIO | None = None) -> None:
        self._inner = inner
        self._spool_path = spool
        self._spool = opened if opened is not None else open_private(spool)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        read1 = getattr(self._inner, "read1", self._inner.read)
        data = read1(len(buffer))
        self._spool.write(data)
        self._spool.flush()
        if not data:  # all of stdin is in the spool: a resume may read it in stdin's place
            os.fsync(self._spool.fileno())
            spool_complete_marker(self._spool_path).touch(PRIVATE_FILE)
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
            spool = open_private(self._spool_path, append=True)
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
        magic = peekable.peek(_MAGIC_BYTES)[:_MAGIC_BYTES]
    except OSError as exc:
        raise InputError(f"cannot read input {source_name(path)}: {exc.strerror}") from exc
    unread = unread_format(magic)
    if unread is not None:
        peekable.close()
        name, command = unread
        shown = "FILE" if path == STDIN else path
        raise InputError(
            f"input {source_name(path)} is {name}; decompress it first "
            f"({command} {shown} | reanalyzer run -)"
        )
    if is_gzip(magic):
        return cast(BinaryIO, _GzipInput(fileobj=peekable, mode="rb"))
    return cast(BinaryIO, peekable)


@dataclass(frozen=True, slots=True)
class Stamp:
    """What an input file is when reading starts: the same size, modification time and file
    at its end mean that what was read is what the job began with."""

    size: int
    mtime_ns: int
    file_id: tuple[int, int]  # (device, inode): which file the path names

    @classmethod
    def of(cls, st: os.stat_result) -> Stamp:
        return cls(st.st_size, st.st_mtime_ns, (st.st_dev, st.st_ino))


def stamp(path: str) -> Stamp | None:
    """The input file's stamp; None for standard input and what is not a regular file (a pipe,
    as `<(zcat x.gz)` gives, changes as it is written), or a path that cannot be stat'ed now
    (opening it says why)."""
    if path == STDIN:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return Stamp.of(st) if stat.S_ISREG(st.st_mode) else None


def change(before: Stamp, now: Stamp) -> str | None:
    """How a file changed between two stamps, in words; None if it did not."""
    if now.file_id != before.file_id:
        return "another file was put in its place"
    if now.size < before.size:
        return f"it shrank from {before.size:,} to {now.size:,} bytes"
    if now.size > before.size:
        return f"it grew from {before.size:,} to {now.size:,} bytes"
    if now.mtime_ns != before.mtime_ns:
        return "it was rewritten (its modification time changed)"
    return None


def check_unchanged(path: str, before: Stamp | None, stream: BinaryIO) -> None:
    """Raise InputError if the input file at `path`, read through `stream`, is no longer what
    it was when reading started: truncated, appended to, rewritten or replaced."""
    if before is None:
        return
    try:
        read = os.fstat(stream.fileno())
        try:
            named = os.stat(path)
        except FileNotFoundError:  # deleted since: the file read is still the one it was
            named = read
    except OSError as exc:
        raise InputError(f"cannot read input {path}: {exc.strerror or exc}") from exc
    what = change(before, Stamp(read.st_size, read.st_mtime_ns, (named.st_dev, named.st_ino)))
    if what is not None:
        raise InputError(
            f"input {path} changed while this job read it ({what}): reading stops here and "
            "the job is not done. A changed input is another job: run again once the file is "
            "final (with --job-dir, add --fresh to start that job over)"
        )


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
    except (OSError, EOFError, zlib.error) as exc:  # zlib.error: corrupt gzip data
        raise InputError(f"cannot read input {source}: {exc}") from exc
