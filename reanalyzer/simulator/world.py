"""The samples a simulated appliance holds, and which of them are queued.

A world is generated from a seed (the same seed gives the same hashes on every machine) or
loaded from a JSON-lines file. Samples the appliance does not hold are kept too, as ABSENT, so
that an input file can name them; they are never found by a lookup.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path

from reanalyzer.simulator.hashes import HashType, hash_type

ALL_ANALYSES = 0xFFFF  # queue-state bitmask meaning "queued for everything"


class SampleKind(StrEnum):
    """What the appliance makes of a sample."""

    PRESENT = "present"  # held; reanalysis is queued
    EXTRACTED = "extracted"  # held, extracted from another sample: reanalysis refused with 405
    ABSENT = "absent"  # not held: 404 or left out of bulk results


@dataclass(frozen=True, slots=True)
class Sample:
    """One sample with its four hashes, all lowercase."""

    md5: str
    sha1: str
    sha256: str
    sha512: str
    kind: SampleKind = SampleKind.PRESENT
    queued: bool = False  # already queued when the simulator starts

    def hash(self, kind: HashType) -> str:
        """The sample's hash of type `kind`."""
        return str(getattr(self, kind.value))

    def hashes(self) -> tuple[str, str, str, str]:
        """All four hashes."""
        return (self.md5, self.sha1, self.sha256, self.sha512)


def derive_sample(seed: int, index: int, kind: SampleKind, queued: bool = False) -> Sample:
    """Sample `index` of the world seeded `seed`: real digests of a content derived from both."""
    content = f"reanalyzer-simulator:{seed}:{index}".encode()
    return Sample(
        md5=hashlib.md5(content).hexdigest(),
        sha1=hashlib.sha1(content).hexdigest(),
        sha256=hashlib.sha256(content).hexdigest(),
        sha512=hashlib.sha512(content).hexdigest(),
        kind=kind,
        queued=queued,
    )


class World:
    """The held samples, looked up by any of their hashes, with their queue state."""

    def __init__(self, samples: Iterable[Sample]) -> None:
        self.samples: list[Sample] = list(samples)
        # Every hash of every held sample maps to its index: one dict lookup per hash on the
        # hot path, whatever the type.
        self._index: dict[str, int] = {}
        for i, sample in enumerate(self.samples):
            if sample.kind is not SampleKind.ABSENT:
                for value in sample.hashes():
                    self._index[value] = i
        # Per sample, a bitmask of the analyses it is queued for.
        self._queued: list[int] = [ALL_ANALYSES if s.queued else 0 for s in self.samples]
        # Per sample, how many accepted reanalysis requests named it: tests prove with it that
        # a client never sent a sample twice.
        self._times: list[int] = [0] * len(self.samples)

    def __repr__(self) -> str:
        return f"<World samples={len(self.samples)} queued_now={self.samples_queued()}>"

    @classmethod
    def generate(
        cls,
        samples: int,
        seed: int = 0,
        share_absent: float = 0.0,
        share_extracted: float = 0.0,
        share_queued: float = 0.0,
    ) -> World:
        """A world of `samples` samples; each share is rounded to an exact count."""
        absent = round(samples * share_absent)
        extracted = round(samples * share_extracted)
        queued = min(round(samples * share_queued), samples - absent - extracted)
        if absent + extracted > samples or min(absent, extracted, queued) < 0:
            raise ValueError("the shares of absent, extracted and queued samples exceed 1")
        plan = (
            [(SampleKind.ABSENT, False)] * absent
            + [(SampleKind.EXTRACTED, False)] * extracted
            + [(SampleKind.PRESENT, True)] * queued
            + [(SampleKind.PRESENT, False)] * (samples - absent - extracted - queued)
        )
        random.Random(seed).shuffle(plan)
        return cls(derive_sample(seed, i, kind, q) for i, (kind, q) in enumerate(plan))

    @classmethod
    def load(cls, path: Path) -> World:
        """A world from a JSON-lines file as `save` writes it."""
        with path.open(encoding="utf-8") as lines:
            return cls(_parse_line(line, n) for n, line in enumerate(lines, 1) if line.strip())

    def save(self, path: Path) -> None:
        """Write the samples (not the queue state) as JSON lines."""
        with path.open("w", encoding="utf-8") as out:
            for sample in self.samples:
                out.write(json.dumps(asdict(sample)) + "\n")

    def find(self, value: str) -> int | None:
        """The index of the held sample with hash `value` (lowercase), or None."""
        return self._index.get(value)

    def find_all(self, values: list[str]) -> list[int | None]:
        """`find` for each of `values` (lowercase), at C speed."""
        return list(map(self._index.get, values))

    def queue(self, index: int, mask: int) -> int:
        """Queue sample `index` for the analyses in `mask`; return the bits newly queued."""
        before = self._queued[index]
        self._queued[index] = before | mask
        self._times[index] += 1
        return mask & ~before

    def times_queued(self, value: str) -> int:
        """How many accepted reanalysis requests named the sample with hash `value`."""
        index = self._index.get(value.lower())
        return 0 if index is None else self._times[index]

    def queue_counts(self) -> Iterator[tuple[Sample, int]]:
        """Each sample that some accepted request named, with how many did."""
        return ((s, t) for s, t in zip(self.samples, self._times, strict=True) if t)

    def samples_queued(self) -> int:
        """How many samples accepted requests named at least once."""
        return sum(1 for t in self._times if t)


def _parse_line(line: str, number: int) -> Sample:
    try:
        raw = json.loads(line)
        sample = Sample(
            md5=raw["md5"].lower(),
            sha1=raw["sha1"].lower(),
            sha256=raw["sha256"].lower(),
            sha512=raw["sha512"].lower(),
            kind=SampleKind(raw.get("kind", SampleKind.PRESENT.value)),
            queued=bool(raw.get("queued", False)),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"world file line {number}: {exc}") from exc
    for kind in HashType:
        if hash_type(sample.hash(kind)) is not kind:
            raise ValueError(f"world file line {number}: {kind.value} is not a valid {kind.value}")
    return sample
