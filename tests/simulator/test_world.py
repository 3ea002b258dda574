"""The world: deterministic samples, lookups by any hash, queue state, files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from reanalyzer.simulator.hashes import HashType, hash_type
from reanalyzer.simulator.world import ALL_ANALYSES, SampleKind, World, derive_sample


def test_same_seed_same_world() -> None:
    """A seed gives the same samples every time; another seed gives others."""
    assert World.generate(50, seed=3).samples == World.generate(50, seed=3).samples
    assert World.generate(5, seed=3).samples[0] != World.generate(5, seed=4).samples[0]


def test_shares_are_exact_counts() -> None:
    """The shares of absent, extracted and queued samples are rounded to exact counts."""
    world = World.generate(1000, seed=1, share_absent=0.1, share_extracted=0.05, share_queued=0.2)
    kinds = [s.kind for s in world.samples]
    assert kinds.count(SampleKind.ABSENT) == 100
    assert kinds.count(SampleKind.EXTRACTED) == 50
    assert sum(s.queued for s in world.samples) == 200


def test_hashes_are_real_digests_of_one_content() -> None:
    """The four hashes are digests of the same content, so they look and type like real ones."""
    sample = derive_sample(9, 2, SampleKind.PRESENT)
    content = b"reanalyzer-simulator:9:2"
    assert sample.md5 == hashlib.md5(content).hexdigest()
    assert sample.sha512 == hashlib.sha512(content).hexdigest()
    for kind in HashType:
        assert hash_type(sample.hash(kind)) is kind


def test_lookup_by_any_hash_and_absent_never_found() -> None:
    """Every hash of a held sample finds it; an absent sample's hashes find nothing."""
    world = World.generate(20, seed=2, share_absent=0.5)
    for index, sample in enumerate(world.samples):
        for value in sample.hashes():
            expected = None if sample.kind is SampleKind.ABSENT else index
            assert world.find(value) == expected


def test_queue_reports_new_bits_and_counts() -> None:
    """queue() returns only the analyses newly queued and counts each request."""
    world = World.generate(3, seed=2)
    assert world.queue(0, 0b01) == 0b01
    assert world.queue(0, 0b11) == 0b10
    assert world.queue(0, 0b11) == 0
    assert world.times_queued(world.samples[0].sha1.upper()) == 3
    assert world.samples_queued() == 1
    queued_at_start = World.generate(1, seed=2, share_queued=1.0)
    assert queued_at_start.queue(0, ALL_ANALYSES) == 0


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    """A saved world loads back sample for sample."""
    world = World.generate(30, seed=5, share_absent=0.2, share_extracted=0.2, share_queued=0.2)
    path = tmp_path / "world.jsonl"
    world.save(path)
    assert World.load(path).samples == world.samples


def test_load_rejects_a_bad_hash(tmp_path: Path) -> None:
    """A world file line with a hash of the wrong type is refused with its line number."""
    path = tmp_path / "world.jsonl"
    path.write_text('{"md5": "00", "sha1": "', encoding="utf-8")
    with pytest.raises(ValueError, match="line 1"):
        World.load(path)
    sample = derive_sample(0, 0, SampleKind.PRESENT)
    path.write_text(
        f'{{"md5": "{sample.sha1}", "sha1": "{sample.sha1}", "sha256": "{sample.sha256}",'
        f' "sha512": "{sample.sha512}"}}\n',
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="md5"):
        World.load(path)
