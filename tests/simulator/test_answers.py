"""The answer logic without HTTP: properties over any mix of samples."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from reanalyzer.simulator import answers
from reanalyzer.simulator.answers import Analysis
from reanalyzer.simulator.config import AbsentMode, SimulatorConfig
from reanalyzer.simulator.hashes import HashType
from reanalyzer.simulator.world import Sample, SampleKind, World

from .support import small_world

_WORLD = small_world()
_PICKS = st.lists(
    st.tuples(st.sampled_from(_WORLD.samples), st.sampled_from(list(HashType)), st.booleans()),
    min_size=1,
    max_size=30,
)


@given(picks=_PICKS, absent_mode=st.sampled_from(list(AbsentMode)))
def test_every_hash_gets_one_item_unless_omitted(
    picks: list[tuple[Sample, HashType, bool]], absent_mode: AbsentMode
) -> None:
    """Each hash sent gets exactly one item, in order, naming it; absent ones may be omitted."""
    world = World(_WORLD.samples)
    config = SimulatorConfig(token="t", absent_mode=absent_mode)
    sent = []
    for sample, kind, upper in picks:
        value = sample.hash(kind)
        sent.append(value.upper() if upper else value)
    hashes = [h.lower() for h in sent]
    reply = answers.bulk(world, config, hashes, [Analysis.CLOUD, Analysis.CORE])
    results = json.loads(reply.body)["results"]
    expected = [
        h for h in hashes if absent_mode is AbsentMode.NOT_FOUND or world.find(h) is not None
    ]
    assert len(results) == len(expected)
    for result, value in zip(results, expected, strict=True):
        assert result["detail"][_type(value)] == value
    codes = {r["code"] for r in results}
    assert codes <= {200, 201, 404, 405}
    held = {i for h in hashes if (i := world.find(h)) is not None}
    queueable = {i for i in held if world.samples[i].kind is SampleKind.PRESENT}
    assert world.samples_queued() == len(queueable)
    assert reply.status == (201 if 201 in codes else 200)


def test_first_answer_per_sample_is_201_once() -> None:
    """Across many requests, each plain sample gets exactly one 201 item."""
    world = World(_WORLD.samples)
    config = SimulatorConfig(token="t")
    plain = [s for s in world.samples if s.kind is SampleKind.PRESENT and not s.queued]
    firsts = 0
    for kind in HashType:
        body = answers.bulk(world, config, [s.hash(kind) for s in plain], [Analysis.CORE]).body
        firsts += sum(r["code"] == 201 for r in json.loads(body)["results"])
    assert firsts == len(plain)


def _type(value: str) -> str:
    return {32: "md5", 40: "sha1", 64: "sha256", 128: "sha512"}[len(value)]
