"""Prometheus metrics of a run: a text file for node_exporter's textfile collector, and a push
to a Pushgateway, with prometheus_client, at every progress interval and at the end.

Named by Prometheus' conventions (base units, ``_total`` for counters); the README lists them.
``families`` is pure (figures in, metric families out); ``MetricsExporter`` writes and pushes
them. Neither a file that cannot be written nor a Pushgateway that does not answer ever fails
the job: each is logged and the run goes on.

The last success outlives a failed run: the file is rewritten whole, so a run that did not
succeed carries the last success found in the file it replaces; the push is a POST
(``pushadd``), which replaces only the metrics pushed, and a run that did not succeed pushes no
last success. The Pushgateway's basic auth comes from REANALYZER_PUSHGATEWAY_USER and
REANALYZER_PUSHGATEWAY_PASSWORD, never from a command line, never logged.
"""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from prometheus_client.exposition import (
    basic_auth_handler,
    default_handler,
    pushadd_to_gateway,
    write_to_textfile,
)
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families

from reanalyzer import __version__

log = structlog.get_logger("reanalyzer.run.metrics")

PUSH_JOB = "reanalyzer"  # the Pushgateway's job; the group is keyed by job_id and instance
PUSH_TIMEOUT = 10.0
LAST_SUCCESS = "reanalyzer_last_success_timestamp_seconds"


@dataclass(frozen=True, slots=True)
class Figures:
    """What the metrics say at one moment of a run."""

    started: float  # Unix time the run started
    now: float  # Unix time of these figures
    by_status: Mapping[str, int]  # records this run wrote, by status
    by_http_status: Mapping[int, int]  # answers by HTTP status; 0: no HTTP answer
    requests: int
    retries: int
    throttled: int  # 429 answers
    pace: float | None  # requests/s the gate allows now; None: no limit
    in_flight: int
    lines_left: int | None  # estimated; None: not known (stdin, gzip)
    exit_code: int | None  # None: still running
    succeeded: bool = False  # ended with exit code 0


def families(
    figures: Figures,
    labels: Mapping[str, str],
    last_success: tuple[Mapping[str, str], float] | None = None,
) -> list[Metric]:
    """The metric families of `figures`, each sample with `labels`; `last_success` (labels,
    time) is an earlier success to carry when this run has not succeeded."""
    names, values = list(labels), list(labels.values())

    def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
        family = GaugeMetricFamily(name, doc, labels=names)
        family.add_metric(values, value)
        return family

    def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
        family = CounterMetricFamily(name, doc, labels=names)
        family.add_metric(values, value)
        return family

    build = GaugeMetricFamily(
        "reanalyzer_build_info",
        "reanalyzer's version, always 1",
        labels=[*names, "version", "python_version"],
    )
    build.add_metric([*values, __version__, platform.python_version()], 1)
    records = CounterMetricFamily(
        "reanalyzer_records", "outcome records this run wrote, by status", labels=[*names, "status"]
    )
    for status, count in sorted(figures.by_status.items()):
        records.add_metric([*values, status], count)
    answers = CounterMetricFamily(
        "reanalyzer_requests",
        "requests answered, by HTTP status (code none: no HTTP answer)",
        labels=[*names, "code"],
    )
    for code, count in sorted(figures.by_http_status.items()):
        answers.add_metric([*values, str(code) if code else "none"], count)
    result: list[Metric] = [
        build,
        gauge("reanalyzer_run_start_timestamp_seconds", "when the run started", figures.started),
        gauge(
            "reanalyzer_run_duration_seconds",
            "how long the run has run (or ran)",
            max(0.0, figures.now - figures.started),
        ),
        records,
        answers,
        counter(
            "reanalyzer_retries", "requests sent again after a transient failure", figures.retries
        ),
        counter("reanalyzer_throttled_responses", "429 answers", figures.throttled),
        gauge(
            "reanalyzer_pace_requests_per_second",
            "the rate allowed now (+Inf: no limit)",
            math.inf if figures.pace is None else figures.pace,
        ),
        gauge(
            "reanalyzer_requests_in_flight", "requests sent, not yet answered", figures.in_flight
        ),
        gauge(
            "reanalyzer_exit_code",
            "the run's exit code (-1 while it runs)",
            -1 if figures.exit_code is None else figures.exit_code,
        ),
    ]
    if figures.lines_left is not None:
        result.append(
            gauge("reanalyzer_lines_left", "lines left to record (estimated)", figures.lines_left)
        )
    if figures.exit_code is not None:
        result.append(
            gauge(
                "reanalyzer_last_completion_timestamp_seconds",
                "when a run last ended, whatever its exit code",
                figures.now,
            )
        )
    if figures.succeeded:
        result.append(gauge(LAST_SUCCESS, "when a run last ended with exit code 0", figures.now))
    elif last_success is not None:
        family = GaugeMetricFamily(
            LAST_SUCCESS, "when a run last ended with exit code 0", labels=list(last_success[0])
        )
        family.add_metric(list(last_success[0].values()), last_success[1])
        result.append(family)
    return result


def last_success_in(text: str) -> tuple[dict[str, str], float] | None:
    """The latest last-success sample of a metrics file's text (None: none, or unreadable)."""
    best: tuple[dict[str, str], float] | None = None
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == LAST_SUCCESS and (best is None or sample.value > best[1]):
                    best = (dict(sample.labels), float(sample.value))
    except ValueError:
        return None
    return best


class _Families:
    """A prometheus_client collector of a fixed list of families."""

    def __init__(self, metrics: Sequence[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return iter(self._metrics)


class MetricsExporter:
    """Writes `metrics_file` and pushes to `pushgateway` (either may be None); blocking: the
    watch calls it in a thread of its own."""

    def __init__(
        self,
        metrics_file: Path | None,
        pushgateway: str | None,
        labels: Mapping[str, str],
        grouping_key: Mapping[str, str],
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        self.metrics_file = metrics_file
        self.pushgateway = pushgateway
        self.labels = dict(labels)
        self.grouping_key = dict(grouping_key)
        self._handler = _push_handler(
            environ.get("REANALYZER_PUSHGATEWAY_USER"),
            environ.get("REANALYZER_PUSHGATEWAY_PASSWORD"),
        )

    @property
    def wanted(self) -> bool:
        return self.metrics_file is not None or self.pushgateway is not None

    def export(self, figures: Figures) -> None:
        if self.metrics_file is not None:
            self._write(figures)
        if self.pushgateway is not None:
            self._push(figures)

    def _write(self, figures: Figures) -> None:
        assert self.metrics_file is not None
        path = self.metrics_file
        earlier = None
        if not figures.succeeded:
            try:
                earlier = last_success_in(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError):
                earlier = None
        try:
            write_to_textfile(str(path), _Families(families(figures, self.labels, earlier)))
        except OSError as exc:
            log.warning("metrics.file_not_written", path=str(path), error=str(exc))

    def _push(self, figures: Figures) -> None:
        assert self.pushgateway is not None
        try:
            pushadd_to_gateway(
                self.pushgateway,
                PUSH_JOB,
                _Families(families(figures, {})),
                grouping_key=self.grouping_key,
                timeout=PUSH_TIMEOUT,
                handler=self._handler,
            )
        except Exception as exc:  # whatever the library raises: never fatal
            log.warning("metrics.push_failed", error=str(exc) or type(exc).__name__)


def _push_handler(user: str | None, password: str | None) -> Callable[..., Any]:
    if not user and not password:
        return default_handler

    def handler(
        url: str, method: str, timeout: float | None, headers: list[tuple[str, str]], data: bytes
    ) -> Callable[[], None]:
        return basic_auth_handler(url, method, timeout, headers, data, user, password)

    return handler
