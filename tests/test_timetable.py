"""The pace timetable: parsing, the rate in force at an instant (midnight, daylight saving), the
usage error for a malformed one, and the ceiling it sets on the adaptive gate."""

from __future__ import annotations

import os
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from reanalyzer.cli import main
from reanalyzer.core.timetable import Timetable, local_zone, parse_rate, parse_timetable
from reanalyzer.errors import UsageError
from reanalyzer.send.pacing import AdaptiveGate
from reanalyzer.settings import load_settings

BERLIN = ZoneInfo("Europe/Berlin")


def at(zone: ZoneInfo, *fields: int) -> datetime:
    return datetime(*fields, tzinfo=zone)  # type: ignore[misc]


def test_a_number_is_a_fixed_rate_and_anything_else_a_timetable() -> None:
    """'20' is 20 requests/s; '07:00=5,19:00=50' is two entries, sorted, kept in one spelling."""
    assert parse_rate("20") == 20.0
    table = parse_rate(" 19:00=50, 7:00=5 ")
    assert isinstance(table, Timetable)
    assert table.entries == ((time(7), 5.0), (time(19), 50.0))
    assert str(table) == "07:00=5,19:00=50"
    assert parse_timetable("00:00=off,08:30=2.5").entries == ((time(0), None),
                                                               (time(8, 30), 2.5))


@pytest.mark.parametrize(("text", "says"), [
    ("0", "greater than 0"),
    ("-3", "greater than 0"),
    ("7=5", "'7=5' is not HH:MM=rate"),
    ("24:00=5", "no time of day"),
    ("07:60=5", "no time of day"),
    ("07:00=fast", "the rate must be a number greater than 0 or 'off'"),
    ("07:00=0", "the rate must be a number greater than 0"),
    ("07:00=5,07:00=6", "07:00 is given twice"),
    ("07:00=5,,19:00=5", "'' is not HH:MM=rate"),
])
def test_a_malformed_rate_says_what_was_expected(text: str, says: str) -> None:
    """Each malformed --rate-limit names what is wrong and shows the expected form."""
    with pytest.raises(ValueError, match=r"expected|greater than 0") as caught:
        parse_rate(text)
    assert says in str(caught.value)
    assert "07:00=5,19:00=50" in str(caught.value)


def test_the_rate_in_force_follows_the_wall_clock_across_midnight() -> None:
    """Before the first entry of the day, the last one (from the evening before) is in force."""
    table = parse_timetable("07:00=5,19:00=50")
    zone = ZoneInfo("UTC")
    assert table.rate_at(at(zone, 2026, 6, 1, 6, 59, 59), zone) == 50.0
    assert table.rate_at(at(zone, 2026, 6, 1, 7, 0), zone) == 5.0
    assert table.rate_at(at(zone, 2026, 6, 1, 18, 59, 59), zone) == 5.0
    assert table.rate_at(at(zone, 2026, 6, 1, 19, 0), zone) == 50.0
    assert table.rate_at(at(zone, 2026, 6, 2, 0, 0), zone) == 50.0
    # The zone decides: 07:00 in Berlin (summer time) is 05:00 UTC.
    assert table.rate_at(datetime(2026, 6, 1, 5, 0, tzinfo=UTC), BERLIN) == 5.0
    assert table.rate_at(datetime(2026, 6, 1, 4, 59, tzinfo=UTC), BERLIN) == 50.0


def test_a_switch_in_the_hour_skipped_in_spring_happens_when_the_clock_jumps() -> None:
    """Berlin 2026-03-29: 02:00 becomes 03:00; a 02:30 entry takes over at the jump (01:00 UTC)."""
    table = parse_timetable("02:30=9,20:00=1")
    before = datetime(2026, 3, 29, 0, 59, 59, tzinfo=UTC)  # 01:59:59 CET
    after = datetime(2026, 3, 29, 1, 0, 0, tzinfo=UTC)  # 03:00:00 CEST
    assert table.rate_at(before, BERLIN) == 1.0
    assert table.rate_at(after, BERLIN) == 9.0


def test_the_switches_of_the_hour_repeated_in_autumn_happen_twice() -> None:
    """Berlin 2026-10-25: 03:00 CEST goes back to 02:00 CET; 02:30 comes twice, and with it the
    switch, an hour apart in real time, the earlier entry back in force between them."""
    table = parse_timetable("02:00=3,02:30=30")
    first = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST
    between = datetime(2026, 10, 25, 1, 0, tzinfo=UTC)  # 02:00 CET, the clock set back
    second = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # 02:30 CET
    assert table.rate_at(first - timedelta(seconds=1), BERLIN) == 3.0
    assert table.rate_at(first, BERLIN) == 30.0
    assert table.rate_at(between, BERLIN) == 3.0
    assert table.rate_at(second, BERLIN) == 30.0


def test_a_fake_clock_walks_through_a_day_of_switches() -> None:
    """Stepping a fake clock a minute at a time, the rate changes exactly at each entry."""
    table = parse_timetable("07:00=5,12:30=off,19:00=50")
    zone = ZoneInfo("America/New_York")
    clock = at(zone, 2026, 11, 1, 0, 0)  # the day New York leaves summer time
    changes = []
    last = table.rate_at(clock, zone)
    for _ in range(25 * 60):
        clock += timedelta(minutes=1)
        rate = table.rate_at(clock, zone)
        if rate != last:
            changes.append((clock.astimezone(zone).strftime("%H:%M"), rate))
            last = rate
    assert changes == [("07:00", 5.0), ("12:30", None), ("19:00", 50.0)]


def test_the_settings_take_a_timetable_and_give_its_rate_now() -> None:
    """--rate-limit keeps a timetable as such; the rate limit at an instant is its entry's."""
    settings = load_settings({"rate_limit": "19:00=50,07:00=5", "timezone": "Europe/Berlin"})
    assert settings.rate_limit == "07:00=5,19:00=50"
    assert settings.rate_limit_at(datetime(2026, 6, 1, 10, tzinfo=UTC)) == 5.0
    assert load_settings({"rate_limit": "2.5"}).rate_limit_at(datetime.now(UTC)) == 2.5
    with pytest.raises(UsageError, match=r"timezone.*'Mars/Olympus' is no IANA time zone"):
        load_settings({"timezone": "Mars/Olympus"})


def test_a_malformed_timetable_on_the_command_line_is_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`run --rate-limit 7-19=5` stops before any work with exit 2, saying what was expected."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REANALYZER_TOKEN", "tok-timetable-test")
    Path("in.txt").write_text("a" * 40 + "\n")
    code = main(["run", "--url", "http://127.0.0.1:9", "--log-format", "console",
                 "--rate-limit", "7-19=5", "in.txt"])
    err = capsys.readouterr().err
    assert code == 2
    assert "rate_limit" in err
    assert "HH:MM=rate" in err
    assert "07:00=5,19:00=50" in err
    assert not Path("jobs").exists()


def test_the_machine_zone_has_rules_not_a_fixed_offset(monkeypatch: pytest.MonkeyPatch) -> None:
    """With TZ naming a zone, the machine's zone is that zone, daylight saving included."""
    monkeypatch.setitem(os.environ, "TZ", "Europe/Berlin")
    zone = local_zone()
    assert datetime(2026, 1, 1, tzinfo=zone).utcoffset() == timedelta(hours=1)
    assert datetime(2026, 7, 1, tzinfo=zone).utcoffset() == timedelta(hours=2)


def test_a_ceiling_lowers_the_gate_at_once_and_a_higher_one_restarts_the_adaptation(
        clock: object) -> None:
    """Under a ceiling the rate never exceeds it; raising it after 429s goes to the new ceiling,
    and a 429 under it lowers the rate below it again."""
    gate = AdaptiveGate(50.0, clock)  # type: ignore[arg-type]
    gate.set_ceiling(5.0)
    assert gate.rate == 5.0
    assert gate.throttled(gate.epoch, 0.0)
    assert gate.rate is not None
    assert gate.rate < 5.0  # settled under what was accepted before the 429 (see Settle)
    gate.set_ceiling(40.0)
    assert gate.rate == 40.0
    assert gate.throttled(gate.epoch, 0.0)
    assert gate.rate is not None
    assert gate.rate < 40.0
    gate.set_ceiling(10.0)
    assert gate.rate is not None
    assert gate.rate <= 10.0
    gate.set_ceiling(None)
    assert gate.rate is None
