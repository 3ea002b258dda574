"""Answers recorded from real appliances (tests/data/recorded/) read into their known outcomes:
by the answer readers, and end to end through the CLI against a server replaying them."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from reanalyzer.core.hashes import HashType
from reanalyzer.core.outcomes import Status
from reanalyzer.errors import ExitCode
from reanalyzer.record.outcome_log import OUTCOMES_FILE, read_records
from reanalyzer.send.answers import (
    Action,
    decide_bulk,
    decide_single,
    decide_status,
    parse_body,
)
from reanalyzer.send.fast_answers import read_bulk_answer

RECORDED = Path(__file__).parent / "data" / "recorded"
TOKEN = "tok-recorded-5e6f7a8b"
SEVEN = ["cloud", "core", "rl_cloud_sandbox", "cuckoo", "fireeye", "joe", "cape"]
V2_SEVEN = ["--api", "v2", "--analysis", ",".join(SEVEN), "--sandbox-platform", "windows10"]


def recorded(name: str) -> tuple[bytes, Any]:
    """The recorded body, raw and parsed."""
    raw = (RECORDED / name).read_bytes()
    return raw, parse_body(raw)


def the_sha1(body: Any) -> str:
    """The sha1 the recorded answer is about (the request sent it lowercase)."""
    item = body["results"][0] if "results" in body else body
    return str(item["detail"]["sha1"]) if "detail" in item else str(item["hash_value"])


@pytest.mark.parametrize("name", ["v2_bulk_all_services.json", "v2_bulk_all_services_2023.json"])
def test_v2_bulk_answer_with_unconfigured_sandboxes_is_partial_with_all_seven(name: str) -> None:
    """A v2 answer without any result code: partial, the seven analyses kept by name with
    their codes, and the refused ones named in the reason."""
    raw, body = recorded(name)
    sha1 = the_sha1(body)
    decision = decide_bulk(201, body, HashType.SHA1, [sha1], raw.decode())
    assert decision.action is Action.DONE
    verdict = decision.verdicts[sha1]
    assert verdict.status is Status.PARTIAL
    wire = {a["name"]: a["code"] for a in body["results"][0]["analysis"]}
    assert sorted(wire) == sorted(SEVEN)
    assert {a.name: a.code for a in verdict.analyses} == wire
    assert verdict.reason is not None
    assert "Sandbox integration is not configured." in verdict.reason
    assert verdict.detail["sha1"] == sha1
    fast = read_bulk_answer(201, raw, HashType.SHA1, [sha1], 0)
    if fast is not None:  # the one-line recording is read fast: it must agree
        assert dict(fast) == dict(decision.verdicts)


def test_v1_bulk_answer_without_analyses_is_already_queued() -> None:
    """The older appliance's v1 answer (a code and message, no analysis list) is read."""
    raw, body = recorded("v1_bulk_cloud_already.json")
    sha1 = the_sha1(body)
    decision = decide_bulk(200, body, HashType.SHA1, [sha1], raw.decode())
    assert decision.action is Action.DONE
    assert decision.verdicts[sha1].status is Status.ALREADY_QUEUED
    assert decision.verdicts[sha1].detail["imphash"] == ""


def test_v1_single_answer_is_queued_with_both_analyses() -> None:
    """The single endpoint's answer (top-level code beside the analysis list) is queued."""
    raw, body = recorded("v1_single_core_cloud.json")
    sha1 = the_sha1(body)
    decision = decide_single(201, body, sha1, raw.decode())
    assert decision.action is Action.DONE
    verdict = decision.verdicts[sha1]
    assert verdict.status is Status.QUEUED
    assert [(a.name, a.code) for a in verdict.analyses] == [("cloud", 201), ("core", 201)]


def test_status_answer_processed_is_held() -> None:
    """The status endpoint's `processed` means the appliance holds the sample."""
    raw, body = recorded("status_processed.json")
    sha1 = the_sha1(body)
    decision = decide_status(200, body, raw.decode(), [sha1])
    assert (decision.action, decision.held) == (Action.DONE, {sha1})


@dataclass
class Replay:
    """A server answering each path with one recorded body, counting what it was asked."""

    url: str
    asked: list[str]


@pytest.fixture
async def replay() -> AsyncIterator[Any]:
    """Start servers that replay recorded bodies on 127.0.0.1, port 0."""
    runners: list[web.AppRunner] = []

    async def start(routes: dict[str, tuple[int, str]]) -> Replay:
        asked: list[str] = []

        async def answer(request: web.Request) -> web.Response:
            asked.append(request.path)
            if request.headers.get("Authorization") != f"Token {TOKEN}":
                return web.json_response({"detail": "Invalid token."}, status=401)
            if request.path.endswith("/analyze/") and "/samples/v2/" not in request.path and (
                    "analyze_bulk" not in request.path):
                route = routes.get("/api/samples/{hash}/analyze/")
            else:
                route = routes.get(request.path)
            if route is None:
                return web.json_response({"detail": "Not found."}, status=404)
            status, name = route
            return web.Response(status=status, body=(RECORDED / name).read_bytes(),
                                content_type="application/json")

        app = web.Application()
        app.router.add_post("/{tail:.*}", answer)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return Replay(f"http://127.0.0.1:{port}", asked)

    yield start
    for runner in runners:
        await runner.cleanup()


async def run_cli(tmp_path: Path, url: str, sha1: str, *options: str) -> list[dict[str, Any]]:
    """`reanalyzer run` on one hash in a subprocess; it must exit 0; its outcome records."""
    source = tmp_path / "hashes.txt"
    source.write_text(sha1 + "\n")
    job_dir = tmp_path / "job"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reanalyzer", "run", "--url", url, "--job-dir", str(job_dir),
        "--progress", "off", *options, str(source),
        env={**os.environ, "REANALYZER_TOKEN": TOKEN}, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == ExitCode.OK, err.decode()
    return list(read_records(job_dir / OUTCOMES_FILE))


async def test_cli_records_the_v2_recording_partial_after_the_recorded_precheck(
    tmp_path: Path, replay: Any
) -> None:
    """--precheck reads the recorded `processed`, and the recorded v2 answer is recorded
    partial with its seven analyses."""
    server = await replay({"/api/samples/status/": (200, "status_processed.json"),
                           "/api/samples/v2/analyze_bulk/": (201, "v2_bulk_all_services.json")})
    _, body = recorded("v2_bulk_all_services.json")
    [record] = await run_cli(tmp_path, server.url, the_sha1(body), *V2_SEVEN, "--precheck")
    assert server.asked == ["/api/samples/status/", "/api/samples/v2/analyze_bulk/"]
    assert record["status"] == "partial"
    assert sorted(a["name"] for a in record["analyses"]) == sorted(SEVEN)
    assert record["detail"] == body["results"][0]["detail"]


async def test_cli_records_the_2023_v2_recording_partial(tmp_path: Path, replay: Any) -> None:
    """The recording captured with its keys sorted is read the same way."""
    server = await replay({"/api/samples/v2/analyze_bulk/": (201,
                                                             "v2_bulk_all_services_2023.json")})
    _, body = recorded("v2_bulk_all_services_2023.json")
    [record] = await run_cli(tmp_path, server.url, the_sha1(body), *V2_SEVEN)
    assert record["status"] == "partial"
    assert len(record["analyses"]) == 7


async def test_cli_records_the_v1_bulk_recording_already_queued(
    tmp_path: Path, replay: Any
) -> None:
    """The v1 bulk recording, answered to `--analysis cloud`, is recorded already_queued."""
    server = await replay({"/api/samples/analyze_bulk/": (200, "v1_bulk_cloud_already.json")})
    _, body = recorded("v1_bulk_cloud_already.json")
    [record] = await run_cli(tmp_path, server.url, the_sha1(body), "--analysis", "cloud")
    assert (record["status"], record["http_status"]) == ("already_queued", 200)


async def test_cli_records_the_single_recording_queued(tmp_path: Path, replay: Any) -> None:
    """The single-sample recording is recorded queued with both analyses."""
    server = await replay({"/api/samples/{hash}/analyze/": (201, "v1_single_core_cloud.json")})
    _, body = recorded("v1_single_core_cloud.json")
    sha1 = the_sha1(body)
    [record] = await run_cli(tmp_path, server.url, sha1, "--endpoint", "single",
                             "--analysis", "core,cloud")
    assert server.asked == [f"/api/samples/{sha1}/analyze/"]
    assert record["status"] == "queued"
    assert [a["name"] for a in record["analyses"]] == ["cloud", "core"]
    assert json.dumps(record["detail"], sort_keys=True) == json.dumps(body["detail"],
                                                                       sort_keys=True)
