"""gzip files of the outcome log, read and written: whole, or a piece at a time."""

from __future__ import annotations

import contextlib
import gzip
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from reanalyzer.core.private import PRIVATE_FILE


def gunzip(path: Path) -> bytes:
    data = path.read_bytes()
    try:
        # Inflated into one buffer of the size the gzip trailer gives, zlib lets go of the GIL
        # once for the whole file: a growing buffer takes it back at each step, and the threads
        # reading ahead then wait for the decoding thread, as slow as one. (A torn trailer asks
        # for too much: the buffer is bounded, beyond which it grows.)
        size = int.from_bytes(data[-4:], "little")
        try:
            out = zlib.decompress(data, 31, max(1, min(size, 16 * len(data) + (1 << 20))))
            # zlib reads the first member only, which ends with this trailer: if the trailer
            # is nowhere in the file before its last 8 bytes, that member is the whole file.
            trailer = struct.pack("<II", zlib.crc32(out), len(out) & 0xFFFFFFFF)
            if data.find(trailer) == len(data) - 8:
                return out
        except zlib.error:
            pass  # torn, or empty: gzip tells which
        return gzip.decompress(data)  # or several members (recompressed by hand)
    except (EOFError, gzip.BadGzipFile, ValueError, zlib.error) as exc:
        raise OSError(f"{path}: not a whole gzip file ({exc})") from exc


class Inflated:
    """A gzip file's bytes as read(size) gives them: zlib straight (each gzip member checked
    against its trailer), a megabyte of the file at a time, fewer steps than gzip's reader."""

    def __init__(self, stream: BinaryIO, path: Path) -> None:
        self._stream, self._path = stream, path
        self._inflater = zlib.decompressobj(31)
        self._pending = b""  # compressed bytes read, not yet inflated
        self._started = False  # the current member has had some input

    def read(self, size: int) -> bytes:
        out = []
        wanted = size
        while wanted > 0:
            inflater = self._inflater
            if inflater.eof:  # a member ended: another may follow (recompressed by hand)
                self._pending = inflater.unused_data + self._pending
                if not self._pending:
                    self._pending = self._stream.read(1 << 20)
                    if not self._pending:
                        break
                self._inflater, self._started = zlib.decompressobj(31), False
                continue
            if not self._pending and not inflater.unconsumed_tail:
                self._pending = self._stream.read(1 << 20)
                if not self._pending:
                    if self._started:
                        raise OSError(f"{self._path}: not a whole gzip file (it ends early)")
                    break
            data = inflater.unconsumed_tail or self._pending
            if not inflater.unconsumed_tail:
                self._pending = b""
            try:
                got = inflater.decompress(data, wanted)
            except zlib.error as exc:
                raise OSError(f"{self._path}: not a whole gzip file ({exc})") from exc
            self._started = True
            out.append(got)
            wanted -= len(got)
        return b"".join(out)


def whole_lines(read: Callable[[int], bytes], size: int) -> Iterator[bytes]:
    """What `read` gives, `size` bytes at a time, in pieces that end at a newline (what follows
    the last newline left out: a torn line)."""
    rest = b""
    while piece := read(size):
        data = rest + piece if rest else piece
        cut = data.rfind(b"\n") + 1
        if cut:
            yield data[:cut]
        rest = data[cut:]


class GzWriter:
    """A gzip file written beside its name and renamed into place once whole (`commit`)."""

    def __init__(self, path: Path, level: int) -> None:
        self.path = path
        self._tmp = path.with_name(path.name + ".tmp")
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        self._out = open(os.open(self._tmp, flags, PRIVATE_FILE), "wb")  # noqa: SIM115
        self._deflate = zlib.compressobj(level, zlib.DEFLATED, 31)
        self._done = False

    def __enter__(self) -> GzWriter:
        return self

    def write(self, data: bytes) -> None:
        self._out.write(self._deflate.compress(data))

    def commit(self) -> None:
        self._out.write(self._deflate.flush())
        self._out.flush()
        os.fsync(self._out.fileno())
        self._out.close()
        os.replace(self._tmp, self.path)
        self._done = True

    def __exit__(self, *exc: object) -> None:
        if not self._done:
            self._out.close()
            with contextlib.suppress(OSError):
                self._tmp.unlink(missing_ok=True)
