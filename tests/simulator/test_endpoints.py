"""The token check, the single-sample endpoint, the v2 bulk endpoint and the status endpoint."""

from __future__ import annotations

import aiohttp
import pytest

from reanalyzer.simulator.world import SampleKind

from .conftest import StartSim
from .support import BULK_V1, BULK_V2, STATUS, of_kind, plain, post_form, post_json, single_url


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "Authentication credentials were not provided."),
        ({"Authorization": "Token wrong"}, "Invalid token."),
        ({"Authorization": "Bearer sim-test-token"}, "Invalid token."),
    ],
)
async def test_token_is_checked(start: StartSim, headers: dict[str, str], detail: str) -> None:
    """Without the right `Authorization: Token` header every endpoint answers 401."""
    sim = await start()
    sample = plain(sim.world)[0]
    async with aiohttp.ClientSession(headers=headers) as anonymous:
        for path, body in [
            (BULK_V1, {"hash_value": [sample.sha1], "analysis": "core"}),
            (STATUS, {"hash_values": [sample.sha1]}),
            (single_url(sample.sha1), {"analysis": "core"}),
        ]:
            status, answer = await post_json(anonymous, sim.url + path, body)
            assert (status, answer) == (401, {"detail": detail})
    assert sim.world.samples_queued() == 0


async def test_readonly_token_may_ask_status_but_not_reanalyze(start: StartSim) -> None:
    """A read-only user's token gets 403 on reanalysis and answers on status."""
    sim = await start(readonly_token="reader")
    sample = plain(sim.world)[0]
    async with aiohttp.ClientSession(headers={"Authorization": "Token reader"}) as reader:
        status, _ = await post_json(
            reader, sim.url + BULK_V1, {"hash_value": [sample.sha1], "analysis": "core"}
        )
        assert status == 403
        status, _ = await post_json(reader, sim.url + STATUS, {"hash_values": [sample.sha1]})
        assert status == 200


async def test_single_form_201_then_200(start: StartSim, session: aiohttp.ClientSession) -> None:
    """The single-sample endpoint takes a form field and answers with the item itself."""
    sim = await start()
    sample = plain(sim.world)[0]
    url = sim.url + single_url(sample.sha256)
    status, answer = await post_form(session, url, [("analysis", "cloud,core")])
    assert status == 201
    assert answer["code"] == 201
    assert [a["name"] for a in answer["analysis"]] == ["cloud", "core"]
    assert answer["detail"]["md5"] == sample.md5
    status, answer = await post_form(session, url, [("analysis", "cloud,core")])
    assert (status, answer["message"]) == (200, "Sample is already queued for analysis.")


async def test_single_takes_json_too(start: StartSim, session: aiohttp.ClientSession) -> None:
    """The vendor's Python example sends the analysis as JSON; that works as well."""
    sim = await start()
    sample = plain(sim.world)[0]
    status, _ = await post_json(session, sim.url + single_url(sample.md5), {"analysis": "core"})
    assert status == 201


async def test_single_refusals(start: StartSim, session: aiohttp.ClientSession) -> None:
    """Single sample: 404 when absent, 405 when extracted, 400 for a bad hash or analysis."""
    sim = await start()
    gone = of_kind(sim.world, SampleKind.ABSENT)[0]
    extracted = of_kind(sim.world, SampleKind.EXTRACTED)[0]
    held = plain(sim.world)[0]
    cases = [
        (gone.sha1, "core", 404),
        (extracted.sha1, "core", 405),
        ("xyz", "core", 400),
        (held.sha1, "joe", 400),
    ]
    for value, analysis, expected in cases:
        status, _ = await post_form(session, sim.url + single_url(value), [("analysis", analysis)])
        assert status == expected, value
    assert sim.world.samples_queued() == 0


async def test_single_refusing_appliance(start: StartSim, session: aiohttp.ClientSession) -> None:
    """An appliance type that refuses reanalysis refuses single samples too."""
    sim = await start(appliance_refuses=True)
    held = plain(sim.world)[0]
    status, answer = await post_form(
        session, sim.url + single_url(held.sha1), [("analysis", "core")]
    )
    assert (status, answer["message"]) == (405, "Not allowed for this type of appliance.")


async def test_v2_form_with_repeated_hashes(
    start: StartSim, session: aiohttp.ClientSession
) -> None:
    """v2 takes a form with hash_value repeated, of mixed types, and queues each sample."""
    sim = await start()
    a, b = plain(sim.world)[:2]
    status, answer = await post_form(
        session,
        sim.url + BULK_V2,
        [("hash_value", a.md5), ("hash_value", b.sha512), ("analysis", "cloud,core")],
    )
    assert status == 201
    assert [r["detail"]["sha1"] for r in answer["results"]] == [a.sha1, b.sha1]
    assert sim.world.times_queued(a.sha1) == sim.world.times_queued(b.sha1) == 1


async def test_v2_mixed_types_can_be_refused(
    start: StartSim, session: aiohttp.ClientSession
) -> None:
    """Whether v2 takes mixed types is unverified, so the simulator can refuse them too."""
    sim = await start(v2_mixed_types=False)
    a, b = plain(sim.world)[:2]
    status, _ = await post_form(
        session,
        sim.url + BULK_V2,
        [("hash_value", a.md5), ("hash_value", b.sha1), ("analysis", "core")],
    )
    assert status == 400


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ([], 400),
        ([("rl_cloud_sandbox_platform", "windows95")], 400),
        ([("rl_cloud_sandbox_platform", "windows10")], 201),
    ],
)
async def test_v2_sandbox_needs_a_known_platform(
    start: StartSim,
    session: aiohttp.ClientSession,
    extra: list[tuple[str, str]],
    expected: int,
) -> None:
    """rl_cloud_sandbox without a platform, or with an unknown one, is a 400."""
    sim = await start()
    sample = plain(sim.world)[0]
    fields = [("hash_value", sample.sha1), ("analysis", "rl_cloud_sandbox"), *extra]
    status, _ = await post_form(session, sim.url + BULK_V2, fields)
    assert status == expected


async def test_v2_unconfigured_sandbox_refused_per_analysis(
    start: StartSim, session: aiohttp.ClientSession
) -> None:
    """A sandbox not configured on the appliance is refused beside a queued core analysis."""
    sim = await start(sandboxes=frozenset())
    sample = plain(sim.world)[0]
    status, answer = await post_form(
        session, sim.url + BULK_V2, [("hash_value", sample.sha1), ("analysis", "core,cuckoo")]
    )
    assert status == 201
    core, cuckoo = answer["results"][0]["analysis"]
    assert core["code"] == 201
    assert cuckoo == {
        "name": "cuckoo",
        "code": 405,
        "message": "Sandbox integration is not configured.",
    }


async def test_status_queues_nothing(start: StartSim, session: aiohttp.ClientSession) -> None:
    """Status answers processed or not_found per hash and queues nothing."""
    sim = await start()
    held = plain(sim.world)[0]
    extracted = of_kind(sim.world, SampleKind.EXTRACTED)[0]
    gone = of_kind(sim.world, SampleKind.ABSENT)[0]
    body = {"hash_values": [held.sha1, extracted.sha1, gone.sha1.upper()]}
    status, answer = await post_json(session, sim.url + STATUS, body)
    assert status == 200
    assert answer["results"] == [
        {"hash_value": held.sha1, "status": "processed"},
        {"hash_value": extracted.sha1, "status": "processed"},
        {"hash_value": gone.sha1, "status": "not_found"},
    ]
    status, answer = await post_json(session, sim.url + STATUS + "?status=processed", body)
    assert [r["hash_value"] for r in answer["results"]] == [held.sha1, extracted.sha1]
    assert sim.world.samples_queued() == 0


async def test_status_refuses_mixed_types(start: StartSim, session: aiohttp.ClientSession) -> None:
    """Status takes one hash type per request."""
    sim = await start()
    held = plain(sim.world)[0]
    status, _ = await post_json(session, sim.url + STATUS, {"hash_values": [held.sha1, held.md5]})
    assert status == 400


async def test_unreadable_bodies(start: StartSim, session: aiohttp.ClientSession) -> None:
    """Broken JSON is a 400 and an unknown media type a 415."""
    sim = await start()
    async with session.post(
        sim.url + BULK_V1, data=b"{", headers={"Content-Type": "application/json"}
    ) as response:
        assert response.status == 400
    async with session.post(
        sim.url + BULK_V1, data=b"x", headers={"Content-Type": "text/plain"}
    ) as response:
        assert response.status == 415
