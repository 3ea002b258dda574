"""The v1 bulk endpoint: JSON, one hash type, cloud and core."""

from __future__ import annotations

import aiohttp
import pytest

from reanalyzer.simulator.hashes import HashType
from reanalyzer.simulator.world import SampleKind

from .conftest import StartSim
from .support import BULK_V1, of_kind, plain, post_json


async def test_first_queueing_is_201_then_200(
    start: StartSim, session: aiohttp.ClientSession
) -> None:
    """A sample's first reanalysis answers 201 per analysis, every later one 200."""
    sim = await start()
    sample = plain(sim.world)[0]
    body = {"hash_value": [sample.sha1], "analysis": "cloud,core"}

    status, answer = await post_json(session, sim.url + BULK_V1, body)
    assert status == 201
    [item] = answer["results"]
    assert item["code"] == 201
    assert item["analysis"] == [
        {"name": "cloud", "code": 201, "message": "Sample is queued for analysis."},
        {"name": "core", "code": 201, "message": "Sample is sent to core analysis."},
    ]
    assert item["detail"] == {
        "sha1": sample.sha1,
        "sha256": sample.sha256,
        "sha512": sample.sha512,
        "md5": sample.md5,
    }

    status, answer = await post_json(session, sim.url + BULK_V1, body)
    assert status == 200
    [item] = answer["results"]
    assert (item["code"], item["message"]) == (200, "Sample is already queued for analysis.")
    assert {a["code"] for a in item["analysis"]} == {200}
    assert sim.world.times_queued(sample.md5) == 2


async def test_sample_queued_before_start_answers_200(
    start: StartSim, session: aiohttp.ClientSession
) -> None:
    """A sample already queued when the simulator started answers 200 at once."""
    sim = await start()
    sample = of_kind(sim.world, SampleKind.PRESENT, queued=True)[0]
    status, answer = await post_json(
        session, sim.url + BULK_V1, {"hash_value": [sample.md5], "analysis": "core"}
    )
    assert status == 200
    assert answer["results"][0]["analysis"][0]["code"] == 200


@pytest.mark.parametrize("kind", list(HashType))
async def test_any_hash_type_in_any_case_finds_the_sample(
    start: StartSim, session: aiohttp.ClientSession, kind: HashType
) -> None:
    """Each of the four hashes finds the sample, in upper case too; the answer is lowercase."""
    sim = await start()
    sample = plain(sim.world)[0]
    status, answer = await post_json(
        session,
        sim.url + BULK_V1,
        {"hash_value": [sample.hash(kind).upper()], "analysis": "core"},
    )
    assert status == 201
    assert answer["results"][0]["detail"][kind.value] == sample.hash(kind)


async def test_one_queue_per_analysis(start: StartSim, session: aiohttp.ClientSession) -> None:
    """Queued for core only, the sample is still new to cloud: cloud 201 beside core 200."""
    sim = await start()
    sample = plain(sim.world)[0]
    await post_json(session, sim.url + BULK_V1, {"hash_value": [sample.sha1], "analysis": "core"})
    status, answer = await post_json(
        session, sim.url + BULK_V1, {"hash_value": [sample.sha1], "analysis": "cloud,core"}
    )
    assert status == 201
    assert [a["code"] for a in answer["results"][0]["analysis"]] == [201, 200]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"hash_value": ["abc"], "analysis": "core"}, "hash_value"),
        ({"hash_value": ["g" * 40], "analysis": "core"}, "hash_value"),
        ({"hash_value": [" " + "a" * 40], "analysis": "core"}, "hash_value"),
        ({"hash_value": ["a" * 40, "b" * 32], "analysis": "core"}, "hash_value"),
        ({"hash_value": [], "analysis": "core"}, "hash_value"),
        ({"hash_value": "a" * 40, "analysis": "core"}, "hash_value"),
        ({"analysis": "core"}, "hash_value"),
        ({"hash_value": ["a" * 40]}, "analysis"),
        ({"hash_value": ["a" * 40], "analysis": ""}, "analysis"),
        ({"hash_value": ["a" * 40], "analysis": "core,bogus"}, "analysis"),
        ({"hash_value": ["a" * 40], "analysis": "joe"}, "analysis"),
    ],
)
async def test_invalid_requests_are_400(
    start: StartSim, session: aiohttp.ClientSession, body: object, field: str
) -> None:
    """Bad or untrimmed hashes, mixed types, no hashes, missing or unknown analyses: 400."""
    sim = await start()
    status, answer = await post_json(session, sim.url + BULK_V1, body)
    assert status == 400
    assert field in answer["detail"]
    assert sim.world.samples_queued() == 0


async def test_mixed_types_message(start: StartSim, session: aiohttp.ClientSession) -> None:
    """A mixed-type request says why it was refused."""
    sim = await start()
    sample = plain(sim.world)[0]
    _, answer = await post_json(
        session, sim.url + BULK_V1, {"hash_value": [sample.sha1, sample.md5], "analysis": "core"}
    )
    assert answer["detail"]["hash_value"] == ["All hashes in a request must be of the same type."]


async def test_over_max_bulk_is_413_and_queues_nothing(
    start: StartSim, session: aiohttp.ClientSession
) -> None:
    """A bulk request naming more hashes than max_bulk is answered 413, the limit itself 201."""
    sim = await start(max_bulk=3)
    hashes = [s.sha1 for s in plain(sim.world)[:4]]
    status, _ = await post_json(
        session, sim.url + BULK_V1, {"hash_value": hashes, "analysis": "core"}
    )
    assert status == 413
    assert sim.world.samples_queued() == 0
    status, _ = await post_json(
        session, sim.url + BULK_V1, {"hash_value": hashes[:3], "analysis": "core"}
    )
    assert status == 201


async def test_absent_omitted(start: StartSim, session: aiohttp.ClientSession) -> None:
    """In omit mode an absent sample is simply not in the results."""
    sim = await start(absent_mode="omit")
    held, gone = plain(sim.world)[0], of_kind(sim.world, SampleKind.ABSENT)[0]
    status, answer = await post_json(
        session, sim.url + BULK_V1, {"hash_value": [gone.sha1, held.sha1], "analysis": "core"}
    )
    assert status == 201
    assert [r["detail"]["sha1"] for r in answer["results"]] == [held.sha1]


async def test_absent_as_404_item(start: StartSim, session: aiohttp.ClientSession) -> None:
    """In 404 mode an absent sample is an item with code 404 naming the hash sent."""
    sim = await start(absent_mode="404")
    held, gone = plain(sim.world)[0], of_kind(sim.world, SampleKind.ABSENT)[0]
    status, answer = await post_json(
        session,
        sim.url + BULK_V1,
        {"hash_value": [gone.sha256.upper(), held.sha256], "analysis": "cloud,core"},
    )
    assert status == 201
    missing, found = answer["results"]
    assert missing["code"] == 404
    assert missing["detail"] == {"sha256": gone.sha256}
    assert {a["code"] for a in missing["analysis"]} == {404}
    assert found["code"] == 201


async def test_extracted_as_item(start: StartSim, session: aiohttp.ClientSession) -> None:
    """In item mode an extracted sample is a 405 item and the rest of the request is queued."""
    sim = await start(extracted_mode="item")
    held, extracted = plain(sim.world)[0], of_kind(sim.world, SampleKind.EXTRACTED)[0]
    status, answer = await post_json(
        session, sim.url + BULK_V1, {"hash_value": [extracted.md5, held.md5], "analysis": "core"}
    )
    assert status == 201
    refused, queued = answer["results"]
    assert (refused["code"], refused["message"]) == (
        405,
        "Reanalysis not allowed for extracted samples.",
    )
    assert refused["analysis"][0]["code"] == 405
    assert queued["code"] == 201
    assert sim.world.times_queued(extracted.md5) == 0


async def test_extracted_refuses_whole_request(
    start: StartSim, session: aiohttp.ClientSession
) -> None:
    """In request mode one extracted sample makes the whole request 405, nothing queued."""
    sim = await start(extracted_mode="request")
    held, extracted = plain(sim.world)[0], of_kind(sim.world, SampleKind.EXTRACTED)[0]
    status, answer = await post_json(
        session, sim.url + BULK_V1, {"hash_value": [held.md5, extracted.md5], "analysis": "core"}
    )
    assert status == 405
    assert answer["message"] == "Reanalysis not allowed for extracted samples."
    assert sim.world.samples_queued() == 0
    status, _ = await post_json(
        session, sim.url + BULK_V1, {"hash_value": [held.md5], "analysis": "core"}
    )
    assert status == 201


async def test_refusing_appliance(start: StartSim, session: aiohttp.ClientSession) -> None:
    """An appliance type that refuses reanalysis answers 405 to every request."""
    sim = await start(appliance_refuses=True)
    sample = plain(sim.world)[0]
    status, answer = await post_json(
        session, sim.url + BULK_V1, {"hash_value": [sample.sha1], "analysis": "core"}
    )
    assert status == 405
    assert answer["message"] == "Not allowed for this type of appliance."
    assert sim.world.samples_queued() == 0


async def test_cloud_disconnected_gives_mixed_answer(
    start: StartSim, session: aiohttp.ClientSession
) -> None:
    """Not connected to Spectra Intelligence, cloud is refused per analysis and core queued."""
    sim = await start(cloud_connected=False)
    sample = plain(sim.world)[0]
    status, answer = await post_json(
        session, sim.url + BULK_V1, {"hash_value": [sample.sha1], "analysis": "cloud,core"}
    )
    assert status == 201
    cloud, core = answer["results"][0]["analysis"]
    assert cloud == {
        "name": "cloud",
        "code": 405,
        "message": "Appliance is not connected to Spectra Intelligence.",
    }
    assert core["code"] == 201


async def test_cloud_only_while_disconnected_queues_nothing(
    start: StartSim, session: aiohttp.ClientSession
) -> None:
    """Asking only for cloud on a disconnected appliance leaves the sample unqueued."""
    sim = await start(cloud_connected=False)
    sample = plain(sim.world)[0]
    status, answer = await post_json(
        session, sim.url + BULK_V1, {"hash_value": [sample.sha1], "analysis": "cloud"}
    )
    assert status == 200
    assert answer["results"][0]["code"] == 405
    assert sim.world.times_queued(sample.sha1) == 0


async def test_without_legacy_fields(start: StartSim, session: aiohttp.ClientSession) -> None:
    """The deprecated top-level code and message can be left out, as newer appliances may."""
    sim = await start(legacy_fields=False)
    sample = plain(sim.world)[0]
    _, answer = await post_json(
        session, sim.url + BULK_V1, {"hash_value": [sample.sha1], "analysis": "core"}
    )
    item = answer["results"][0]
    assert "code" not in item
    assert "message" not in item
    assert item["analysis"][0]["code"] == 201
