"""The aiohttp.web application: reads requests, applies the faults, and sends the answers.

Each request goes through the same steps, in the order a real appliance behind a proxy would
take them: its body is read (so the log holds the hashes of every request, even refused ones),
then the rate limit, latency, 5xx and proxy-page faults, then the token, then validation and
the work, then the faults that come after the state has changed: an answer of the wrong shape,
a dropped connection, or an answer padded far past its size and streamed.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from reanalyzer.simulator import answers
from reanalyzer.simulator.answers import V1_ANALYSES, V2_ANALYSES, Reply
from reanalyzer.simulator.config import SimulatorConfig
from reanalyzer.simulator.faults import Clock, Dice, RateWindow, throttled, wrong_shape
from reanalyzer.simulator.requestlog import Endpoint, Fault, RequestLog, RequestRecord
from reanalyzer.simulator.world import World

Sleep = Callable[[float], Awaitable[None]]

_JSON = "application/json"
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
_INVALID_TOKEN = b'{"detail":"Invalid token."}'
_NO_CREDENTIALS = b'{"detail":"Authentication credentials were not provided."}'
_CHALLENGE = (("WWW-Authenticate", "Token"),)
_FORBIDDEN = b'{"detail":"You do not have permission to perform this action."}'
_PAD = memoryview(b" " * 2**20)  # whitespace after a JSON answer: padding that stays valid JSON
_MB = 1_000_000


@dataclass(frozen=True)
class Fields:
    """A request body read as the appliance's parsers would: JSON, or a form."""

    hashes: object  # the list under the hash field, or whatever was sent instead
    values: dict[str, Any]  # the other fields
    refusal: Reply | None = None  # an unreadable body

    def sent(self) -> tuple[str, ...]:
        """The hashes as sent, for the request log."""
        if isinstance(self.hashes, list):
            return tuple(h for h in self.hashes if isinstance(h, str))
        return ()


async def read_fields(request: web.Request, hash_field: str) -> Fields:
    """Read the body; a form may repeat `hash_field`, JSON holds it as a list."""
    if not request.body_exists:
        return Fields(None, {})
    if request.content_type == _JSON:
        try:
            raw = json.loads(await request.read())
        except ValueError as exc:
            return Fields(None, {}, answers.error(400, f"JSON parse error - {exc}"))
        if not isinstance(raw, dict):
            return Fields(None, {}, answers.error(400, "Expected a JSON object."))
        return Fields(raw.pop(hash_field, None), raw)
    if request.content_type in _FORMS:
        form = await request.post()
        values = {k: v for k, v in form.items() if k != hash_field and isinstance(v, str)}
        return Fields([v for v in form.getall(hash_field, []) if isinstance(v, str)], values)
    return Fields(
        None, {}, answers.error(415, f'Unsupported media type "{request.content_type}" in request.')
    )


class Appliance:
    """The simulated appliance's request handling; one per running simulator."""

    def __init__(
        self,
        config: SimulatorConfig,
        world: World,
        log: RequestLog,
        clock: Clock,
        sleep: Sleep | None = None,
        dice: Dice | None = None,
    ) -> None:
        self.config = config
        self.world = world
        self.log = log
        self._clock = clock
        self._sleep = sleep or asyncio.sleep
        self._dice = dice or Dice(config)
        self._rate = (
            RateWindow(config.rate_limit, clock, config.rate_limit_schedule)
            if config.rate_limit
            else None
        )
        self._tokens = {f"Token {config.token}": True}
        if config.readonly_token:
            self._tokens[f"Token {config.readonly_token}"] = False

    def routes(self) -> list[web.RouteDef]:
        """The four endpoints."""
        return [
            web.post("/api/samples/analyze_bulk/", self.bulk_v1),
            web.post("/api/samples/v2/analyze_bulk/", self.bulk_v2),
            web.post("/api/samples/status/", self.status),
            web.post("/api/samples/{hash_value}/analyze/", self.single),
        ]

    async def bulk_v1(self, request: web.Request) -> web.StreamResponse:
        """POST /api/samples/analyze_bulk/: JSON, one hash type, cloud and core only."""
        fields = await read_fields(request, "hash_value")

        def work() -> Reply:
            errors: dict[str, list[str]] = {}
            hashes = answers.parse_hashes(fields.hashes, "hash_value", errors)
            names = answers.parse_analyses(fields.values.get("analysis"), V1_ANALYSES, errors)
            if errors:
                return answers.invalid(errors)
            return answers.bulk(self.world, self.config, hashes, names)

        return await self._serve(request, Endpoint.BULK_V1, fields, work, reanalysis=True)

    async def bulk_v2(self, request: web.Request) -> web.StreamResponse:
        """POST /api/samples/v2/analyze_bulk/: form-encoded, all analyses, sandbox platforms."""
        fields = await read_fields(request, "hash_value")

        def work() -> Reply:
            errors: dict[str, list[str]] = {}
            hashes = answers.parse_hashes(
                fields.hashes, "hash_value", errors, mixed_ok=self.config.v2_mixed_types
            )
            names = answers.parse_analyses(fields.values.get("analysis"), V2_ANALYSES, errors)
            answers.check_platform(names, fields.values.get("rl_cloud_sandbox_platform"), errors)
            if errors:
                return answers.invalid(errors)
            return answers.bulk(self.world, self.config, hashes, names)

        return await self._serve(request, Endpoint.BULK_V2, fields, work, reanalysis=True)

    async def single(self, request: web.Request) -> web.StreamResponse:
        """POST /api/samples/{hash}/analyze/: the analysis as a form field or in JSON."""
        value = request.match_info["hash_value"]
        body = await read_fields(request, "hash_value")
        fields = Fields([value], body.values, body.refusal)

        def work() -> Reply:
            errors: dict[str, list[str]] = {}
            hashes = answers.parse_hashes([value], "hash_value", errors)
            names = answers.parse_analyses(fields.values.get("analysis"), V1_ANALYSES, errors)
            if errors:
                return answers.invalid(errors)
            return answers.single(self.world, self.config, hashes[0], names)

        return await self._serve(request, Endpoint.SINGLE, fields, work, reanalysis=True)

    async def status(self, request: web.Request) -> web.StreamResponse:
        """POST /api/samples/status/: processed or not_found per hash; queues nothing."""
        fields = await read_fields(request, "hash_values")

        def work() -> Reply:
            errors: dict[str, list[str]] = {}
            hashes = answers.parse_hashes(fields.hashes, "hash_values", errors)
            if errors:
                return answers.invalid(errors)
            return answers.status(self.world, hashes, request.query.get("status"))

        return await self._serve(request, Endpoint.STATUS, fields, work, reanalysis=False)

    async def _serve(
        self,
        request: web.Request,
        endpoint: Endpoint,
        fields: Fields,
        work: Callable[[], Reply],
        *,
        reanalysis: bool,
    ) -> web.StreamResponse:
        arrived, wall = self._clock(), time.time()
        fault = Fault.NONE
        retry_after = self._rate.admit() if self._rate else None
        if retry_after is not None:
            reply, fault = throttled(retry_after), Fault.RATE_LIMITED
        else:
            delay = self._dice.delay()
            if delay > 0:
                await self._sleep(delay)
            broken = self._dice.server_error()
            page = self._dice.proxy_page() if broken is None else None
            if broken is not None:
                reply, fault = broken, Fault.SERVER_ERROR
            elif page is not None:
                reply, fault = page, Fault.PROXY_PAGE
            else:
                reply = self._authorize(request, reanalysis) or fields.refusal or work()
                reply, fault = self._after_work(endpoint, reply, fields.sent())
        sent = fields.sent()
        self.log.add(
            RequestRecord(
                arrived, wall, endpoint, len(sent), sent, reply.status, fault, dict(fields.values)
            )
        )
        if fault is Fault.DROPPED and request.transport is not None:
            # The work is done and the state changed; the client only sees the line go dead.
            request.transport.abort()
        if fault is Fault.BIG_BODY:
            return await _stream_padded(request, reply, int(self.config.big_body_mb * _MB))
        return web.Response(
            body=reply.body,
            status=reply.status,
            content_type=reply.content_type,
            headers=dict(reply.headers) if reply.headers else None,
        )

    def _after_work(
        self, endpoint: Endpoint, reply: Reply, sent: tuple[str, ...]
    ) -> tuple[Reply, Fault]:
        """The faults that come once the work is done (and the state changed)."""
        if 200 <= reply.status < 300 and endpoint is not Endpoint.SINGLE:
            shape = self._dice.wrong_shape()
            if shape is not None:
                status = endpoint is Endpoint.STATUS
                return wrong_shape(reply, shape, sent, status=status), Fault.WRONG_SHAPE
        if self._dice.drop():
            return reply, Fault.DROPPED
        if self._dice.big_body():
            return reply, Fault.BIG_BODY
        return reply, Fault.NONE

    def _authorize(self, request: web.Request, reanalysis: bool) -> Reply | None:
        header = request.headers.get("Authorization")
        if not header:
            return Reply(401, _NO_CREDENTIALS, headers=_CHALLENGE)
        may_write = self._tokens.get(header)
        if may_write is None:
            return Reply(401, _INVALID_TOKEN, headers=_CHALLENGE)
        if reanalysis and not may_write:
            return Reply(403, _FORBIDDEN)
        if reanalysis and self.config.appliance_refuses:
            return answers.error(405, answers.REFUSED)
        return None


async def _stream_padded(request: web.Request, reply: Reply, size: int) -> web.StreamResponse:
    """Send `reply`'s body followed by whitespace up to `size` bytes, a MiB at a time: the
    answer is the real one, only far larger, and never held whole in memory."""
    response = web.StreamResponse(
        status=reply.status, headers=dict(reply.headers) if reply.headers else None
    )
    response.content_type = reply.content_type
    response.content_length = max(size, len(reply.body))
    await response.prepare(request)
    try:
        await response.write(reply.body)
        left = size - len(reply.body)
        while left > 0:
            chunk = _PAD[: min(left, len(_PAD))]
            await response.write(chunk)
            left -= len(chunk)
        await response.write_eof()
    except ConnectionError:  # the client stopped reading and closed: its right
        pass
    return response


def build_app(appliance: Appliance) -> web.Application:
    """The aiohttp application serving `appliance`."""
    app = web.Application(client_max_size=64 * 1024**2)  # bulk requests of 100k sha512s fit
    app.add_routes(appliance.routes())
    return app
