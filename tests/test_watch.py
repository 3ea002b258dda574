"""A watched run against the simulator: pings in order, a dead ping URL that changes nothing,
the webhook's summary, a timetable switch and a live control change seen at the appliance, and
SIGUSR1's snapshot."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support import StartSim, simulators
from watch_support import (
    TOKEN,
    Hook,
    assert_every_line_accounted_for,
    cli_env,
    records,
    run_cli,
    serve_hook,
    start_cli,
    status_counts,
)

from reanalyzer.errors import ExitCode
from reanalyzer.run import job
from reanalyzer.run.watch import watched
from reanalyzer.settings import load_settings
from reanalyzer.simulator import RunningSimulator, write_input


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("REANALYZER_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
async def start() -> AsyncIterator[StartSim]:
    async with simulators(TOKEN, samples=300, seed=4) as start:
        yield start


@pytest.fixture
async def hook() -> AsyncIterator[Hook]:
    async for served in serve_hook():
        yield served


def held_hashes(sim: RunningSimulator, path: Path, count: int) -> Path:
    """`count` lines, each a sample the simulator holds and will queue: one request each."""
    samples = [s for s in sim.world.samples if s.kind.value == "present" and not s.queued]
    path.write_text("".join(s.sha1 + "\n" for s in samples[:count]))
    return path


async def wait_for_requests(sim: RunningSimulator, count: int) -> None:
    """Until the simulator has seen `count` requests (failing after 30 s, not hanging)."""
    deadline = time.monotonic() + 30
    while len(sim.log.records) < count:
        assert time.monotonic() < deadline, "the run sent too few requests"
        await asyncio.sleep(0.05)


def request_times(sim: RunningSimulator) -> list[float]:
    return sorted(r.wall for r in sim.log.records)


def in_window(times: list[float], start: float, length: float = 1.0) -> int:
    return sum(1 for t in times if start <= t < start + length)


async def test_pings_go_to_start_then_success_then_the_exit_code(
        start: StartSim, hook: Hook, tmp_path: Path) -> None:
    """A run pings URL/start before any request and URL after the last; a stopped one
    URL/4 (its exit code), the summary as the body."""
    sim = await start()
    path = tmp_path / "hashes.txt"
    write_input(path, sim.world, 120, seed=1)
    code, err = await run_cli(sim.url, [path], tmp_path / "job", "--ping-url",
                              f"{hook.url}/ping/c0ffee")
    assert code == ExitCode.OK, err
    assert [(h.method, h.path) for h in hook.hits] == [
        ("POST", "/ping/c0ffee/start"), ("POST", "/ping/c0ffee")]
    requests = [r.wall for r in sim.log.records]
    assert hook.hits[0].at < min(requests)
    assert hook.hits[1].at > max(requests)
    assert b"done" in hook.hits[1].body
    assert TOKEN.encode() not in hook.hits[1].body
    assert "c0ffee" not in err  # a ping URL is a capability: only its host is logged

    hook.hits.clear()
    path2 = tmp_path / "more.txt"
    write_input(path2, sim.world, 120, seed=2)
    code, err = await run_cli(sim.url, [path2], tmp_path / "job2", "--max-requests", "1",
                              "--batch-size", "5", "--ping-url", f"{hook.url}/ping/c0ffee")
    assert code == ExitCode.INTERRUPTED, err
    assert [h.path for h in hook.hits] == ["/ping/c0ffee/start", "/ping/c0ffee/4"]


async def test_a_dead_ping_url_changes_nothing_in_the_outcome_or_exit_code(
        start: StartSim, tmp_path: Path) -> None:
    """The same job against twin simulators, with a ping URL nobody answers and without one:
    the same exit code and the same outcome for every line; the failed pings are logged."""
    outcomes = []
    for name, extra in (("plain", []), ("dead", ["--ping-url", "http://127.0.0.1:9/ping/x"])):
        sim = await start()
        path = tmp_path / f"{name}.txt"
        write_input(path, sim.world, 150, seed=3)
        code, err = await run_cli(sim.url, [path], tmp_path / name, *extra)
        assert code == ExitCode.OK, err
        assert_every_line_accounted_for(path, tmp_path / name)
        outcomes.append(sorted((r["line"], r["status"]) for r in records(tmp_path / name)))
        if name == "dead":
            assert err.count('"event": "watch.ping_failed"') == 2  # the start and the end
    assert outcomes[0] == outcomes[1]


async def test_the_webhook_posts_the_summary_with_job_dir_and_exit_code(
        start: StartSim, hook: Hook, tmp_path: Path) -> None:
    """--notify-on always: one JSON POST, retried past a 503, equal to summary.json plus the
    job directory and exit code, holding no token; --notify-on failure posts nothing on 0."""
    sim = await start()
    path = tmp_path / "hashes.txt"
    write_input(path, sim.world, 100, seed=5)
    hook.answers = [503]
    code, err = await run_cli(sim.url, [path], tmp_path / "job", "--notify-url",
                              f"{hook.url}/hook", "--notify-on", "always")
    assert code == ExitCode.OK, err
    assert [h.path for h in hook.hits] == ["/hook", "/hook"]  # a 503, then accepted
    body = json.loads(hook.hits[-1].body)
    summary = json.loads((tmp_path / "job" / "summary.json").read_text())
    assert body == {**summary, "job_dir": str(tmp_path / "job"), "exit_code": 0}
    assert dict(status_counts(tmp_path / "job")) == body["recorded"]
    assert TOKEN not in hook.hits[-1].body.decode()

    hook.hits.clear()
    path2 = tmp_path / "more.txt"
    write_input(path2, sim.world, 50, seed=6)
    code, err = await run_cli(sim.url, [path2], tmp_path / "job2", "--notify-url",
                              f"{hook.url}/hook")
    assert code == ExitCode.OK, err
    assert hook.hits == []


async def test_the_webhook_tells_of_a_job_that_could_not_start(
        hook: Hook, tmp_path: Path) -> None:
    """An appliance that is not there: exit 5, and the webhook and ping still say so."""
    path = tmp_path / "hashes.txt"
    path.write_text("a" * 40 + "\n")
    code, err = await run_cli("http://127.0.0.1:9", [path], tmp_path / "job",
                              "--unreachable-timeout", "1", "--notify-url", f"{hook.url}/hook",
                              "--ping-url", f"{hook.url}/ping")
    assert code == ExitCode.UNREACHABLE, err
    paths = [h.path for h in hook.hits]
    assert paths == ["/ping/start", "/ping/5", "/hook"]
    body = json.loads(hook.hits[-1].body)
    assert body["exit_code"] == 5
    assert body["state"] == "aborted"
    assert body["job_dir"] == str(tmp_path / "job")


@pytest.mark.slow
async def test_a_timetable_switch_shows_at_the_appliance_within_two_seconds(
        start: StartSim, tmp_path: Path) -> None:
    """A wall clock set three seconds before 06:01 UTC and a timetable 06:00=2,06:01=20: the
    simulator sees about 2 requests a second, then 20 within two seconds of the switch."""
    sim = await start(samples=400, share_absent=0.0, share_extracted=0.0, share_queued=0.0)
    path = held_hashes(sim, tmp_path / "hashes.txt", 80)
    real_start = time.time()
    base = datetime(2026, 6, 1, 6, 0, 57, tzinfo=UTC)

    def wall() -> datetime:  # real time, shifted: the switch comes 3 s after the start
        return base + timedelta(seconds=time.time() - real_start)

    switch = real_start + 3.0
    settings = load_settings({"url": sim.url, "token": TOKEN, "job_dir": tmp_path / "job",
                              "idle_flush": 0.05, "batch_size": 1, "concurrency": 4,
                              "rate_limit": "06:00=2,06:01=20", "timezone": "UTC"})
    code = await watched(settings, "run",
                         lambda w: job.send_job(settings, [str(path)], w), wall=wall)
    assert code == ExitCode.OK
    assert_every_line_accounted_for(path, tmp_path / "job")
    times = request_times(sim)
    assert max(in_window(times, t) for t in times if t + 1 <= switch) <= 3
    assert in_window(times, switch + 1.0) >= 14  # within 2 s of the switch: the new rate


@pytest.mark.slow
async def test_control_changes_the_rate_of_a_running_job_within_ten_seconds(
        start: StartSim, tmp_path: Path) -> None:
    """`reanalyzer control JOB --rate-limit 20` on a job sending 2/s: the simulator sees 20/s
    within 10 s, the change is logged, and every line is accounted for at the end."""
    sim = await start(samples=400, share_absent=0.0, share_extracted=0.0, share_queued=0.0)
    path = held_hashes(sim, tmp_path / "hashes.txt", 120)
    job_dir = tmp_path / "job"
    proc = await start_cli(sim.url, [path], job_dir, "--rate-limit", "2", "--batch-size", "1")
    await wait_for_requests(sim, 3)
    control = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reanalyzer", "control", str(job_dir), "--rate-limit", "20",
        env=cli_env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await control.communicate()
    changed = time.time()
    assert control.returncode == 0, err
    assert json.loads(out) == {"rate_limit": 20.0}
    assert b"the running job (pid" in err
    _, stderr = await asyncio.wait_for(proc.communicate(), timeout=90)
    assert proc.returncode == ExitCode.OK, stderr
    times = request_times(sim)
    before = [t for t in times if t < changed]
    assert max(in_window(before, t) for t in before) <= 3
    fast = [t for t in times if t >= changed]
    assert max(in_window(fast, t) for t in fast if t < changed + 9) >= 14
    logs = [json.loads(line) for line in stderr.decode().splitlines()]
    [applied] = [e for e in logs if e["event"] == "control.applied"]
    assert applied["rate_limit"] == 20.0
    assert any(e["event"] == "pace.changed" and e["rate_limit"] == 20.0 for e in logs)
    assert_every_line_accounted_for(path, job_dir)


@pytest.mark.slow
async def test_a_malformed_control_file_is_logged_and_ignored(
        start: StartSim, tmp_path: Path) -> None:
    """A control.json that is not JSON, then one out of range: each logged once, the pace kept,
    the job done with every line accounted for."""
    sim = await start(samples=400, share_absent=0.0, share_extracted=0.0, share_queued=0.0)
    path = held_hashes(sim, tmp_path / "hashes.txt", 24)
    job_dir = tmp_path / "job"
    proc = await start_cli(sim.url, [path], job_dir, "--rate-limit", "4", "--batch-size", "1")
    await wait_for_requests(sim, 2)
    (job_dir / "control.json").write_text('{"rate_limit": 20')
    await asyncio.sleep(2.5)
    (job_dir / "control.json").write_text('{"concurrency": 9999}')
    _, stderr = await asyncio.wait_for(proc.communicate(), timeout=90)
    assert proc.returncode == ExitCode.OK, stderr
    logs = [json.loads(line) for line in stderr.decode().splitlines()]
    ignored = [e["reason"] for e in logs if e["event"] == "control.ignored"]
    assert len(ignored) == 2
    assert "not JSON" in ignored[0]
    assert "from 1 to 512" in ignored[1]
    assert not any(e["event"] == "pace.changed" for e in logs)
    assert_every_line_accounted_for(path, job_dir)


@pytest.mark.skipif(sys.platform != "linux", reason="signals as on Linux")
async def test_sigusr1_logs_a_progress_snapshot_at_once(
        start: StartSim, tmp_path: Path) -> None:
    """SIGUSR1 to a running job: a job.progress event with its job_id within a second, long
    before the next interval; the run goes on to exit 0."""
    sim = await start(samples=400, share_absent=0.0, share_extracted=0.0, share_queued=0.0)
    path = held_hashes(sim, tmp_path / "hashes.txt", 12)
    proc = await start_cli(sim.url, [path], tmp_path / "job", "--rate-limit", "4",
                           "--batch-size", "1", "--progress-interval", "600")
    await wait_for_requests(sim, 2)
    sent = time.time()
    proc.send_signal(signal.SIGUSR1)
    _, stderr = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == ExitCode.OK, stderr
    logs = [json.loads(line) for line in stderr.decode().splitlines()]
    [snapshot] = [e for e in logs if e["event"] == "job.progress"]
    assert snapshot["job_id"] == "job"
    assert snapshot["requests"] >= 2
    at = datetime.fromisoformat(snapshot["timestamp"]).timestamp()
    assert at - sent < 1.0
