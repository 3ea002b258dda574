"""Closed, compressed segments of the outcome log are read whole, however they were gzipped."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from reanalyzer.record.segments import Segment, read_segment, segment_chunks


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


def pieces(path: Path, data: bytes) -> list[bytes]:
    path.write_bytes(data)
    details = path.with_name("details.000001.jsonl.gz") if path.suffix == ".gz" else None
    return list(segment_chunks(Segment(path, details)))


@pytest.mark.parametrize("chunk", [7, 64, 1 << 20])
def test_a_segment_read_in_pieces_is_its_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    """Read a piece at a time (bounded memory), a compressed segment of one member or several,
    and a plain one with a torn last line, give back the lines read whole gives, each piece
    ending at a newline."""
    monkeypatch.setattr("reanalyzer.record.segments.READ_CHUNK", chunk)
    lines = b"".join(b'{"n":%d}\n' % n for n in range(20_000))
    one = tmp_path / "outcomes.000001.jsonl.gz"
    for data in (
        gzip.compress(lines, mtime=0),
        gzip.compress(lines[:999]) + gzip.compress(lines[999:]),
    ):
        got = pieces(one, data)
        assert b"".join(got) == lines
        assert all(piece.endswith(b"\n") for piece in got)
    plain = tmp_path / "outcomes.000002.jsonl"
    assert b"".join(pieces(plain, lines + b'{"n":')) == lines


def test_a_torn_or_empty_segment_read_in_pieces(tmp_path: Path) -> None:
    """As read whole: a torn compressed segment raises OSError, an empty file holds no lines,
    and so does a file with a compressed member followed by bytes that are none."""
    path = tmp_path / "outcomes.000001.jsonl.gz"
    with pytest.raises(OSError, match="not a whole gzip file"):
        pieces(path, gzip.compress(b"x\n" * 100_000)[:-5])
    with pytest.raises(OSError, match="not a whole gzip file"):
        pieces(path, gzip.compress(b"x\n") + b"garbage")
    assert pieces(path, b"") == []
