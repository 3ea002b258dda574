"""Durable jobs, end to end: the real CLI in a subprocess, killed, stopped, refused and resumed,
against the appliance simulator in another subprocess on 127.0.0.1.

Every test reads the outcome log as a stranger would (every line must parse) and the
simulator's request log to see what the appliance really accepted.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import resource
import selectors
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from reanalyzer.errors import ExitCode
from reanalyzer.record.outcome_log import read_records
from reanalyzer.simulator import Endpoint, read_log

TOKEN = "tok-durability-4f0c2b9e71d3a856"
CONCURRENCY = 4
BATCH = 50
ACCEPTED = (200, 201)
WORLD = ["--share-absent", "0.1", "--share-extracted", "0.05", "--share-queued", "0.1"]
RESUME_HINT = "run the same command again to resume"


def env(**extra: str) -> dict[str, str]:
    """The environment of a subprocess: no REANALYZER_* of the developer's, the test token."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("REANALYZER_")}
    return {**clean, "REANALYZER_TOKEN": TOKEN, **extra}


def wait_for(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll `check` until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.005)


# --- the simulator ---------------------------------------------------------------------------


@dataclass
class Simulator:
    proc: subprocess.Popen[bytes]
    url: str
    request_log: Path
    input: Path | None

    def requests(self) -> int:
        return len(read_log(self.request_log)) if self.request_log.exists() else 0

    def accepted(self) -> Counter[str]:
        """Per hash (lowercased), how many accepted reanalysis requests named it."""
        times: Counter[str] = Counter()
        for r in read_log(self.request_log):
            if r.status in ACCEPTED and r.endpoint is not Endpoint.STATUS:
                times.update(h.lower() for h in r.hashes)
        return times


def _read_url(proc: subprocess.Popen[bytes], timeout: float = 60.0) -> str:
    """The URL from the simulator's first stdout line, read without blocking past `timeout`."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buf = b""
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                pytest.fail("the simulator did not say where it listens")
            chunk = os.read(fd, 4096)
            if not chunk:
                pytest.fail(f"the simulator exited with {proc.wait()}")
            buf += chunk
    first = buf.split(b"\n", 1)[0].decode()
    assert first.startswith("simulator listening on "), first
    return first.split()[3]


class Simulators:
    """Simulator subprocesses started in one directory, stopped together."""

    def __init__(self, where: Path) -> None:
        self.where = where
        self.started: list[subprocess.Popen[bytes]] = []

    def __call__(self, name: str, *args: str, lines: int | None = None) -> Simulator:
        """Start one (with `lines`: and write its input first); wait until it listens."""
        request_log = self.where / f"{name}-requests.jsonl"
        input_path = self.where / f"{name}-input.txt" if lines else None
        write = ["--write-input", str(input_path), "--lines", str(lines)] if input_path else []
        proc = subprocess.Popen(
            [sys.executable, "-m", "reanalyzer", "simulate", "--port", "0",
             "--request-log", str(request_log), *write, *args],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env(), cwd=self.where)
        self.started.append(proc)
        return Simulator(proc, _read_url(proc), request_log, input_path)

    def close(self) -> None:
        for proc in self.started:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            assert proc.stdout is not None
            proc.stdout.close()


@pytest.fixture
def simulators(tmp_path: Path) -> Iterator[Simulators]:
    """Start simulator subprocesses for this test; each is stopped afterwards."""
    started = Simulators(tmp_path)
    yield started
    started.close()


@pytest.fixture(scope="module")
def slow_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    """A simulator slow enough (300 ms an answer) that a run is caught mid-job: 1,500 lines,
    about 22 bulk requests, 6 rounds of 4."""
    started = Simulators(tmp_path_factory.mktemp("slow_sim"))
    yield started("slow", "--samples", "1100", "--seed", "11", "--latency-ms", "300", *WORLD,
                  lines=1500)
    started.close()


@pytest.fixture(scope="module")
def fast_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    """A simulator without latency, and its 2,000-line input."""
    started = Simulators(tmp_path_factory.mktemp("fast_sim"))
    yield started("fast", "--samples", "1500", "--seed", "12", *WORLD, lines=2000)
    started.close()


# --- the runner ------------------------------------------------------------------------------


@dataclass
class Run:
    proc: subprocess.Popen[bytes]
    stderr_path: Path

    def wait(self, timeout: float = 60.0) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"the run did not end within {timeout} s:\n{self.stderr}")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


_runs = iter(range(1_000_000))


def start_run(
    sim: Simulator,
    job_dir: Path,
    *args: str,
    inputs: list[Path] | None = None,
    failpoint: str | None = None,
    preexec_fn: Callable[[], None] | None = None,
    cwd: Path | None = None,
    stdin: Any = subprocess.DEVNULL,
) -> Run:
    """`python -m reanalyzer run` on the simulator's input, in the job directory's parent."""
    cwd = cwd or job_dir.parent
    stderr_path = cwd / f"run-{next(_runs)}.stderr"
    paths = inputs if inputs is not None else [sim.input]
    extra = {"REANALYZER_FAILPOINT": failpoint} if failpoint else {}
    with stderr_path.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "reanalyzer", "run", "--url", sim.url,
             "--job-dir", str(job_dir), "--log-format", "json", "--log-level", "warning",
             "--idle-flush", "0.05", "--concurrency", str(CONCURRENCY),
             "--batch-size", str(BATCH), *args, *(str(p) for p in paths)],
            stdin=stdin, stdout=subprocess.DEVNULL, stderr=err,
            env=env(**extra), cwd=cwd, preexec_fn=preexec_fn)
    return Run(proc, stderr_path)


def run(sim: Simulator, job_dir: Path, *args: str, **kw: Any) -> tuple[int, str]:
    """Run to its end: the exit code and stderr."""
    started = start_run(sim, job_dir, *args, **kw)
    code = started.wait()
    return code, started.stderr


# --- reading the outcome log -----------------------------------------------------------------


def log_lines(job_dir: Path) -> list[dict[str, Any]]:
    """Every record of the outcome log (its closed segments, then its open one, each line of
    which must be whole)."""
    path = job_dir / "outcomes.jsonl"
    data = path.read_bytes() if path.exists() else b""
    assert not data or data.endswith(b"\n"), f"torn last line: {data[-120:]!r}"
    return list(read_records(path))


def records_written(job_dir: Path) -> int:
    return sum(1 for _ in read_records(job_dir / "outcomes.jsonl"))


def log_files(job_dir: Path) -> dict[str, bytes]:
    """Every file of the outcome log, by name: its segments, closed and open."""
    return {p.name: p.read_bytes() for p in sorted(job_dir.iterdir())
            if p.name.startswith(("outcomes", "details"))}


def record_lines(path: Path) -> set[int]:
    """Line numbers of an input's records: not blank, not a # comment."""
    numbers = set()
    with path.open("rb") as f:
        for n, raw in enumerate(f, 1):
            stripped = raw.strip()
            if stripped and not stripped.startswith(b"#"):
                numbers.add(n)
    return numbers


def final_by_line(records: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    return {(r["source"], r["line"]): r for r in records}


def assert_each_line_once(job_dir: Path, inputs: list[Path]) -> dict[int, dict[str, Any]]:
    """Every record line of the inputs has exactly one record, none `failed`, and no other line
    has any; return the records by line (of a single input)."""
    records = log_lines(job_dir)
    per_line = Counter((r["source"], r["line"]) for r in records)
    twice = {k: n for k, n in per_line.items() if n > 1}
    assert not twice, f"lines recorded more than once: {sorted(twice.items())[:10]}"
    expected = {(str(p), n) for p in inputs for n in record_lines(p)}
    assert set(per_line) == expected
    assert not [r for r in records if r["status"] == "failed"]
    return {r["line"]: r for r in records}


# --- kill -9, many times ---------------------------------------------------------------------

FAILPOINTS = ["journal.after_write", "sender.after_response", "checkpoint.before_fsync",
              "checkpoint.before_rename", "checkpoint.after_rename"]


@pytest.mark.slow
def test_killed_many_times_the_job_still_ends_with_one_right_outcome_per_line(
    simulators: Simulators, tmp_path: Path
) -> None:
    """kill -9 at random moments and at every failpoint, resumed after each: every input line
    ends with exactly one record (none written twice, none torn), the same statuses a clean run
    gives, and no sample accepted more often than the in-flight window allows per kill."""
    rng = random.Random(20240611)
    world = ["--samples", "3000", "--seed", "5", *WORLD]
    sim = simulators("crash", *world, "--latency-ms", "120", "--latency-jitter-ms", "60",
                     lines=5000)
    assert sim.input is not None
    job_dir = tmp_path / "job"
    # Each step: a failpoint (name:N), a delay after the start, or a number of records more in
    # the log; about 60 bulk requests of 100-150 ms in rounds of 4 make the job last a dozen.
    limits = {"journal.after_write": 6, "sender.after_response": 8}
    failpoints = [("failpoint", f"{name}:{rng.randint(1, limits.get(name, 1))}")
                  for name in rng.sample(FAILPOINTS, len(FAILPOINTS))]
    moments: list[tuple[str, Any]] = [("delay", rng.uniform(0.5, 2.0)) for _ in range(4)]
    moments += [("records", rng.randint(1, 300)) for _ in range(3)]
    rng.shuffle(moments)
    plan = [step for pair in zip(moments, failpoints, strict=False) for step in pair]
    plan += moments[len(failpoints):]  # every failpoint early, while there is work to kill
    kills, hit = 0, set()
    for kind, arg in plan:
        before = records_written(job_dir)
        started = start_run(sim, job_dir, failpoint=arg if kind == "failpoint" else None)
        if kind == "delay":
            try:
                started.proc.wait(timeout=arg)
            except subprocess.TimeoutExpired:
                started.proc.kill()
        elif kind == "records":
            wait_for(lambda: started.proc.poll() is not None  # noqa: B023  (called at once)
                     or records_written(job_dir) >= before + arg, f"{arg} more records")  # noqa: B023
            if started.proc.poll() is None:
                started.proc.kill()
        code = started.wait()
        assert code in (-signal.SIGKILL, ExitCode.OK), f"{kind} {arg}: {code}\n{started.stderr}"
        kills += code == -signal.SIGKILL
        if kind == "failpoint" and code == -signal.SIGKILL:
            hit.add(arg.partition(":")[0])
        log_lines(job_dir)  # whole lines only, even right after a kill
    assert kills >= 8, f"only {kills} runs were really killed"
    assert hit == set(FAILPOINTS)

    code, stderr = run(sim, job_dir)
    assert code == ExitCode.OK, stderr
    crashed = assert_each_line_once(job_dir, [sim.input])

    clean_sim = simulators("clean", *world)
    clean_dir = tmp_path / "clean-job"
    code, stderr = run(clean_sim, clean_dir, inputs=[sim.input])
    assert code == ExitCode.OK, stderr
    clean = assert_each_line_once(clean_dir, [sim.input])

    accepted = sim.accepted()
    resent = 0
    for line, want in clean.items():
        got = crashed[line]
        assert got["hash"] == want["hash"], line
        if want["status"] in ("queued", "already_queued"):
            times = accepted[got["hash"]]
            assert 1 <= times <= 1 + kills, (line, got["hash"], times)
            resent += times - 1
            if want["status"] == "queued" and times > 1:  # its first 201 answer was lost
                assert got["status"] in ("queued", "already_queued"), (line, got)
                continue
        assert got["status"] == want["status"], (line, got, want)
    assert resent <= kills * CONCURRENCY * BATCH
    assert max(accepted.values()) <= 1 + kills


# --- clean stop ------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_cleanly_and_the_same_command_resumes(
    slow_sim: Simulator, tmp_path: Path, signum: int
) -> None:
    """SIGINT or SIGTERM mid-job: the requests in flight are recorded, a checkpoint written,
    exit 4 with how to resume; the same command then finishes the job."""
    job_dir = tmp_path / "job"
    started = start_run(slow_sim, job_dir)
    wait_for(lambda: records_written(job_dir) > 0, "the first records")
    started.proc.send_signal(signum)
    assert started.wait() == ExitCode.INTERRUPTED, started.stderr
    assert RESUME_HINT in started.stderr
    assert (job_dir / "checkpoint.json").exists()
    stopped_with = len(log_lines(job_dir))
    assert 0 < stopped_with < len(record_lines(slow_sim.input or Path()))

    code, stderr = run(slow_sim, job_dir)
    assert code == ExitCode.OK, stderr
    assert_each_line_once(job_dir, [slow_sim.input or Path()])


def test_a_second_signal_exits_at_once_and_the_job_still_resumes(
    simulators: Simulators, tmp_path: Path
) -> None:
    """A second SIGTERM during the drain exits 4 at once; the job resumes as cleanly."""
    # Answers slow enough (2 s) that the drain outlasts the moment in which a second signal is
    # the same request to stop; few lines, so that the resume is short.
    slow_sim = simulators("slower", "--samples", "1100", "--seed", "11", "--latency-ms", "2000",
                          *WORLD, lines=500)
    job_dir = tmp_path / "job"
    started = start_run(slow_sim, job_dir)
    wait_for(lambda: records_written(job_dir) > 20, "the first answer's records")
    started.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: "stopping" in started.stderr, "the stop message")
    time.sleep(1.2)  # signals within a moment of the first are one request to stop
    started.proc.send_signal(signal.SIGTERM)
    assert started.wait(timeout=10) == ExitCode.INTERRUPTED, started.stderr
    assert "exiting now" in started.stderr
    log_lines(job_dir)

    code, stderr = run(slow_sim, job_dir)
    assert code == ExitCode.OK, stderr
    assert_each_line_once(job_dir, [slow_sim.input or Path()])


def test_a_signal_while_the_last_requests_are_in_flight_stops_cleanly(
    slow_sim: Simulator, tmp_path: Path
) -> None:
    """Once all input is read and only the last requests are out, SIGTERM still stops cleanly
    (exit 4, or 0 had they all finished), never death by the signal; the job then completes."""
    assert slow_sim.input is not None
    small = tmp_path / "small.txt"  # under one window (8 chunks of 50): read at once
    small.write_text("".join(slow_sim.input.read_text().splitlines(keepends=True)[:300]))
    job_dir = tmp_path / "job"
    started = start_run(slow_sim, job_dir, inputs=[small])
    wait_for(lambda: records_written(job_dir) > 0, "the first records")
    started.proc.send_signal(signal.SIGTERM)
    code = started.wait()
    assert code in (ExitCode.INTERRUPTED, ExitCode.OK), (code, started.stderr)
    assert (job_dir / "checkpoint.json").exists()

    code, stderr = run(slow_sim, job_dir, inputs=[small])
    assert code == ExitCode.OK, stderr
    assert_each_line_once(job_dir, [small])


# --- one run per job -------------------------------------------------------------------------


def test_a_second_run_on_the_job_is_refused_until_the_first_dies(
    slow_sim: Simulator, tmp_path: Path
) -> None:
    """While a run works on a job a second one exits 8 naming its pid; once the first is
    killed -9 its lock does not block the resume."""
    job_dir = tmp_path / "job"
    first = start_run(slow_sim, job_dir)
    lock = job_dir / "lock"
    wait_for(lambda: lock.exists() and lock.read_text().strip() == str(first.proc.pid),
             "the first run's lock")
    code, stderr = run(slow_sim, job_dir)
    assert code == ExitCode.JOB
    assert f"pid {first.proc.pid}" in stderr
    assert first.proc.poll() is None  # the refused run left the first alone

    first.proc.kill()
    assert first.wait() == -signal.SIGKILL
    code, stderr = run(slow_sim, job_dir)
    assert code == ExitCode.OK, stderr
    assert_each_line_once(job_dir, [slow_sim.input or Path()])


# --- storage faults --------------------------------------------------------------------------


def test_a_job_directory_that_cannot_be_created_exits_8(
    fast_sim: Simulator, tmp_path: Path
) -> None:
    """A --job-dir under a regular file (unwritable, even for root) ends the run with exit 8
    and a message naming it; nothing is sent."""
    (tmp_path / "afile").write_text("not a directory")
    before = fast_sim.requests()
    job_dir = tmp_path / "afile" / "job"
    code, stderr = run(fast_sim, job_dir, cwd=tmp_path)
    assert code == ExitCode.JOB
    assert "job directory" in stderr
    assert str(job_dir) in stderr
    assert "Traceback" not in stderr
    assert fast_sim.requests() == before


def _file_size_limit(limit: int) -> Callable[[], None]:
    def preexec() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


def test_a_full_disk_leaves_a_log_of_whole_lines(fast_sim: Simulator, tmp_path: Path) -> None:
    """When the disk fills mid-batch, the log a reader sees right after the run holds whole
    records only."""
    job_dir = tmp_path / "job"
    code, stderr = run(fast_sim, job_dir, preexec_fn=_file_size_limit(40_000))
    assert code == ExitCode.JOB, stderr
    records = log_lines(job_dir)
    # The summary claims no record the log does not hold, and no temporary file is left.
    summary = json.loads((job_dir / "summary.json").read_text())
    assert 0 < summary["recorded_total"] <= len(records)
    assert not list(job_dir.glob("*.tmp"))


def test_a_full_disk_exits_8_keeps_the_log_readable_and_resumes(
    fast_sim: Simulator, tmp_path: Path
) -> None:
    """A full disk (a file size limit) ends the run with exit 8 and a message saying what
    happened; the records before it stay readable, and with space again the job completes."""
    job_dir = tmp_path / "job"
    code, stderr = run(fast_sim, job_dir, preexec_fn=_file_size_limit(40_000))
    assert code == ExitCode.JOB, stderr
    assert "outcomes.jsonl" in stderr
    assert "File too large" in stderr
    assert "Traceback" not in stderr
    data = (job_dir / "outcomes.jsonl").read_bytes()
    whole = data[: data.rfind(b"\n") + 1]
    assert whole.count(b"\n") > 10
    for line in whole.splitlines():  # every whole line holds records
        assert all(n > 0 for n in json.loads(line)["lines"])

    code, stderr = run(fast_sim, job_dir)
    assert code == ExitCode.OK, stderr
    assert_each_line_once(job_dir, [fast_sim.input or Path()])


# --- changed input ---------------------------------------------------------------------------


def test_a_changed_input_is_refused_and_fresh_starts_over(
    fast_sim: Simulator, tmp_path: Path
) -> None:
    """After the input file changed, the same job directory refuses it (exit 8, saying so);
    --fresh starts the job over with one record per line of the new input."""
    assert fast_sim.input is not None
    path = tmp_path / "hashes.txt"
    shutil.copyfile(fast_sim.input, path)
    job_dir = tmp_path / "job"
    code, stderr = run(fast_sim, job_dir, inputs=[path])
    assert code == ExitCode.OK, stderr

    with path.open("a") as f:
        f.write("d41d8cd98f00b204e9800998ecf8427e\n")
    code, stderr = run(fast_sim, job_dir, inputs=[path])
    assert code == ExitCode.JOB
    assert "input" in stderr
    assert "--fresh" in stderr

    code, stderr = run(fast_sim, job_dir, "--fresh", inputs=[path])
    assert code == ExitCode.OK, stderr
    assert_each_line_once(job_dir, [path])


# --- a finished job --------------------------------------------------------------------------


def test_resuming_a_finished_job_sends_nothing(fast_sim: Simulator, tmp_path: Path) -> None:
    """The same command on a finished job exits 0 at once without a single request."""
    job_dir = tmp_path / "job"
    code, stderr = run(fast_sim, job_dir)
    assert code == ExitCode.OK, stderr
    log_before = log_files(job_dir)
    requests = fast_sim.requests()

    code, stderr = run(fast_sim, job_dir)
    assert code == ExitCode.OK, stderr
    assert "already done" in stderr
    assert fast_sim.requests() == requests
    assert log_files(job_dir) == log_before


# --- standard input --------------------------------------------------------------------------


def start_stdin_run(sim: Simulator, job_dir: Path, stdin: Any) -> Run:
    """`python -m reanalyzer run ... -`: the job reads standard input (`stdin` of Popen)."""
    return start_run(sim, job_dir, inputs=[Path("-")], stdin=stdin)


def stopped_before_the_end_of_stdin(sim: Simulator, job_dir: Path) -> bytes:
    """A stdin job given the first 800 lines of the input, then stopped while stdin is still
    open: its spool holds only part of the input. Returns the whole input."""
    data = (sim.input or Path()).read_bytes()
    first = b"".join(data.splitlines(keepends=True)[:800])
    started = start_stdin_run(sim, job_dir, subprocess.PIPE)
    assert started.proc.stdin is not None
    started.proc.stdin.write(first)
    started.proc.stdin.flush()
    wait_for(lambda: records_written(job_dir) > 100, "records of the first lines")
    started.proc.send_signal(signal.SIGINT)
    assert started.wait() == ExitCode.INTERRUPTED, started.stderr
    started.proc.stdin.close()
    assert not (job_dir / "stdin.spool.complete").exists()
    return data


def test_a_stdin_job_stopped_early_goes_on_with_the_same_input_piped_again(
    fast_sim: Simulator, tmp_path: Path
) -> None:
    """The same command, the same input on stdin: the lines the first run never read are read
    now and recorded once each; none is lost, none recorded twice."""
    job_dir = tmp_path / "job"
    data = stopped_before_the_end_of_stdin(fast_sim, job_dir)

    # Nothing more on stdin: the spool's lines are finished, then it says how to go on.
    empty = start_stdin_run(fast_sim, job_dir, subprocess.DEVNULL)
    assert empty.wait() == ExitCode.INPUT, empty.stderr
    assert "pipe the whole input in again" in empty.stderr
    assert records_written(job_dir) == len(log_lines(job_dir)) > 100

    rerun = start_stdin_run(fast_sim, job_dir, subprocess.PIPE)
    assert rerun.proc.stdin is not None
    rerun.proc.stdin.write(data)
    rerun.proc.stdin.close()
    assert rerun.wait() == ExitCode.OK, rerun.stderr
    assert (job_dir / "stdin.spool").read_bytes() == data
    records = log_lines(job_dir)
    per_line = Counter((r["source"], r["line"]) for r in records)
    assert max(per_line.values()) == 1
    assert set(per_line) == {("<stdin>", n) for n in record_lines(fast_sim.input or Path())}
    assert not [r for r in records if r["status"] == "failed"]


def test_a_stdin_job_refuses_to_go_on_with_another_input(
    fast_sim: Simulator, tmp_path: Path
) -> None:
    job_dir = tmp_path / "job"
    data = stopped_before_the_end_of_stdin(fast_sim, job_dir)
    rerun = start_stdin_run(fast_sim, job_dir, subprocess.PIPE)
    assert rerun.proc.stdin is not None
    with contextlib.suppress(BrokenPipeError):  # it may stop reading as soon as it differs
        rerun.proc.stdin.write(data.replace(b"a", b"b"))
    with contextlib.suppress(BrokenPipeError):
        rerun.proc.stdin.close()
    assert rerun.wait() == ExitCode.JOB
    assert "standard input differs" in rerun.stderr


def test_sigterm_outside_a_run_s_own_handlers_is_an_interruption(tmp_path: Path) -> None:
    """SIGTERM where no run has installed its handlers (here a dry run waiting on stdin; also
    while a big job's log is loaded) exits 4 with a message, as SIGINT does, not 143."""
    with subprocess.Popen(
        [sys.executable, "-m", "reanalyzer", "run", "--dry-run", "-"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env(),
        cwd=tmp_path,
    ) as proc:
        assert proc.stdin is not None
        assert proc.stderr is not None
        proc.stdin.write(b"d41d8cd98f00b204e9800998ecf8427e\n")  # and then nothing more
        proc.stdin.flush()
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
        wait_for(lambda: children.read_text().strip() != "", "the read-ahead child")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == ExitCode.INTERRUPTED
        assert "interrupted" in proc.stderr.read().decode()
