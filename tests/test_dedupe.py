"""Stage 3: SeenSet marks exactly the hashes seen before in the job, per type."""

from __future__ import annotations

import hashlib

from hypothesis import example, given, settings
from hypothesis import strategies as st

from reanalyzer.core.hashes import HashType
from reanalyzer.read.dedupe import SeenSet

_DIGESTS = {
    HashType.MD5: hashlib.md5,
    HashType.SHA1: hashlib.sha1,
    HashType.SHA256: hashlib.sha256,
    HashType.SHA512: hashlib.sha512,
}

# Real digests of small generated payloads: few distinct payloads, so repeats are frequent.
real_hash = st.tuples(st.sampled_from(list(HashType)), st.integers(0, 40)).map(
    lambda t: (t[0], _DIGESTS[t[0]](str(t[1]).encode()).hexdigest())
)
# Any hex of a hash's length: patterned values (zeros, one digit changed) included.
raw_hash = st.sampled_from(list(HashType)).flatmap(
    lambda t: st.binary(min_size=t.hex_length // 2, max_size=t.hex_length // 2).map(
        lambda b: (t, b.hex())
    )
)


def check_against_set(calls: list[list[tuple[HashType, str]]]) -> None:
    seen = SeenSet()
    model: set[str] = set()
    for call in calls:
        for hash_type in HashType:  # one type per mark_repeats call, as the front does
            hashes = [h for t, h in call if t is hash_type]
            expected = []
            for value in hashes:
                expected.append(value in model)
                model.add(value)
            assert seen.mark_repeats(hashes) == expected, hash_type
    assert len(seen) == len(model)


@settings(max_examples=15)
@given(calls=st.lists(st.lists(real_hash, max_size=60), max_size=6))
def test_exactly_the_repeats_are_marked(calls: list[list[tuple[HashType, str]]]) -> None:
    """On digests of all four types, repeats within one call and across calls are marked exactly as
    a set would.
    """
    check_against_set(calls)


@settings(max_examples=100)
@example(calls=[[(HashType.MD5, "0" * 32), (HashType.MD5, "0" * 31 + "1")]])
@given(calls=st.lists(st.lists(raw_hash, max_size=20), max_size=4))
def test_exactly_the_repeats_are_marked_on_patterned_hex(
    calls: list[list[tuple[HashType, str]]],
) -> None:
    """On any hex of a hash's length (patterned values included), repeats are marked exactly as a
    set would.
    """
    check_against_set(calls)


def test_sequential_hashes_are_all_new() -> None:
    """Distinct hashes that differ only in their last digits (as generated test data does) are all
    new.
    """
    seen = SeenSet()
    hashes = [f"{i:032x}" for i in range(1000)]
    assert seen.mark_repeats(hashes) == [False] * 1000


def test_repeats_within_one_call_and_across_calls() -> None:
    """The second and later copies are repeats, whether in the same call or a later one."""
    seen = SeenSet()
    a, b = hashlib.sha256(b"a").hexdigest(), hashlib.sha256(b"b").hexdigest()
    assert seen.mark_repeats([a, b, a, a]) == [False, False, True, True]
    assert seen.mark_repeats([b, hashlib.sha256(b"c").hexdigest()]) == [True, False]
    assert len(seen) == 3
    assert seen.mark_repeats([]) == []


def test_add_reports_new() -> None:
    """add() is True for a new hash and False for a repeat."""
    seen = SeenSet()
    value = hashlib.md5(b"x").hexdigest()
    assert seen.add(value) is True
    assert seen.add(value) is False
    assert len(seen) == 1
    assert seen.nbytes == 8


def test_types_are_never_confused() -> None:
    """md5, sha1, sha256 and sha512 values sharing a prefix, or being the same digits, are all new.
    """
    seen = SeenSet()
    for digit in "0af":
        for hash_type in HashType:
            assert seen.add(digit * hash_type.hex_length), (digit, hash_type)
    sha512 = hashlib.sha512(b"x").hexdigest()
    for hash_type in HashType:  # every prefix of one sha512, at each type's length
        assert seen.add(sha512[: hash_type.hex_length]), hash_type


def test_md5_and_sha1_with_a_crafted_tail_are_not_confused() -> None:
    """A sha1 is not a repeat of an md5 whose digits it starts with."""
    seen = SeenSet()
    assert seen.add("00" * 16)
    assert seen.add("00" * 16 + "04000000")


def test_misaligned_match_is_not_a_repeat() -> None:
    """A key found in a shard across two stored keys' bytes is not mistaken for a stored key."""
    seen = SeenSet()
    # Two md5s in one shard (same first 8 bytes), then one whose key is their keys' overlap.
    first = "00" * 8 + "11" * 8
    second = "00" * 8 + "22" * 8
    overlap = "00" * 8 + "11" * 4 + "22" * 4
    assert seen.mark_repeats([first, second]) == [False, False]
    assert seen.mark_repeats([overlap]) == [False]
