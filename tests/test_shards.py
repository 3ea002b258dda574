"""`--shard K/N`: the partition itself, `--shard auto` from the scheduler's environment, the
front keeping one shard's records, the job's identity and directory, and `status`/`report`
over the shards' directories."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reanalyzer.commands import report, status
from reanalyzer.core.outcomes import Status
from reanalyzer.core.shards import Shard, parse_shard, shard_from_environment, shard_of, shards_of
from reanalyzer.errors import ExitCode, UsageError
from reanalyzer.read.formats import InputFormat, read_blocks
from reanalyzer.read.front import run_front
from reanalyzer.record.checkpoint import Checkpoint, write_checkpoint
from reanalyzer.record.jobdir import JOB_FILE
from reanalyzer.record.outcome_log import OUTCOMES_FILE, record
from reanalyzer.settings import load_settings
from tests.test_front import FakeSink

MD5_EMPTY = "d41d8cd98f00b204e9800998ecf8427e"
SHA1_EMPTY = "da39a3ee5e6b4b0d3255bfef95601890afd80709"
SHA256_EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
EICAR_MD5 = "44d88612fea8a8f36de82e1278abb02f"
EICAR_SHA1 = "3395856ce81f2b7382dee72602f798b642f14140"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No REANALYZER_* or scheduler variable of the developer's leaks into a test."""
    for name in list(os.environ):
        if name.startswith(("REANALYZER_", "SLURM_", "AWS_BATCH_", "JOB_COMPLETION")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


# --- the partition -----------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "shards"), [
    (MD5_EMPTY, (0, 0, 10)),
    (SHA1_EMPTY, (1, 2, 15)),
    (SHA256_EMPTY, (1, 0, 15)),
    (EICAR_MD5, (1, 2, 13)),
    (EICAR_SHA1, (0, 0, 12)),
])
def test_known_hashes_keep_their_shards(value: str, shards: tuple[int, int, int]) -> None:
    """The shard of a known hash for N = 2, 3 and 16 never changes: workers of one job cut on
    another version would record some lines twice and others never."""
    assert tuple(shard_of(value, n) for n in (2, 3, 16)) == shards
    assert tuple(shards_of([value], n)[0] for n in (2, 3, 16)) == shards


@given(st.lists(st.text("0123456789abcdef", min_size=32, max_size=32), max_size=50),
       st.integers(1, 40))
def test_a_block_s_shards_are_each_hash_s(values: list[str], count: int) -> None:
    """The per-block form gives each hash the shard the one-hash form gives it."""
    assert shards_of(values, count) == [shard_of(v, count) for v in values]


def test_shards_are_about_even() -> None:
    """10,000 distinct hashes over 8 shards: each gets within 15% of its share."""
    values = [f"{i:040x}" for i in range(10_000)]  # not uniform at all: rehashed, they are
    counts = [0] * 8
    for owner in shards_of(values, 8):
        counts[owner] += 1
    assert all(abs(n - 1250) < 1250 * 0.15 for n in counts), counts


@pytest.mark.parametrize(("text", "error"), [
    ("4/4", "K must be below N"), ("1/0", "at least 1"), ("2", "must be K/N"),
    ("a/4", "must be K/N"), ("-1/4", "must be K/N"),
])
def test_a_wrong_shard_is_refused_saying_why(text: str, error: str) -> None:
    """--shard takes K/N with 0 <= K < N, nothing else."""
    with pytest.raises(ValueError, match=error):
        parse_shard(text)
    with pytest.raises(UsageError, match=f"setting shard .*{error}"):
        load_settings({"shard": text})


# --- --shard auto ------------------------------------------------------------------------------

@pytest.mark.parametrize(("env", "count", "shard"), [
    ({"JOB_COMPLETION_INDEX": "2"}, 4, Shard(2, 4)),
    ({"SLURM_ARRAY_TASK_ID": "7", "SLURM_ARRAY_TASK_MIN": "5", "SLURM_ARRAY_TASK_COUNT": "3"},
     None, Shard(2, 3)),
    ({"AWS_BATCH_JOB_ARRAY_INDEX": "0", "AWS_BATCH_JOB_ARRAY_SIZE": "10"}, None, Shard(0, 10)),
    ({"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_COUNT": "4"},
     8, Shard(3, 8)),  # --shard-count beats the scheduler's count
])
def test_auto_reads_each_scheduler_s_variables(env: dict[str, str], count: int | None,
                                               shard: Shard) -> None:
    """Kubernetes, Slurm and AWS Batch each give the index their way; the count comes from
    --shard-count first."""
    assert shard_from_environment(env, count) == shard


@pytest.mark.parametrize(("env", "count", "named"), [
    ({}, 4, "none of JOB_COMPLETION_INDEX, SLURM_ARRAY_TASK_ID, AWS_BATCH_JOB_ARRAY_INDEX"),
    ({"JOB_COMPLETION_INDEX": "2"}, None, "no shard count is given: set --shard-count"),
    ({"JOB_COMPLETION_INDEX": "two"}, 4, "JOB_COMPLETION_INDEX='two' is not a whole number"),
    ({"JOB_COMPLETION_INDEX": "4"}, 4, r"shard 4 \(JOB_COMPLETION_INDEX 4\) is out of range"),
    ({"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "4"}, None,
     "SLURM_ARRAY_TASK_MIN is not set"),
    ({"AWS_BATCH_JOB_ARRAY_INDEX": "1", "AWS_BATCH_JOB_ARRAY_SIZE": "x"}, None,
     "AWS_BATCH_JOB_ARRAY_SIZE='x' is not a whole number"),
])
def test_auto_names_the_variable_that_is_wrong(env: dict[str, str], count: int | None,
                                               named: str) -> None:
    """A missing, non-numeric or out-of-range variable is refused, naming it."""
    with pytest.raises(ValueError, match=named):
        shard_from_environment(env, count)


def _cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("REANALYZER_", "SLURM_", "AWS_BATCH_", "JOB_COMPLETION"))}
    return subprocess.run([sys.executable, "-m", "reanalyzer", *args], cwd=cwd,
                          env={**clean, **env}, capture_output=True, text=True, timeout=60,
                          check=False)


def _input(path: Path) -> Path:
    lines = [MD5_EMPTY, SHA1_EMPTY.upper(), "junk", SHA256_EMPTY, EICAR_MD5, MD5_EMPTY,
             EICAR_SHA1, "", "# note"]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_auto_in_a_kubernetes_indexed_job_runs_that_shard(tmp_path: Path) -> None:
    """JOB_COMPLETION_INDEX=2 with --shard-count 4 is shard 2 of 4; without the count, exit 2
    naming it."""
    _input(tmp_path / "h.txt")
    done = _cli("run", "--dry-run", "--report-format", "json", "--shard", "auto",
                "--shard-count", "4", "h.txt", cwd=tmp_path, JOB_COMPLETION_INDEX="2")
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["shard"] == "2/4"
    assert shown["to_send_total"] == sum(shard_of(h, 4) == 2 for h in (
        MD5_EMPTY, SHA1_EMPTY, SHA256_EMPTY, EICAR_MD5, EICAR_SHA1))
    refused = _cli("run", "--dry-run", "--shard", "auto", "h.txt", cwd=tmp_path,
                   JOB_COMPLETION_INDEX="2")
    assert refused.returncode == ExitCode.USAGE
    assert "no shard count is given: set --shard-count" in refused.stderr
    assert "Traceback" not in refused.stderr


# --- the front keeps one shard's records ---------------------------------------------------------

def _front(path: Path, shard: Shard | None, dedupe: bool = True) -> tuple[Any, FakeSink]:
    sink = FakeSink()
    stats = asyncio.run(run_front(read_blocks([str(path)], InputFormat.TEXT, None), sink, 3,
                                  dedupe=dedupe, idle_flush=5, shard=shard))
    return stats, sink


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_every_record_is_one_shard_s(tmp_path: Path, count: int) -> None:
    """Over shards 0..N-1 every record of the input is handed over exactly once, as the
    unsharded front hands it: a hash by its shard, its repeats with it, invalid lines by 0."""
    path = _input(tmp_path / "h.txt")
    whole_stats, whole = _front(path, None)
    sent: list[int] = []
    invalid: list[int] = []
    duplicates: list[int] = []
    records = 0
    for k in range(count):
        stats, sink = _front(path, Shard(k, count))
        records += stats.records
        assert stats.records == stats.to_send + stats.duplicates + stats.invalid
        for chunk in sink.chunks:
            assert all(shard_of(h, count) == k for h in chunk.hashes)
            sent += chunk.positions
        assert not sink.invalid or k == 0
        invalid += [p for p, _ in sink.invalid]
        duplicates += [p for _, _, p in sink.duplicates]
    assert records == whole_stats.records
    assert sorted(sent) == sorted(p for c in whole.chunks for p in c.positions)
    assert sorted(invalid) == sorted(p for p, _ in whole.invalid)
    assert sorted(duplicates) == sorted(p for _, _, p in whole.duplicates)


# --- the job's identity and directory ------------------------------------------------------------

def test_a_shard_s_job_directory_names_it_and_another_count_is_refused(tmp_path: Path) -> None:
    """The default job directory ends in -shard-KofN, the same id for every shard of a job; a
    resume of that directory with another N is refused, naming the shard."""
    from reanalyzer.run import job

    _input(tmp_path / "h.txt")
    dirs = [job._job_dir(s, job._identity(s, ["h.txt"]), ["h.txt"])
            for s in (load_settings({"shard": f"{k}/3"}) for k in range(3))]
    assert [d.name.rsplit("-", 2)[-2:] for d in dirs] == [["shard", f"{k}of3"] for k in range(3)]
    assert len({d.name.rsplit("-shard-", 1)[0] for d in dirs}) == 1
    first = _cli("run", "--url", "http://127.0.0.1:9", "--shard", "1/3", "--job-dir", "j",
                 "--max-requests", "1", "--unreachable-timeout", "0.5", "h.txt", cwd=tmp_path,
                 REANALYZER_TOKEN="t")
    assert (tmp_path / "j" / JOB_FILE).exists(), first.stderr
    again = _cli("run", "--url", "http://127.0.0.1:9", "--shard", "1/4", "--job-dir", "j",
                 "h.txt", cwd=tmp_path, REANALYZER_TOKEN="t")
    assert again.returncode == ExitCode.JOB
    assert "shard was '1/3', now '1/4'" in again.stderr


# --- status and report over the shards -----------------------------------------------------------

def make_shard(job_dir: Path, shard: str | None, records: list[dict[str, Any]],
               complete: bool = True, inputs: str = "/data/h.txt") -> Path:
    job_dir.mkdir(parents=True)
    settings: dict[str, Any] = {"url": "https://a1000.example", "analysis": "core"}
    if shard is not None:
        settings["shard"] = shard
    (job_dir / JOB_FILE).write_text(json.dumps(
        {"inputs": [{"path": inputs, "size": 1, "mtime_ns": 1}], "settings": settings}))
    (job_dir / OUTCOMES_FILE).write_text("".join(json.dumps(r) + "\n" for r in records))
    failed = sum(r["status"] == "failed" for r in records)
    write_checkpoint(job_dir, Checkpoint(0, 99, 999, complete, failed))
    return job_dir


def rec(line: int, status_: Status) -> dict[str, Any]:
    return record(hash_value=f"{line:032x}", hash_type="md5", status=status_, source="h.txt",
                  line=line, ts="2026-01-02T03:04:05.000Z")


def _status(*dirs: Path) -> tuple[int, dict[str, Any]]:
    out = subprocess.run([sys.executable, "-m", "reanalyzer", "status", "--json",
                          *map(str, dirs)], capture_output=True, text=True, check=False)
    assert "Traceback" not in out.stderr
    return out.returncode, json.loads(out.stdout) if out.stdout else {}


def test_status_over_shards_exits_0_only_when_all_are_finished(tmp_path: Path) -> None:
    """Shards all finished: 0; one not finished: 4, naming it; a line failed: 1; a missing
    shard: 4, naming the shard."""
    a = make_shard(tmp_path / "a", "0/3", [rec(1, Status.QUEUED), rec(4, Status.INVALID)])
    b = make_shard(tmp_path / "b", "1/3", [rec(2, Status.NOT_FOUND)])
    c = make_shard(tmp_path / "c", "2/3", [rec(3, Status.QUEUED)], complete=False)
    code, shown = _status(a, b, c)
    assert code == ExitCode.INTERRUPTED
    assert shown["unfinished"] == [str(c)]
    assert shown["finished"] == [str(a), str(b)]
    assert shown["by_status"] == {"queued": 2, "not_found": 1, "invalid": 1}
    write_checkpoint(c, Checkpoint(0, 99, 999, True, 0))
    assert _status(a, b, c)[0] == ExitCode.OK
    code, shown = _status(a, b)
    assert code == ExitCode.INTERRUPTED
    assert shown["missing_shards"] == [f"shard 2/3 of the job of {a} (the directory of that "
                                       "shard)"]
    d = make_shard(tmp_path / "d", "2/3", [rec(3, Status.FAILED)])
    assert _status(a, b, d)[0] == ExitCode.SOME_FAILED
    text = subprocess.run([sys.executable, "-m", "reanalyzer", "status", str(a), str(b)],
                          capture_output=True, text=True, check=False).stdout
    assert f"missing    shard 2/3 of the job of {a}" in text
    assert "not finished: 2 of 2 directories finished, 1 shard missing" in text


def test_status_of_one_directory_stays_a_view_unless_checked(tmp_path: Path) -> None:
    """One directory alone exits 0 as before; with --check it exits as several do."""
    c = make_shard(tmp_path / "c", "2/3", [rec(3, Status.QUEUED)], complete=False)
    plain = subprocess.run([sys.executable, "-m", "reanalyzer", "status", str(c)],
                           capture_output=True, text=True, check=False)
    assert plain.returncode == 0
    checked = subprocess.run([sys.executable, "-m", "reanalyzer", "status", "--check", str(c)],
                             capture_output=True, text=True, check=False)
    assert checked.returncode == ExitCode.INTERRUPTED


def test_shards_cut_differently_or_given_twice_are_refused(tmp_path: Path) -> None:
    """Two counts of one job, or one shard twice, add up to no answer: exit 2 naming them."""
    a = make_shard(tmp_path / "a", "0/2", [rec(1, Status.QUEUED)])
    b = make_shard(tmp_path / "b", "1/3", [rec(2, Status.QUEUED)])
    a2 = make_shard(tmp_path / "a2", "0/2", [rec(1, Status.QUEUED)])
    with pytest.raises(UsageError, match="different shard counts"):
        status.several_status([a, b])
    with pytest.raises(UsageError, match=f"shard 0/2 of one job is given twice: {a} and {a2}"):
        status.several_status([a, a2])
    other = make_shard(tmp_path / "other", "1/2", [rec(2, Status.QUEUED)], inputs="/data/x")
    assert status.several_status([a, other]).missing_shards == [
        f"shard 1/2 of the job of {a} (the directory of that shard)",
        f"shard 0/2 of the job of {other} (the directory of that shard)"]


def test_report_over_shards_gives_every_line_once(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """report DIR... lists the final outcome of each shard's lines; a missing shard is named
    and nothing is printed."""
    a = make_shard(tmp_path / "a", "0/2", [rec(1, Status.FAILED), rec(3, Status.QUEUED),
                                           rec(1, Status.QUEUED)])
    b = make_shard(tmp_path / "b", "1/2", [rec(2, Status.NOT_FOUND)])
    plain = make_shard(tmp_path / "plain", None, [rec(9, Status.NOT_FOUND)], inputs="/other")
    parser = argparse.ArgumentParser()
    report.configure_parser(parser)
    assert report.run(parser.parse_args([str(a), str(b), "--format", "json"])) == 0
    shown = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted((r["line"], r["status"]) for r in shown) == [
        (1, "queued"), (2, "not_found"), (3, "queued")]
    assert report.run(parser.parse_args([str(a), str(b), str(plain), "--status", "not_found",
                                         "--format", "list"])) == 0
    assert capsys.readouterr().out.split() == [f"{2:032x}", f"{9:032x}"]
    with pytest.raises(UsageError, match=f"missing shard 1/2 of the job of {a}"):
        report.run(parser.parse_args([str(a), str(plain)]))
    assert capsys.readouterr().out == ""
