"""Live control: the resizable slots behind --concurrency, control.json's rules, and the
`reanalyzer control` command that writes it."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path

import pytest

from reanalyzer.cli import main
from reanalyzer.core.timetable import Timetable
from reanalyzer.run.control import CONTROL_FILE, Control, parse_control
from reanalyzer.send.slots import Slots


async def test_slots_grow_at_once_and_shrink_as_slots_are_given_back() -> None:
    """A larger size wakes waiters now; a smaller one lets no new holder in until enough left."""
    slots = Slots(1)
    await slots.acquire()
    waiters = [asyncio.create_task(slots.acquire()) for _ in range(3)]
    await asyncio.sleep(0)
    assert slots.taken == 1
    slots.resize(3)
    await asyncio.sleep(0)
    assert slots.taken == 3
    assert sum(w.done() for w in waiters) == 2
    slots.resize(1)
    slots.release()
    slots.release()
    await asyncio.sleep(0)
    assert slots.taken == 1
    assert sum(w.done() for w in waiters) == 2
    slots.release()
    await asyncio.sleep(0)
    assert slots.taken == 1
    assert all(w.done() for w in waiters)


async def test_a_cancelled_waiter_gives_its_slot_back() -> None:
    """A waiter cancelled while waiting (or just after being granted) holds nothing."""
    slots = Slots(1)
    await slots.acquire()
    waiter = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    slots.release()
    await asyncio.sleep(0)
    assert slots.taken == 0
    await slots.acquire()
    assert slots.taken == 1


def test_the_control_file_takes_a_rate_a_timetable_and_a_concurrency() -> None:
    """Either key may be left out; a rate may be a timetable."""
    assert parse_control('{"rate_limit": 20, "concurrency": 8}') == Control(20.0, 8)
    assert parse_control("{}") == Control()
    control = parse_control('{"rate_limit": "19:00=50,07:00=5"}')
    assert isinstance(control.rate_limit, Timetable)
    assert control.to_json() == {"rate_limit": "07:00=5,19:00=50"}


@pytest.mark.parametrize(("text", "says"), [
    ("{rate_limit: 20", "not JSON"),
    ("[20]", "not a JSON object"),
    ('{"rate": 20}', "unknown key rate"),
    ('{"rate_limit": 0}', "greater than 0"),
    ('{"rate_limit": 1e9}', "above 100000"),
    ('{"rate_limit": true}', "must be a number or a timetable"),
    ('{"concurrency": 0}', "from 1 to 512"),
    ('{"concurrency": 1000}', "from 1 to 512"),
    ('{"concurrency": 2.5}', "from 1 to 512"),
])
def test_a_malformed_or_out_of_range_control_file_is_refused_with_its_reason(
        text: str, says: str) -> None:
    """What the running job would log and ignore says what is wrong."""
    with pytest.raises(ValueError, match=says):
        parse_control(text)


@pytest.fixture
def job_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    job = tmp_path / "job"
    job.mkdir()
    (job / "job.json").write_text("{}")
    return job


def test_the_control_command_writes_the_file_whole_for_its_owner_only(
        job_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`control JOB --rate-limit 20` writes control.json 0600; --concurrency later keeps the
    rate; 'job' drops a key; --clear removes the file."""
    assert main(["control", str(job_dir), "--rate-limit", "20"]) == 0
    path = job_dir / CONTROL_FILE
    assert json.loads(path.read_text()) == {"rate_limit": 20.0}
    assert stat.S_IMODE(os.stat(path).st_mode) & 0o077 == 0
    assert "no run holds the job now" in capsys.readouterr().err
    assert main(["control", str(job_dir), "--concurrency", "8"]) == 0
    assert json.loads(path.read_text()) == {"rate_limit": 20.0, "concurrency": 8}
    assert main(["control", str(job_dir), "--rate-limit", "job"]) == 0
    assert json.loads(path.read_text()) == {"concurrency": 8}
    assert not list(job_dir.glob(".*tmp"))
    assert main(["control", str(job_dir), "--clear"]) == 0
    assert not path.exists()


@pytest.mark.parametrize("args", [
    ["--rate-limit", "fast"], ["--concurrency", "0"], [], ["--clear", "--rate-limit", "3"]])
def test_a_wrong_control_is_a_usage_error_and_writes_nothing(
        job_dir: Path, args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """A value the job would refuse is exit 2 now, and no file is written."""
    assert main(["control", str(job_dir), *args]) == 2
    assert not (job_dir / CONTROL_FILE).exists()
    assert capsys.readouterr().err


def test_control_of_a_directory_that_is_no_job_is_exit_8(tmp_path: Path) -> None:
    """A path with no job.json is refused, and nothing is written in it."""
    assert main(["control", str(tmp_path), "--rate-limit", "5"]) == 8
    assert not (tmp_path / CONTROL_FILE).exists()
