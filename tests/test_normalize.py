"""Stage 2: each line of a block becomes exactly one of a typed hash, invalid, or skipped."""

from __future__ import annotations

import io
import string

from hypothesis import given, settings
from hypothesis import strategies as st

from reanalyzer.core.hashes import TYPE_BY_LENGTH, HashType, hash_type_of
from reanalyzer.core.positions import Block, position
from reanalyzer.read.formats import BLOCK_BYTES, MAX_LINE_BYTES, text_blocks
from reanalyzer.read.normalize import SortedBlock, sort_block

HEX = "0123456789abcdef"
WHITESPACE = " \t\r\x0b\x0c"


def hex_hash(hash_type: HashType) -> st.SearchStrategy[str]:
    n = hash_type.hex_length // 2
    return st.binary(min_size=n, max_size=n).map(bytes.hex)


any_hash = st.sampled_from(list(HashType)).flatmap(hex_hash)


@st.composite
def hash_variant(draw: st.DrawFn, value: str) -> bytes:
    """The same hash with random letter case and surrounding whitespace."""
    cased = "".join(c.upper() if draw(st.booleans()) else c for c in value)
    before = draw(st.text(alphabet=WHITESPACE, max_size=3))
    after = draw(st.text(alphabet=WHITESPACE, max_size=3))
    return (before + cased + after).encode()


hash_line = any_hash.flatmap(hash_variant)
junk_line = st.one_of(
    st.binary(max_size=140),  # mostly not UTF-8 or not hex
    st.text(alphabet=HEX + "ABCDEF", min_size=1, max_size=140).map(str.encode),  # wrong lengths
    st.text(max_size=80).map(lambda s: s.encode("utf-8", "surrogatepass")),
).filter(lambda b: b"\n" not in b)
skip_line = st.one_of(
    st.text(alphabet=WHITESPACE, max_size=4).map(str.encode),
    st.text(max_size=40).filter(lambda s: "\n" not in s).map(lambda s: ("#" + s).encode()),
)
any_line = st.one_of(hash_line, junk_line, skip_line)


def classify(raw: bytes) -> tuple[str, HashType | None, str | None]:
    """A slow, obvious model of the rules: what one line should become."""
    stripped = raw.strip()
    if not stripped or stripped.startswith(b"#"):
        return "skipped", None, None
    try:
        text = stripped.decode("ascii").lower()
    except UnicodeDecodeError:
        return "invalid", None, None
    hash_type = TYPE_BY_LENGTH.get(len(text))
    if hash_type is not None and set(text) <= set(HEX):
        return "hash", hash_type, text
    return "invalid", None, None


def sort_lines(lines: list[bytes], source_index: int = 0, first_line: int = 1) -> SortedBlock:
    return sort_block(Block(source_index, lines, first_line))


@given(lines=st.lists(any_line, max_size=60), source_index=st.integers(0, 5),
       first_line=st.integers(1, 10_000))
def test_every_line_has_exactly_one_outcome(
    lines: list[bytes], source_index: int, first_line: int
) -> None:
    """Each line lands in exactly one of hashes/invalid/skipped, at its own position, as the model
    says.
    """
    result = sort_lines(lines, source_index, first_line)
    positions = [position(source_index, first_line + i) for i in range(len(lines))]
    expected = [classify(line) for line in lines]

    hash_positions = [p for ps in result.positions.values() for p in ps]
    invalid_positions = [p for p, _ in result.invalid]
    seen = hash_positions + invalid_positions
    assert len(seen) == len(set(seen)), "a line was reported twice"
    assert result.hash_count + len(result.invalid) + result.skipped == len(lines)
    assert set(seen) == {p for p, e in zip(positions, expected, strict=True) if e[0] != "skipped"}
    assert result.skipped == sum(e[0] == "skipped" for e in expected)
    assert set(invalid_positions) == {
        p for p, e in zip(positions, expected, strict=True) if e[0] == "invalid"
    }
    for hash_type in HashType:
        want = [(p, e[2]) for p, e in zip(positions, expected, strict=True) if e[1] is hash_type]
        got = list(zip(result.positions.get(hash_type, []), result.hashes.get(hash_type, []),
                       strict=True))
        assert got == want


@settings(max_examples=50)
@given(value=any_hash, data=st.data())
def test_case_and_whitespace_variants_normalize_to_one_lowercase_hash(
    value: str, data: st.DataObject
) -> None:
    """Upper/mixed case and surrounding whitespace variants of a hash all become the lowercase hash.
    """
    variants = data.draw(st.lists(hash_variant(value), min_size=1, max_size=5))
    result = sort_lines(variants)
    hash_type = TYPE_BY_LENGTH[len(value)]
    assert result.hashes == {hash_type: [value] * len(variants)}
    assert result.invalid == []


@settings(max_examples=50)
@given(lines=st.lists(any_line, max_size=40))
def test_each_hash_type_matches_its_length(lines: list[bytes]) -> None:
    """Every hash sorted under a type has that type's length, is lowercase hex, and the same count
    of positions.
    """
    result = sort_lines(lines)
    for hash_type, hashes in result.hashes.items():
        assert hashes, "an empty type bucket"
        assert len(result.positions[hash_type]) == len(hashes)
        for value in hashes:
            assert len(value) == hash_type.hex_length
            assert hash_type_of(value) is hash_type


def test_examples_of_each_type() -> None:
    """md5, sha1, sha256 and sha512 are recognised by length."""
    lines = [b"a" * 32, b"B" * 40, b" c" * 32, b"d" * 64, b"E" * 128]
    result = sort_lines(lines)
    assert result.hashes == {
        HashType.MD5: ["a" * 32],
        HashType.SHA1: ["b" * 40],
        HashType.SHA256: ["d" * 64],
        HashType.SHA512: ["e" * 128],
    }
    assert [p for p, _ in result.invalid] == [3]  # " c c c ...": spaces inside


def test_blank_and_comment_lines_are_skipped() -> None:
    """Blank lines, whitespace-only lines and '#' comments (even indented) are skipped, not invalid.
    """
    result = sort_lines([b"", b"   ", b"\t\r", b"# a comment", b"  #" + b"a" * 32, b"a" * 32])
    assert result.skipped == 5
    assert result.invalid == []
    assert result.hashes == {HashType.MD5: ["a" * 32]}
    assert result.positions == {HashType.MD5: [6]}


def test_wrong_length_hex_is_invalid_with_the_expected_lengths() -> None:
    """Hex of a length that is no hash's is invalid, and the reason says how many digits and which
    are allowed.
    """
    result = sort_lines([b"a" * 31, b"a" * 33, b"ABC", b"a" * 129])
    assert [p for p, _ in result.invalid] == [1, 2, 3, 4]
    first = result.invalid[0][1]
    assert "31 hex digits" in first
    for expected in ("md5 32", "sha1 40", "sha256 64", "sha512 128"):
        assert expected in first
    assert "33 hex digits" in result.invalid[1][1]
    assert "'ABC'" in result.invalid[2][1]


def test_non_hex_is_invalid() -> None:
    """A line of a hash's length with a non-hex character is invalid, 'not hexadecimal', with an
    excerpt.
    """
    line = b"g" + b"a" * 31
    result = sort_lines([line, b"hello world"])
    assert result.hashes == {}
    (_, reason), (_, reason2) = result.invalid
    assert "not hexadecimal" in reason
    assert line.decode() in reason
    assert "not hexadecimal" in reason2


def test_long_excerpt_is_shortened() -> None:
    """The excerpt of a long invalid line in a reason is cut short."""
    result = sort_lines([b"z" * 1000])
    (_, reason), = result.invalid
    assert len(reason) < 150
    assert reason.endswith("…'")


def test_invalid_utf8_is_invalid() -> None:
    """A line that is not valid UTF-8 (even of a hash's length) is invalid, 'not valid UTF-8'."""
    result = sort_lines([b"\xff" * 32, b"abc\xc3(", b"\xed\xa0\x80"])
    assert [r for _, r in result.invalid] == ["not valid UTF-8"] * 3


def test_non_ascii_digits_and_unicode_whitespace_are_invalid() -> None:
    """Full-width digits, or a no-break space around a hash, do not pass as a hash."""
    result = sort_lines([("\u00a0" + "a" * 32).encode(), ("\uff10" * 32).encode()])
    assert result.hashes == {}
    assert [p for p, _ in result.invalid] == [1, 2]


def read_sorted(data: bytes) -> list[SortedBlock]:
    return [sort_block(b) for b in text_blocks(io.BytesIO(data), 0, "test")]


def test_over_long_line_is_invalid_with_a_reason() -> None:
    """A line over 64 KiB is one invalid line with a 'line longer than' reason; its neighbours keep
    their numbers.
    """
    data = b"a" * 32 + b"\n" + b"f" * (MAX_LINE_BYTES + 1) + b"\n" + b"b" * 40 + b"\n"
    blocks = read_sorted(data)
    invalid = [i for b in blocks for i in b.invalid]
    assert invalid == [(2, f"line longer than {MAX_LINE_BYTES} bytes")]
    hashes = {(t, h, p) for b in blocks for t in b.hashes
              for h, p in zip(b.hashes[t], b.positions[t], strict=True)}
    assert hashes == {(HashType.MD5, "a" * 32, 1), (HashType.SHA1, "b" * 40, 3)}


def test_line_of_exactly_the_limit_is_not_rejected_as_long() -> None:
    """A line of exactly 64 KiB is judged as a line (not a hash), not as over-long."""
    blocks = read_sorted(b"z" * MAX_LINE_BYTES + b"\n")
    (invalid,) = [i for b in blocks for i in b.invalid]
    assert invalid[0] == 1
    assert "not hexadecimal" in invalid[1]


def test_over_long_lines_spanning_several_reads() -> None:
    """Lines of several MiB, across 1 MiB reads, are each one invalid line, and the count of lines
    stays right.
    """
    long1 = b"0" * (3 * BLOCK_BYTES + 17)
    long2 = b"x" * (BLOCK_BYTES + 1)
    lines = [b"a" * 32, long1, b"b" * 40, long2, b"", b"c" * 64, b"d" * (MAX_LINE_BYTES + 5)]
    blocks = read_sorted(b"\n".join(lines))  # and no final newline
    invalid = [i for b in blocks for i in b.invalid]
    reason = f"line longer than {MAX_LINE_BYTES} bytes"
    assert invalid == [(2, reason), (4, reason), (7, reason)]
    positions = sorted(p for b in blocks for ps in b.positions.values() for p in ps)
    assert positions == [1, 3, 6]
    assert sum(b.skipped for b in blocks) == 1
    assert all(len(line) <= MAX_LINE_BYTES for b in text_blocks(
        io.BytesIO(b"\n".join(lines)), 0, "t") for line in b.lines)


def test_excerpt_alphabet_is_printable() -> None:
    """Reasons of ordinary junk quote the line with repr, so control characters cannot garble logs.
    """
    result = sort_lines([b"abc\x1bdef"])
    (_, reason), = result.invalid
    assert "\x1b" not in reason
    assert all(c in string.printable or c == "…" for c in reason)
