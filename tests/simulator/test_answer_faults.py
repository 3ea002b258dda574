"""Faults in the answers themselves: items of the wrong shape after the work was done, a proxy's
HTML page instead of the appliance, and answers padded far past their size, streamed."""

from __future__ import annotations

import json
import tracemalloc
from typing import Any

import aiohttp
import pytest

from reanalyzer.simulator import cli
from reanalyzer.simulator.config import SimulatorConfig, WrongShape
from reanalyzer.simulator.faults import PROXY_PAGE, Dice
from reanalyzer.simulator.requestlog import Fault

from .conftest import StartSim
from .support import BULK_V1, BULK_V2, STATUS, TOKEN, plain, post_form, post_json, single_url
from .test_cli import parse

SHAPES = [s for s in WrongShape if s is not WrongShape.MIXED]


def attributable(item: Any, sent: set[str]) -> bool:
    """Whether a reader could tie `item` to a hash sent and read its integer codes."""
    if not isinstance(item, dict) or not isinstance(item.get("detail"), dict):
        return False
    if not sent & {v for v in item["detail"].values() if isinstance(v, str)}:
        return False
    codes = [item.get("code"), *(a.get("code") for a in item.get("analysis", []))]
    return all(c is None or type(c) is int for c in codes)


@pytest.mark.parametrize("shape", SHAPES)
async def test_wrong_shape_answers_come_after_the_work(
    start: StartSim, session: aiohttp.ClientSession, shape: WrongShape
) -> None:
    """Each shape: a 2xx whose items can be tied to no hash sent, while the samples are queued."""
    sim = await start(wrong_shape_rate=1.0, wrong_shape=shape)
    samples = plain(sim.world)[:3]
    sent = {s.sha1 for s in samples}
    status, body = await post_json(session, sim.url + BULK_V1,
                                   {"hash_value": sorted(sent), "analysis": "core"})
    assert status == 201
    items = body["results"]
    assert len(items) == 3
    assert not any(attributable(item, sent) for item in items)
    assert all(sim.world.times_queued(s.sha1) == 1 for s in samples)
    assert sim.log.records[-1].fault is Fault.WRONG_SHAPE
    if shape is WrongShape.NOT_OBJECTS:
        assert all(isinstance(item, str) for item in items)
    elif shape is WrongShape.NO_DETAIL:
        assert all("detail" not in item for item in items)
    elif shape is WrongShape.OTHER_TYPE:
        assert all("sha1" not in item["detail"] and item["detail"]["md5"] for item in items)
    else:
        assert all(isinstance(a["code"], str) for item in items for a in item["analysis"])
        assert all(isinstance(item["code"], str) for item in items)


async def test_mixed_wrong_shapes_at_a_rate_spoil_about_that_share(
    start: StartSim, session: aiohttp.ClientSession
) -> None:
    """At 30%, some v2 answers are spoiled (in several shapes) and the rest are whole."""
    sim = await start(wrong_shape_rate=0.3, fault_seed=3)
    sample = plain(sim.world)[0]
    spoiled = 0
    for _ in range(60):
        status, body = await post_form(session, sim.url + BULK_V2,
                                       [("hash_value", sample.sha1), ("analysis", "core")])
        assert status in (200, 201)
        spoiled += not attributable(body["results"][0], {sample.sha1})
    assert spoiled == sim.log.by_fault[Fault.WRONG_SHAPE]
    assert 8 <= spoiled <= 30
    assert sim.world.times_queued(sample.sha1) >= 1


async def test_wrong_shape_status_answers(start: StartSim, session: aiohttp.ClientSession) -> None:
    """Status answers are spoiled too; an answer with no item gets one that is no object."""
    sim = await start(wrong_shape_rate=1.0, wrong_shape="string_codes")
    sample = plain(sim.world)[0]
    _, body = await post_json(session, sim.url + STATUS, {"hash_values": [sample.sha1]})
    assert body["results"] == [{"hash_value": sample.sha1, "status": 1}]
    _, empty = await post_json(session, sim.url + STATUS + "?status=not_found",
                               {"hash_values": [sample.sha1]})
    assert empty["results"] == ["unavailable"]


async def test_wrong_shape_leaves_refusals_and_single_answers_alone(
    start: StartSim, session: aiohttp.ClientSession
) -> None:
    """Only 2xx bulk and status answers are spoiled: a 400 and a single answer are whole."""
    sim = await start(wrong_shape_rate=1.0)
    status, body = await post_json(session, sim.url + BULK_V1, {"hash_value": ["nope"],
                                                                  "analysis": "core"})
    assert (status, body["code"]) == (400, 400)
    sample = plain(sim.world)[0]
    status, item = await post_json(session, sim.url + single_url(sample.sha1),
                                   {"analysis": "core"})
    assert status == 201
    assert attributable(item, {sample.sha1})


async def test_proxy_page_comes_before_the_work(
    start: StartSim, session: aiohttp.ClientSession
) -> None:
    """A proxy's HTML page with 200: nothing queued, logged as the proxy's."""
    sim = await start(proxy_page_rate=1.0)
    sample = plain(sim.world)[0]
    async with session.post(sim.url + BULK_V1,
                            json={"hash_value": [sample.sha1], "analysis": "core"}) as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        assert await response.read() == PROXY_PAGE
    assert sim.world.times_queued(sample.sha1) == 0
    assert sim.log.records[-1].fault is Fault.PROXY_PAGE


async def test_proxy_page_even_without_a_token(start: StartSim) -> None:
    """The proxy answers before the appliance checks the token."""
    sim = await start(proxy_page_rate=1.0)
    async with aiohttp.ClientSession() as anonymous, anonymous.post(
            sim.url + STATUS, json={"hash_values": ["a" * 40]}) as response:
        assert response.status == 200
        assert b"Sign in" in await response.read()


async def test_big_body_is_the_real_answer_padded_and_streamed(
    start: StartSim, session: aiohttp.ClientSession
) -> None:
    """A 3 MB answer: its length announced and exact, its JSON the real answer, work done."""
    sim = await start(big_body_rate=1.0, big_body_mb=3)
    sample = plain(sim.world)[0]
    async with session.post(sim.url + BULK_V1,
                            json={"hash_value": [sample.sha1], "analysis": "core"}) as response:
        assert response.status == 201
        assert response.content_length == 3_000_000
        raw = await response.read()
    assert len(raw) == 3_000_000
    answer = json.loads(raw)
    assert answer["results"][0]["detail"]["sha1"] == sample.sha1
    assert sim.world.times_queued(sample.sha1) == 1
    assert sim.log.records[-1].fault is Fault.BIG_BODY


async def test_big_body_is_never_held_whole(
    start: StartSim, session: aiohttp.ClientSession
) -> None:
    """Serving a 40 MB answer to a reader that discards it allocates a few MB at most."""
    sim = await start(big_body_rate=1.0, big_body_mb=40)
    sample = plain(sim.world)[0]
    tracemalloc.start()
    try:
        read = 0
        async with session.post(sim.url + BULK_V1, json={"hash_value": [sample.sha1],
                                                         "analysis": "core"}) as response:
            async for chunk in response.content.iter_chunked(2**16):
                read += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert read == 40_000_000
    assert peak < 8_000_000


async def test_a_reader_that_hangs_up_mid_body_leaves_the_server_serving(
    start: StartSim, session: aiohttp.ClientSession
) -> None:
    """A client closing after 64 KiB of a 50 MB answer, as a bounded reader does, is fine."""
    sim = await start(big_body_rate=1.0, big_body_mb=50)
    sample = plain(sim.world)[0]
    async with session.post(sim.url + BULK_V1, json={"hash_value": [sample.sha1],
                                                     "analysis": "core"}) as response:
        await response.content.readexactly(2**16)
        response.close()
    async with session.post(sim.url + BULK_V1, json={"hash_value": [sample.sha1],
                                                     "analysis": "core"}) as response:
        assert response.status == 200
        assert response.content_length == 50_000_000


def test_faults_off_draw_nothing() -> None:
    """With the new faults off, the dice are not rolled: seeded runs replay as before."""
    def rng() -> float:
        raise AssertionError("rolled")
    dice = Dice(SimulatorConfig(token="t"), rng)
    assert (dice.proxy_page(), dice.wrong_shape(), dice.big_body()) == (None, None, False)


def test_options_of_the_answer_faults_become_the_config() -> None:
    """The new options land in their SimulatorConfig fields, and each has its help."""
    args = parse("--wrong-shape-rate", "0.08", "--wrong-shape", "no_detail",
                 "--proxy-page-rate", "0.01", "--big-body-rate", "0.03", "--big-body-mb", "400")
    config = cli.config_from_args(args, TOKEN)
    assert (config.wrong_shape_rate, config.wrong_shape) == (0.08, WrongShape.NO_DETAIL)
    assert (config.proxy_page_rate, config.big_body_rate, config.big_body_mb) == (0.01, 0.03, 400)
    defaults = cli.config_from_args(parse(), TOKEN)
    assert (defaults.wrong_shape_rate, defaults.proxy_page_rate, defaults.big_body_rate) == (
        0, 0, 0)


@pytest.mark.parametrize("bad", [{"wrong_shape_rate": 1.5}, {"proxy_page_rate": -0.1},
                                 {"big_body_rate": 2}, {"big_body_mb": 0}])
def test_answer_fault_settings_are_checked(bad: dict[str, Any]) -> None:
    """A share outside [0, 1] or a size that is not positive is refused."""
    with pytest.raises(ValueError, match="must be"):
        SimulatorConfig(token="t", **bad)
