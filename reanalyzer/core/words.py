"""Counts in messages: "1 attempt", "2 attempts", never "1 attempts"."""

from __future__ import annotations


def counted(count: int, one: str, many: str | None = None) -> str:
    """`count` and the noun it counts, singular for 1: counted(3, "hash", "hashes")."""
    return f"{count:,} {one if count == 1 else (many or one + 's')}"
