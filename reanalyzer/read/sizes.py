"""How large the inputs are, decoded: for the progress line's total and ETA.

A plain file's size is exact; a gzip input's is estimated (``gzip_size``), and says so.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Sequence

from reanalyzer.core.positions import STDIN
from reanalyzer.read.sources import is_gzip

_SAMPLE_BYTES = 1 << 20  # of a gzip input, decompressed at the start to see its ratio


def gzip_size(path: str) -> int | None:
    """About how many bytes a gzip file decompresses to: its trailer's ISIZE (the size modulo
    2**32, of the last member only), lifted by the multiple of 2**32 that puts it nearest to
    its compressed size times the ratio its first MiB decompresses at; None if unreadable."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(_SAMPLE_BYTES)
            f.seek(max(0, size - 4))
            isize = int.from_bytes(f.read(4), "little")
    except OSError:
        return None
    inflater = zlib.decompressobj(wbits=31)
    try:
        sample = len(inflater.decompress(head, 64 * _SAMPLE_BYTES))
    except zlib.error:
        return None
    used = len(head) - len(inflater.unconsumed_tail) - len(inflater.unused_data)
    if sample == 0 or used <= 0:
        return isize
    guess = size * sample / used
    if inflater.eof and not inflater.unused_data:  # one member, wholly read: exact
        return sample
    lift = max(0, round((guess - isize) / 2**32))
    return isize + lift * 2**32


def input_sizes(paths: Sequence[str]) -> tuple[list[int] | None, bool]:
    """The decoded byte sizes of the inputs (None when one is standard input or cannot be
    read), and whether some are estimates (gzip inputs, see `gzip_size`)."""
    sizes = []
    estimated = False
    for path in paths:
        if path == STDIN:
            return None, False
        try:
            with open(path, "rb") as f:
                if is_gzip(f.read(2)):
                    size = gzip_size(path)
                    if size is None:
                        return None, False
                    sizes.append(size)
                    estimated = True
                    continue
                sizes.append(os.fstat(f.fileno()).st_size)
        except OSError:
            return None, False
    return sizes, estimated
