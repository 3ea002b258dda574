"""Sender.precheck: which hashes the appliance holds, asked through the status API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from reanalyzer.core.hashes import HashType
from reanalyzer.errors import CredentialsError, MisconfiguredError
from reanalyzer.send.answers import Action, decide_status
from reanalyzer.send.config import SendConfig
from reanalyzer.send.sender import Sender
from reanalyzer.simulator import RunningSimulator, SimulatorConfig, World, start_simulator
from reanalyzer.simulator.requestlog import Endpoint
from reanalyzer.simulator.world import SampleKind

TOKEN = "tok-precheck-5e0d3b7a91c2"
SHA1 = HashType.SHA1


def make_config(url: str, **overrides: Any) -> SendConfig:
    settings: dict[str, Any] = {
        "url": url,
        "token": TOKEN,
        "concurrency": 4,
        "max_retries": 3,
        "backoff_base": 0.01,
        "backoff_cap": 0.05,
        "unreachable_after": 1000,
    }
    settings.update(overrides)
    return SendConfig(**settings)


@pytest.fixture
async def world_sim() -> AsyncIterator[tuple[World, RunningSimulator]]:
    """A simulator holding 90% of 300 generated samples, answering 10% of requests with 503."""
    world = World.generate(300, seed=5, share_absent=0.1)
    config = SimulatorConfig(token=TOKEN, error_rate=0.1, fault_seed=3)
    sim = await start_simulator(config, world=world)
    try:
        yield world, sim
    finally:
        await sim.aclose()


def held_and_absent(world: World) -> tuple[list[str], list[str]]:
    held = [s.sha1 for s in world.samples if s.kind is not SampleKind.ABSENT]
    absent = [s.sha1 for s in world.samples if s.kind is SampleKind.ABSENT]
    return held, absent


async def test_precheck_returns_exactly_the_held_hashes(
    world_sim: tuple[World, RunningSimulator],
) -> None:
    """Against the simulator (with 503s), the result is the held subset, every request counted."""
    world, sim = world_sim
    held, absent = held_and_absent(world)
    assert absent
    async with Sender(make_config(sim.url), max_batch=40) as sender:
        got = await sender.precheck(SHA1, held + absent)
        stats = sender.stats
    assert got == set(held)
    assert stats.requests == len(sim.log.records)
    assert stats.requests >= 8  # 300 hashes in requests of at most 40
    assert stats.retries > 0  # the 503s were retried
    assert {r.endpoint for r in sim.log.records} == {Endpoint.STATUS}


async def test_precheck_queues_nothing(world_sim: tuple[World, RunningSimulator]) -> None:
    """After a precheck, reanalysis still finds every held sample newly queued (201)."""
    world, sim = world_sim
    held, _ = held_and_absent(world)
    async with Sender(make_config(sim.url)) as sender:
        await sender.precheck(SHA1, held)
        verdicts = await sender.send(SHA1, held[:20])
    assert {v.status.value for v in verdicts.values()} == {"queued"}


async def test_precheck_with_a_wrong_token_stops_the_job() -> None:
    """401 from the status API raises CredentialsError, as for reanalysis."""
    sim = await start_simulator(SimulatorConfig(token="another-token"), world=World.generate(10))
    try:
        async with Sender(make_config(sim.url)) as sender:
            with pytest.raises(CredentialsError):
                await sender.precheck(SHA1, [s.sha1 for s in World.generate(10).samples])
    finally:
        await sim.aclose()


async def test_precheck_pauses_on_429_and_splits_on_413(appliance: Any, clock: Any) -> None:
    """A 429 pauses the job for its Retry-After; a 413 halves the status requests."""
    hs = [f"{i:040x}" for i in range(8)]
    calls: list[int] = []

    def answer(seen: Any) -> web.StreamResponse:
        calls.append(len(seen.hashes))
        if len(calls) == 1:
            return web.json_response({"detail": "slow down"}, status=429,
                                     headers={"Retry-After": "2"})
        if len(seen.hashes) > 4:
            return web.json_response({"code": 413, "message": "too large"}, status=413)
        return web.json_response({"results": [
            {"hash_value": h.upper(), "status": "not_found" if h == hs[5] else "processed"}
            for h in seen.hashes
        ]})

    appliance.handler = answer
    async with Sender(make_config(appliance.url), clock=clock) as sender:
        got = await sender.precheck(SHA1, hs)
        stats = sender.stats
    assert got == set(hs) - {hs[5]}
    assert calls == [8, 8, 4, 4]
    assert (stats.throttled, stats.splits, stats.requests) == (1, 1, 4)
    assert 2.0 in clock.slept


async def test_precheck_of_an_appliance_without_the_status_api(appliance: Any, clock: Any) -> None:
    """An HTML page for the status request means the API is not there: MisconfiguredError."""
    appliance.handler = lambda seen: web.Response(text="<html>nope</html>",
                                                  content_type="text/html")
    async with Sender(make_config(appliance.url), clock=clock) as sender:
        with pytest.raises(MisconfiguredError):
            await sender.precheck(SHA1, ["a" * 40])


def test_status_decision_counts_unknown_hashes_as_held() -> None:
    """Only a `not_found` item makes a hash not held; a left-out hash counts as held."""
    hs = ["a" * 40, "b" * 40, "c" * 40]
    body = {"results": [{"hash_value": "A" * 40, "status": "processed"},
                        {"hash_value": "b" * 40, "status": "not_found"}]}
    decision = decide_status(200, body, "", hs)
    assert decision.action is Action.DONE
    assert decision.held == {"a" * 40, "c" * 40}
    assert decide_status(503, None, "", hs).action is Action.RETRY
    assert decide_status(403, None, "", hs).action is Action.BAD_CREDENTIALS
    assert decide_status(400, {"code": 400}, "", hs).action is Action.SPLIT
    assert decide_status(400, {"code": 400}, "", hs[:1]).held == {hs[0]}
