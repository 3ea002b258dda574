"""The HTTP edge on 127.0.0.1: what goes on the wire, what a closed port raises; and the sender
through it end to end, where only a socket shows it (TLS warnings, the rate at the appliance)."""

from __future__ import annotations

import asyncio
import bisect
import socket
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
import structlog
from aiohttp import web
from aiohttp.client_reqrep import ConnectionKey
from aioresponses import aioresponses
from fake_appliance import QUEUED, TOKEN, Request, World, hashes, make_config, result

from reanalyzer import __version__
from reanalyzer.core.hashes import HashType
from reanalyzer.core.outcomes import Status
from reanalyzer.errors import (
    CredentialsError,
    ExitCode,
    MisconfiguredError,
    NameNotResolved,
    TransportError,
)
from reanalyzer.send.client import ApplianceClient, Reply
from reanalyzer.send.sender import Sender

SHA1 = HashType.SHA1


def served(handler: Callable[[Request], Reply]) -> Callable[[Any], web.Response]:
    """The scripted appliance's handler answering as `handler` (a fake appliance's) would."""

    def handle(seen: Any) -> web.Response:
        endpoint = "status" if seen.path == "/api/samples/status/" else "reanalyze"
        reply = handler(Request(endpoint, SHA1, seen.hashes))
        json_body = reply.body[:1] in (b"{", b"[")
        headers = {"Retry-After": reply.retry_after} if reply.retry_after else None
        return web.Response(status=reply.status, body=reply.body, headers=headers,
                            content_type="application/json" if json_body else "text/html")

    return handle


def html(status: int) -> web.Response:
    return web.Response(
        status=status, text=f"<html><h1>{status}</h1></html>", content_type="text/html"
    )


def sequence(*answers: web.Response, then: Any) -> Any:
    """Answer with `answers` in turn, then always with `then`."""
    queue = list(answers)
    return lambda seen: queue.pop(0) if queue else then(seen)


async def test_bulk_v1_sends_the_documented_request(appliance: Any) -> None:
    """JSON body, token header and User-Agent, on the v1 bulk path; the answer comes back whole."""
    hs = hashes(3)
    appliance.handler = served(World(hs))
    async with ApplianceClient(make_config(appliance.url)) as client:
        reply = await client.reanalyze(SHA1, hs)
    assert reply.status == 201
    seen = appliance.seen[0]
    assert seen.path == "/api/samples/analyze_bulk/"
    assert seen.json == {"hash_value": hs, "analysis": "cloud,core"}
    assert seen.headers["Authorization"] == f"Token {TOKEN}"
    assert seen.headers["User-Agent"] == f"reanalyzer/{__version__}"


async def test_single_endpoint_posts_a_form_per_sample(appliance: Any) -> None:
    """--endpoint single: a form POST to the sample's own path, naming the analyses."""
    hs = hashes(3)
    appliance.handler = lambda seen: web.json_response(
        {"code": 201, "analysis": QUEUED, "detail": {"sha1": seen.hashes[0]}}, status=201
    )
    async with ApplianceClient(make_config(appliance.url, endpoint="single")) as client:
        for h in hs:
            await client.reanalyze(SHA1, [h])
    assert sorted(s.path for s in appliance.seen) == sorted(
        f"/api/samples/{h}/analyze/" for h in hs
    )
    assert all(s.analysis == "cloud,core" for s in appliance.seen)


async def test_v2_bulk_is_form_encoded_with_the_sandbox_platform(
    appliance: Any, clock: Any
) -> None:
    """--api v2: hash_value repeated, analysis, rl_cloud_sandbox_platform, on the v2 path."""
    hs = hashes(2)
    appliance.handler = served(World(hs))
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


async def test_sample_status_posts_hash_values(appliance: Any) -> None:
    """The status pre-check posts {"hash_values": [...]}, with no query string."""
    appliance.handler = lambda seen: web.json_response({"results": []})
    async with ApplianceClient(make_config(appliance.url)) as client:
        reply = await client.sample_status(hashes(2))
    assert reply.status == 200
    assert appliance.seen[0].json == {"hash_values": hashes(2)}
    assert appliance.seen[0].path == "/api/samples/status/"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_closed_port_raises_transport_error_naming_the_address() -> None:
    """No HTTP answer is a TransportError (retried by the sender) naming host and port, never
    the token."""
    port = closed_port()
    async with ApplianceClient(make_config(f"http://127.0.0.1:{port}")) as client:
        with pytest.raises(TransportError, match=f"cannot connect to 127.0.0.1:{port}") as caught:
            await client.reanalyze(SHA1, hashes(1))
    assert TOKEN not in str(caught.value)


async def test_the_token_never_appears_in_logs_errors_or_reprs(appliance: Any, clock: Any) -> None:
    """Failures, retries, give-ups, warnings and stops log without the token."""
    hs = hashes(4)
    appliance.handler = sequence(
        html(503),
        html(503),
        html(503),
        html(429),
        web.json_response({"detail": "bad"}, status=401),
        then=served(World(hs)),
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


async def test_rate_limit_holds_at_the_appliance(appliance: Any) -> None:
    """About one real second at 25 requests/s: the appliance sees at most 25 in any second."""
    arrivals: list[float] = []
    world = served(World(hashes(200)))

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


def _dns_failure(host: str) -> aiohttp.ClientConnectorDNSError:
    """What aiohttp raises when `host` does not resolve (made here: no lookup is done)."""
    key = ConnectionKey(host, 443, True, True, None, None, None, None)
    return aiohttp.ClientConnectorDNSError(key, socket.gaierror(-2, "Name or service not known"))


async def test_a_host_name_that_does_not_resolve_is_told_apart() -> None:
    """A DNS failure is NameNotResolved, naming the host, not a plain connection failure."""
    url = "https://applianse.example/api/samples/analyze_bulk/"
    with aioresponses() as mocked:
        mocked.post(url, exception=_dns_failure("applianse.example"))
        async with ApplianceClient(make_config("https://applianse.example")) as client:
            with pytest.raises(NameNotResolved, match=r"applianse\.example does not resolve"):
                await client.reanalyze(SHA1, hashes(1))


async def test_a_misspelt_host_name_stops_the_job_at_the_first_request(clock: Any) -> None:
    """A host name that does not resolve at the first request is a wrong --url, said at once
    (exit 2), not retried for the unreachable window."""
    url = "https://applianse.example/api/samples/analyze_bulk/"
    with aioresponses() as mocked:
        mocked.post(url, exception=_dns_failure("applianse.example"), repeat=True)
        async with Sender(make_config("https://applianse.example", unreachable_after=2),
                          clock=clock) as sender:
            with pytest.raises(MisconfiguredError, match="check the host name in --url") as e:
                await sender.send(SHA1, hashes(1))
    assert e.value.exit_code == ExitCode.USAGE
    assert clock.now() - 1000.0 < 1.0  # no back-off was waited for


async def test_a_dns_failure_mid_job_is_retried(clock: Any) -> None:
    """Once the appliance has answered, a DNS failure is a resolver's moment: retried."""
    hs = hashes(2)
    url = "https://appliance.example/api/samples/analyze_bulk/"
    with aioresponses() as mocked:
        mocked.post(url, status=201, payload={"results": [result(hs[0], QUEUED)]})
        mocked.post(url, exception=_dns_failure("appliance.example"))
        mocked.post(url, status=201, payload={"results": [result(hs[1], QUEUED)]})
        async with Sender(make_config("https://appliance.example"), clock=clock) as sender:
            await sender.send(SHA1, hs[:1])
            verdicts = await sender.send(SHA1, hs[1:])
    assert verdicts[hs[1]].status is Status.QUEUED
    assert verdicts[hs[1]].attempts == 2
