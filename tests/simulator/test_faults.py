"""Faults on demand: rate limit, 5xx, dropped connections, latency."""

from __future__ import annotations

import aiohttp
import pytest

from reanalyzer.simulator.config import SimulatorConfig
from reanalyzer.simulator.faults import Dice, RateWindow
from reanalyzer.simulator.requestlog import Fault

from .conftest import StartSim
from .support import BULK_V1, plain, post_json


class FakeClock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_window_slides() -> None:
    """Three per second: the fourth in the same second waits until the first leaves."""
    clock = FakeClock()
    window = RateWindow(3, clock)
    admitted = []
    for _ in range(3):
        admitted.append(window.admit())
        clock.now += 0.25
    assert admitted == [None, None, None]
    assert window.admit() == 1  # at +0.75 the window is full
    clock.now += 0.25  # the first request is now a full second old and leaves it
    assert window.admit() is None
    assert window.admit() == 1


def test_rate_window_under_one_per_second() -> None:
    """Below one request per second the window widens and Retry-After says how long."""
    clock = FakeClock()
    window = RateWindow(0.25, clock)
    assert window.admit() is None
    assert window.admit() == 4
    clock.now += 4
    assert window.admit() is None


def test_rate_window_follows_its_schedule() -> None:
    """One per second at first, three from 10 s on: the limit changes when the schedule says."""
    clock = FakeClock()
    window = RateWindow(1, clock, schedule=((0.0, 1.0), (10.0, 3.0)))
    assert window.admit() is None
    assert window.admit() == 1
    clock.now += 10.0
    assert [window.admit() for _ in range(4)] == [None, None, None, 1]


def test_rate_limit_schedule_in_the_config_and_on_the_command_line() -> None:
    """The schedule's first rate is the rate limit; times must start at 0 and increase."""
    from reanalyzer.simulator.cli import _schedule

    config = SimulatorConfig(token="t", rate_limit_schedule=_schedule("0:20,20:40"))
    assert config.rate_limit == 20.0
    assert config.rate_limit_schedule == ((0.0, 20.0), (20.0, 40.0))
    with pytest.raises(ValueError, match="start at 0"):
        SimulatorConfig(token="t", rate_limit_schedule=((5.0, 20.0),))


async def test_over_the_rate_is_429_with_retry_after(
    start: StartSim, session: aiohttp.ClientSession
) -> None:
    """Above the rate the answer is 429 with Retry-After, nothing queued; later it passes."""
    clock = FakeClock()
    sim = await start(rate_limit=2, clock=clock)
    a, b, c = plain(sim.world)[:3]
    for sample in (a, b):
        status, _ = await post_json(
            session, sim.url + BULK_V1, {"hash_value": [sample.sha1], "analysis": "core"}
        )
        assert status == 201
    async with session.post(
        sim.url + BULK_V1, json={"hash_value": [c.sha1], "analysis": "core"}
    ) as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "1"
        assert "X-RateLimit-Limit" not in response.headers
    assert sim.world.times_queued(c.sha1) == 0
    clock.now += 1.0
    status, _ = await post_json(
        session, sim.url + BULK_V1, {"hash_value": [c.sha1], "analysis": "core"}
    )
    assert status == 201
    assert [r.fault for r in sim.log.records] == [
        Fault.NONE,
        Fault.NONE,
        Fault.RATE_LIMITED,
        Fault.NONE,
    ]


async def test_server_errors_are_html_and_do_no_work(
    start: StartSim, session: aiohttp.ClientSession
) -> None:
    """With error_rate 1 every answer is a 5xx HTML page and nothing is queued."""
    sim = await start(error_rate=1.0)
    sample = plain(sim.world)[0]
    seen = set()
    for _ in range(20):
        async with session.post(
            sim.url + BULK_V1, json={"hash_value": [sample.sha1], "analysis": "core"}
        ) as response:
            seen.add(response.status)
            assert response.content_type == "text/html"
            assert "<html>" in await response.text()
    assert seen <= {500, 502, 503, 504}
    assert len(seen) > 1
    assert sim.world.samples_queued() == 0


def test_error_rate_is_a_share() -> None:
    """An error rate of 0.3 fails about three answers in ten, the same ones for a seed."""
    dice = Dice(SimulatorConfig(token="t", error_rate=0.3, fault_seed=5))
    again = Dice(SimulatorConfig(token="t", error_rate=0.3, fault_seed=5))
    first = [dice.server_error() is not None for _ in range(2000)]
    assert first == [again.server_error() is not None for _ in range(2000)]
    assert 500 < sum(first) < 700


async def test_drop_happens_after_the_work(start: StartSim, session: aiohttp.ClientSession) -> None:
    """A dropped connection leaves the sample queued while the client sees a disconnect."""
    sim = await start(drop_rate=1.0)
    sample = plain(sim.world)[0]
    with pytest.raises(aiohttp.ClientConnectionError):
        async with session.post(
            sim.url + BULK_V1, json={"hash_value": [sample.sha1], "analysis": "core"}
        ) as response:
            await response.read()
    assert sim.world.times_queued(sample.sha1) == 1
    [record] = sim.log.records
    assert (record.status, record.fault) == (201, Fault.DROPPED)


async def test_latency_fixed_and_jittered(start: StartSim, session: aiohttp.ClientSession) -> None:
    """Each answer waits the fixed latency plus a jitter below its bound."""
    delays: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        delays.append(seconds)

    sim = await start(latency_ms=100, latency_jitter_ms=50, sleep=fake_sleep)
    sample = plain(sim.world)[0]
    for _ in range(10):
        await post_json(
            session, sim.url + BULK_V1, {"hash_value": [sample.sha1], "analysis": "core"}
        )
    assert len(delays) == 10
    assert all(0.1 <= d < 0.15 for d in delays)
    assert len(set(delays)) > 1


async def test_real_latency_is_waited(start: StartSim, session: aiohttp.ClientSession) -> None:
    """Without a fake, the latency is really slept (kept tiny so the test stays fast)."""
    sim = await start(latency_ms=20)
    sample = plain(sim.world)[0]
    await post_json(session, sim.url + BULK_V1, {"hash_value": [sample.sha1], "analysis": "core"})
    assert sim.log.records[0].status == 201
