"""The sender against a scripted appliance on 127.0.0.1: answers, splitting, retries, pacing."""

from __future__ import annotations

import asyncio
import bisect
import socket
import time
from collections.abc import Iterable
from typing import Any

import pytest
import structlog
from aiohttp import web
from aioresponses import aioresponses

from reanalyzer import __version__
from reanalyzer.core.hashes import HashType
from reanalyzer.core.outcomes import Status
from reanalyzer.errors import CredentialsError, NotAllowedError, UnreachableError
from reanalyzer.send.client import ApplianceClient
from reanalyzer.send.config import SendConfig
from reanalyzer.send.sender import Sender, SendingStopped

TOKEN = "s3cr3t-t0ken-4f9a"
SHA1 = HashType.SHA1
QUEUED = [
    {"name": "cloud", "code": 201, "message": "Sample is queued for analysis."},
    {"name": "core", "code": 201, "message": "Sample is sent to core analysis."},
]
ALREADY = [
    {"name": "cloud", "code": 200, "message": "Already queued."},
    {"name": "core", "code": 200, "message": "Already queued."},
]
EXTRACTED = "Reanalysis not allowed for extracted samples."


def hashes(n: int, start: int = 0) -> list[str]:
    return [f"{i:040x}" for i in range(start, start + n)]


def make_config(url: str, **overrides: Any) -> SendConfig:
    settings: dict[str, Any] = {
        "url": url,
        "token": TOKEN,
        "concurrency": 4,
        "max_retries": 2,
        "backoff_base": 0.05,
        "backoff_cap": 1.0,
        "unreachable_after": 1000,
    }
    settings.update(overrides)
    return SendConfig(**settings)


def result(h: str, analyses: list[dict[str, Any]], code: int | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"analysis": analyses, "detail": {"sha1": h.upper(), "md5": "0" * 32}}
    if code is not None:
        item["code"] = code
    return item


class World:
    """A tiny appliance world: which samples exist, which are extracted, which are queued."""

    def __init__(
        self,
        present: Iterable[str],
        extracted: Iterable[str] = (),
        *,
        report_absent: bool = False,
        extracted_whole_request: bool = False,
        invalid: Iterable[str] = (),
        max_bulk: int | None = None,
    ) -> None:
        self.present = set(present)
        self.extracted = set(extracted)
        self.invalid = set(invalid)
        self.queued: set[str] = set()
        self.report_absent = report_absent
        self.extracted_whole_request = extracted_whole_request
        self.max_bulk = max_bulk

    def __call__(self, seen: Any) -> web.Response:
        if self.max_bulk is not None and len(seen.hashes) > self.max_bulk:
            return web.Response(
                status=413,
                text="<html>413 Request Entity Too Large</html>",
                content_type="text/html",
            )
        if self.invalid & set(seen.hashes):
            return web.json_response({"message": "Validation error."}, status=400)
        if self.extracted_whole_request and self.extracted & set(seen.hashes):
            return web.json_response({"code": 405, "message": EXTRACTED}, status=405)
        results = []
        for h in seen.hashes:
            if h in self.extracted:
                results.append(
                    result(h, [{"name": "core", "code": 405, "message": EXTRACTED}], 405)
                )
            elif h not in self.present:
                if self.report_absent:
                    results.append({"code": 404, "message": "Not found.", "detail": {"sha1": h}})
            else:
                analyses = ALREADY if h in self.queued else QUEUED
                self.queued.add(h)
                results.append(result(h, analyses))
        return web.json_response({"results": results[::-1]}, status=201)


def sequence(*answers: web.Response | None, then: Any) -> Any:
    """Answer with `answers` in turn (None: pass to `then`), then always with `then`."""
    queue = list(answers)

    def handle(seen: Any) -> web.Response:
        answer = queue.pop(0) if queue else None
        return answer if answer is not None else then(seen)

    return handle


def html(status: int) -> web.Response:
    return web.Response(
        status=status, text=f"<html><h1>{status}</h1></html>", content_type="text/html"
    )


async def test_bulk_v1_sends_the_documented_request_and_reads_queued_then_already(
    appliance: Any, clock: Any
) -> None:
    """JSON body, token header and User-Agent; 201 then 200 become queued then already_queued."""
    hs = hashes(3)
    appliance.handler = World(hs)
    async with Sender(make_config(appliance.url), clock=clock) as sender:
        first = await sender.send(SHA1, hs)
        second = await sender.send(SHA1, hs)
    assert {v.status for v in first.values()} == {Status.QUEUED}
    assert {v.status for v in second.values()} == {Status.ALREADY_QUEUED}
    assert all(v.attempts == 1 for v in first.values())
    seen = appliance.seen[0]
    assert seen.path == "/api/samples/analyze_bulk/"
    assert seen.json == {"hash_value": hs, "analysis": "cloud,core"}
    assert seen.headers["Authorization"] == f"Token {TOKEN}"
    assert seen.headers["User-Agent"] == f"reanalyzer/{__version__}"
    assert first[hs[0]].detail["sha1"] == hs[0].upper()


async def test_partial_absent_and_extracted_items(appliance: Any, clock: Any) -> None:
    """Per item: partial keeps all analyses; absent (omitted or 404) is not_found; 405 item is
    not_allowed."""
    hs = hashes(5)
    world = World(hs[:3], extracted=[hs[2]])

    def handle(seen: Any) -> web.Response:
        response = world(seen)
        if seen.hashes == hs[:1]:
            partial = [
                QUEUED[1],
                {"name": "cloud", "code": 405, "message": "Not connected to Spectra Intelligence."},
            ]
            return web.json_response({"results": [result(hs[0], partial, 201)]})
        return response

    appliance.handler = handle
    async with Sender(make_config(appliance.url), clock=clock) as sender:
        partial = await sender.send(SHA1, hs[:1])
        rest = await sender.send(SHA1, hs[1:])
    assert partial[hs[0]].status is Status.PARTIAL
    assert [a.code for a in partial[hs[0]].analyses] == [201, 405]
    assert rest[hs[1]].status is Status.QUEUED
    assert rest[hs[2]].status is Status.NOT_ALLOWED
    assert rest[hs[3]].status is Status.NOT_FOUND
    world.report_absent = True
    async with Sender(make_config(appliance.url), clock=clock) as sender:
        reported = await sender.send(SHA1, hs[3:])
    assert {v.status for v in reported.values()} == {Status.NOT_FOUND}
    assert reported[hs[3]].http_status == 404


@pytest.mark.parametrize(
    ("world_kwargs", "status"),
    [({"extracted_whole_request": True}, Status.NOT_ALLOWED), ({}, Status.INVALID)],
)
async def test_whole_request_refusal_is_split_until_the_culprit_is_alone(
    appliance: Any, clock: Any, world_kwargs: dict[str, Any], status: Status
) -> None:
    """A whole-request 405 (extracted) or 400 is split in halves; the culprit alone gets its
    outcome and every other hash is queued."""
    hs = hashes(8)
    culprit = hs[5]
    if status is Status.INVALID:
        world = World(hs, invalid=[culprit])
    else:
        world = World(hs, extracted=[culprit], **world_kwargs)
    appliance.handler = world
    async with Sender(make_config(appliance.url), clock=clock) as sender:
        verdicts = await sender.send(SHA1, hs)
        stats = sender.stats
    assert list(verdicts) == hs or set(verdicts) == set(hs)
    assert verdicts[culprit].status is status
    assert verdicts[culprit].attempts == 4  # 8 → 4 → 2 → 1
    assert all(verdicts[h].status is Status.QUEUED for h in hs if h != culprit)
    assert stats.splits == 3


async def test_413_shrinks_the_batch_for_the_rest_of_the_job(appliance: Any, clock: Any) -> None:
    """413 splits until the appliance accepts, and later sends start at the smaller size."""
    hs = hashes(20)
    appliance.handler = World(hs, max_bulk=3)
    async with Sender(make_config(appliance.url), clock=clock) as sender:
        first = await sender.send(SHA1, hs[:10])
        assert sender.stats.max_batch == 2
        before = len(appliance.seen)
        second = await sender.send(SHA1, hs[10:])
    assert {v.status for v in (first | second).values()} == {Status.QUEUED}
    assert len(appliance.seen) - before == 5
    assert all(len(s.hashes) <= 2 for s in appliance.seen[before:])


@pytest.mark.parametrize("status", [401, 403])
async def test_credentials_refused_stops_at_once(appliance: Any, clock: Any, status: int) -> None:
    """401/403 raise CredentialsError, without the token in the message; later sends raise too."""
    appliance.handler = lambda seen: web.json_response({"detail": "Invalid token."}, status=status)
    async with Sender(make_config(appliance.url), clock=clock) as sender:
        with pytest.raises(CredentialsError) as caught:
            await sender.send(SHA1, hashes(4))
        with pytest.raises(CredentialsError):
            await sender.send(SHA1, hashes(4, 10))
    assert TOKEN not in str(caught.value)
    assert len(appliance.seen) == 1


async def test_appliance_type_405_stops_the_job(appliance: Any, clock: Any) -> None:
    """The 405 for the appliance type raises NotAllowedError instead of splitting."""
    appliance.handler = lambda seen: web.json_response(
        {"code": 405, "message": "Not allowed for this type of appliance."}, status=405
    )
    async with Sender(make_config(appliance.url), clock=clock) as sender:
        with pytest.raises(NotAllowedError):
            await sender.send(SHA1, hashes(8))
    assert len(appliance.seen) == 1


async def test_503_then_success_is_retried_with_backoff(appliance: Any, clock: Any) -> None:
    """Two HTML 503s, then the answer: queued after 3 attempts, having slept twice."""
    hs = hashes(2)
    appliance.handler = sequence(html(503), html(502), then=World(hs))
    async with Sender(make_config(appliance.url), clock=clock, rand=lambda: 0.5) as sender:
        verdicts = await sender.send(SHA1, hs)
        stats = sender.stats
    assert {v.status for v in verdicts.values()} == {Status.QUEUED}
    assert {v.attempts for v in verdicts.values()} == {3}
    assert stats.retries == 2
    assert stats.requests == 3
    assert clock.slept == [0.025, 0.05]  # full jitter at 0.5 of 0.05 * 2**(n-1)


async def test_retries_exhausted_gives_failed_and_the_job_goes_on(
    appliance: Any, clock: Any
) -> None:
    """After max_retries the hashes are failed with a reason; the next batch still works."""
    hs = hashes(4)
    appliance.handler = sequence(html(500), html(500), html(500), then=World(hs))
    async with Sender(make_config(appliance.url, max_retries=2), clock=clock) as sender:
        failed = await sender.send(SHA1, hs[:2])
        later = await sender.send(SHA1, hs[2:])
        stats = sender.stats
    assert {v.status for v in failed.values()} == {Status.FAILED}
    assert failed[hs[0]].attempts == 3
    assert failed[hs[0]].http_status == 500
    assert "HTTP 500" in (failed[hs[0]].reason or "")
    assert {v.status for v in later.values()} == {Status.QUEUED}
    assert stats.failed_hashes == 2


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_refused_connections_raise_unreachable_rather_than_failing_everything(
    clock: Any,
) -> None:
    """Connections refused for the whole window stop the job with UnreachableError, and no hash
    is turned into `failed` meanwhile."""
    config = make_config(
        f"http://127.0.0.1:{closed_port()}",
        max_retries=1,
        unreachable_after=2,
        unreachable_window=30.0,
    )
    async with Sender(config, clock=clock) as sender:
        with pytest.raises(UnreachableError) as caught:
            await sender.send(SHA1, hashes(4))
        assert sender.stats.failed_hashes == 0
        with pytest.raises(UnreachableError):
            await sender.send(SHA1, hashes(4, 10))
    assert "127.0.0.1" in str(caught.value)
    assert TOKEN not in str(caught.value)


async def test_an_appliance_that_never_answers_stops_the_job_when_its_window_ends(
    clock: Any,
) -> None:
    """Back-offs (up to 30 s here) do not carry the stop past the window: the last retry goes
    out as the window ends, so the job stops after 15 s, not after 15 s plus a back-off."""
    config = make_config(f"http://127.0.0.1:{closed_port()}", max_retries=5,
                         unreachable_after=2, unreachable_window_at_start=15.0,
                         backoff_base=4.0, backoff_cap=30.0)
    started = clock.now()
    async with Sender(config, clock=clock, rand=lambda: 0.99) as sender:
        with pytest.raises(UnreachableError, match="for 15 s"):
            await sender.send(SHA1, hashes(4))
    assert 15.0 <= clock.now() - started < 15.1


class _StuckClock:
    """A clock whose sleeps never end: only a stop can end a back-off."""

    def __init__(self) -> None:
        self.sleeping = asyncio.Event()

    def now(self) -> float:
        return 0.0

    async def sleep(self, seconds: float) -> None:
        self.sleeping.set()
        await asyncio.Event().wait()


async def test_a_stop_does_not_wait_for_back_offs_to_run_out(appliance: Any) -> None:
    """Ctrl-C while requests wait to be retried: they stop waiting and are not sent (their
    hashes are left for the resume), rather than holding the run for up to a back-off cap."""
    appliance.handler = lambda seen: html(503)
    config = make_config(appliance.url, backoff_base=30.0, backoff_cap=30.0)
    clock = _StuckClock()
    async with Sender(config, clock=clock) as sender:
        sending = asyncio.create_task(sender.send(SHA1, hashes(4)))
        await asyncio.wait_for(clock.sleeping.wait(), 5)  # the 503 came; a back-off began
        sender.stop_new_requests()
        with pytest.raises(SendingStopped):
            await asyncio.wait_for(sending, 5)
    assert len(appliance.seen) == 1


async def test_429_pauses_the_job_honours_retry_after_and_lowers_the_rate(
    appliance: Any, clock: Any
) -> None:
    """A 429 with Retry-After: 2 pauses for 2 s, halves the rate, and the retry succeeds."""
    hs = hashes(2)
    too_many = web.Response(status=429, headers={"Retry-After": "2"}, text="slow down")
    appliance.handler = sequence(too_many, then=World(hs))
    async with Sender(make_config(appliance.url, rate_limit=10.0), clock=clock) as sender:
        start = clock.now()
        verdicts = await sender.send(SHA1, hs)
        stats = sender.stats
    assert {v.status for v in verdicts.values()} == {Status.QUEUED}
    assert stats.throttled == 1
    assert stats.retries == 0
    assert stats.rate is not None
    assert stats.rate < 10.0
    assert clock.now() - start >= 2.0


async def test_concurrency_is_never_exceeded(appliance: Any) -> None:
    """Twenty batches sent at once with concurrency 3: the appliance never sees more than 3."""
    in_flight = peak = 0
    world = World(hashes(20))

    async def slow(seen: Any) -> web.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return world(seen)

    appliance.handler = slow
    async with Sender(make_config(appliance.url, concurrency=3)) as sender:
        results = await asyncio.gather(*(sender.send(SHA1, [h]) for h in hashes(20)))
    assert all(r[h].status is Status.QUEUED for r, h in zip(results, hashes(20), strict=True))
    assert peak == 3


async def test_rate_limit_holds_at_the_appliance(appliance: Any) -> None:
    """About one real second at 25 requests/s: the appliance sees at most 25 in any second."""
    arrivals: list[float] = []
    world = World(hashes(200))

    def handle(seen: Any) -> web.Response:
        arrivals.append(time.monotonic())
        return world(seen)

    appliance.handler = handle
    async with Sender(make_config(appliance.url, concurrency=8, rate_limit=25.0)) as sender:
        await asyncio.gather(*(sender.send(SHA1, [h]) for h in hashes(30)))
    arrivals.sort()
    worst = max(bisect.bisect_left(arrivals, t + 1.0) - i for i, t in enumerate(arrivals))
    assert worst <= 25
    assert arrivals[1] - arrivals[0] >= 0.03  # no burst at start


async def test_v2_bulk_is_form_encoded_with_the_sandbox_platform(
    appliance: Any, clock: Any
) -> None:
    """--api v2: hash_value repeated, analysis, rl_cloud_sandbox_platform, on the v2 path."""
    hs = hashes(2)
    appliance.handler = World(hs)
    config = make_config(
        appliance.url, api="v2", analysis=("core", "rl_cloud_sandbox"), sandbox_platform="windows10"
    )
    async with Sender(config, clock=clock) as sender:
        verdicts = await sender.send(SHA1, hs)
    seen = appliance.seen[0]
    assert seen.path == "/api/samples/v2/analyze_bulk/"
    assert seen.hashes == hs
    assert ("analysis", "core,rl_cloud_sandbox") in seen.form
    assert ("rl_cloud_sandbox_platform", "windows10") in seen.form
    assert {v.status for v in verdicts.values()} == {Status.QUEUED}


async def test_single_endpoint_sends_one_request_per_hash(appliance: Any, clock: Any) -> None:
    """--endpoint single: one form POST per hash; 201 and 404 are read per sample."""
    hs = hashes(3)

    def handle(seen: Any) -> web.Response:
        (h,) = seen.hashes
        if h == hs[2]:
            return web.json_response({"detail": "Not found."}, status=404)
        return web.json_response(
            {"code": 201, "analysis": QUEUED, "detail": {"sha1": h}}, status=201
        )

    appliance.handler = handle
    async with Sender(make_config(appliance.url, endpoint="single"), clock=clock) as sender:
        verdicts = await sender.send(SHA1, hs)
    assert sorted(s.path for s in appliance.seen) == sorted(
        f"/api/samples/{h}/analyze/" for h in hs
    )
    assert all(s.analysis == "cloud,core" for s in appliance.seen)
    assert [verdicts[h].status for h in hs] == [Status.QUEUED, Status.QUEUED, Status.NOT_FOUND]


async def test_sample_status_posts_hash_values(appliance: Any) -> None:
    """The status pre-check posts {"hash_values": [...]} with ?status=processed when asked."""
    appliance.handler = lambda seen: web.json_response({"results": []})
    async with ApplianceClient(make_config(appliance.url)) as client:
        reply = await client.sample_status(hashes(2), processed_only=True)
    assert reply.status == 200
    assert appliance.seen[0].json == {"hash_values": hashes(2)}


async def test_the_token_never_appears_in_logs_errors_or_reprs(appliance: Any, clock: Any) -> None:
    """Failures, retries, give-ups, warnings and stops log without the token."""
    hs = hashes(4)
    appliance.handler = sequence(
        html(503),
        html(503),
        html(503),
        html(429),
        web.json_response({"detail": "bad"}, status=401),
        then=World(hs),
    )
    config = make_config(appliance.url, insecure=True, max_retries=2)
    errors: list[str] = []
    with structlog.testing.capture_logs() as logs:
        async with Sender(config, clock=clock) as sender:
            await sender.send(SHA1, hs[:2])
            try:
                await sender.send(SHA1, hs[2:])
            except CredentialsError as exc:
                errors.append(str(exc))
            errors.append(repr(sender.stats))
    events = {entry["event"] for entry in logs}
    assert {
        "client.tls_verification_disabled",
        "sender.retry_scheduled",
        "sender.gave_up",
        "sender.stopped",
    } <= events
    assert TOKEN not in repr(logs)
    assert TOKEN not in "".join(errors)
    assert TOKEN not in repr(config)
    assert TOKEN not in str(config)


async def test_aioresponses_scripted_sequence_through_the_shim(clock: Any) -> None:
    """aioresponses (shimmed for aiohttp 3.14) can script a 502 then a 201."""
    hs = hashes(1)
    url = "https://appliance.example/api/samples/analyze_bulk/"
    with aioresponses() as mocked:
        mocked.post(url, status=502, body="<html>bad gateway</html>", content_type="text/html")
        mocked.post(url, status=201, payload={"results": [result(hs[0], QUEUED)]})
        async with Sender(make_config("https://appliance.example"), clock=clock) as sender:
            verdicts = await sender.send(SHA1, hs)
    assert verdicts[hs[0]].status is Status.QUEUED
    assert verdicts[hs[0]].attempts == 2
