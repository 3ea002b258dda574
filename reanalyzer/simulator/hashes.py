"""The simulator's own reading of what a hash value is.

Kept apart from the runner's normalization on purpose: the simulator is a second, independent
reading of the API, so a misreading in either one shows up as a failing test.
"""

from __future__ import annotations

from enum import StrEnum


class HashType(StrEnum):
    """A hash type the appliance accepts, named as in the answers' `detail`."""

    MD5 = "md5"  # 32 hex digits
    SHA1 = "sha1"  # 40 hex digits
    SHA256 = "sha256"  # 64 hex digits
    SHA512 = "sha512"  # 128 hex digits


_BY_LENGTH = {32: HashType.MD5, 40: HashType.SHA1, 64: HashType.SHA256, 128: HashType.SHA512}
_HEX = frozenset("0123456789abcdefABCDEF")


def hash_type(value: str) -> HashType | None:
    """The type of `value`, or None when the appliance would answer 400 for it.

    The appliance takes hex in either case but no surrounding whitespace: trimming is the
    client's job, so the simulator refuses what a careless client would send untrimmed.
    """
    kind = _BY_LENGTH.get(len(value))
    if kind is None or not _HEX.issuperset(value):
        return None
    return kind
