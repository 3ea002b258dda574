"""Shared fixtures: the aioresponses shim, a fake clock, a scripted appliance on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aioresponses.core
import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, settings

# Property tests draw the same examples on every run, and never fail for this shared machine's
# speed: a health check that timed input generation failed once while other jobs used the CPUs.
# No example database either: an example saved by an earlier run must not change this one.
settings.register_profile(
    "reanalyzer", derandomize=True, database=None, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("reanalyzer")


class _NoStreamWriter:
    """What aiohttp >= 3.14 reads from `stream_writer` when the request was already sent."""

    output_size = 0


class _ShimmedClientResponse(ClientResponse):
    """aioresponses 0.7.9 builds responses without the `stream_writer` argument that aiohttp 3.14
    made required (every mocked answer fails with a TypeError); supply a stand-in."""

    def __init__(self, method: str, url: Any, *, stream_writer: Any = None, **kwargs: Any) -> None:
        super().__init__(method, url, stream_writer=stream_writer or _NoStreamWriter(), **kwargs)


aioresponses.core.ClientResponse = _ShimmedClientResponse  # type: ignore[misc]  # test-only shim


class FakeClock:
    """Monotonic time that moves only when someone sleeps: sleeping advances it at once."""

    def __init__(self, start: float = 1000.0) -> None:
        self.time = start
        self.slept: list[float] = []

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.time += max(seconds, 0.0)
        await asyncio.sleep(0)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@dataclass
class Seen:
    """One request as the scripted appliance received it."""

    path: str
    headers: dict[str, str]
    hashes: list[str]
    analysis: str
    form: list[tuple[str, str]] = field(default_factory=list)
    json: Any = None


Handler = Callable[[Seen], "web.StreamResponse | Awaitable[web.StreamResponse]"]


class ScriptedAppliance:
    """An aiohttp.web server on 127.0.0.1:<free port> that answers with `handler` and keeps every
    request it saw in `seen`."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.handler: Handler = lambda seen: web.json_response({"results": []})
        self.server: TestServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        seen = Seen(request.path, dict(request.headers), [], "")
        if request.content_type == "application/json":
            seen.json = json.loads(raw)
            seen.hashes = list(seen.json.get("hash_value", seen.json.get("hash_values", [])))
            seen.analysis = seen.json.get("analysis", "")
        else:
            form = await request.post()
            seen.form = [(k, str(v)) for k, v in form.items()]
            seen.hashes = [str(v) for v in form.getall("hash_value", [])]
            seen.analysis = str(form.get("analysis", ""))
        if "hash" in request.match_info:
            seen.hashes = [request.match_info["hash"]]
        self.seen.append(seen)
        answer = self.handler(seen)
        if not isinstance(answer, web.StreamResponse):
            answer = await answer
        return answer


@pytest.fixture
async def appliance() -> AsyncIterator[ScriptedAppliance]:
    scripted = ScriptedAppliance()
    app = web.Application()
    app.router.add_post("/api/samples/analyze_bulk/", scripted._handle)
    app.router.add_post("/api/samples/v2/analyze_bulk/", scripted._handle)
    app.router.add_post("/api/samples/status/", scripted._handle)
    app.router.add_post("/api/samples/{hash}/analyze/", scripted._handle)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    scripted.server = server
    try:
        yield scripted
    finally:
        await server.close()
