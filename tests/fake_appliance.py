"""An appliance in process, behind the sender's client seam (`ReanalyzeClient`), as httpx tests
clients with `MockTransport(handler)`: each request goes to a handler (request → Reply), no socket.

A handler raises TransportError for "no HTTP answer" (refused, reset, timed out). `World` is a
tiny appliance to hand over as a handler: which samples exist, are extracted, are queued.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from reanalyzer.core.hashes import HashType
from reanalyzer.errors import TransportError
from reanalyzer.send.client import Reply
from reanalyzer.send.config import SendConfig

TOKEN = "s3cr3t-t0ken-4f9a"
QUEUED = [
    {"name": "cloud", "code": 201, "message": "Sample is queued for analysis."},
    {"name": "core", "code": 201, "message": "Sample is sent to core analysis."},
]
ALREADY = [
    {"name": "cloud", "code": 200, "message": "Already queued."},
    {"name": "core", "code": 200, "message": "Already queued."},
]
EXTRACTED = "Reanalysis not allowed for extracted samples."


@dataclass(frozen=True, slots=True)
class Request:
    """One request as the fake appliance received it."""

    endpoint: str  # "reanalyze" or "status"
    hash_type: HashType | None  # None for a status request (it names no type)
    hashes: list[str]


Handler = Callable[[Request], "Reply | Awaitable[Reply]"]


class FakeAppliance:
    """A ReanalyzeClient answering every request with `handler`; `seen` keeps the requests."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.seen: list[Request] = []

    async def reanalyze(self, hash_type: HashType, hashes: Sequence[str]) -> Reply:
        return await self._answer(Request("reanalyze", hash_type, list(hashes)))

    async def sample_status(self, hashes: Sequence[str]) -> Reply:
        return await self._answer(Request("status", None, list(hashes)))

    async def _answer(self, request: Request) -> Reply:
        self.seen.append(request)
        await asyncio.sleep(0)  # an answer is never immediate: other requests run meanwhile
        answer = self.handler(request)
        return await answer if inspect.isawaitable(answer) else answer


def hashes(n: int, start: int = 0) -> list[str]:
    return [f"{i:040x}" for i in range(start, start + n)]


def make_config(url: str = "http://127.0.0.1:8700", **overrides: Any) -> SendConfig:
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


def json_reply(body: object, status: int = 200, retry_after: str | None = None) -> Reply:
    return Reply(status, json.dumps(body).encode(), retry_after)


def html(status: int) -> Reply:
    return Reply(status, f"<html><h1>{status}</h1></html>".encode())


def refused(request: Request) -> Reply:
    """No appliance at the address: every connection is refused."""
    raise TransportError("cannot connect to 127.0.0.1:9 (Connect call failed)")


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

    def __call__(self, seen: Request) -> Reply:
        if self.max_bulk is not None and len(seen.hashes) > self.max_bulk:
            return Reply(413, b"<html>413 Request Entity Too Large</html>")
        if self.invalid & set(seen.hashes):
            return json_reply({"message": "Validation error."}, status=400)
        if self.extracted_whole_request and self.extracted & set(seen.hashes):
            return json_reply({"code": 405, "message": EXTRACTED}, status=405)
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
        return json_reply({"results": results[::-1]}, status=201)


def sequence(*answers: Reply | None, then: Handler) -> Handler:
    """Answer with `answers` in turn (None: pass to `then`), then always with `then`."""
    queue = list(answers)

    def handle(seen: Request) -> Reply | Awaitable[Reply]:
        answer = queue.pop(0) if queue else None
        return answer if answer is not None else then(seen)

    return handle
