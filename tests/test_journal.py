"""The outcome log: whole records only, a torn last line repaired, the last record is final."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reanalyzer.core.outcomes import Status
from reanalyzer.errors import JobError
from reanalyzer.record.outcome_log import OutcomeLog, read_records, record, repair_torn_tail

TS = "2024-01-01T00:00:00.000Z"


def line(n: int, status: Status = Status.QUEUED) -> str:
    return json.dumps(record(hash_value=f"{n:032x}", hash_type="md5", status=status,
                             source="in.txt", line=n, ts=TS)) + "\n"


def test_a_torn_last_line_is_cut_and_earlier_lines_stay(tmp_path: Path) -> None:
    """A last line without its newline is removed; every whole line before it is kept."""
    path = tmp_path / "outcomes.jsonl"
    whole = line(1) + line(2)
    path.write_text(whole + line(3)[:40])
    repair_torn_tail(path)
    assert path.read_text() == whole


def test_a_log_that_is_only_a_torn_line_becomes_empty(tmp_path: Path) -> None:
    """A first record torn by a crash leaves an empty log, not a broken one."""
    path = tmp_path / "outcomes.jsonl"
    path.write_text(line(1)[:-5])
    repair_torn_tail(path)
    assert path.read_bytes() == b""


def test_a_whole_log_is_left_alone(tmp_path: Path) -> None:
    """Repair changes nothing in a log ending with a newline, or an empty or missing one."""
    path = tmp_path / "outcomes.jsonl"
    repair_torn_tail(path)  # missing: nothing to do
    assert not path.exists()
    path.write_text("")
    repair_torn_tail(path)
    assert path.read_text() == ""
    path.write_text(line(1) + line(2))
    repair_torn_tail(path)
    assert path.read_text() == line(1) + line(2)


def test_a_torn_line_after_a_long_log_is_cut_at_its_own_start(tmp_path: Path) -> None:
    """The cut lands on the last newline even with far more than 64 KiB before it."""
    path = tmp_path / "outcomes.jsonl"
    whole = "".join(line(n) for n in range(1, 2000))
    assert len(whole) > 1 << 17
    path.write_text(whole + line(2000)[:100])
    repair_torn_tail(path)
    assert path.read_text() == whole


def test_read_records_skips_a_torn_last_line(tmp_path: Path) -> None:
    """Reading a log a crash left torn yields its whole records only."""
    path = tmp_path / "outcomes.jsonl"
    path.write_text(line(1) + line(2) + line(3)[:30])
    assert [r["line"] for r in read_records(path)] == [1, 2]
    assert list(read_records(tmp_path / "missing.jsonl")) == []


@pytest.mark.parametrize("bad", ["\x00\x17garbage\n", "[1, 2]\n", '{"hash": null}\n'])
def test_a_line_that_is_no_record_is_named_or_read_past(tmp_path: Path, bad: str) -> None:
    """A line in the middle that is not a record (not JSON, or JSON without a record's fields)
    raises JobError naming the file and line; given a `damaged` callback, it is told there and
    the records around it are read."""
    path = tmp_path / "outcomes.jsonl"
    path.write_text(line(1) + bad + line(3))
    with pytest.raises(JobError, match=r"outcomes\.jsonl, line 2,"):
        list(read_records(path))
    told: list[tuple[str, int]] = []
    assert [r["line"] for r in read_records(path, lambda p, n: told.append((p, n)))] == [1, 3]
    assert told == [(str(path), 2)]


def test_opening_the_log_repairs_it_and_appends_whole_lines(tmp_path: Path) -> None:
    """A run reopening a torn log cuts the tear and its records follow on a line of their own."""
    path = tmp_path / "outcomes.jsonl"
    path.write_text(line(1) + line(2)[:25])
    log = OutcomeLog(path)
    log.write([json.loads(line(2)), json.loads(line(3))])
    log.close()
    assert [r["line"] for r in read_records(path)] == [1, 2, 3]
    log.close()  # closing twice is harmless


def test_the_last_record_of_a_line_is_its_final_outcome(tmp_path: Path) -> None:
    """A later record for the same (source, line) supersedes a `failed` one."""
    path = tmp_path / "outcomes.jsonl"
    path.write_text(line(1, Status.FAILED) + line(2) + line(1, Status.ALREADY_QUEUED))
    final = final_outcomes(path)
    assert {k: r["status"] for k, r in final.items()} == {
        ("in.txt", 1): "already_queued", ("in.txt", 2): "queued"}


def test_an_unopenable_log_is_a_job_error(tmp_path: Path) -> None:
    """A log that cannot be created (its directory is a file) is a JobError, not an OSError."""
    (tmp_path / "file").write_text("")
    with pytest.raises(JobError, match="cannot write"):
        OutcomeLog(tmp_path / "file" / "outcomes.jsonl")


def test_record_schema_has_every_documented_field() -> None:
    """A record carries exactly the fields the README documents."""
    r = record(hash_value=None, hash_type=None, status=Status.INVALID, source="-", line=3,
               ts=TS, reason="not hex")
    assert set(r) == {"hash", "hash_type", "status", "source", "line", "reason", "http_status",
                      "attempts", "analyses", "detail", "ts"}


def final_outcomes(path: Path) -> dict[tuple[str, int], dict[str, object]]:
    """The rule read plainly, all in memory: a line's final record is its last one."""
    return {(r["source"], r["line"]): r for r in read_records(path)}
