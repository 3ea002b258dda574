"""What the simulator was really sent: tests read it to count requests, hashes and pace."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TextIO


class Endpoint(StrEnum):
    """Which API a request called."""

    BULK_V1 = "bulk_v1"  # POST /api/samples/analyze_bulk/
    BULK_V2 = "bulk_v2"  # POST /api/samples/v2/analyze_bulk/
    SINGLE = "single"  # POST /api/samples/{hash}/analyze/
    STATUS = "status"  # POST /api/samples/status/


class Fault(StrEnum):
    """Which fault, if any, shaped the answer."""

    NONE = "none"  # answered as the appliance would
    RATE_LIMITED = "rate_limited"  # 429 before any work
    SERVER_ERROR = "server_error"  # HTML 5xx before any work
    DROPPED = "dropped"  # work done, then the connection cut: `status` was never received
    WRONG_SHAPE = "wrong_shape"  # work done, then a 2xx whose items cannot be attributed
    PROXY_PAGE = "proxy_page"  # an HTML 200 page before any work: the request never got in
    BIG_BODY = "big_body"  # work done, the answer padded to `big_body_mb` and streamed


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request as it arrived, and what became of it."""

    monotonic: float  # the simulator's clock when the request arrived
    wall: float  # time.time() then, to line up with other logs
    endpoint: Endpoint
    hash_count: int
    hashes: tuple[str, ...]  # as sent, before any lowercasing
    status: int
    fault: Fault = Fault.NONE
    # The body's other fields as sent (analysis, rl_cloud_sandbox_platform, ...).
    values: dict[str, Any] = field(default_factory=dict)


class RequestLog:
    """The records in memory (unless told not to keep them), counters, and a JSON-lines copy."""

    def __init__(self, path: Path | None = None, keep: bool = True) -> None:
        self.records: list[RequestRecord] = []
        self.by_status: Counter[int] = Counter()
        self.by_fault: Counter[Fault] = Counter()
        self.hashes_sent = 0
        self._keep = keep
        # Line-buffered, so that a test reading the file while the server runs sees each line.
        self._sink: TextIO | None = path.open("a", encoding="utf-8", buffering=1) if path else None

    def __len__(self) -> int:
        return sum(self.by_status.values())

    def __repr__(self) -> str:
        return f"<RequestLog requests={len(self)} by_status={dict(self.by_status)}>"

    def add(self, record: RequestRecord) -> None:
        """Record one request."""
        self.by_status[record.status] += 1
        self.by_fault[record.fault] += 1
        self.hashes_sent += record.hash_count
        if self._keep:
            self.records.append(record)
        if self._sink is not None:
            self._sink.write(json.dumps(asdict(record)) + "\n")

    def close(self) -> None:
        """Close the JSON-lines copy."""
        if self._sink is not None:
            self._sink.close()
            self._sink = None


def read_log(path: Path) -> list[RequestRecord]:
    """The records of a JSON-lines request log, as a server in another process wrote them."""
    records = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            raw = json.loads(line)
            raw["endpoint"] = Endpoint(raw["endpoint"])
            raw["fault"] = Fault(raw["fault"])
            raw["hashes"] = tuple(raw["hashes"])
            records.append(RequestRecord(**raw))
    return records
