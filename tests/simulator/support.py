"""Helpers shared by the simulator's tests."""

from __future__ import annotations

from typing import Any

import aiohttp

from reanalyzer.simulator import World
from reanalyzer.simulator.world import Sample, SampleKind

TOKEN = "sim-test-token"
BULK_V1 = "/api/samples/analyze_bulk/"
BULK_V2 = "/api/samples/v2/analyze_bulk/"
STATUS = "/api/samples/status/"


def single_url(value: str) -> str:
    """The single-sample endpoint's path for `value`."""
    return f"/api/samples/{value}/analyze/"


def small_world() -> World:
    """Forty samples: eight absent, eight extracted, eight already queued, sixteen plain."""
    return World.generate(40, seed=7, share_absent=0.2, share_extracted=0.2, share_queued=0.2)


def of_kind(world: World, kind: SampleKind, queued: bool = False) -> list[Sample]:
    """The samples of one kind, in world order."""
    return [s for s in world.samples if s.kind is kind and s.queued is queued]


def plain(world: World) -> list[Sample]:
    """The held samples that are neither extracted nor queued yet."""
    return of_kind(world, SampleKind.PRESENT)


async def post_json(
    session: aiohttp.ClientSession, url: str, body: object, **kwargs: Any
) -> tuple[int, Any]:
    """POST JSON; the status and the decoded answer."""
    async with session.post(url, json=body, **kwargs) as response:
        return response.status, await response.json(content_type=None)


async def post_form(
    session: aiohttp.ClientSession, url: str, fields: list[tuple[str, str]], **kwargs: Any
) -> tuple[int, Any]:
    """POST a form (fields may repeat); the status and the decoded answer."""
    async with session.post(url, data=fields, **kwargs) as response:
        return response.status, await response.json(content_type=None)
