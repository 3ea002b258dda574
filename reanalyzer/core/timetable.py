"""A pace that follows the clock: `--rate-limit 07:00=5,19:00=50` (as rclone's --bwlimit).

Each entry is a local time of day and the rate in force from then until the next entry; the
last entry runs on across midnight to the first. ``off`` is no ceiling (the 429 adaptation
alone). Which entry is in force is read from the local wall time of the instant asked about,
in the timetable's zone (zoneinfo), so that daylight saving changes are followed: a switch in
the hour skipped in spring happens when the clock jumps past it, and the switches in the hour
repeated in autumn happen twice, as the wall clock shows them twice.

Pure: the runner asks ``rate_at(now)`` with the time it has (a fake one in tests).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime, time, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

EXPECTED = (
    "a rate in requests per second (e.g. 20), or a timetable of local times and rates, "
    "e.g. 07:00=5,19:00=50 (HH:MM=rate, comma-separated; a rate may be 'off': no "
    "ceiling)"
)
_ENTRY = re.compile(r"(\d{1,2}):(\d{2})=(.+)")


@dataclass(frozen=True, slots=True)
class Timetable:
    """Rates by local time of day, sorted by time; None is no ceiling."""

    entries: tuple[tuple[time, float | None], ...]

    def rate_at(self, when: datetime, zone: tzinfo) -> float | None:
        """The rate in force at the aware instant `when`, read on the wall clock of `zone`."""
        local = when.astimezone(zone).time().replace(tzinfo=None)
        rate = self.entries[-1][1]  # before the first entry of the day: the last one's, still
        for start, value in self.entries:
            if start <= local:
                rate = value
        return rate

    def __str__(self) -> str:
        return ",".join(
            f"{start:%H:%M}={'off' if rate is None else f'{rate:g}'}"
            for start, rate in self.entries
        )


def parse_rate(text: str) -> float | Timetable:
    """A fixed rate or a timetable; ValueError saying what was expected otherwise."""
    text = text.strip()
    try:
        rate = float(text)
    except ValueError:
        return parse_timetable(text)
    if not rate > 0 or rate == float("inf"):
        raise ValueError(f"must be greater than 0: {EXPECTED}")
    return rate


def parse_timetable(text: str) -> Timetable:
    entries: dict[time, float | None] = {}
    for part in text.split(","):
        part = part.strip()
        match = _ENTRY.fullmatch(part)
        if not match:
            raise ValueError(f"{part!r} is not HH:MM=rate; expected {EXPECTED}")
        hour, minute, value = int(match[1]), int(match[2]), match[3].strip().lower()
        if hour > 23 or minute > 59:
            raise ValueError(
                f"{part!r}: {match[1]}:{match[2]} is no time of day (00:00 to "
                f"23:59); expected {EXPECTED}"
            )
        at = time(hour, minute)
        if at in entries:
            raise ValueError(f"{at:%H:%M} is given twice; expected {EXPECTED}")
        entries[at] = _entry_rate(part, value)
    return Timetable(tuple(sorted(entries.items())))


def _entry_rate(part: str, value: str) -> float | None:
    if value == "off":
        return None
    try:
        rate = float(value)
    except ValueError:
        rate = -1.0
    if not rate > 0 or rate == float("inf"):
        raise ValueError(
            f"{part!r}: the rate must be a number greater than 0 or 'off'; expected {EXPECTED}"
        )
    return rate


def zone_named(name: str | None) -> tzinfo:
    """The IANA zone `name` (ValueError naming it if unknown), or the machine's own."""
    if name is None:
        return local_zone()
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{name!r} is no IANA time zone name, e.g. Europe/Berlin or America/New_York"
        ) from None


def local_zone() -> tzinfo:
    """The machine's zone with its rules (TZ, else /etc/localtime), so that a run across a
    daylight saving change follows it; a fixed offset only if neither can be read."""
    name = os.environ.get("TZ", "").lstrip(":")
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    try:
        with Path("/etc/localtime").open("rb") as data:
            return ZoneInfo.from_file(data, key="localtime")
    except (OSError, ValueError):
        zone = datetime.now().astimezone().tzinfo
        assert zone is not None
        return zone
