"""Closed, compressed segments of the outcome log are read whole, however they were gzipped."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from reanalyzer.record.segments import Segment, read_segment


def read(path: Path, data: bytes) -> bytes:
    path.write_bytes(data)
    return read_segment(Segment(path, path.with_name("details.000001.jsonl.gz")))[0]


def test_a_segment_of_one_member_is_read_whole(tmp_path: Path) -> None:
    """A segment as a run compresses it reads back as its lines."""
    lines = b"".join(b'{"n":%d}\n' % n for n in range(50_000))
    assert read(tmp_path / "outcomes.000001.jsonl.gz", gzip.compress(lines, mtime=0)) == lines


@pytest.mark.parametrize("second", [b"b\n", b"a\n", b""])
def test_a_segment_of_several_members_is_read_whole(tmp_path: Path, second: bytes) -> None:
    """A segment recompressed in several members reads as all of them, the same one twice too."""
    data = gzip.compress(b"a\n") + gzip.compress(second)
    assert read(tmp_path / "outcomes.000001.jsonl.gz", data) == b"a\n" + second


def test_a_torn_or_empty_segment(tmp_path: Path) -> None:
    """A torn compressed segment raises OSError; an empty file holds no lines."""
    with pytest.raises(OSError, match="not a whole gzip file"):
        read(tmp_path / "outcomes.000001.jsonl.gz", gzip.compress(b"x" * 100_000)[:-5])
    assert read(tmp_path / "outcomes.000001.jsonl.gz", b"") == b""
