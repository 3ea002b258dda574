"""Runs that meet something other than a healthy appliance, through the real CLI in a subprocess:
budgets spent on failures, a server that never answers, a web server that is not the API,
credentials in the URL, two signals at once. Each ends with its documented exit code, a message,
and every line it read accounted for."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path

import pytest
from aiohttp import web

from reanalyzer.errors import ExitCode
from reanalyzer.record.outcome_log import OUTCOMES_FILE, read_records
from reanalyzer.simulator import SimulatorConfig, start_simulator, write_input

TOKEN = "tok-7f3e5a1c9b2d4e60-unfriendly"


async def _spawn(*args: str, cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reanalyzer", *args, cwd=cwd,
        env={**os.environ, "REANALYZER_TOKEN": TOKEN}, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def cli(*args: str, cwd: Path, limit: float = 60) -> tuple[int, str, float]:
    """Run the CLI; its exit code, its stderr and how long it took."""
    started = time.monotonic()
    proc = await _spawn(*args, cwd=cwd)
    _, err = await asyncio.wait_for(proc.communicate(), limit)
    assert proc.returncode is not None
    return proc.returncode, err.decode(), time.monotonic() - started


def _lines(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines()
               if line.strip() and not line.lstrip().startswith("#"))


def _summary(job: Path) -> dict[str, object]:
    return dict(json.loads((job / "summary.json").read_text()))


async def _serve(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> tuple[str, web.AppRunner]:
    """Serve one handler for every path on 127.0.0.1, port 0; its URL and its runner."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    # A handler that never answers is not waited for at cleanup (aiohttp's default: 60 s).
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return f"http://127.0.0.1:{port}", runner


async def test_a_request_budget_spent_on_failed_requests_stops_with_exit_4(
        tmp_path: Path) -> None:
    """--max-requests used up by requests that failed (a 413 here) stops the run as any budget
    does: exit 4, stopped_by max-requests, the rest left for the resume."""
    sim = await start_simulator(SimulatorConfig(token=TOKEN, samples=300, seed=3, max_bulk=50))
    try:
        write_input(tmp_path / "h.txt", sim.world, 1000, seed=3)
        code, err, _ = await cli("run", "--url", sim.url, "--job-dir", "job", "--max-requests",
                                 "1", "--progress", "off", "h.txt", cwd=tmp_path)
        assert code == ExitCode.INTERRUPTED, err
        summary = _summary(tmp_path / "job")
        assert str(summary["stopped_by"]).startswith("max-requests"), summary
        assert summary["state"] == "stopped"
        code, err, _ = await cli("run", "--url", sim.url, "--job-dir", "job", "--progress",
                                 "off", "h.txt", cwd=tmp_path)
        assert code == ExitCode.OK, err
        records = {(r["source"], r["line"]) for r in read_records(tmp_path / "job" / OUTCOMES_FILE)}
        assert len(records) == _lines(tmp_path / "h.txt")
    finally:
        await sim.aclose()


async def test_the_failure_rate_guard_judges_the_first_hashes_sent(tmp_path: Path) -> None:
    """--max-failure-rate trips on the first N hashes sent even while their failures are being
    retried, well before the whole input has been sent."""
    sim = await start_simulator(SimulatorConfig(token=TOKEN, samples=6000, seed=4,
                                                error_rate=0.6, fault_seed=1))
    try:
        write_input(tmp_path / "h.txt", sim.world, 12000, seed=4)
        # Requests of 10: the sample is 50 requests, so that whether it fails more than 10%
        # is not left to the luck of 5 (each failing for good with a chance of 0.6**2).
        code, err, _ = await cli("run", "--url", sim.url, "--job-dir", "job", "--max-retries",
                                 "1", "--batch-size", "10", "--max-failure-rate", "10",
                                 "--failure-sample", "500", "--progress", "off", "h.txt",
                                 cwd=tmp_path)
        assert code == ExitCode.INTERRUPTED, err
        summary = _summary(tmp_path / "job")
        assert "failure" in str(summary["stopped_by"]), summary
        # Retries included; a guard judging the first recorded instead sent ~930.
        sent = sum(len(r.hashes) for r in sim.log.records)
        assert sent < 700, f"{sent} hashes sent before the guard tripped"
    finally:
        await sim.aclose()


async def test_an_appliance_that_never_answers_is_given_up_on_in_the_timeout(
        tmp_path: Path) -> None:
    """A server that accepts connections and never answers stops the job (exit 5) once
    --unreachable-timeout has passed, whatever the read timeout."""

    async def never(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    url, runner = await _serve(never)
    try:
        (tmp_path / "h.txt").write_text("a" * 40 + "\n" + "b" * 40 + "\n")
        code, err, took = await cli("run", "--url", url, "--job-dir", "job",
                                    "--unreachable-timeout", "2", "--progress", "off", "h.txt",
                                    cwd=tmp_path, limit=40)
        assert code == ExitCode.UNREACHABLE, err
        assert took < 12, f"took {took:.1f} s"
        records = list(read_records(tmp_path / "job" / OUTCOMES_FILE))
        assert len({(r["source"], r["line"]) for r in records}) <= 2
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("status", [501, 505])
async def test_a_web_server_answering_not_implemented_is_not_the_api(
        tmp_path: Path, status: int) -> None:
    """A server that answers 501 (or 505) is no reanalysis API: exit 2 at once, not an outage
    retried until the unreachable timeout."""

    async def not_implemented(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, text="<html>Not Implemented</html>",
                            content_type="text/html")

    url, runner = await _serve(not_implemented)
    try:
        (tmp_path / "h.txt").write_text("a" * 40 + "\n")
        code, err, took = await cli("run", "--url", url, "--job-dir", "job", "--progress",
                                    "off", "h.txt", cwd=tmp_path, limit=40)
        assert code == ExitCode.USAGE, err
        assert took < 8, f"took {took:.1f} s"
        assert "API" in err
    finally:
        await runner.cleanup()


async def test_credentials_in_the_url_are_refused_and_never_written(tmp_path: Path) -> None:
    """--url http://user:pw@host is a usage error before any work (exit 2) that says how to give
    credentials, and the password appears nowhere: not in the message, not in a job file."""
    secret = "s3cr3t-Passw0rd"
    (tmp_path / "h.txt").write_text("a" * 40 + "\n")
    code, err, _ = await cli("run", "--url", f"http://admin:{secret}@127.0.0.1:9", "h.txt",
                             cwd=tmp_path)
    assert code == ExitCode.USAGE, err
    assert secret not in err
    assert "REANALYZER_TOKEN" in err or "token" in err
    assert not (tmp_path / "jobs").exists()


async def test_two_signals_at_once_are_one_request_to_stop(tmp_path: Path) -> None:
    """SIGINT twice within a moment (GNU timeout signals the process, then its group) stops the
    run cleanly: exit 4, the summary written, the job resumable to the end."""
    sim = await start_simulator(SimulatorConfig(token=TOKEN, samples=2000, seed=6,
                                                latency_ms=200))
    try:
        write_input(tmp_path / "h.txt", sim.world, 3000, seed=6)
        proc = await _spawn("run", "--url", sim.url, "--job-dir", "job", "--batch-size", "10",
                            "--concurrency", "2", "--progress", "off", "h.txt", cwd=tmp_path)
        assert proc.stderr is not None
        while b"job.started" not in await asyncio.wait_for(proc.stderr.readline(), 30):
            pass
        await asyncio.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        proc.send_signal(signal.SIGINT)
        _, rest = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == ExitCode.INTERRUPTED, rest.decode()
        summary = _summary(tmp_path / "job")
        assert summary["state"] == "stopped", summary
        assert summary["stopped_by"] == "SIGINT", summary
    finally:
        await sim.aclose()


@pytest.mark.parametrize("analysis", [("--analysis", "cloud"),
                                      ("--api", "v2", "--analysis", "cuckoo")])
async def test_a_refusal_for_the_appliances_configuration_is_not_a_quiet_success(
        tmp_path: Path, analysis: tuple[str, ...]) -> None:
    """An analysis the appliance is not set up for (not connected to Spectra Intelligence, a
    sandbox not configured) is recorded not_configured, warned about, exit 1; once the
    appliance is set up, `retry --status not_configured` sends those lines again."""
    broken = await start_simulator(SimulatorConfig(token=TOKEN, samples=300, seed=8,
                                                   cloud_connected=False))
    fixed = await start_simulator(SimulatorConfig(token=TOKEN, samples=300, seed=8,
                                                  sandboxes=frozenset({"cuckoo"})))
    try:
        write_input(tmp_path / "h.txt", broken.world, 400, seed=8)
        code, err, _ = await cli("run", "--url", broken.url, "--job-dir", "job", *analysis,
                                 "--progress", "off", "h.txt", cwd=tmp_path)
        assert code == ExitCode.SOME_FAILED, err
        assert '"job.not_configured"' in err
        summary = _summary(tmp_path / "job")
        recorded = dict(summary["recorded"])  # type: ignore[call-overload]
        assert recorded.get("not_configured", 0) > 0, summary
        assert "retry" in str(summary["left_to_do"])
        code, err, _ = await cli("retry", "job", "--status", "not_configured", "--url", fixed.url,
                                 cwd=tmp_path)
        assert code == ExitCode.OK, err
    finally:
        await broken.aclose()
        await fixed.aclose()
    finals = {(r["source"], r["line"]): r["status"]
              for r in read_records(tmp_path / "job" / OUTCOMES_FILE)}
    assert len(finals) == _lines(tmp_path / "h.txt")
    assert "not_configured" not in set(finals.values())


async def test_the_window_ends_while_the_sink_holds_the_last_batches(tmp_path: Path) -> None:
    """--max-duration still counts once the whole input is read: the batches not yet sent when
    the window ends stay unsent, the run stops with exit 4, and the same command finishes."""
    sim = await start_simulator(SimulatorConfig(token=TOKEN, samples=500, seed=9,
                                                latency_ms=1500))
    try:
        write_input(tmp_path / "h.txt", sim.world, 300, seed=9)
        code, err, took = await cli("run", "--url", sim.url, "--job-dir", "job",
                                    "--max-duration", "1", "--progress", "off",
                                    "--log-format", "json", "h.txt", cwd=tmp_path)
        assert code == ExitCode.INTERRUPTED, err
        events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
        stopping = [e for e in events if e["event"] == "job.stopping"]
        assert stopping, err
        assert stopping[0]["reason"].startswith("max-duration"), err
        summary = _summary(tmp_path / "job")
        assert summary["state"] == "stopped", summary
        assert str(summary["stopped_by"]).startswith("max-duration"), summary
        stopped_at = datetime.fromisoformat(stopping[0]["timestamp"]).timestamp()
        late = [r for r in sim.log.records if r.wall > stopped_at + 0.05]
        assert not late, f"{len(late)} requests reached the appliance after the window"
        assert took < 6, took
        code, err, _ = await cli("run", "--url", sim.url, "--job-dir", "job", "--progress",
                                 "off", "h.txt", cwd=tmp_path)
        assert code == ExitCode.OK, err
        records = {(r["source"], r["line"]) for r in read_records(tmp_path / "job" / OUTCOMES_FILE)}
        assert len(records) == _lines(tmp_path / "h.txt")
    finally:
        await sim.aclose()
