"""The metrics read by the real thing: node_exporter's textfile collector and a Pushgateway
(Debian's prometheus-node-exporter and prometheus-pushgateway, which .ci/run installs where it
can), each started on 127.0.0.1 on a free port. Skipped, saying why, where they are absent."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from watch_support import TOKEN, run_cli, status_counts

from reanalyzer.errors import ExitCode
from reanalyzer.simulator import RunningSimulator, SimulatorConfig, start_simulator, write_input


def _binary(*names: str) -> str | None:
    return next((found for name in names if (found := shutil.which(name))), None)


NODE_EXPORTER = _binary("prometheus-node-exporter", "node_exporter")
PUSHGATEWAY = _binary("prometheus-pushgateway", "pushgateway")
needs_node_exporter = pytest.mark.skipif(
    NODE_EXPORTER is None, reason="node_exporter is not installed (apt-get install "
    "prometheus-node-exporter; .ci/run does so as root)")
needs_pushgateway = pytest.mark.skipif(
    PUSHGATEWAY is None, reason="the Pushgateway is not installed (apt-get install "
    "prometheus-pushgateway; .ci/run does so as root)")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _scrape(port: int, path: str = "/metrics") -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
        return str(answer.read().decode())


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """The processes a test starts; each stopped (by its own pid) afterwards."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _start(serving: list[subprocess.Popen[bytes]], args: list[str], port: int,
           log: Path) -> None:
    with log.open("wb") as out:  # the child has its own copy of the descriptor
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    serving.append(proc)
    deadline = time.monotonic() + 20
    while True:
        try:
            _scrape(port)
            return
        except OSError:
            assert proc.poll() is None, f"{args[0]} exited: {log.read_text()}"
            assert time.monotonic() < deadline, f"{args[0]} did not answer: {log.read_text()}"
            time.sleep(0.1)


def _samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [(dict(s.labels), s.value) for family in text_string_to_metric_families(text)
            for s in family.samples if s.name == name]


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    running = await start_simulator(SimulatorConfig(token=TOKEN, samples=300, seed=8,
                                                    error_rate=0.05))
    yield running
    await running.aclose()


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("REANALYZER_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@needs_node_exporter
async def test_node_exporters_textfile_collector_reads_the_metrics_file(
        sim: RunningSimulator, serving: list[subprocess.Popen[bytes]], tmp_path: Path) -> None:
    """After a run with --metrics-file, node_exporter scrapes the file with no scrape error,
    and its records by status are the outcome log's counts."""
    textfiles = tmp_path / "textfile"
    textfiles.mkdir()
    port = _free_port()
    assert NODE_EXPORTER is not None
    await asyncio.to_thread(_start, serving, [
        NODE_EXPORTER, "--collector.disable-defaults", "--collector.textfile",
        f"--collector.textfile.directory={textfiles}", f"--web.listen-address=127.0.0.1:{port}",
    ], port, tmp_path / "node_exporter.log")
    path = tmp_path / "hashes.txt"
    write_input(path, sim.world, 300, seed=8)
    code, err = await run_cli(sim.url, [path], tmp_path / "job", "--batch-size", "10",
                              "--metrics-file", str(textfiles / "reanalyzer.prom"))
    assert code == ExitCode.OK, err
    scraped = await asyncio.to_thread(_scrape, port)
    assert _samples(scraped, "node_textfile_scrape_error") == [({}, 0.0)]
    records = {labels["status"]: value
               for labels, value in _samples(scraped, "reanalyzer_records_total")}
    assert records == dict(status_counts(tmp_path / "job"))
    [(labels, value)] = _samples(scraped, "reanalyzer_exit_code")
    assert value == 0
    assert labels == {"job_id": "job", "appliance": "127.0.0.1"}
    assert _samples(scraped, "reanalyzer_last_success_timestamp_seconds")
    retried = sum(v for _, v in _samples(scraped, "reanalyzer_retries_total"))
    assert retried == sum(v for labels, v in _samples(scraped, "reanalyzer_requests_total")
                          if labels["code"] != "201")  # the 5xx answers were each retried
    assert not list(textfiles.glob("*.tmp"))
    assert not list(textfiles.glob(".*"))


@needs_pushgateway
async def test_a_real_pushgateway_holds_what_the_run_pushed(
        sim: RunningSimulator, serving: list[subprocess.Popen[bytes]], tmp_path: Path) -> None:
    """After a run with --pushgateway, the Pushgateway holds the run's records by status (the
    outcome log's counts) in the group job=reanalyzer, job_id, instance=the appliance's host."""
    port = _free_port()
    assert PUSHGATEWAY is not None
    await asyncio.to_thread(_start, serving, [
        PUSHGATEWAY, f"--web.listen-address=127.0.0.1:{port}"], port,
        tmp_path / "pushgateway.log")
    path = tmp_path / "hashes.txt"
    write_input(path, sim.world, 300, seed=9)
    code, err = await run_cli(sim.url, [path], tmp_path / "job", "--batch-size", "10",
                              "--pushgateway", f"http://127.0.0.1:{port}")
    assert code == ExitCode.OK, err
    assert "metrics.push_failed" not in err
    held = await asyncio.to_thread(_scrape, port)
    group = {"job": "reanalyzer", "job_id": "job", "instance": "127.0.0.1"}
    records = {labels["status"]: value
               for labels, value in _samples(held, "reanalyzer_records_total")
               if {k: labels.get(k) for k in group} == group}
    assert records == dict(status_counts(tmp_path / "job"))
    [(_, exit_code)] = _samples(held, "reanalyzer_exit_code")
    assert exit_code == 0
    assert _samples(held, "reanalyzer_last_success_timestamp_seconds")
    # And the Pushgateway itself saw no push go wrong.
    assert all(value == 0 for labels, value in _samples(held, "push_failure_time_seconds"))
