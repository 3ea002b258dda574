"""``reanalyzer report``: the final outcome per input line, streamed in two passes."""

from __future__ import annotations

import argparse
import csv
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reanalyzer.commands import report
from reanalyzer.core.outcomes import Status
from reanalyzer.errors import ExitCode, JobError, UsageError
from reanalyzer.record import final
from reanalyzer.record.outcome_log import OUTCOMES_FILE, read_records, record

TS = "2026-01-02T03:04:05.000Z"


def rec(line: int, status: Status, hash_value: str | None = None, *, source: str = "in.txt",
        reason: str | None = None, **kwargs: Any) -> dict[str, Any]:
    if hash_value is None and status is not Status.INVALID:
        hash_value = f"{line:032x}"
    return record(hash_value=hash_value, hash_type="md5" if hash_value else None, status=status,
                  source=source, line=line, ts=TS, reason=reason, **kwargs)


def write_log(job_dir: Path, records: list[dict[str, Any]], tail: bytes = b"") -> Path:
    job_dir.mkdir(parents=True, exist_ok=True)
    path = job_dir / OUTCOMES_FILE
    data = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records).encode()
    path.write_bytes(data + tail)
    return path


def run_report(job_dir: Path, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    report.configure_parser(parser)
    return report.run(parser.parse_args([str(job_dir), *argv]))


def test_failed_records_are_superseded_by_later_ones(tmp_path: Path) -> None:
    """A line that failed and was retried shows only its last record, in log order."""
    path = write_log(tmp_path, [
        rec(1, Status.FAILED), rec(2, Status.QUEUED), rec(3, Status.FAILED),
        rec(4, Status.FAILED), rec(1, Status.FAILED), rec(3, Status.QUEUED),
        rec(1, Status.ALREADY_QUEUED),
    ])
    finals = [(r["line"], r["status"]) for r in final.final_records(path)]
    assert finals == [(2, "queued"), (4, "failed"), (3, "queued"), (1, "already_queued")]


def test_same_line_number_in_two_sources_are_different_lines(tmp_path: Path) -> None:
    """The key is (source, line): line 1 of one input does not supersede line 1 of another."""
    path = write_log(tmp_path, [rec(1, Status.FAILED, source="a"),
                                rec(1, Status.QUEUED, source="b")])
    assert [r["source"] for r in final.final_records(path)] == ["a", "b"]


def test_pass_two_stops_where_pass_one_did(tmp_path: Path) -> None:
    """Records appended by a running job after the scan, and a torn tail, are not reported."""
    path = write_log(tmp_path, [rec(1, Status.FAILED), rec(2, Status.QUEUED)], tail=b'{"hash":')
    scan = final.scan_log(path)
    assert scan.records == 2
    with path.open("ab") as f:
        f.write(b'null}\n' + json.dumps(rec(1, Status.QUEUED)).encode() + b"\n")
    assert [(r["line"], r["status"]) for r in final.final_records(path, scan)] == [
        (1, "failed"), (2, "queued")]


def test_scan_of_a_log_without_failures_remembers_nothing(tmp_path: Path) -> None:
    """Without failed records pass one keeps no keys at all."""
    path = write_log(tmp_path, [rec(i, Status.QUEUED) for i in range(1, 50)])
    scan = final.scan_log(path)
    assert (scan.records, scan.last_index) == (49, {})


_history = st.lists(  # per line: how many times it failed, and whether a last run settled it
    st.tuples(st.integers(0, 3), st.sampled_from([None, Status.QUEUED, Status.NOT_FOUND])),
    min_size=1, max_size=30,
)


@given(history=_history, order=st.randoms(use_true_random=False))
def test_final_records_match_the_last_record_per_line(history: list[tuple[int, Status | None]],
                                                      order: Any) -> None:
    """Streaming in two passes gives exactly the last record of every line, each once."""
    runs: list[list[dict[str, Any]]] = []
    for line, (fails, settled) in enumerate(history, start=1):
        attempts = [Status.FAILED] * fails + ([settled] if settled else [])
        for run_no, status in enumerate(attempts or [Status.DUPLICATE]):
            while len(runs) <= run_no:
                runs.append([])
            runs[run_no].append(rec(line, status))
    for one_run in runs:  # within a run, batches come back in any order
        order.shuffle(one_run)
    log = [r for one_run in runs for r in one_run]
    with tempfile.TemporaryDirectory() as tmp:  # not tmp_path: one directory per example
        path = write_log(Path(tmp), log)
        got = list(final.final_records(path))
        assert sorted(got, key=lambda r: r["line"]) == sorted(
            final_outcomes(path).values(), key=lambda r: r["line"])
    assert len(got) == len(history)


def test_status_names_are_checked() -> None:
    """An unknown status is a usage error (exit 2) naming the allowed ones."""
    wanted = frozenset({Status.FAILED, Status.NOT_FOUND})
    assert report.parse_statuses(" failed, not_found ") == wanted
    assert report.parse_statuses(None) is None
    with pytest.raises(UsageError, match=r"'fialed'.*allowed: queued, already_queued") as exc:
        report.parse_statuses("failed,fialed")
    assert exc.value.exit_code == ExitCode.USAGE
    with pytest.raises(UsageError):
        report.parse_statuses(",")


def test_missing_job_dir_or_log_is_a_job_error(tmp_path: Path) -> None:
    """No job directory, or one without an outcome log, exits 8 with a clear message."""
    with pytest.raises(JobError, match="no job directory") as exc:
        run_report(tmp_path / "nope")
    assert exc.value.exit_code == ExitCode.JOB
    with pytest.raises(JobError, match="no outcome log"):
        run_report(tmp_path)


def test_bad_status_is_reported_before_the_job_dir_is_read(tmp_path: Path) -> None:
    """A wrong --status is a usage error even when the job directory is missing too."""
    with pytest.raises(UsageError):
        run_report(tmp_path / "nope", "--status", "ok")


def test_list_is_bare_unique_hashes_of_the_chosen_statuses(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--format list` prints each hash once, skips lines that are not hashes, and filters."""
    write_log(tmp_path, [
        rec(1, Status.FAILED, "a" * 32), rec(2, Status.NOT_FOUND, "b" * 40),
        rec(3, Status.INVALID, None, reason="not a hash"), rec(4, Status.FAILED, "a" * 32),
        rec(5, Status.QUEUED, "c" * 32), rec(1, Status.QUEUED, "a" * 32),
        rec(6, Status.INVALID, "d" * 32, reason="400"),
    ])
    assert run_report(tmp_path, "--status", "failed,not_found,invalid", "--format", "list") == 0
    assert capsys.readouterr().out == f"{'b' * 40}\n{'a' * 32}\n{'d' * 32}\n"


def test_json_lines_are_the_final_records(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """`--format json` prints one final record per line, as the log holds it, in input order."""
    records = [rec(1, Status.FAILED), rec(2, Status.QUEUED), rec(1, Status.QUEUED)]
    write_log(tmp_path, records)
    run_report(tmp_path, "--format", "json")
    out = capsys.readouterr().out.splitlines()
    assert [json.loads(line) for line in out] == [records[2], records[1]]


def test_csv_has_a_header_and_flattened_analyses(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """`--format csv` has the documented columns; analyses become name:code joined by ';'."""
    write_log(tmp_path, [
        rec(7, Status.PARTIAL, http_status=200, attempts=2,
            analyses=[("cloud", 200, "ok"), ("core", None, "refused")]),
        rec(8, Status.INVALID, None, reason='not a hash: "x,y"'),
    ])
    run_report(tmp_path, "--format", "csv")
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == list(report.CSV_FIELDS)
    assert rows[1] == [f"{7:032x}", "md5", "partial", "in.txt", "7", "", "200", "2",
                       "cloud:200;core:", TS]
    assert rows[2][:6] == ["", "", "invalid", "in.txt", "8", 'not a hash: "x,y"']


def test_table_is_aligned_and_counts_go_to_stderr(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """The table's columns line up, its lines in input order, and its count line is on stderr,
    not stdout."""
    write_log(tmp_path, [rec(1, Status.QUEUED, "a" * 64),
                         rec(22, Status.INVALID, None, reason="not a hash"),
                         rec(3, Status.FAILED, "b" * 32, reason="retries ran out")])
    run_report(tmp_path)
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].split() == ["HASH", "TYPE", "STATUS", "SOURCE:LINE", "REASON"]
    assert len({line.index("in.txt:") for line in lines[1:]}) == 1
    assert lines[3].split()[:4] == ["-", "-", "invalid", "in.txt:22"]
    assert captured.err == "reanalyzer: 3 lines (queued 1, invalid 1, failed 1)\n"


def test_output_file_gets_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--output writes the report to a file and nothing to stdout."""
    write_log(tmp_path / "job", [rec(1, Status.FAILED, "e" * 32)])
    out = tmp_path / "again.txt"
    run_report(tmp_path / "job", "--format", "list", "--output", str(out))
    assert out.read_text() == "e" * 32 + "\n"
    assert capsys.readouterr().out == ""
    assert list(tmp_path.glob(".again*")) == []


def test_unwritable_output_is_a_usage_error(tmp_path: Path) -> None:
    """An --output path that cannot be written stops with one line, not a traceback."""
    write_log(tmp_path, [rec(1, Status.QUEUED)])
    with pytest.raises(UsageError, match="--output"):
        run_report(tmp_path, "--output", str(tmp_path / "missing" / "x.txt"))


def test_a_closed_pipe_ends_the_report_quietly(tmp_path: Path) -> None:
    """`report | head -1`: the reader leaving is not an error, and nothing is printed about it."""
    write_log(tmp_path, [rec(i, Status.QUEUED) for i in range(1, 20_001)])
    code = ("import argparse, sys; from reanalyzer.commands import report; "
            "p = argparse.ArgumentParser(); "
            "report.configure_parser(p); sys.exit(report.run(p.parse_args(sys.argv[1:])))")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path), "--format", "json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stderr is not None
    assert json.loads(proc.stdout.readline())["line"] == 1
    proc.stdout.close()
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=30) == 0
    assert err == b""


def final_outcomes(path: Path) -> dict[tuple[str, int], dict[str, object]]:
    """The rule read plainly, all in memory: a line's final record is its last one."""
    return {(r["source"], r["line"]): r for r in read_records(path)}


@given(st.lists(st.tuples(st.integers(1, 30), st.sampled_from([None, "a" * 32, "b" * 40, "c" * 64]),
                          st.sampled_from([Status.QUEUED, Status.FAILED, Status.INVALID])),
                max_size=60))
def test_list_from_columns_is_the_list_from_records(
        rows: list[tuple[int, str | None, Status]]) -> None:
    """The column writer of `--format list` prints what the record writer does, repeats too."""
    with tempfile.TemporaryDirectory() as tmp:
        path = write_log(Path(tmp), [rec(line, status, value or None) if status is Status.INVALID
                                     else rec(line, status, value) for line, value, status in rows])
        finals = final.load_finals(path)
        from_columns, from_records = io.StringIO(), io.StringIO()
        count = report.write_finals(finals, "list", from_columns)
        assert count == report.write_report(finals.records(), "list", from_records)
        assert from_columns.getvalue() == from_records.getvalue()
