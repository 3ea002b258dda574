"""The metrics of a run: their names and values, the last success kept across a failed run,
the Pushgateway's basic auth, and a file or gateway that fails without failing anything."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from reanalyzer.run.metrics import Figures, MetricsExporter

LABELS = {"job_id": "hashes-1a2b", "appliance": "a1000.example.com"}


def figures(**changes: Any) -> Figures:
    fields: dict[str, Any] = {
        "started": 1_700_000_000.0, "now": 1_700_000_090.0,
        "by_status": {"queued": 7, "failed": 2, "invalid": 1},
        "by_http_status": {201: 4, 503: 2, 0: 1}, "requests": 7, "retries": 3, "throttled": 1,
        "pace": None, "in_flight": 2, "lines_left": 40, "exit_code": None}
    fields.update(changes)
    return Figures(**fields)


def samples(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k not in LABELS))):
            s.value
            for family in text_string_to_metric_families(path.read_text())
            for s in family.samples}


def test_the_file_holds_every_metric_named_by_the_conventions(tmp_path: Path) -> None:
    """Counters end in _total, times are in seconds; each figure is where it belongs."""
    path = tmp_path / "reanalyzer.prom"
    MetricsExporter(path, None, LABELS, {}).export(figures())
    got = samples(path)
    assert got[("reanalyzer_records_total", (("status", "queued"),))] == 7
    assert got[("reanalyzer_records_total", (("status", "failed"),))] == 2
    assert got[("reanalyzer_requests_total", (("code", "503"),))] == 2
    assert got[("reanalyzer_requests_total", (("code", "none"),))] == 1
    assert got[("reanalyzer_retries_total", ())] == 3
    assert got[("reanalyzer_throttled_responses_total", ())] == 1
    assert got[("reanalyzer_run_duration_seconds", ())] == 90
    assert got[("reanalyzer_pace_requests_per_second", ())] == float("inf")
    assert got[("reanalyzer_requests_in_flight", ())] == 2
    assert got[("reanalyzer_lines_left", ())] == 40
    assert got[("reanalyzer_exit_code", ())] == -1  # still running
    assert not any(name.startswith("reanalyzer_last_") for name, _ in got)
    assert {name for name, _ in got} >= {"reanalyzer_build_info",
                                          "reanalyzer_run_start_timestamp_seconds"}


def test_a_failed_run_keeps_the_last_success_of_the_file_it_replaces(tmp_path: Path) -> None:
    """Success sets both timestamps; a later failure sets the completion and keeps the success."""
    path = tmp_path / "reanalyzer.prom"
    MetricsExporter(path, None, LABELS, {}).export(figures(exit_code=0, succeeded=True))
    ok = samples(path)
    assert ok[("reanalyzer_last_success_timestamp_seconds", ())] == 1_700_000_090
    other = {"job_id": "hashes-ffff", "appliance": "a1000.example.com"}
    MetricsExporter(path, None, other, {}).export(figures(exit_code=5, now=1_700_100_000.0))
    text = path.read_text()
    later = samples(path)
    assert later[("reanalyzer_exit_code", ())] == 5
    assert later[("reanalyzer_last_completion_timestamp_seconds", ())] == 1_700_100_000
    assert later[("reanalyzer_last_success_timestamp_seconds", ())] == 1_700_000_090
    assert 'reanalyzer_last_success_timestamp_seconds{appliance="a1000.example.com",' \
           'job_id="hashes-1a2b"}' in text  # the success of the job that had it


def test_a_metrics_file_that_cannot_be_written_is_logged_not_raised(tmp_path: Path) -> None:
    """A directory that does not exist: a warning naming the file, nothing raised."""
    path = tmp_path / "no-such-dir" / "reanalyzer.prom"
    with capture_logs() as logs:
        MetricsExporter(path, None, LABELS, {}).export(figures())
    assert [e["event"] for e in logs] == ["metrics.file_not_written"]
    assert logs[0]["path"] == str(path)


class Gateway:
    """An in-process stand-in for a Pushgateway's push API that records each push."""

    def __init__(self) -> None:
        self.pushes: list[tuple[str, str, str | None, str]] = []
        self.status = 200

    async def handle(self, request: web.Request) -> web.Response:
        body = (await request.read()).decode()
        self.pushes.append((request.method, request.path, request.headers.get("Authorization"),
                            body))
        return web.Response(status=self.status)


@pytest.fixture
async def gateway() -> AsyncIterator[tuple[Gateway, str]]:
    fake = Gateway()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    yield fake, str(server.make_url("")).rstrip("/")
    await server.close()


async def test_the_push_is_a_post_grouped_by_job_with_basic_auth_from_the_environment(
        gateway: tuple[Gateway, str]) -> None:
    """The group is job reanalyzer, job_id and instance; the credentials are the environment's."""
    fake, url = gateway
    environ = {"REANALYZER_PUSHGATEWAY_USER": "pusher",
               "REANALYZER_PUSHGATEWAY_PASSWORD": "pw-5e1f0c77d9a2"}
    exporter = MetricsExporter(None, url, LABELS, {"job_id": "hashes-1a2b",
                                                   "instance": "a1000.example.com"}, environ)
    await asyncio.to_thread(exporter.export, figures(exit_code=0, succeeded=True))
    [(method, path, auth, body)] = fake.pushes
    assert method == "POST"  # pushadd: an earlier success of the group is not deleted
    assert path == "/metrics/job/reanalyzer/instance/a1000.example.com/job_id/hashes-1a2b"
    assert auth == "Basic " + base64.b64encode(b"pusher:pw-5e1f0c77d9a2").decode()
    assert "reanalyzer_last_success_timestamp_seconds" in body
    assert 'reanalyzer_records_total{status="queued"} 7.0' in body


async def test_a_refused_or_dead_pushgateway_is_logged_without_its_password(
        gateway: tuple[Gateway, str]) -> None:
    """A 401 and a closed port each give one warning, no exception, and no password in it."""
    fake, url = gateway
    fake.status = 401
    environ = {"REANALYZER_PUSHGATEWAY_USER": "u", "REANALYZER_PUSHGATEWAY_PASSWORD": "pw-9d3a"}
    with capture_logs() as logs:
        await asyncio.to_thread(MetricsExporter(None, url, {}, {"job_id": "j"}, environ).export,
                                figures())
        await asyncio.to_thread(MetricsExporter(None, "http://127.0.0.1:9", {}, {"job_id": "j"},
                                                environ).export, figures())
    assert [e["event"] for e in logs] == ["metrics.push_failed"] * 2
    assert "pw-9d3a" not in repr(logs)
