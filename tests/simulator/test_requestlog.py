"""The request log: what was really sent, in memory and as JSON lines."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from reanalyzer.simulator.requestlog import Endpoint, Fault, read_log

from .conftest import StartSim
from .support import BULK_V1, BULK_V2, STATUS, plain, post_form, post_json, single_url


async def test_log_records_every_request(
    start: StartSim, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """Each request is logged with its endpoint, its hashes as sent and its status."""
    path = tmp_path / "requests.jsonl"
    sim = await start(request_log_file=path)
    a, b = plain(sim.world)[:2]
    await post_json(
        session, sim.url + BULK_V1, {"hash_value": [a.sha1.upper()], "analysis": "core"}
    )
    await post_form(session, sim.url + BULK_V2, [("hash_value", b.md5), ("analysis", "core")])
    await post_form(session, sim.url + single_url(a.md5), [("analysis", "core")])
    await post_json(session, sim.url + STATUS, {"hash_values": [a.sha1, b.sha1]})
    await post_json(session, sim.url + BULK_V1, {"hash_value": ["nope"], "analysis": "core"})

    records = sim.log.records
    assert [(r.endpoint, r.hashes, r.status) for r in records] == [
        (Endpoint.BULK_V1, (a.sha1.upper(),), 201),
        (Endpoint.BULK_V2, (b.md5,), 201),
        (Endpoint.SINGLE, (a.md5,), 200),
        (Endpoint.STATUS, (a.sha1, b.sha1), 200),
        (Endpoint.BULK_V1, ("nope",), 400),
    ]
    assert all(r.fault is Fault.NONE for r in records)
    assert [r.monotonic for r in records] == sorted(r.monotonic for r in records)
    assert sim.log.by_status == {201: 2, 200: 2, 400: 1}
    assert sim.log.hashes_sent == 6
    assert read_log(path) == records


async def test_log_can_count_without_keeping(
    start: StartSim, session: aiohttp.ClientSession
) -> None:
    """For long rehearsals the log counts without holding every record."""
    sim = await start(keep_request_log=False)
    sample = plain(sim.world)[0]
    await post_json(session, sim.url + BULK_V1, {"hash_value": [sample.sha1], "analysis": "core"})
    assert sim.log.records == []
    assert len(sim.log) == 1
