"""The input writer: what it writes is what it says it wrote."""

from __future__ import annotations

import string
from collections import Counter
from pathlib import Path

import pytest

from reanalyzer.simulator.inputs import write_input
from reanalyzer.simulator.world import SampleKind, World

_LENGTHS = {32: "md5", 40: "sha1", 64: "sha256", 128: "sha512"}


def tally(path: Path, world: World) -> Counter[str]:
    """Classify each line the way a careful reader would, independently of the writer."""
    by_hash = {}
    for sample in world.samples:
        for value in sample.hashes():
            by_hash[value] = sample
    counts: Counter[str] = Counter()
    seen: set[str] = set()
    for line in path.read_text(encoding="ascii").split("\n")[:-1]:
        counts["lines"] += 1
        value = line.strip().lower()
        if not value:
            counts["blank"] += 1
        elif value.startswith("#"):
            counts["comments"] += 1
        elif len(value) not in _LENGTHS or not set(value) <= set(string.hexdigits.lower()):
            counts["invalid"] += 1
        else:
            counts["valid"] += 1
            counts["line_" + _LENGTHS[len(value)]] += 1
            if value in seen:
                counts["duplicates"] += 1
                continue
            seen.add(value)
            sample = by_hash[value]
            counts["type_" + _LENGTHS[len(value)]] += 1
            if sample.kind is SampleKind.ABSENT:
                counts["absent"] += 1
            elif sample.kind is SampleKind.EXTRACTED:
                counts["extracted"] += 1
            else:
                counts["already_queued" if sample.queued else "queueable"] += 1
            if line != line.strip():
                counts["padded"] += 1
            if line.strip() != value:
                counts["upper"] += 1
    return counts


@pytest.mark.parametrize("samples", [40, 5000])
def test_counts_match_the_file(tmp_path: Path, samples: int) -> None:
    """Every count returned matches an independent reading of the file, wrapped world or not."""
    world = World.generate(samples, seed=1, share_absent=0.1, share_extracted=0.1, share_queued=0.1)
    path = tmp_path / "input.txt"
    counts = write_input(path, world, 3000, seed=4, junk_share=0.1, duplicate_share=0.1)
    seen = tally(path, world)
    assert counts.lines == seen["lines"] == 3000
    for name in (
        "blank",
        "comments",
        "invalid",
        "valid",
        "duplicates",
        "queueable",
        "already_queued",
        "extracted",
        "absent",
    ):
        assert getattr(counts, name) == seen[name], name
    assert counts.by_type == {t: seen["type_" + t] for t in _LENGTHS.values()}
    assert counts.junk + counts.valid == counts.lines
    assert counts.distinct == counts.queueable + counts.already_queued + counts.extracted + (
        counts.absent
    )


def test_the_file_has_everything_an_operator_writes(tmp_path: Path) -> None:
    """Mixed types, cases, padding, junk of each sort and duplicates all occur."""
    world = World.generate(5000, seed=1, share_absent=0.1, share_extracted=0.1, share_queued=0.1)
    path = tmp_path / "input.txt"
    write_input(path, world, 3000, seed=4)
    seen = tally(path, world)
    for name in (
        "blank",
        "comments",
        "invalid",
        "duplicates",
        "padded",
        "upper",
        "absent",
        "extracted",
        "already_queued",
        "line_md5",
        "line_sha1",
        "line_sha256",
        "line_sha512",
    ):
        assert seen[name] > 0, name


def test_same_seed_same_file(tmp_path: Path) -> None:
    """The writer is deterministic for a seed."""
    world = World.generate(100, seed=1)
    first, second = tmp_path / "a", tmp_path / "b"
    assert write_input(first, world, 500, seed=2) == write_input(second, world, 500, seed=2)
    assert first.read_bytes() == second.read_bytes()
