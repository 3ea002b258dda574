"""The real job (`send_job`, and `python -m reanalyzer run` in a subprocess) against the simulator.

Every test checks the outcome log line by line against what the simulator's world says each line
must get, and reads the simulator's request log to see what the appliance was really sent.
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import os
import socket
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from support import StartSim, isolate, simulators

from reanalyzer.errors import ExitCode, MisconfiguredError, UnreachableError
from reanalyzer.record import jobdir
from reanalyzer.record.checkpoint import read_checkpoint
from reanalyzer.record.outcome_log import OUTCOMES_FILE, read_records
from reanalyzer.run import job
from reanalyzer.run import run as running
from reanalyzer.send.config import SendConfig
from reanalyzer.settings import load_settings
from reanalyzer.simulator import (
    Endpoint,
    Fault,
    RequestRecord,
    RunningSimulator,
    SampleKind,
    write_input,
)

TOKEN = "tok-7c1e9a55d0b34f28-integration"  # distinctive, so that a leak is found by grep
WRONG_TOKEN = "tok-wrong-3b8f0e6a2c914d77"
HEX = frozenset("0123456789abcdef")
HASH_LENGTHS = frozenset({32, 40, 64, 128})
ACCEPTED = (200, 201)



@pytest.fixture
async def start() -> AsyncIterator[StartSim]:
    """Start simulators in this test's loop with SimulatorConfig fields; closed afterwards."""
    async with simulators(TOKEN, samples=400, seed=3) as start:
        yield start


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(monkeypatch, tmp_path)


async def run_in_process(
    sim: RunningSimulator, inputs: list[Path], job_dir: Path, **cli: Any
) -> int:
    settings = load_settings(
        {"url": sim.url, "token": TOKEN, "job_dir": job_dir, "idle_flush": 0.05, **cli}
    )
    return await job.send_job(settings, [str(p) for p in inputs])


async def run_subprocess(
    url: str, inputs: list[Path], job_dir: Path, *args: str, token: str = TOKEN
) -> tuple[int, str]:
    """`python -m reanalyzer run` with the token in the environment; exit code and stderr.
    Run through asyncio so that the simulator in this loop keeps answering."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REANALYZER_")}
    env["REANALYZER_TOKEN"] = token
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "reanalyzer",
        "run",
        "--url",
        url,
        "--job-dir",
        str(job_dir),
        "--log-format",
        "json",
        "--idle-flush",
        "0.05",
        *args,
        *(str(p) for p in inputs),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, stderr.decode()


def outcomes(job_dir: Path) -> list[dict[str, Any]]:
    return list(read_records(job_dir / OUTCOMES_FILE))


def first_work(log: list[RequestRecord]) -> dict[str, Fault]:
    """Per hash, the fault of the first accepted request that named it (DROPPED: the work was
    done but the runner never saw the answer, so its retry is rightly told already_queued)."""
    first: dict[str, Fault] = {}
    for r in log:
        if r.status in ACCEPTED and r.endpoint is not Endpoint.STATUS:
            for h in r.hashes:
                first.setdefault(h.lower(), r.fault)
    return first


def expected_by_line(path: Path, sim: RunningSimulator, *, partial: bool = False) -> dict[int, str]:
    """What each non-blank, non-comment line of `path` must end as, given the world and the log.

    `partial`: every held, non-extracted sample is refused one analysis (cloud disconnected)."""
    world, work = sim.world, first_work(sim.log.records)
    seen: set[str] = set()
    expected: dict[int, str] = {}
    with path.open(encoding="ascii") as lines:
        for number, raw in enumerate(lines, 1):
            value = raw.strip().lower()
            if not value or value.startswith("#"):
                continue
            if len(value) not in HASH_LENGTHS or not HEX.issuperset(value):
                expected[number] = "invalid"
            elif value in seen:
                expected[number] = "duplicate"
            else:
                seen.add(value)
                index = world.find(value)
                sample = None if index is None else world.samples[index]
                if sample is None:
                    expected[number] = "not_found"
                elif sample.kind is SampleKind.EXTRACTED:
                    expected[number] = "not_allowed"
                elif partial:
                    expected[number] = "partial"
                elif sample.queued or work.get(value) is Fault.DROPPED:
                    expected[number] = "already_queued"
                else:
                    expected[number] = "queued"
    return expected


def assert_every_line_right(path: Path, job_dir: Path, sim: RunningSimulator, **kw: Any) -> None:
    """Exactly one record per line, and it is the one the world says."""
    records = outcomes(job_dir)
    per_line = Counter(r["line"] for r in records)
    assert max(per_line.values()) == 1, "a line was recorded twice"
    got = {r["line"]: r["status"] for r in records}
    expected = expected_by_line(path, sim, **kw)
    wrong = {n: (got.get(n), want) for n, want in expected.items() if got.get(n) != want}
    assert not wrong, f"{len(wrong)} lines wrong, e.g. {list(wrong.items())[:5]}"
    assert set(got) == set(expected)


def assert_no_token(*texts: str) -> None:
    for text in texts:
        assert TOKEN not in text
        assert WRONG_TOKEN not in text


def max_in_any_window(times: list[float], window: float = 1.0) -> int:
    """The largest number of events in any half-open window [t, t + window)."""
    times = sorted(times)
    return max((bisect.bisect_left(times, t + window) - i for i, t in enumerate(times)), default=0)


FAULTS: dict[str, Any] = {
    "error_rate": 0.05,
    "drop_rate": 0.03,
    "max_bulk": 8,  # below --batch-size 20
    "rate_limit": 150.0,  # undisclosed: the runner is given no --rate-limit
    "latency_ms": 2.0,
    "latency_jitter_ms": 3.0,
    "samples": 700,
    "share_absent": 0.1,
    "share_extracted": 0.04,
}


@pytest.mark.parametrize(
    ("absent_mode", "extracted_mode", "fault_seed"),
    [("omit", "request", 1), ("404", "item", 2)],
)
async def test_combined_faults_every_line_gets_its_one_right_outcome(
    start: StartSim,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    absent_mode: str,
    extracted_mode: str,
    fault_seed: int,
) -> None:
    """5xx, drops after the work, a bulk limit under the batch size, 429 over a hidden rate, absent
    samples omitted or 404, extracted ones per item or as a whole-request 405: every line ends with
    its one right outcome, exit 0, and the token is nowhere in the log or the output."""
    sim = await start(
        **FAULTS, absent_mode=absent_mode, extracted_mode=extracted_mode, fault_seed=fault_seed
    )
    path = tmp_path / "hashes.txt"
    counts = write_input(path, sim.world, 800, seed=fault_seed)
    code = await run_in_process(sim, [path], tmp_path / "job", batch_size=20, concurrency=8)
    assert code == ExitCode.OK
    assert_every_line_right(path, tmp_path / "job", sim)
    faults = sim.log.by_fault
    assert faults[Fault.SERVER_ERROR]
    assert faults[Fault.DROPPED]
    assert faults[Fault.RATE_LIMITED]
    assert sim.log.by_status[413] >= 1
    if extracted_mode == "request" and counts.extracted:
        assert sim.log.by_status[405] >= 1
    # Only a dropped answer may make the runner name a sample again once it was queued.
    dropped = Counter(
        h.lower() for r in sim.log.records if r.fault is Fault.DROPPED for h in r.hashes
    )
    for sample, times in sim.world.queue_counts():
        named = max(dropped[h] for h in sample.hashes())
        assert times <= 1 + named
    captured = capsys.readouterr()
    assert_no_token((tmp_path / "job" / OUTCOMES_FILE).read_text(), captured.out, captured.err)


async def test_combined_faults_through_the_cli(start: StartSim, tmp_path: Path) -> None:
    """The same faults through `python -m reanalyzer run` (token from the environment): exit 0,
    every line right, the token in neither the outcome log nor stderr's JSON logs."""
    sim = await start(**FAULTS, absent_mode="404", extracted_mode="request", fault_seed=5)
    path = tmp_path / "hashes.txt"
    write_input(path, sim.world, 800, seed=5)
    code, stderr = await run_subprocess(
        sim.url, [path], tmp_path / "job", "--batch-size", "20", "--concurrency", "8",
        "--log-level", "debug",
    )
    assert code == ExitCode.OK, stderr
    assert_every_line_right(path, tmp_path / "job", sim)
    # The CLI is single-threaded when the front starts: the inputs were read in a child process.
    assert '"where": "process", "event": "front.reading_ahead"' in stderr
    assert sim.log.by_fault[Fault.SERVER_ERROR]
    assert sim.log.by_fault[Fault.DROPPED]
    assert '"sender.retry_scheduled"' in stderr  # the JSON logs did show the failures
    assert_no_token((tmp_path / "job" / OUTCOMES_FILE).read_text(), stderr)


async def test_without_drops_no_sample_is_queued_twice(start: StartSim, tmp_path: Path) -> None:
    """5xx, 429 and whole-request 405 splits, but no drops: the appliance queues each sample at
    most once, and every distinct hash was named in exactly one accepted request."""
    sim = await start(
        error_rate=0.05,
        rate_limit=150.0,
        max_bulk=8,
        extracted_mode="request",
        samples=500,
        share_extracted=0.04,
    )
    path = tmp_path / "hashes.txt"
    write_input(path, sim.world, 700, seed=9)
    assert await run_in_process(sim, [path], tmp_path / "job", batch_size=16) == ExitCode.OK
    assert_every_line_right(path, tmp_path / "job", sim)
    assert max((t for _, t in sim.world.queue_counts()), default=0) == 1
    accepted = Counter(h for r in sim.log.records if r.status in ACCEPTED for h in r.hashes)
    assert max(accepted.values()) == 1


async def test_rate_limit_holds_at_the_appliance(start: StartSim, tmp_path: Path) -> None:
    """--rate-limit 40: the simulator's own log never shows more than 40 requests in any
    one-second window, and the runner gets close to the rate (≤ 3 s of sending)."""
    rate = 40
    sim = await start(samples=600, share_absent=0.0, share_extracted=0.0)
    path = tmp_path / "hashes.txt"
    path.write_text("\n".join(s.sha1 for s in sim.world.samples[:500]) + "\n")
    code = await run_in_process(
        sim, [path], tmp_path / "job", batch_size=5, concurrency=8, rate_limit=rate
    )
    assert code == ExitCode.OK
    times = [r.monotonic for r in sim.log.records]
    assert len(times) == 100
    assert max_in_any_window(times) <= rate
    assert (len(times) - 1) / (times[-1] - times[0]) >= 0.9 * rate
    assert times[rate - 1] - times[0] >= 0.9  # no burst at the start


async def test_a_413_finds_the_largest_batch_and_a_resume_starts_from_it(
    start: StartSim, tmp_path: Path
) -> None:
    """An appliance that takes 12 of --batch-size 20: the job finds 12 by a few probes and keeps
    it in the job directory; the resume sends no request over 12, so draws no 413."""
    sim = await start(max_bulk=12, samples=3000, share_absent=0.0, share_extracted=0.0)
    path = tmp_path / "hashes.txt"
    path.write_text("\n".join(s.sha1 for s in sim.world.samples) + "\n")
    job_dir = tmp_path / "job"
    # Stopped by its cap part way (its exit code is not what this test is about).
    await run_in_process(sim, [path], job_dir, batch_size=20, max_requests=100)
    checkpoint = read_checkpoint(job_dir)
    assert checkpoint is not None
    assert not checkpoint.complete
    assert jobdir.read_learned_batch(job_dir) == 12
    sizes = [len(r.hashes) for r in sim.log.records]
    # 20 refused, as is every chunk of 20 already handed to the sender (its window: twice the
    # concurrency of 4); then one probe at a time: 15, 13.
    assert sum(1 for n in sizes if n > 12) <= 2 * 4 + 2
    assert Counter(sizes).most_common(1)[0][0] == 12
    before = len(sim.log.records)
    assert await run_in_process(sim, [path], job_dir, batch_size=20) == ExitCode.OK
    assert_every_line_right(path, job_dir, sim)
    resumed = [len(r.hashes) for r in sim.log.records[before:]]
    assert max(resumed) == 12
    assert Counter(resumed).most_common(1)[0][0] == 12


async def test_cloud_disconnected_is_partial_with_every_analysis_kept(
    start: StartSim, tmp_path: Path
) -> None:
    """Not connected to Spectra Intelligence: `cloud` refused, `core` accepted, so `partial` with
    both analyses' codes and messages recorded."""
    sim = await start(cloud_connected=False, samples=200)
    path = tmp_path / "hashes.txt"
    write_input(path, sim.world, 300, seed=4)
    code = await run_in_process(sim, [path], tmp_path / "job", analysis="cloud,core")
    assert code == ExitCode.OK
    assert_every_line_right(path, tmp_path / "job", sim, partial=True)
    partial = [r for r in outcomes(tmp_path / "job") if r["status"] == "partial"]
    assert partial
    for r in partial:
        by_name = {a["name"]: a for a in r["analyses"]}
        assert by_name["cloud"]["code"] == 405
        assert "not connected" in by_name["cloud"]["message"]
        assert by_name["core"]["code"] in ACCEPTED
        assert "cloud" in r["reason"]
        assert r["detail"]["sha1"]


async def test_v2_bulk_endpoint(start: StartSim, tmp_path: Path) -> None:
    """--api v2 sends form-encoded bulk requests to the v2 endpoint; outcomes as with v1, and an
    unconfigured sandbox is a per-analysis refusal (partial)."""
    sim = await start(samples=200, absent_mode="404")
    path = tmp_path / "hashes.txt"
    write_input(path, sim.world, 300, seed=6)
    code = await run_in_process(sim, [path], tmp_path / "job", api="v2", analysis="core,cuckoo")
    assert code == ExitCode.OK
    assert_every_line_right(path, tmp_path / "job", sim, partial=True)
    assert {r.endpoint for r in sim.log.records} == {Endpoint.BULK_V2}
    assert max(t for _, t in sim.world.queue_counts()) == 1


async def test_single_endpoint(start: StartSim, tmp_path: Path) -> None:
    """--endpoint single: one request per distinct hash, 404 and 405 read per sample."""
    sim = await start(samples=120, error_rate=0.05)
    path = tmp_path / "hashes.txt"
    counts = write_input(path, sim.world, 160, seed=8)
    code = await run_in_process(sim, [path], tmp_path / "job", endpoint="single", concurrency=8)
    assert code == ExitCode.OK
    assert_every_line_right(path, tmp_path / "job", sim)
    answered = [r for r in sim.log.records if r.fault is Fault.NONE]
    assert {r.endpoint for r in sim.log.records} == {Endpoint.SINGLE}
    assert len(answered) == counts.distinct
    assert {r.hash_count for r in sim.log.records} == {1}


async def test_bad_token_exits_6_with_a_message(start: StartSim, tmp_path: Path) -> None:
    """401: exit 6 at once, a message about the token, and the token shown nowhere."""
    sim = await start(error_rate=0.2)
    path = tmp_path / "hashes.txt"
    write_input(path, sim.world, 200, seed=2)
    code, stderr = await run_subprocess(sim.url, [path], tmp_path / "job", token=WRONG_TOKEN)
    assert code == ExitCode.CREDENTIALS, stderr
    assert "refused the token" in stderr
    assert len(sim.log) <= 20  # stopped at once, not after every batch
    assert_no_token((tmp_path / "job" / OUTCOMES_FILE).read_text(), stderr)


async def test_appliance_type_refusal_exits_7(start: StartSim, tmp_path: Path) -> None:
    """An appliance whose type does not allow reanalysis (405): exit 7 and a message."""
    sim = await start(appliance_refuses=True)
    path = tmp_path / "hashes.txt"
    write_input(path, sim.world, 200, seed=2)
    code, stderr = await run_subprocess(sim.url, [path], tmp_path / "job")
    assert code == ExitCode.NOT_ALLOWED, stderr
    assert "does not allow reanalysis" in stderr
    assert not any(r["status"] == "not_allowed" for r in outcomes(tmp_path / "job"))
    assert_no_token(stderr)


async def test_wrong_api_path_stops_the_job_instead_of_recording_not_found(
    start: StartSim, tmp_path: Path
) -> None:
    """A URL with a path (every bulk request answered 404 by the web server): the job stops with
    a message about the URL, and no hash is recorded not_found."""
    sim = await start()
    path = tmp_path / "hashes.txt"
    write_input(path, sim.world, 300, seed=2)
    with pytest.raises(MisconfiguredError, match="--url") as stopped:
        await run_in_process(sim, [path], tmp_path / "job", url=f"{sim.url}/a1000")
    assert stopped.value.exit_code == ExitCode.USAGE
    assert not any(r["status"] in ("not_found", "failed") for r in outcomes(tmp_path / "job"))


async def test_unreachable_appliance_exits_5_without_failing_every_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing listens on the port: the job stops with exit 5 and a message naming the address,
    and records no `failed` (the same command resumes). The outage window is shortened to one
    second here; the job's default is a minute."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setattr(
        running, "SendConfig", functools.partial(SendConfig, backoff_base=0.05, backoff_cap=0.2)
    )
    path = tmp_path / "hashes.txt"
    path.write_text("\n".join(f"{i:040x}" for i in range(3000)) + "\n")
    settings = load_settings({"url": f"http://127.0.0.1:{port}", "token": TOKEN,
                              "job_dir": tmp_path / "job", "unreachable_timeout": 1.0})
    with pytest.raises(UnreachableError) as stopped:
        await job.send_job(settings, [str(path)])
    assert stopped.value.exit_code == ExitCode.UNREACHABLE
    assert f"127.0.0.1:{port}" in str(stopped.value)
    assert not any(r["status"] == "failed" for r in outcomes(tmp_path / "job"))
    assert TOKEN not in str(stopped.value)


async def test_a_resume_with_failures_still_reads_ahead_in_a_process(
    start: StartSim, tmp_path: Path
) -> None:
    """A resume sends earlier failures again beside the inputs; a request to a host name may
    start a resolver thread, so the front must fork its reader before any of them goes."""
    sim = await start(error_rate=0.5, samples=300, fault_seed=3)
    path = tmp_path / "hashes.txt"
    write_input(path, sim.world, 400, seed=3)
    url = sim.url.replace("127.0.0.1", "localhost")
    # More failed chunks than the sending window (2 x concurrency) holds: some must wait.
    args = ("--max-retries", "0", "--batch-size", "10", "--concurrency", "1")
    code, stderr = await run_subprocess(url, [path], tmp_path / "job", *args)
    assert code == ExitCode.SOME_FAILED, stderr
    code, stderr = await run_subprocess(url, [path], tmp_path / "job", *args,
                                        "--log-level", "debug")
    assert '"retrying": 0' not in stderr
    assert '"retrying": ' in stderr
    assert '"where": "process", "event": "front.reading_ahead"' in stderr
