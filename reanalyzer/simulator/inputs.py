"""Write the hash list an operator would feed in, and say exactly what is in it.

Each sample of the world is always written under the same hash type (case and whitespace
vary), so distinct hashes after trimming and lowercasing are distinct samples, and the counts
returned are the numbers a correct run must report.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from reanalyzer.simulator.hashes import HashType
from reanalyzer.simulator.world import SampleKind, World

_TYPES = tuple(HashType)
_BLOCK = 65536  # lines per write: big blocks keep 10 million lines to seconds, not minutes
_TYPE_BY_LENGTH = {32: "md5", 40: "sha1", 64: "sha256", 128: "sha512"}
_RECENT = 4096  # duplicates repeat one of the last hashes written, so memory stays flat


@dataclass(frozen=True)
class InputCounts:
    """What an input file holds, line by line and hash by hash."""

    lines: int
    blank: int  # empty or whitespace only
    comments: int  # starting with '#'
    invalid: int  # not a hash once trimmed: non-hex, or a length no hash type has
    valid: int  # a hash, once trimmed and lowercased
    duplicates: int  # valid lines whose hash an earlier line already held
    queueable: int  # distinct hashes of held samples not yet queued: first answer 201
    already_queued: int  # distinct hashes of samples queued before the run: 200
    extracted: int  # distinct hashes of extracted samples: 405
    absent: int  # distinct hashes of samples the appliance does not hold: 404 or omitted
    by_type: dict[str, int] = field(default_factory=dict)  # distinct hashes per hash type

    @property
    def junk(self) -> int:
        """Lines holding no hash."""
        return self.blank + self.comments + self.invalid

    @property
    def distinct(self) -> int:
        """Distinct hashes, which are distinct samples."""
        return self.valid - self.duplicates


def write_input(
    path: Path,
    world: World,
    lines: int,
    *,
    seed: int = 0,
    junk_share: float = 0.05,
    duplicate_share: float = 0.05,
) -> InputCounts:
    """Write `lines` lines drawn from `world` (absent samples included) to `path`.

    A share of lines is junk (blank, comments, invalid) and a share repeats an earlier hash;
    the rest name the world's samples in a seeded order, wrapping around (so repeating) when
    the file needs more lines than the world has samples.
    """
    if not world.samples:
        raise ValueError("the world has no samples to draw from")
    rng = random.Random(seed)
    rand = rng.random
    order = list(range(len(world.samples)))
    rng.shuffle(order)
    # Each sample's line and kind, worked out once: the loop below runs ten million times.
    values = [s.hash(_TYPES[int(s.md5[:2], 16) % 4]) for s in world.samples]
    kinds_of = [_kind(s.kind, s.queued) for s in world.samples]
    seen = bytearray(len(world.samples))  # per sample: written yet?
    recent: list[str] = []
    counts = {"blank": 0, "comments": 0, "invalid": 0, "valid": 0, "duplicates": 0}
    kinds = {"queueable": 0, "already_queued": 0, "extracted": 0, "absent": 0}
    by_type = dict.fromkeys((t.value for t in _TYPES), 0)
    block: list[str] = []
    append = block.append
    cursor, size, dup_cut = 0, len(order), junk_share + duplicate_share
    with path.open("w", encoding="ascii", newline="\n") as out:
        for n in range(lines):
            roll = rand()
            if roll < junk_share:
                line, sort = _junk(rng, world)
                counts[sort] += 1
                append(line)
                continue
            if roll < dup_cut and recent:
                value = recent[int(rand() * len(recent))]
                counts["duplicates"] += 1
            else:
                index = order[cursor]
                cursor = cursor + 1 if cursor + 1 < size else 0
                value = values[index]
                if seen[index]:
                    counts["duplicates"] += 1  # the world wrapped around
                else:
                    seen[index] = 1
                    by_type[_TYPE_BY_LENGTH[len(value)]] += 1
                    kinds[kinds_of[index]] += 1
                if len(recent) < _RECENT:
                    recent.append(value)
                else:
                    recent[n % _RECENT] = value
            # Mixed case and stray whitespace, as hand-assembled lists have.
            roll = rand()
            if roll < 0.25:
                value = value.upper() if roll < 0.15 else _half_upper(value)
            roll = rand()
            if roll < 0.2:
                value = (
                    "  " + value
                    if roll < 0.08
                    else value + " \t"
                    if roll < 0.16
                    else ("\t" + value + " ")
                )
            append(value)
            if len(block) >= _BLOCK:
                out.write("\n".join(block) + "\n")
                block.clear()
        if block:
            out.write("\n".join(block) + "\n")
    counts["valid"] = lines - counts["blank"] - counts["comments"] - counts["invalid"]
    return InputCounts(lines=lines, **counts, **kinds, by_type=by_type)


def _kind(kind: SampleKind, queued: bool) -> str:
    if kind is SampleKind.ABSENT:
        return "absent"
    if kind is SampleKind.EXTRACTED:
        return "extracted"
    return "already_queued" if queued else "queueable"


def _half_upper(value: str) -> str:
    half = len(value) // 2
    return value[:half].upper() + value[half:]


def _junk(rng: random.Random, world: World) -> tuple[str, str]:
    """A line holding no valid hash, and which sort of junk it is."""
    sample = world.samples[int(rng.random() * len(world.samples))]
    roll = rng.random()
    if roll < 0.2:
        return ("" if roll < 0.1 else "   "), "blank"
    if roll < 0.35:
        return "# hashes from the incident ticket", "comments"
    if roll < 0.55:
        return sample.sha1[:-1], "invalid"  # 39 digits: no hash type has that length
    if roll < 0.7:
        return sample.md5 + "0", "invalid"  # 33 digits
    if roll < 0.85:
        return "z" + sample.sha256[1:], "invalid"  # right length, not hex
    return "not-a-hash", "invalid"
