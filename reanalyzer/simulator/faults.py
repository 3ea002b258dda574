"""Faults on demand: latency, a hidden rate limit, 5xx answers, dropped connections, answers
of the wrong shape, a proxy's HTML page, and answers far too large."""

from __future__ import annotations

import json
import math
import random
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from reanalyzer.simulator.answers import Reply
from reanalyzer.simulator.config import SimulatorConfig, WrongShape
from reanalyzer.simulator.hashes import hash_type


class Clock(Protocol):
    """Monotonic seconds; tests pass a fake so that rate tests never sleep."""

    def __call__(self) -> float: ...


_REASONS = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def html_error(status: int) -> Reply:
    """A 5xx as the appliance's front proxy sends it: HTML, not JSON."""
    title = f"{status} {_REASONS.get(status, 'Error')}"
    body = (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    )
    return Reply(status, body.encode(), content_type="text/html")


# What a reverse proxy or an SSO gateway before the appliance answers in its place: 200, HTML.
PROXY_PAGE = (
    b'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
    b"<title>Sign in - Corporate Access Gateway</title>\n</head>\n<body>\n"
    b"<h1>Your session has expired</h1>\n<p>Please sign in again to continue.</p>\n"
    b'<form method="post" action="/gateway/login"><input name="username">'
    b'<input name="password" type="password"><button>Sign in</button></form>\n'
    b"</body>\n</html>\n"
)


def proxy_page() -> Reply:
    """A proxy's sign-in page with 200: the request never reached the appliance."""
    return Reply(200, PROXY_PAGE, content_type="text/html")


_SHAPES = (
    WrongShape.NOT_OBJECTS,
    WrongShape.NO_DETAIL,
    WrongShape.OTHER_TYPE,
    WrongShape.STRING_CODES,
)


def wrong_shape(reply: Reply, shape: WrongShape, sent: Iterable[str], *, status: bool) -> Reply:
    """`reply` (a 2xx JSON answer of a bulk request, or of a status one if `status`) with
    items that cannot be attributed to the hashes `sent`, made as `shape` says (not MIXED).

    An answer without items gets one that is not an object: every shape is a wrong one.
    """
    body = json.loads(reply.body)
    items = body.get("results") if isinstance(body, dict) else None
    if not isinstance(items, list):
        return reply
    if not items:
        items = ["unavailable"]
    elif status:
        items = [_status_item(item, shape) for item in items]
    else:
        types = {kind.value for kind in map(hash_type, sent) if kind is not None}
        items = [_bulk_item(item, shape, types) for item in items]
    body["results"] = items
    return Reply(reply.status, json.dumps(body).encode(), reply.content_type, reply.headers)


def _bulk_item(item: dict[str, Any], shape: WrongShape, types: set[str]) -> Any:
    if shape is WrongShape.NOT_OBJECTS:
        return json.dumps(item)
    item = dict(item)
    if shape is WrongShape.NO_DETAIL:
        item.pop("detail", None)
    elif shape is WrongShape.OTHER_TYPE:  # the other types' hashes only: none of those sent
        item["detail"] = {k: v for k, v in item.get("detail", {}).items() if k not in types}
    else:
        if "code" in item:
            item["code"] = str(item["code"])
        item["analysis"] = [{**a, "code": str(a["code"])} for a in item.get("analysis", [])]
    return item


def _status_item(item: dict[str, Any], shape: WrongShape) -> Any:
    if shape is WrongShape.NOT_OBJECTS:
        return json.dumps(item)
    item = dict(item)
    if shape is WrongShape.NO_DETAIL:
        item.pop("hash_value", None)
    elif shape is WrongShape.OTHER_TYPE:
        item["hash_value"] = ""
    else:
        item["status"] = 1
    return item


class RateWindow:
    """At most `rate` requests in any sliding second; requests it refuses do not count.

    The limit is not disclosed to clients (no X-RateLimit headers), only Retry-After on a 429,
    as the appliance documents no rate limit at all.
    """

    def __init__(
        self, rate: float, clock: Clock, schedule: Sequence[tuple[float, float]] = ()
    ) -> None:
        self._clock = clock
        self._times: deque[float] = deque()
        self._set(rate)
        # Later limits, as (monotonic time, rate), soonest last: the schedule counts from now.
        start = clock()
        self._later = [(start + at, r) for at, r in reversed(schedule) if at > 0]

    def _set(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError("rate_limit must be positive")
        # Under one request per second the window widens so that the rate still holds.
        self._window = max(1.0, 1.0 / rate)
        self._capacity = max(1, math.floor(rate * self._window))

    def __repr__(self) -> str:
        return f"<RateWindow {self._capacity}/{self._window}s used={len(self._times)}>"

    def admit(self) -> int | None:
        """None if the request may go on, else the whole seconds to put in Retry-After."""
        now = self._clock()
        while self._later and self._later[-1][0] <= now:
            self._set(self._later.pop()[1])
        while self._times and self._times[0] <= now - self._window:
            self._times.popleft()
        if len(self._times) < self._capacity:
            self._times.append(now)
            return None
        return max(1, math.ceil(self._times[0] + self._window - now))


def throttled(retry_after: int) -> Reply:
    """A 429 in Django REST framework's words, with Retry-After in seconds."""
    body = f'{{"detail":"Request was throttled. Expected available in {retry_after} seconds."}}'
    return Reply(429, body.encode(), headers=(("Retry-After", str(retry_after)),))


class Dice:
    """The random faults, from one seeded generator so that a run can be replayed."""

    def __init__(self, config: SimulatorConfig, rng: Callable[[], float] | None = None) -> None:
        self._rng = rng or random.Random(config.fault_seed).random
        self._latency = config.latency_ms / 1000
        self._jitter = config.latency_jitter_ms / 1000
        self._error_rate = config.error_rate
        self._drop_rate = config.drop_rate
        self._wrong_shape_rate = config.wrong_shape_rate
        self._wrong_shape = config.wrong_shape
        self._proxy_page_rate = config.proxy_page_rate
        self._big_body_rate = config.big_body_rate

    def delay(self) -> float:
        """Seconds to wait before answering."""
        if not self._jitter:
            return self._latency
        return self._latency + self._jitter * self._rng()

    def server_error(self) -> Reply | None:
        """A 5xx to answer instead of doing the work, or None."""
        if self._error_rate and self._rng() < self._error_rate:
            return html_error((500, 502, 503, 504)[int(self._rng() * 4) % 4])
        return None

    def drop(self) -> bool:
        """Whether to cut the connection once the work is done."""
        return bool(self._drop_rate) and self._rng() < self._drop_rate

    def proxy_page(self) -> Reply | None:
        """A proxy's HTML 200 page to answer instead of doing the work, or None."""
        if self._proxy_page_rate and self._rng() < self._proxy_page_rate:
            return proxy_page()
        return None

    def wrong_shape(self) -> WrongShape | None:
        """How to spoil a 2xx answer once the work is done, or None to leave it as it is."""
        if not (self._wrong_shape_rate and self._rng() < self._wrong_shape_rate):
            return None
        if self._wrong_shape is WrongShape.MIXED:
            return _SHAPES[int(self._rng() * len(_SHAPES)) % len(_SHAPES)]
        return self._wrong_shape

    def big_body(self) -> bool:
        """Whether to pad this answer to the configured size."""
        return bool(self._big_body_rate) and self._rng() < self._big_body_rate
