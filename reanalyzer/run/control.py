"""Live control of a running job: ``control.json`` in its job directory.

    {"rate_limit": 20, "concurrency": 8}

Both keys are optional; a key left out leaves the job's own setting in force. ``rate_limit`` is
what ``--rate-limit`` takes (requests per second, or a timetable such as "07:00=5,19:00=50"),
``concurrency`` the requests in flight at most. The running job reads the file every
``CONTROL_INTERVAL`` seconds and applies what changed; a file that is not this (bad JSON, an
unknown key, a value out of range) is logged and ignored, the pace in force is kept. The file
stays in the job directory, so a later run of the job starts with it too, until it is removed
(``reanalyzer control JOB_DIR --clear``). ``parse_control`` is pure; the watch reads the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from reanalyzer.core.timetable import Timetable, parse_rate

CONTROL_FILE = "control.json"
CONTROL_INTERVAL = 2.0  # seconds between two readings of the file
MAX_RATE = 100_000.0
MAX_CONCURRENCY = 512  # as the concurrency setting's own bound
_KEYS = ("rate_limit", "concurrency")


@dataclass(frozen=True, slots=True)
class Control:
    """What the operator asked for; None: the job's own setting."""

    rate_limit: float | Timetable | None = None
    concurrency: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.rate_limit is not None:
            rate = self.rate_limit
            out["rate_limit"] = rate if isinstance(rate, float) else str(rate)
        if self.concurrency is not None:
            out["concurrency"] = self.concurrency
        return out


def parse_control(text: str) -> Control:
    """The control file's request, or ValueError saying what is wrong with it."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError('not a JSON object, e.g. {"rate_limit": 20, "concurrency": 8}')
    unknown = sorted(set(data) - set(_KEYS))
    if unknown:
        raise ValueError(f"unknown key {', '.join(unknown)}; allowed: {', '.join(_KEYS)}")
    return Control(
        rate_limit=check_rate(data.get("rate_limit")),
        concurrency=check_concurrency(data.get("concurrency")),
    )


def check_rate(value: object) -> float | Timetable | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("rate_limit must be a number or a timetable string")
    rate = parse_rate(str(value))
    if isinstance(rate, float) and rate > MAX_RATE:
        raise ValueError(f"rate_limit {rate:g} is above {MAX_RATE:g} requests per second")
    return rate


def check_concurrency(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not (1 <= value <= MAX_CONCURRENCY):
        raise ValueError(f"concurrency must be a whole number from 1 to {MAX_CONCURRENCY}")
    return value
