"""Fixtures: simulators on 127.0.0.1 closed after each test, a client that sends the token."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

from reanalyzer.simulator import RunningSimulator, SimulatorConfig, World, start_simulator
from reanalyzer.simulator.app import Sleep
from reanalyzer.simulator.faults import Clock

from .support import TOKEN, small_world

StartSim = Callable[..., Awaitable[RunningSimulator]]


@pytest.fixture
async def start() -> AsyncIterator[StartSim]:
    """Start simulators with SimulatorConfig overrides, on small_world() unless told."""
    running: list[RunningSimulator] = []

    async def _start(
        world: World | None = None,
        clock: Clock | None = None,
        sleep: Sleep | None = None,
        **overrides: Any,
    ) -> RunningSimulator:
        config = replace(SimulatorConfig(token=TOKEN), **overrides)
        world = world if world is not None else small_world()
        if clock is None:
            sim = await start_simulator(config, world=world, sleep=sleep)
        else:
            sim = await start_simulator(config, world=world, clock=clock, sleep=sleep)
        running.append(sim)
        return sim

    yield _start
    for sim in running:
        await sim.aclose()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A client that sends the right token."""
    async with aiohttp.ClientSession(headers={"Authorization": f"Token {TOKEN}"}) as client:
        yield client
