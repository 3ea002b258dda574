"""Stage 1: reading text, gzip, CSV and JSON-lines inputs as numbered blocks of raw hash fields."""

from __future__ import annotations

import gc
import gzip
import io
import json
import os
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO, cast
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reanalyzer.core.positions import Block, position, source_name, unpack_position
from reanalyzer.errors import InputError
from reanalyzer.read import formats as inputs
from reanalyzer.read.formats import REJECTED, InputFormat, read_blocks, text_blocks

MD5 = "0123456789abcdef" * 2
SHA1 = "a" * 40
SHA256 = "b" * 64


def records(blocks: Iterable[Block]) -> list[tuple[int, int, bytes, str | None]]:
    """(source index, line, raw field, reject reason) of every record, in order."""
    out = []
    for block in blocks:
        for line, raw in block.numbered():
            out.append((block.source_index, line, raw, block.rejects.get(line)))
    return out


def read(paths: list[str], fmt: InputFormat = InputFormat.TEXT, column: str | None = None):  # type: ignore[no-untyped-def]
    return records(list(read_blocks(paths, fmt, column)))


class Trickle(io.RawIOBase):
    """A raw stream that hands out its data in pieces of the given sizes, like a pipe."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        self._data = data
        self._sizes = sizes or [1]
        self._i = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        size = min(len(buffer), self._sizes[self._i % len(self._sizes)])
        self._i += 1
        piece, self._data = self._data[:size], self._data[size:]
        buffer[: len(piece)] = piece
        return len(piece)

    def read1(self, size: int = -1) -> bytes:
        buffer = bytearray(size if size > 0 else 1 << 20)
        return bytes(buffer[: self.readinto(buffer)])


@settings(max_examples=60)
@given(
    lines=st.lists(st.binary(max_size=20).filter(lambda b: b"\n" not in b), max_size=30),
    final_newline=st.booleans(),
    sizes=st.lists(st.integers(1, 25), min_size=1, max_size=5),
)
def test_text_lines_survive_any_read_sizes(
    lines: list[bytes], final_newline: bool, sizes: list[int]
) -> None:
    """However the stream is cut into reads, the blocks hold exactly the input's lines, numbered
    from 1; over-long ones rejected.
    """
    limit = 10
    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    # A byte order mark that opens the stream is not part of line 1 (Windows tools write one).
    expected_lines = data.removeprefix(b"\xef\xbb\xbf").split(b"\n")
    if expected_lines[-1] == b"":
        expected_lines.pop()
    with mock.patch.object(inputs, "MAX_LINE_BYTES", limit):
        got = records(list(text_blocks(cast(BinaryIO, Trickle(data, sizes)), 3, "t")))
    assert [line for _, line, _, _ in got] == list(range(1, len(expected_lines) + 1))
    assert {s for s, _, _, _ in got} <= {3}
    for (_, _, raw, reason), want in zip(got, expected_lines, strict=True):
        if len(want) > limit:
            assert raw == REJECTED
            assert reason == f"line longer than {limit} bytes"
        else:
            assert raw == want
            assert reason is None


def test_text_file(tmp_path: Path) -> None:
    """A text file is read line by line, every line numbered, blank and comment lines included."""
    path = tmp_path / "h.txt"
    path.write_bytes(f"{MD5}\n\n# c\n  {SHA1.upper()}  \n".encode())
    assert read([str(path)]) == [
        (0, 1, MD5.encode(), None),
        (0, 2, b"", None),
        (0, 3, b"# c", None),
        (0, 4, f"  {SHA1.upper()}  ".encode(), None),
    ]


@pytest.mark.parametrize("first", [MD5, "# a comment"])
def test_a_byte_order_mark_is_not_part_of_line_1(tmp_path: Path, first: str) -> None:
    """Windows tools start files with a UTF-8 BOM: line 1 is read without it, and the byte
    offsets a resume seeks to still count it."""
    path = tmp_path / "h.txt"
    path.write_bytes(f"\ufeff{first}\r\n{SHA1}\r\n".encode())
    assert [r[2].strip() for r in read([str(path)])] == [first.encode(), SHA1.encode()]
    with path.open("rb") as stream:
        (block,) = inputs.text_blocks(stream, 0, str(path))
    assert block.end_offset == path.stat().st_size


def test_a_byte_order_mark_before_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    path.write_bytes(f'\ufeff{{"sha1": "{SHA1}"}}\n'.encode())
    assert read([str(path)], InputFormat.JSONL, "sha1") == [(0, 1, SHA1.encode(), None)]


def test_last_line_without_newline(tmp_path: Path) -> None:
    """A last line without a final newline is still read."""
    path = tmp_path / "h.txt"
    path.write_bytes(f"{MD5}\n{SHA1}".encode())
    assert [r[2] for r in read([str(path)])] == [MD5.encode(), SHA1.encode()]


def test_crlf_lines_keep_the_carriage_return_for_stripping(tmp_path: Path) -> None:
    """Windows line ends leave a trailing \\r that normalization strips, not a lost line."""
    path = tmp_path / "h.txt"
    path.write_bytes(f"{MD5}\r\n{SHA1}\r\n".encode())
    assert [r[2].strip() for r in read([str(path)])] == [MD5.encode(), SHA1.encode()]


def test_gzip_file_is_read_transparently(tmp_path: Path) -> None:
    """A gzip file (by content, whatever its name) is decompressed on the fly."""
    path = tmp_path / "hashes.data"
    path.write_bytes(gzip.compress(f"{MD5}\n{SHA256}\n".encode()))
    assert [r[2] for r in read([str(path)])] == [MD5.encode(), SHA256.encode()]


def test_corrupt_gzip_is_an_input_error(tmp_path: Path) -> None:
    """A truncated gzip file stops the job with an InputError naming the input."""
    path = tmp_path / "bad.gz"
    path.write_bytes(gzip.compress((MD5 + "\n").encode() * 1000)[:40])
    with pytest.raises(InputError, match=r"bad\.gz"):
        read([str(path)])


_STDIN_READER = """
import json, sys
from reanalyzer.read.formats import read_blocks, InputFormat
out = [[b.source_index, line, raw.decode()] for b in read_blocks(["-"], InputFormat.TEXT)
       for line, raw in b.numbered()]
print(json.dumps(out))
"""


def test_gzip_on_stdin() -> None:
    """Gzip data piped on standard input is decompressed too."""
    data = gzip.compress(f"{MD5}\n{SHA1}\n".encode())
    result = subprocess.run(
        [sys.executable, "-c", _STDIN_READER], input=data, capture_output=True,
        env=dict(os.environ), timeout=30, check=True,
    )
    assert json.loads(result.stdout) == [[0, 1, MD5], [0, 2, SHA1]]


def test_csv_named_column_with_quotes(tmp_path: Path) -> None:
    """The named CSV column is read, quoted fields (commas, quotes, newlines inside) included, with
    each row's line.
    """
    path = tmp_path / "h.csv"
    path.write_text(
        'name,sha1,size\n'
        f'"a, b",{SHA1},1\n'
        f'"say ""hi""","{SHA1.upper()}",2\n'
        f'"two\nlines", {SHA1} ,3\n'
        '\n'
        f'x,"{MD5}"\n',
        encoding="utf-8",
    )
    assert read([str(path)], InputFormat.CSV, "sha1") == [
        (0, 2, SHA1.encode(), None),
        (0, 3, SHA1.upper().encode(), None),
        (0, 5, f" {SHA1} ".encode(), None),  # a row spanning lines 4-5 has its last line
        (0, 6, b"", None),  # a blank line: counted, then skipped like in text input
        (0, 7, MD5.encode(), None),
    ]


def test_csv_header_is_trimmed_and_bom_ignored(tmp_path: Path) -> None:
    """A header with a UTF-8 BOM and spaces around names still finds the column."""
    path = tmp_path / "h.csv"
    path.write_bytes(f"\ufeffsha256,x\n{SHA256},1\n".encode())
    assert read([str(path)], InputFormat.CSV, "sha256") == [(0, 2, SHA256.encode(), None)]
    path.write_bytes(f"x, sha256 \n1,{SHA256}\n".encode())
    assert read([str(path)], InputFormat.CSV, "sha256") == [(0, 2, SHA256.encode(), None)]


def test_csv_row_without_the_column_is_rejected(tmp_path: Path) -> None:
    """A row too short to have the column becomes a reject with a reason and its line number."""
    path = tmp_path / "h.csv"
    path.write_text(f"name,md5\na,{MD5}\nshort\nb,{MD5}\n", encoding="utf-8")
    assert read([str(path)], InputFormat.CSV, "md5") == [
        (0, 2, MD5.encode(), None),
        (0, 3, REJECTED, "row has no 'md5' column"),
        (0, 4, MD5.encode(), None),
    ]


def test_csv_unknown_column_is_an_input_error(tmp_path: Path) -> None:
    """A CSV without the named column stops with an InputError listing its columns."""
    path = tmp_path / "h.csv"
    path.write_text("name,md5\na,b\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"no CSV column 'sha1' \(its columns: name, md5\)"):
        read([str(path)], InputFormat.CSV, "sha1")


def test_csv_invalid_utf8_field_travels_as_bytes(tmp_path: Path) -> None:
    """A CSV field that is not UTF-8 reaches normalization as its raw bytes, not an error."""
    path = tmp_path / "h.csv"
    path.write_bytes(b"md5\n\xff\xfe\n")
    assert read([str(path)], InputFormat.CSV, "md5") == [(0, 2, b"\xff\xfe", None)]


def test_csv_over_long_field_is_one_invalid_row(tmp_path: Path) -> None:
    """An over-long CSV row is rejected on its own; the rows after it are still read."""
    path = tmp_path / "h.csv"
    path.write_bytes(b"md5\n" + b"a" * 200_000 + b"\n" + MD5.encode() + b"\n")
    got = read([str(path)], InputFormat.CSV, "md5")
    assert got[-1] == (0, 3, MD5.encode(), None)
    assert got[0][:2] == (0, 2)
    assert got[0][3] is not None


def test_jsonl_named_field(tmp_path: Path) -> None:
    """The named field of each JSON line is read; bad JSON and a missing or non-string field are
    rejected with their line.
    """
    path = tmp_path / "h.jsonl"
    path.write_text(
        f'{{"sha256": "{SHA256}", "n": 1}}\n'
        "\n"
        "{not json\n"
        '{"md5": "x"}\n'
        '{"sha256": 5}\n'
        "[1, 2]\n"
        f'  {{"sha256": " {SHA256.upper()} "}}  \n'
        f'{{"sha256": "{SHA256}"}}',  # no final newline
        encoding="utf-8",
    )
    assert read([str(path)], InputFormat.JSONL, "sha256") == [
        (0, 1, SHA256.encode(), None),
        (0, 2, b"", None),  # a blank line: counted, then skipped like in text input
        (0, 3, REJECTED, "not a JSON object"),
        (0, 4, REJECTED, "no string field 'sha256'"),
        (0, 5, REJECTED, "no string field 'sha256'"),
        (0, 6, REJECTED, "no string field 'sha256'"),
        (0, 7, f" {SHA256.upper()} ".encode(), None),
        (0, 8, SHA256.encode(), None),
    ]


def test_jsonl_over_long_line_is_rejected(tmp_path: Path) -> None:
    """A JSON line over 64 KiB is rejected as over-long, not parsed."""
    path = tmp_path / "h.jsonl"
    long_line = json.dumps({"sha256": SHA256, "pad": "x" * (inputs.MAX_LINE_BYTES + 1)})
    path.write_text(f"{long_line}\n{json.dumps({'sha256': SHA256})}\n", encoding="utf-8")
    assert read([str(path)], InputFormat.JSONL, "sha256") == [
        (0, 1, REJECTED, f"line longer than {inputs.MAX_LINE_BYTES} bytes"),
        (0, 2, SHA256.encode(), None),
    ]


def test_jsonl_lone_surrogate_is_rejected(tmp_path: Path) -> None:
    """A field holding a lone surrogate escape is one bad record, not a crash."""
    path = tmp_path / "h.jsonl"
    path.write_text('{"h": "\\ud800"}\n' + json.dumps({"h": MD5}) + "\n", encoding="utf-8")
    got = read([str(path)], InputFormat.JSONL, "h")
    assert got[-1] == (0, 2, MD5.encode(), None)
    assert got[0][:2] == (0, 1)


def test_jsonl_deeply_nested_line_is_rejected(tmp_path: Path) -> None:
    """A line of deeply nested JSON (under the length limit) is one bad record, not a crash."""
    path = tmp_path / "h.jsonl"
    path.write_text("[" * 50_000 + "\n" + json.dumps({"h": MD5}) + "\n", encoding="utf-8")
    got = read([str(path)], InputFormat.JSONL, "h")
    assert got == [(0, 1, REJECTED, "not a JSON object"), (0, 2, MD5.encode(), None)]


def test_several_inputs_keep_their_sources_and_line_numbers(tmp_path: Path) -> None:
    """Each input of a job keeps its own source index and line numbers, and positions unpack to
    them.
    """
    first, second = tmp_path / "a.txt", tmp_path / "b.txt.gz"
    first.write_text(f"{MD5}\n{SHA1}\n", encoding="utf-8")
    second.write_bytes(gzip.compress(f"# x\n{SHA256}\n".encode()))
    got = read([str(first), str(second)])
    assert [(s, line) for s, line, _, _ in got] == [(0, 1), (0, 2), (1, 1), (1, 2)]
    assert unpack_position(position(1, 2)) == (1, 2)
    assert unpack_position(position(7, (1 << 40) - 1)) == (7, (1 << 40) - 1)
    assert source_name("-") == "<stdin>"


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    """An input that does not exist stops the job with an InputError naming it."""
    missing = tmp_path / "nope.txt"
    with pytest.raises(InputError, match=r"cannot open input .*nope\.txt"):
        read([str(missing)])


def test_missing_second_file_fails_after_the_first(tmp_path: Path) -> None:
    """Inputs are opened in turn: the first is read before a missing second one fails."""
    first = tmp_path / "a.txt"
    first.write_text(MD5 + "\n", encoding="utf-8")
    blocks = read_blocks([str(first), str(tmp_path / "gone")], InputFormat.TEXT)
    assert next(blocks).lines == [MD5.encode()]
    with pytest.raises(InputError):
        next(blocks)


def test_empty_input_gives_no_blocks(tmp_path: Path) -> None:
    """An empty file, text or CSV, gives no records."""
    path = tmp_path / "empty"
    path.write_bytes(b"")
    assert read([str(path)]) == []
    assert read([str(path)], InputFormat.CSV, "md5") == []


def unclosed_file_warnings(paths: list[str], fmt: InputFormat, column: str | None) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        list(read_blocks(paths, fmt, column))
        gc.collect()
    return [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


def test_text_input_is_closed(tmp_path: Path) -> None:
    """Reading a plain text input to the end leaves no file open."""
    path = tmp_path / "h.txt"
    path.write_text(MD5 + "\n", encoding="utf-8")
    assert unclosed_file_warnings([str(path)], InputFormat.TEXT, None) == []


def test_gzip_input_is_closed(tmp_path: Path) -> None:
    """Reading a gzip input to the end leaves no file open."""
    path = tmp_path / "h.gz"
    path.write_bytes(gzip.compress(MD5.encode() + b"\n"))
    assert unclosed_file_warnings([str(path)], InputFormat.TEXT, None) == []


def test_csv_input_is_closed(tmp_path: Path) -> None:
    """Reading a CSV input to the end leaves no file open."""
    path = tmp_path / "h.csv"
    path.write_text(f"md5\n{MD5}\n", encoding="utf-8")
    assert unclosed_file_warnings([str(path)], InputFormat.CSV, "md5") == []


def _truncate(path: Path) -> None:
    with path.open("r+b") as f:
        f.truncate(path.stat().st_size // 2)


def _rewrite_in_place(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data.replace(SHA1.encode(), SHA256[:40].encode()))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000_000))


def _replace(path: Path) -> None:
    new = path.with_name("new.txt")
    new.write_bytes(path.read_bytes())
    new.replace(path)


@pytest.mark.parametrize(("change", "words"), [
    (_truncate, "shrank from"),
    (_rewrite_in_place, "rewritten"),
    (_replace, "another file was put in its place"),
])
def test_an_input_changed_while_it_is_read_ends_reading_with_an_input_error(
    tmp_path: Path, change: object, words: str
) -> None:
    """An input truncated, rewritten (same size) or replaced after its first block was read
    ends reading with an InputError saying how it changed, after the blocks already read."""
    path = tmp_path / "hashes.txt"
    path.write_bytes(f"{SHA1}\n".encode() * 20_000)  # many blocks
    blocks = read_blocks([str(path)], InputFormat.TEXT)
    first = next(blocks)
    assert first.lines
    cast(Callable[[Path], None], change)(path)
    with pytest.raises(InputError, match=f"{path.name} changed while this job read it.*{words}"):
        list(blocks)


def test_a_later_input_changed_before_it_is_opened_is_refused(tmp_path: Path) -> None:
    """The second input, rewritten while the first was being read, is refused when it is
    opened, before any of its lines is read."""
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_bytes(f"{SHA1}\n".encode() * 10)
    second.write_bytes(f"{MD5}\n".encode() * 10)
    blocks = read_blocks([str(first), str(second)], InputFormat.TEXT)
    assert next(blocks).source_index == 0
    second.write_bytes(f"{MD5}\n".encode() * 3)
    later: list[Block] = []
    with pytest.raises(InputError, match=r"b\.txt changed while this job read it.*shrank"):
        later.extend(blocks)
    assert all(block.source_index == 0 for block in later)


def test_a_pipe_written_while_it_is_read_is_no_changed_file() -> None:
    """An input that is a pipe (as `<(zcat x.gz)` gives) changes as it is written: it is read
    to its end, not refused as a changed file."""
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, f"{SHA1}\n".encode())
        blocks = read_blocks([f"/dev/fd/{read_fd}"], InputFormat.TEXT)
        first = next(blocks)
        os.utime(f"/dev/fd/{write_fd}", ns=(1, 1))  # as a later write moves its times on
        os.write(write_fd, f"{MD5}\n".encode())
        os.close(write_fd)
        write_fd = -1
        rest = list(blocks)
    finally:
        os.close(read_fd)
        if write_fd >= 0:
            os.close(write_fd)
    assert [line for block in [first, *rest] for _, line in block.numbered()] == [
        SHA1.encode(), MD5.encode()]
