"""Hash types and the pure rules that recognise them.

The appliance takes md5, sha1, sha256 and sha512 as lowercase hex; a bulk request holds one type.
"""

from __future__ import annotations

import enum


class HashType(enum.StrEnum):
    MD5 = "md5"  # 32 hex digits
    SHA1 = "sha1"  # 40 hex digits
    SHA256 = "sha256"  # 64 hex digits
    SHA512 = "sha512"  # 128 hex digits

    @property
    def hex_length(self) -> int:
        return _LENGTH_BY_TYPE[self]


_LENGTH_BY_TYPE = {HashType.MD5: 32, HashType.SHA1: 40, HashType.SHA256: 64, HashType.SHA512: 128}
TYPE_BY_LENGTH: dict[int, HashType] = {n: t for t, n in _LENGTH_BY_TYPE.items()}
HEX_DIGITS = frozenset("0123456789abcdef")


def hash_type_of(value: str) -> HashType | None:
    """The type of an already normalized (stripped, lowercase) hash, or None if it is not one."""
    hash_type = TYPE_BY_LENGTH.get(len(value))
    if hash_type is None or not HEX_DIGITS.issuperset(value):
        return None
    return hash_type
