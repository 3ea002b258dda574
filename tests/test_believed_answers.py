"""Only what the appliance clearly said, through the real job: unattributable and oversized
answers retried, a page that is not the API's mid-job retried (and at the first request a wrong
URL), a stop during a 429 pause, analysis names in any order, status requests counted apart."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from conftest import ScriptedAppliance, Seen
from support import StartSim, isolate, simulators
from test_run_against_simulator import expected_by_line, outcomes

from reanalyzer.core.hashes import HashType
from reanalyzer.errors import ExitCode, MisconfiguredError, TransportError, UnreachableError
from reanalyzer.record import jobdir
from reanalyzer.run import job
from reanalyzer.send.client import ApplianceClient, answer_limit
from reanalyzer.send.config import SendConfig
from reanalyzer.settings import load_settings
from reanalyzer.simulator import (
    Endpoint,
    Fault,
    write_input,
)

TOKEN = "tok-believed-5e1d7c3a90b2f468"
COOKIE = "sso-session-8d2f0c71"  # a header of the proxy's page: never in a message
PAGE = "<html><head><title>Sign in</title></head><body>Please   sign in\n to continue</body>"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def start() -> AsyncIterator[StartSim]:
    """Start simulators in this test's loop with SimulatorConfig fields; closed afterwards."""
    async with simulators(TOKEN, samples=400, seed=3) as start:
        yield start


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(monkeypatch, tmp_path)


async def run_job(url: str, inputs: list[Path], **cli: Any) -> int:
    settings = load_settings({"url": url, "token": TOKEN, "idle_flush": 0.05, **cli})
    return await job.send_job(settings, [str(p) for p in inputs])


def hash_lines(path: Path) -> dict[int, str]:
    return {n: line.strip().lower() for n, line in enumerate(path.read_text().splitlines(), 1)}


# --- unattributable and oversized answers ------------------------------------------------------


@pytest.mark.parametrize("precheck", [False, True], ids=["reanalysis", "precheck"])
async def test_wrong_shapes_and_huge_bodies_end_each_line_with_its_one_right_outcome(
    start: StartSim, tmp_path: Path, precheck: bool
) -> None:
    """8% of 2xx answers unattributable after the work, 3% padded far past the answer limit:
    every line gets exactly one record, the right one; a held sample whose first answer was
    spoiled is `already_queued` on the retry, never `not_found`; exit 0 or 1. With --precheck
    the status answers are spoiled too: asked again, never taken for "not held"."""
    sim = await start(wrong_shape_rate=0.08, big_body_rate=0.03, big_body_mb=2, fault_seed=4,
                      samples=600)
    path = tmp_path / "hashes.txt"
    write_input(path, sim.world, 1200, seed=4)
    code = await run_job(sim.url, [path], job_dir=tmp_path / "job", batch_size=5,
                         concurrency=8, precheck=precheck)
    assert code in (ExitCode.OK, ExitCode.SOME_FAILED)
    assert sim.log.by_fault[Fault.WRONG_SHAPE]
    assert sim.log.by_fault[Fault.BIG_BODY]
    if precheck:
        assert any(r.endpoint is Endpoint.STATUS and r.fault is Fault.WRONG_SHAPE
                   for r in sim.log.records)
    spoiled = {h.lower() for r in sim.log.records
               if r.fault in (Fault.WRONG_SHAPE, Fault.BIG_BODY) for h in r.hashes}
    first_accepted: dict[str, Fault] = {}
    for r in sim.log.records:
        if r.status in (200, 201) and r.endpoint is not Endpoint.STATUS:
            for h in r.hashes:
                first_accepted.setdefault(h.lower(), r.fault)
    expected = expected_by_line(path, sim)
    values = hash_lines(path)
    for number, want in expected.items():
        if want == "queued" and first_accepted.get(values[number]) in (
                Fault.WRONG_SHAPE, Fault.BIG_BODY):
            expected[number] = "already_queued"  # its first answer was lost: the work was done
    records = outcomes(tmp_path / "job")
    assert max(Counter(r["line"] for r in records).values()) == 1
    got = {r["line"]: r["status"] for r in records}
    assert set(got) == set(expected)
    wrong = {n: (got[n], want) for n, want in expected.items()
             if got[n] != want and got[n] != "failed"}
    assert not wrong, f"{len(wrong)} lines wrong, e.g. {list(wrong.items())[:5]}"
    held = {n for n, want in expected.items() if want in ("queued", "already_queued")}
    assert all(got[n] != "not_found" for n in held)
    assert any(values[n] in spoiled for n in held)


@pytest.fixture
async def streaming() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    """Serve one handler on 127.0.0.1 at a free port; its URL."""
    servers: list[TestServer] = []

    async def serve(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> str:
        app = web.Application()
        app.router.add_post("/{tail:.*}", handler)
        server = TestServer(app, host="127.0.0.1", port=0)
        await server.start_server()
        servers.append(server)
        return str(server.make_url("")).rstrip("/")

    yield serve
    for server in servers:
        await server.close()


async def test_an_answer_past_its_limit_is_cut_off_as_a_transient_failure(
    streaming: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """A chunked answer (no Content-Length) is read only up to 64 KiB + 4 KiB per hash sent,
    then the connection is closed: a transient failure that names the size reached, logged as
    client.answer_too_large; a Content-Length over the limit is refused before any reading."""
    written: list[int] = []

    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=200)
        response.content_type = "application/json"
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            for _ in range(400):  # 26 MB, were it all read
                await response.write(b" " * 65536)
                written.append(65536)
        except ConnectionError:
            pass
        return response

    async def announced(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b'{"results": []}' + b" " * 200_000,
                            content_type="application/json")

    sent = ["a" * 40, "b" * 40]
    config = SendConfig(url=await streaming(chunked), token=TOKEN)
    limit = answer_limit(config, len(sent))
    assert limit == 64 * 1024 + 2 * 4 * 1024
    async with ApplianceClient(config) as client:
        with pytest.raises(TransportError, match=r"bytes reached \(over 73,728 for 2 hashes\)"):
            await client.reanalyze(HashType.SHA1, sent)
    await asyncio.sleep(0.2)
    assert sum(written) < 26 * 1024 * 1024  # the server was cut off, not read to the end
    config = SendConfig(url=await streaming(announced), token=TOKEN)
    async with ApplianceClient(config) as client:
        with pytest.raises(TransportError, match="200,015 bytes announced"):
            await client.reanalyze(HashType.SHA1, sent)
    assert "client.answer_too_large" in capsys.readouterr().out + capsys.readouterr().err


async def test_a_bigger_per_hash_limit_is_a_setting(streaming: Any) -> None:
    """--max-answer-kib-per-hash raises the limit: the same answer is then read whole."""
    async def big(request: web.Request) -> web.StreamResponse:
        items = [{"analysis": [{"name": "core", "code": 201, "message": "ok"}],
                  "detail": {"sha1": "a" * 40}}]
        return web.Response(body=json.dumps({"results": items}).encode() + b" " * 100_000,
                            content_type="application/json")

    from reanalyzer.run.wiring import send_config

    url = await streaming(big)
    settings = load_settings({"url": url, "token": TOKEN, "max_answer_kib_per_hash": 64})
    async with ApplianceClient(send_config(settings)) as client:
        reply = await client.reanalyze(HashType.SHA1, ["a" * 40])
    assert reply.status == 200
    assert reply.content_type == "application/json"


# --- a page that is not the API's --------------------------------------------------------------


def queued(seen: Seen) -> web.Response:
    """The appliance's answer: every hash sent queued (v1 shape)."""
    items = [{"code": 201, "message": "Sample is queued for analysis.",
              "analysis": [{"name": "core", "code": 201, "message": "queued"}],
              "detail": {"sha1": h, "md5": "0" * 32}} for h in seen.hashes]
    return web.json_response({"results": items}, status=201)


def sign_in_page(_seen: Seen) -> web.Response:
    return web.Response(text=PAGE, content_type="text/html",
                        headers={"Set-Cookie": f"session={COOKIE}"})


def script(*answers: Callable[[Seen], web.Response], then: Callable[[Seen], web.Response]
           ) -> Callable[[Seen], web.Response]:
    """Answer the requests with `answers` in turn, then always with `then`."""
    queue = list(answers)
    return lambda seen: (queue.pop(0) if queue else then)(seen)


def input_of(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "hashes.txt"
    path.write_text("".join(f"{i:040x}\n" for i in range(1, n + 1)))
    return path


async def test_a_sign_in_page_mid_job_is_retried_and_the_job_finishes(
    appliance: ScriptedAppliance, tmp_path: Path
) -> None:
    """An HTML 200 page after the API has answered in this run is a bad moment, not a wrong
    URL: retried, and every line ends `queued`, exit 0."""
    appliance.handler = script(queued, queued, sign_in_page, sign_in_page, then=queued)
    path = input_of(tmp_path, 50)
    code = await run_job(appliance.url, [path], job_dir=tmp_path / "job", batch_size=10,
                         concurrency=1)
    assert code == ExitCode.OK
    assert Counter(r["status"] for r in outcomes(tmp_path / "job")) == {"queued": 50}
    assert len(appliance.seen) == 7


async def test_the_same_page_at_the_first_request_is_a_wrong_url(
    appliance: ScriptedAppliance, tmp_path: Path
) -> None:
    """The page before any answer in the API's shape: no reanalysis API at this address
    (exit 2), and no line is recorded on its account."""
    appliance.handler = script(sign_in_page, then=queued)
    with pytest.raises(MisconfiguredError) as caught:
        await run_job(appliance.url, [input_of(tmp_path, 30)], job_dir=tmp_path / "job",
                      batch_size=10, concurrency=1)
    assert caught.value.exit_code == ExitCode.USAGE
    assert "not at this address" in str(caught.value)
    assert all(r["status"] == "queued" for r in outcomes(tmp_path / "job"))


async def test_a_page_that_goes_on_past_the_outage_window_stops_the_job_resumable(
    appliance: ScriptedAppliance, tmp_path: Path
) -> None:
    """After the first answer, the page comes for good: past the outage window the job stops
    with exit 5, saying what was answered (status, content type, the start of the body, never a
    header) and that the same command resumes; it then does, and finishes."""
    appliance.handler = script(queued, then=sign_in_page)
    path = input_of(tmp_path, 40)
    started = time.monotonic()
    with pytest.raises(UnreachableError) as caught:
        await run_job(appliance.url, [path], job_dir=tmp_path / "job", batch_size=10,
                      concurrency=1, unreachable_timeout=1)
    assert time.monotonic() - started < 10
    message = str(caught.value)
    assert caught.value.exit_code == ExitCode.UNREACHABLE
    for part in ("HTTP 200", "text/html", "Please sign in to continue",
                 "the same command resumes"):
        assert part in message, message
    assert COOKIE not in message
    assert "Set-Cookie" not in message
    assert len(outcomes(tmp_path / "job")) == 10

    appliance.handler = queued
    assert await run_job(appliance.url, [path], job_dir=tmp_path / "job", batch_size=10) == 0
    assert Counter(r["status"] for r in outcomes(tmp_path / "job")) == {"queued": 40}


# --- a stop during a 429 pause -----------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_a_signal_during_a_long_retry_after_ends_the_run_at_once_and_it_resumes(
    appliance: ScriptedAppliance, tmp_path: Path, signum: int
) -> None:
    """`Retry-After: 120` on every request; SIGINT (or SIGTERM) after the first 429 ends the
    run with exit 4 in well under 3 s (not 120); the rerun against a healthy appliance finishes
    every line."""
    appliance.handler = lambda seen: web.Response(
        status=429, text='{"detail": "Request was throttled."}', headers={"Retry-After": "120"},
        content_type="application/json")
    path = input_of(tmp_path, 40)
    env = {k: v for k, v in os.environ.items() if not k.startswith("REANALYZER_")}
    env["REANALYZER_TOKEN"] = TOKEN
    args = [sys.executable, "-m", "reanalyzer", "run", "--url", appliance.url, "--job-dir",
            str(tmp_path / "job"), "--log-format", "json", "--batch-size", "10",
            "--idle-flush", "0.05", str(path)]
    proc = await asyncio.create_subprocess_exec(
        *args, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not appliance.seen:
        assert time.monotonic() < deadline, "no request reached the appliance"
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)  # the 429 is read and the pause begun
    proc.send_signal(signum)
    signalled = time.monotonic()
    _, stderr = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert time.monotonic() - signalled < 3, stderr.decode()[-2000:]
    assert proc.returncode == ExitCode.INTERRUPTED, stderr.decode()[-2000:]
    assert b"run the same command again to resume" in stderr

    appliance.handler = queued
    proc = await asyncio.create_subprocess_exec(
        *args, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, stderr = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == ExitCode.OK, stderr.decode()[-2000:]
    records = outcomes(tmp_path / "job")
    assert Counter(r["status"] for r in records) == {"queued": 40}
    assert len({r["line"] for r in records}) == 40


# --- analysis names ----------------------------------------------------------------------------


async def test_v2_core_and_vmray_tcbase_run_and_record_what_the_appliance_answered(
    start: StartSim, tmp_path: Path
) -> None:
    """`--api v2 --analysis core,vmray_tcbase` is sent as asked; the appliance without that
    integration refuses it per analysis (405) beside core's 201: `partial`, both recorded."""
    sim = await start(samples=100, share_absent=0.0, share_extracted=0.0, share_queued=0.0)
    path = tmp_path / "hashes.txt"
    path.write_text("".join(f"{s.sha1}\n" for s in sim.world.samples[:30]))
    code = await run_job(sim.url, [path], job_dir=tmp_path / "job", api="v2",
                         analysis="core,vmray_tcbase")
    assert code == ExitCode.OK
    assert {r.endpoint for r in sim.log.records} == {Endpoint.BULK_V2}
    assert {r.values.get("analysis") for r in sim.log.records} == {"core,vmray_tcbase"}
    records = outcomes(tmp_path / "job")
    assert len(records) == 30
    for record in records:
        assert record["status"] == "partial"
        by_name = {a["name"]: a for a in record["analyses"]}
        assert by_name["core"]["code"] == 201
        assert by_name["vmray_tcbase"]["code"] == 405
        assert "not configured" in by_name["vmray_tcbase"]["message"]


async def test_the_order_of_analysis_names_is_one_job(start: StartSim, tmp_path: Path) -> None:
    """`cloud,core` and `core,cloud` use one default job directory: the second run finds the
    first's job done."""
    sim = await start(samples=100)
    path = tmp_path / "hashes.txt"
    path.write_text("".join(f"{s.sha1}\n" for s in sim.world.samples[:20]))
    assert await run_job(sim.url, [path], analysis="cloud,core") == ExitCode.OK
    requests = len(sim.log.records)
    assert await run_job(sim.url, [path], analysis="core, cloud") == ExitCode.OK
    assert len(sim.log.records) == requests
    assert len(list((tmp_path / "jobs").iterdir())) == 1


async def test_a_job_begun_under_the_other_spelling_resumes(
    start: StartSim, tmp_path: Path
) -> None:
    """A job directory an earlier version made for `core,cloud` (its default name and job.json
    spelled so) is found and resumed by `core,cloud` and, with --job-dir, by `cloud,core`."""
    sim = await start(samples=100)
    path = tmp_path / "hashes.txt"
    path.write_text("".join(f"{s.sha1}\n" for s in sim.world.samples[:20]))
    settings = load_settings({"url": sim.url, "token": TOKEN, "analysis": "core,cloud"})
    earlier = jobdir.default_job_dir(job._identity(settings, [str(path)], as_given=True))
    assert earlier != jobdir.default_job_dir(job._identity(settings, [str(path)]))
    earlier.mkdir(parents=True)
    identity = job._identity(settings, [str(path)], as_given=True)
    (earlier / jobdir.JOB_FILE).write_text(json.dumps(identity))  # as written before
    assert await run_job(sim.url, [path], analysis="core,cloud") == ExitCode.OK
    assert len(outcomes(earlier)) == 20
    assert len(list((tmp_path / "jobs").iterdir())) == 1
    assert await run_job(sim.url, [path], analysis="cloud,core", job_dir=earlier) == 0
    assert len(outcomes(earlier)) == 20


def test_an_unknown_well_formed_name_is_sent_with_a_one_line_warning(tmp_path: Path) -> None:
    """A name this version does not know: the run goes on (here a dry run), with one line
    saying so."""
    path = input_of(tmp_path, 3)
    env = {k: v for k, v in os.environ.items() if not k.startswith("REANALYZER_")}
    done = subprocess.run(
        [sys.executable, "-m", "reanalyzer", "run", "--dry-run", "--api", "v2", "--analysis",
         "core,brand_new_sandbox", "--log-format", "console", str(path)],
        env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "brand_new_sandbox" in line]
    assert len(warnings) == 1
    assert "not documented" in warnings[0]


# --- status requests counted apart ------------------------------------------------------------


async def test_precheck_status_requests_are_counted_apart(
    start: StartSim, tmp_path: Path
) -> None:
    """The summary counts the status requests of --precheck apart from reanalysis requests,
    each as the appliance saw them."""
    sim = await start(samples=200)
    path = tmp_path / "hashes.txt"
    write_input(path, sim.world, 200, seed=2)
    code = await run_job(sim.url, [path], job_dir=tmp_path / "job", precheck=True,
                         batch_size=20)
    assert code == ExitCode.OK
    summary = json.loads((tmp_path / "job" / "summary.json").read_text())
    status = sum(r.endpoint is Endpoint.STATUS for r in sim.log.records)
    assert status > 0
    assert summary["status_requests"] == status
    assert summary["requests"] == len(sim.log.records) - status


async def test_an_analysis_name_the_appliance_refuses_stops_the_job_not_every_hash_invalid(
    start: StartSim, tmp_path: Path
) -> None:
    """A name this version does not know, which the appliance refuses as a whole-request 400
    about `analysis`: the job stops with exit 2 and the appliance's words, rather than splitting
    the request down to single hashes each recorded `invalid`."""
    sim = await start(samples=100, share_absent=0.0)
    path = tmp_path / "hashes.txt"
    path.write_text("".join(f"{s.sha1}\n" for s in sim.world.samples[:30]))
    with pytest.raises(MisconfiguredError) as caught:
        await run_job(sim.url, [path], job_dir=tmp_path / "job", api="v2",
                      analysis="core,brand_new_sandbox")
    assert caught.value.exit_code == ExitCode.USAGE
    assert '"brand_new_sandbox" is not a valid choice' in str(caught.value)
    assert "--analysis" in str(caught.value)
    assert not [r for r in outcomes(tmp_path / "job") if r["status"] == "invalid"]
    assert len(sim.log.records) <= 4  # (the requests already in flight)


def test_the_demo_takes_the_answer_faults(tmp_path: Path) -> None:
    """`reanalyzer demo` with wrong shapes, proxy pages and big bodies still accounts for every
    line; a share outside 0..1 is a usage error (exit 2)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REANALYZER_")}
    base = [sys.executable, "-m", "reanalyzer", "demo", "--dir", str(tmp_path / "demo"),
            "--lines", "1500", "--no-faults"]
    done = subprocess.run(
        [*base, "--wrong-shape-rate", "0.3", "--proxy-page-rate", "0.05",
         "--big-body-rate", "0.1", "--big-body-mb", "5"],
        env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "every input line accounted for" in done.stderr
    assert "30% answers of the wrong shape" in done.stderr
    refused = subprocess.run([*base, "--wrong-shape-rate", "1.5"], env=env,
                             capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode == ExitCode.USAGE, refused.stderr
    assert "wrong_shape_rate" in refused.stderr
