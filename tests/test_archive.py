"""An archive-sized job's needs, at a small size: a compact log that reads back whole, counts kept
beside the checkpoint that status and retry answer from, reports in input order, a resume that
says what it is reading, and gzip inputs with a total. The CLI runs in subprocesses, against the
simulator."""

from __future__ import annotations

import csv
import gzip
import io
import json
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

from support import run_cli

from reanalyzer.errors import ExitCode
from reanalyzer.read.sizes import gzip_size, input_sizes
from reanalyzer.record.outcome_log import OUTCOMES_FILE, read_records
from reanalyzer.record.segments import segments, split_lines
from reanalyzer.run.progress import RateMeter, Snapshot, figures
from reanalyzer.simulator import SimulatorConfig, start_simulator, write_input

TOKEN = "tok-archive-15-0123456789"


async def cli(*args: str, cwd: Path) -> tuple[int, str, str]:
    ran = await run_cli(*args, cwd=cwd, token=TOKEN)
    return ran.code, ran.out, ran.err


def finals(job: Path) -> dict[tuple[str, int], dict[str, Any]]:
    """The rule read plainly: a line's final record is its last one."""
    return {(r["source"], r["line"]): r for r in read_records(job / OUTCOMES_FILE)}


def recount(job: Path) -> tuple[dict[str, int], dict[str, int]]:
    records = finals(job).values()
    by_status = Counter(r["status"] for r in records)
    by_type = Counter(r["hash_type"] or "none" for r in records)
    return dict(by_status), dict(by_type)


def counts(job: Path) -> dict[str, Any]:
    value: dict[str, Any] = json.loads((job / "counts.json").read_text())
    return value


def events(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


async def test_counts_json_matches_the_log_through_failures_a_resume_and_a_retry(
        tmp_path: Path) -> None:
    """After a run with failures, a resume that retries them and a retry, counts.json says what
    a recount of the log says, and status shows those counts."""
    sim = await start_simulator(SimulatorConfig(token=TOKEN, samples=400, seed=8,
                                                error_rate=0.4, fault_seed=2))
    try:
        write_input(tmp_path / "hashes.txt", sim.world, 600, seed=3)
        run = ("run", "--url", sim.url, "--job-dir", "job", "--max-retries", "0",
               "--batch-size", "20", "--progress", "off", "hashes.txt")
        code, _, err = await cli(*run, cwd=tmp_path)
        assert code == ExitCode.SOME_FAILED, err
        job = tmp_path / "job"
        by_status, by_type = recount(job)
        assert by_status.get("failed")
        assert (counts(job)["by_status"], counts(job)["by_hash_type"]) == (by_status, by_type)
        assert counts(job)["final"] is True

        code, _, err = await cli(*run, cwd=tmp_path)  # a resume: the failures sent again
        assert code in (ExitCode.OK, ExitCode.SOME_FAILED), err
        assert (counts(job)["by_status"], counts(job)["by_hash_type"]) == recount(job)

        code, _, err = await cli("retry", "job", "--max-retries", "0", cwd=tmp_path)
        assert code in (ExitCode.OK, ExitCode.SOME_FAILED), err
        assert (counts(job)["by_status"], counts(job)["by_hash_type"]) == recount(job)
        assert counts(job)["records"] == len(list(read_records(job / OUTCOMES_FILE,)))

        code, out, _ = await cli("status", "job", "--json", cwd=tmp_path)
        assert code == ExitCode.OK
        shown = json.loads(out)
        assert (shown["by_status"], shown["counted_from"]) == (recount(job)[0], "counts.json")
    finally:
        await sim.aclose()


async def test_status_and_an_idle_retry_answer_without_reading_the_log(tmp_path: Path) -> None:
    """With counts.json, status and a retry with nothing to do never open the log: they
    answer the same with its segments made unreadable; without counts.json status reads the
    log as for a job directory from before it."""
    sim = await start_simulator(SimulatorConfig(token=TOKEN, samples=200, seed=4))
    try:
        write_input(tmp_path / "hashes.txt", sim.world, 300, seed=1)
        code, _, err = await cli("run", "--url", sim.url, "--job-dir", "job", "--progress",
                                 "off", "hashes.txt", cwd=tmp_path)
        assert code == ExitCode.OK, err
    finally:
        await sim.aclose()
    job = tmp_path / "job"
    _, out, _ = await cli("status", "job", "--json", cwd=tmp_path)
    before = json.loads(out)
    saved = tmp_path / "saved"
    shutil.copytree(job, saved)
    for segment in segments(job / OUTCOMES_FILE):
        segment.path.write_bytes(b"\x00 not a log \x00\n")
    code, out, err = await cli("status", "job", "--json", cwd=tmp_path)
    assert code == ExitCode.OK, err
    assert json.loads(out)["by_status"] == before["by_status"]
    code, _, err = await cli("retry", "job", cwd=tmp_path)
    assert code == ExitCode.OK, err
    assert "nothing to retry" in err

    shutil.rmtree(job)
    shutil.copytree(saved, job)
    (job / "counts.json").unlink()
    code, out, err = await cli("status", "job", "--json", cwd=tmp_path)
    assert code == ExitCode.OK, err
    again = json.loads(out)
    assert (again["by_status"], again["counted_from"]) == (before["by_status"], "outcome log")


async def test_the_log_is_small_compressed_and_reads_back_whole(tmp_path: Path) -> None:
    """A finished run leaves its log in gzip segments of under 200 bytes a record; joining a
    segment's lines and details gives back every record `report --format json` prints, each
    with every documented field and the detail the appliance sent (the sent hash in it)."""
    sim = await start_simulator(SimulatorConfig(token=TOKEN, samples=2000, seed=6))
    try:
        write_input(tmp_path / "hashes.txt", sim.world, 3000, seed=2)
        code, _, err = await cli("run", "--url", sim.url, "--job-dir", "job", "--progress",
                                 "off", "hashes.txt", cwd=tmp_path)
        assert code == ExitCode.OK, err
    finally:
        await sim.aclose()
    job = tmp_path / "job"
    (segment,) = [s for s in segments(job / OUTCOMES_FILE) if s.compressed]
    assert segment.details is not None
    size = sum(p.stat().st_size for p in job.iterdir()
               if p.name.startswith(("outcomes", "details")))
    records = finals(job)
    assert size / len(records) < 200
    lines = gzip.decompress(segment.path.read_bytes()).splitlines()
    details = gzip.decompress(segment.details.read_bytes()).splitlines()
    assert len(lines) == len(details)
    code, out, _ = await cli("report", "job", "--format", "json", cwd=tmp_path)
    assert code == ExitCode.OK
    printed = [json.loads(line) for line in out.splitlines()]
    assert {(r["source"], r["line"]): r for r in printed} == records
    fields = {"hash", "hash_type", "status", "source", "line", "reason", "http_status",
              "attempts", "analyses", "detail", "ts"}
    assert all(set(r) == fields for r in printed)
    queued = [r for r in printed if r["status"] == "queued"]
    assert queued
    assert all(r["detail"][r["hash_type"]] == r["hash"] for r in queued)


def test_a_closed_segment_splits_each_line_from_its_details() -> None:
    """Closing a segment takes each line's details out beside it, line for line, and leaves
    a record of the old form whole."""
    v2 = b'{"hash_type":"md5","status":"queued","source":"a","ts":"t","hashes":["x"],' \
         b'"lines":[1],"details":[{"sha1":"y"}]}\n'
    v1 = b'{"hash":"x","hash_type":"md5","status":"queued","source":"a","line":2,' \
         b'"detail":{"details":[1]},"ts":"t"}\n'
    main, details = split_lines(v2 + v1)
    assert main.splitlines() == [v2[: v2.index(b',"details"')] + b"}", v1[:-1]]
    assert details.splitlines() == [b'[{"sha1":"y"}]', b"null"]


async def test_reports_are_in_input_order_with_columns_sized_to_the_data(
        tmp_path: Path) -> None:
    """Whatever order the answers came in, list, csv and table follow the input's lines, and
    the table's columns are as wide as their widest cell."""
    sim = await start_simulator(SimulatorConfig(token=TOKEN, samples=500, seed=9,
                                                latency_ms=5))
    try:
        write_input(tmp_path / "hashes.txt", sim.world, 1500, seed=5)
        code, _, err = await cli("run", "--url", sim.url, "--job-dir", "job", "--progress",
                                 "off", "--batch-size", "10", "--concurrency", "8",
                                 "hashes.txt", cwd=tmp_path)
        assert code == ExitCode.OK, err
    finally:
        await sim.aclose()
    code, out, _ = await cli("report", "job", "--format", "csv", cwd=tmp_path)
    numbers = [int(row["line"]) for row in csv.DictReader(io.StringIO(out))]
    assert numbers == sorted(numbers)
    assert len(numbers) == len(finals(tmp_path / "job"))
    code, out, _ = await cli("report", "job", cwd=tmp_path)
    rows = out.splitlines()[1:]
    assert [int(r.split()[3].rsplit(":", 1)[1]) for r in rows] == numbers
    widest = max(len(r.split()[0]) for r in rows)
    assert out.splitlines()[0].index("TYPE") == widest + 2
    code, out, _ = await cli("report", "job", "--format", "list", cwd=tmp_path)
    in_order = list(dict.fromkeys(r["hash"] for _, r in sorted(finals(tmp_path / "job").items())
                                  if r["hash"]))
    assert out.split() == in_order


async def test_a_resume_says_what_it_reads_before_it_sends(tmp_path: Path) -> None:
    """A resume that reads the log tells so first (how much, about how long), before the
    job starts sending again."""
    sim = await start_simulator(SimulatorConfig(token=TOKEN, samples=300, seed=3))
    try:
        write_input(tmp_path / "hashes.txt", sim.world, 400, seed=7)
        base = ("run", "--url", sim.url, "--job-dir", "job", "--progress", "off",
                "--log-format", "json", "--batch-size", "20")
        code, _, err = await cli(*base, "--max-requests", "5", "hashes.txt", cwd=tmp_path)
        assert code == ExitCode.INTERRUPTED, err
        code, _, err = await cli(*base, "hashes.txt", cwd=tmp_path)
        assert code == ExitCode.OK, err
    finally:
        await sim.aclose()
    names = [e["event"] for e in events(err)]
    assert names.index("job.resume_reading") < names.index("job.started")
    said = next(e for e in events(err) if e["event"] == "job.resume_reading")
    assert said["bytes"] > 0
    assert said["expected_s"] >= 0


async def test_a_gzip_input_has_an_estimated_total_percentage_and_eta(tmp_path: Path) -> None:
    """The progress of a gzip input has a total (marked as an estimate), a percentage and an
    ETA, in job.progress and in counts.json."""
    sim = await start_simulator(SimulatorConfig(token=TOKEN, samples=3000, seed=2,
                                                latency_ms=20))
    try:
        write_input(tmp_path / "hashes.txt", sim.world, 4000, seed=4)
        with gzip.open(tmp_path / "hashes.txt.gz", "wb") as out:
            out.write((tmp_path / "hashes.txt").read_bytes())
        code, _, err = await cli("run", "--url", sim.url, "--job-dir", "job", "--progress",
                                 "log", "--progress-interval", "0.1", "--log-format", "json",
                                 "--batch-size", "20", "--concurrency", "2", "hashes.txt.gz",
                                 cwd=tmp_path)
        assert code == ExitCode.OK, err
    finally:
        await sim.aclose()
    progress = [e for e in events(err) if e["event"] == "job.progress"]
    assert progress
    shown = progress[-1]
    assert shown["estimated_total"]
    assert shown["total_is_estimate"] is True
    assert shown["percent"] is not None
    assert shown["eta_s"] is not None
    assert counts(tmp_path / "job")["run"]["total_is_estimate"] is True


def test_a_gzip_size_is_its_decompressed_size(tmp_path: Path) -> None:
    """A gzip input's size is read from its trailer (and its first MiB's ratio), and marked
    as an estimate beside a plain file's exact size."""
    data = b"".join(b"%040x\n" % (i * 7919) for i in range(200_000))
    (tmp_path / "a.gz").write_bytes(gzip.compress(data))
    (tmp_path / "b.txt").write_bytes(b"abc\n")
    assert gzip_size(str(tmp_path / "a.gz")) == len(data)
    assert input_sizes([str(tmp_path / "a.gz"), str(tmp_path / "b.txt")]) == (
        [len(data), 4], True)
    assert input_sizes([str(tmp_path / "b.txt")]) == ([4], False)
    assert input_sizes(["-"]) == (None, False)


def test_the_eta_follows_the_recent_rate() -> None:
    """After a slow start the rate meter follows the faster recent pace, and the ETA with it,
    where the whole run's average would lag."""
    meter = RateMeter(tau=10)
    meter.update(0.0, 0)
    meter.update(30.0, 300)  # 10/s for 30 s
    for t in range(31, 91):
        rate = meter.update(float(t), 300 + (t - 30) * 100)  # then 100/s
    assert rate is not None
    assert rate > 95
    now = Snapshot(recorded=6300, estimated_total=16300, requests=0, retries=0, throttled=0,
                   pace=None, in_flight=0, recent_rate=rate)
    shown = figures(now, time.monotonic() - 90.0)
    assert shown["eta_s"] is not None
    assert 95 <= shown["eta_s"] <= 106


def test_status_of_a_running_job_shows_done_total_percentage_and_eta() -> None:
    """A running job's status line says how many lines of about how many are done, the share
    and the time left, from the figures its run keeps in counts.json."""
    from reanalyzer.commands.status import JobStatus, render_text

    st = JobStatus(job_dir="job", inputs=["in.txt.gz"], settings={}, running=True, pid=7,
                   progress=None, records_written=1200, final_total=1200,
                   by_status={"queued": 1200}, by_hash_type={"md5": 1200},
                   last_record_at=None, last_run=None, recent_rate=100.0,
                   this_run={"recorded": 1200, "estimated_total": 4000,
                             "total_is_estimate": True, "percent": 30.0,
                             "recent_records_per_s": 100.0, "eta_s": 28})
    shown = render_text(st)
    assert "this run   1,200 of ~4,000 lines (30.0%), 100.0 records/s, about 28 s to go" in shown
