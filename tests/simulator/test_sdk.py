"""The official SDK's A1000.reanalyze_samples_v2 against the simulator."""

from __future__ import annotations

import asyncio

import pytest

from reanalyzer.simulator.requestlog import Endpoint
from reanalyzer.simulator.world import SampleKind

from .conftest import StartSim
from .support import TOKEN, of_kind, plain

a1000 = pytest.importorskip("ReversingLabs.SDK.a1000")


async def test_sdk_reanalyze_samples_v2(start: StartSim) -> None:
    """The SDK's form-encoded v2 request is accepted and gets per-sample answers."""
    sim = await start(cloud_connected=False)
    a, b = plain(sim.world)[:2]
    extracted = of_kind(sim.world, SampleKind.EXTRACTED)[0]
    client = a1000.A1000(host=sim.url, token=TOKEN, verify=False)

    response = await asyncio.to_thread(
        client.reanalyze_samples_v2,
        [a.sha1, b.md5, extracted.sha256],
        titanium_cloud=True,
        titanium_core=True,
        rl_cloud_sandbox=True,
        rl_cloud_sandbox_platform="windows10",
    )
    assert response.status_code == 201
    results = response.json()["results"]
    assert [r["detail"]["sha1"] for r in results] == [a.sha1, b.sha1, extracted.sha1]
    assert [[x["code"] for x in r["analysis"]] for r in results] == [
        [405, 201, 405],
        [405, 201, 405],
        [405, 405, 405],
    ]
    [record] = sim.log.records
    assert record.endpoint is Endpoint.BULK_V2
    assert sim.world.times_queued(a.sha1) == 1


async def test_sdk_raises_on_refusal(start: StartSim) -> None:
    """The SDK maps the refusing appliance's 405 to its own error."""
    sim = await start(appliance_refuses=True)
    client = a1000.A1000(host=sim.url, token=TOKEN)
    errors = pytest.importorskip("ReversingLabs.SDK.helper")
    with pytest.raises(errors.NotAllowedError):
        await asyncio.to_thread(
            client.reanalyze_samples_v2, plain(sim.world)[0].sha1, titanium_core=True
        )
