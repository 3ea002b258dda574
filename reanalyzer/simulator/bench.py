"""How many bulk requests per second the simulator serves, client and server in one process."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp

from reanalyzer.simulator.config import SimulatorConfig
from reanalyzer.simulator.hashes import HashType
from reanalyzer.simulator.server import start_simulator
from reanalyzer.simulator.world import World

_TOKEN = "bench-token"


async def measure_throughput(duration_s: float, batch: int = 100, concurrency: int = 8) -> float:
    """Bulk v1 requests of `batch` sha1 hashes answered per second over `duration_s`.

    Bodies are built before the clock starts and answers are read but not parsed, so the
    figure is the simulator's (plus aiohttp's client), not the benchmark's.
    """
    world = World.generate(max(10_000, batch * concurrency * 4), seed=1, share_extracted=0.0)
    hashes = [s.hash(HashType.SHA1) for s in world.samples]
    bodies = [
        json.dumps({"hash_value": hashes[i : i + batch], "analysis": "cloud,core"}).encode()
        for i in range(0, len(hashes) - batch + 1, batch)
    ]
    headers = {"Authorization": f"Token {_TOKEN}", "Content-Type": "application/json"}
    config = SimulatorConfig(token=_TOKEN, keep_request_log=False)
    served = 0
    async with await start_simulator(config, world=world) as sim:
        url = f"{sim.url}/api/samples/analyze_bulk/"
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
            deadline = time.monotonic() + duration_s

            async def worker(offset: int) -> None:
                nonlocal served
                i = offset
                while time.monotonic() < deadline:
                    async with session.post(url, data=bodies[i % len(bodies)]) as response:
                        await response.read()
                        if response.status in (200, 201):
                            served += 1
                    i += concurrency

            started = time.monotonic()
            await asyncio.gather(*(worker(k) for k in range(concurrency)))
            elapsed = time.monotonic() - started
    return served / elapsed


if __name__ == "__main__":
    print(f"{asyncio.run(measure_throughput(5.0)):.0f} bulk requests/s")
