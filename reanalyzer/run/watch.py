"""A run watched from outside and steered while it runs.

``watched`` wraps a whole command (``run`` or ``retry``): the start ping before it, and at its
end, whatever the exit code, the last metrics, the ping of the outcome and the webhook.
``Watch.running`` covers the sending part of a ``Run``: metrics every --progress-interval, the
pace timetable and the control file (``control.py``), each change of pace applied to the sender
and logged. SIGUSR1 logs a progress snapshot at once, for as long as the command runs.

Nothing here fails the job: pings, the webhook, the metrics and the control file log what goes
wrong and the run goes on (notify.py, metrics.py). A little over 300 lines for that one concern:
each way of watching and steering is a few lines here, beside the one place it is started and
stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from reanalyzer.core.timetable import Timetable
from reanalyzer.errors import ExitCode, ReanalyzerError
from reanalyzer.run import notify
from reanalyzer.run.control import CONTROL_FILE, CONTROL_INTERVAL, Control, parse_control
from reanalyzer.run.progress import ProgressReporter, Snapshot
from reanalyzer.run.summary import Command, summary_text
from reanalyzer.settings import Settings

if TYPE_CHECKING:  # the sending stack and prometheus_client: imported when used
    from reanalyzer.run.metrics import Figures, MetricsExporter
    from reanalyzer.run.sink import SendingSink
    from reanalyzer.send.sender import Sender

log = structlog.get_logger("reanalyzer.run.watch")

PACE_TICK = 0.5  # seconds between two looks at the timetable
Wall = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Watch:
    """What the outside is told of one command, and the operator's hand on its pace."""

    def __init__(self, settings: Settings, command: Command, *, wall: Wall = _utc_now) -> None:
        self.settings = settings
        self.command = command
        self.job_dir: Path | None = None  # known once the job's directory is
        self.summary: dict[str, Any] | None = None  # the run's, once written
        self._wall = wall
        self._started = wall().timestamp()
        self._zone = settings.zone if settings.timetable is not None else None
        self._control = Control()
        self._control_text: str | None = None  # the file as last read (None: no file)
        self._pace: tuple[float | None, int] | None = None  # last applied
        self._sender: Sender | None = None
        self._sink: SendingSink | None = None
        self._snapshot: Callable[[], Snapshot] | None = None
        self._reporter: ProgressReporter | None = None
        self._exporter: MetricsExporter | None = None

    # --- the whole command --------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGUSR1, self.report_now)
        if self.settings.ping_url:
            await notify.ping(self.settings.ping_url, None)

    async def end(self, exit_code: int, error: str | None) -> None:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGUSR1)
        with self._job_bound():
            await self._report_end(exit_code, error)

    def _job_bound(self) -> contextlib.AbstractContextManager[object]:
        """The job's id on the events logged outside its run's context (a signal handler's,
        the end's), as on every other."""
        if self.job_dir is None:
            return contextlib.nullcontext()
        return structlog.contextvars.bound_contextvars(job_id=self.job_dir.name)

    async def _report_end(self, exit_code: int, error: str | None) -> None:
        if self._metrics_wanted:
            exporter, figures = self._metrics(), self._figures(exit_code)
            await notify.in_own_thread(lambda: exporter.export(figures))
        if self.settings.ping_url:
            text = summary_text(self.summary) if self.summary else (error or "")
            await notify.ping(self.settings.ping_url, exit_code, text)
        if self.settings.notify_url and notify.should_notify(self.settings.notify_on, exit_code):
            job_dir = str(self.job_dir) if self.job_dir is not None else None
            await notify.notify(
                self.settings.notify_url,
                notify.notify_body(self.summary, job_dir, exit_code, error),
            )

    def report_now(self) -> None:
        """SIGUSR1: a progress snapshot, logged at once (on a terminal, printed)."""
        with self._job_bound():
            if self._reporter is not None:
                self._reporter.report_now()
            else:
                log.info("job.progress", recorded=0, state="starting")

    # --- the sending part of a run ------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def running(
        self,
        *,
        sender: Sender,
        sink: SendingSink,
        snapshot: Callable[[], Snapshot],
        reporter: ProgressReporter,
    ) -> AsyncIterator[None]:
        self._sender, self._sink, self._snapshot = sender, sink, snapshot
        self._reporter = reporter
        self._pace = (sender.stats.rate, self.settings.concurrency)
        self._steer(reading=True)
        tasks = [asyncio.create_task(self._steering())]
        if self._metrics_wanted:
            tasks.append(asyncio.create_task(self._exporting()))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self._reporter = None

    async def _steering(self) -> None:
        next_reading = time.monotonic() + CONTROL_INTERVAL
        while True:
            await asyncio.sleep(PACE_TICK)
            reading = time.monotonic() >= next_reading
            if reading:
                next_reading = time.monotonic() + CONTROL_INTERVAL
            self._steer(reading)

    async def _exporting(self) -> None:
        exporter = self._metrics()
        while True:
            await asyncio.sleep(self.settings.progress_interval)
            await notify.in_own_thread(functools.partial(exporter.export, self._figures(None)))

    def _steer(self, reading: bool) -> None:
        """Read the control file (when `reading`), then apply the pace now wanted if it is
        not the one in force."""
        if reading:
            self._read_control()
        wanted = self._wanted_pace()
        if wanted == self._pace or self._sender is None or self._sink is None:
            return
        (before, _), (rate, concurrency) = self._pace or (None, 0), wanted
        self._pace = wanted
        self._sender.set_pace(rate, concurrency)
        self._sink.resize_window(concurrency * 2)  # as the run sizes it: twice the requests
        cause = (
            "control"
            if self._control != Control()
            else ("timetable" if self.settings.timetable is not None else "settings")
        )
        log.info(
            "pace.changed", rate_limit=rate, concurrency=concurrency, before=before, cause=cause
        )

    def _wanted_pace(self) -> tuple[float | None, int]:
        rate = self._control.rate_limit
        if rate is None:
            ceiling = self.settings.rate_limit_at(self._wall())
        elif isinstance(rate, Timetable):
            ceiling = rate.rate_at(self._wall(), self.settings.zone)
        else:
            ceiling = rate
        return ceiling, self._control.concurrency or self.settings.concurrency

    def _read_control(self) -> None:
        if self.job_dir is None:
            return
        path = self.job_dir / CONTROL_FILE
        try:
            text: str | None = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            text = None
        except (OSError, UnicodeDecodeError) as exc:
            if self._control_text != f"!{exc}":
                self._control_text = f"!{exc}"
                log.warning("control.ignored", file=str(path), reason=str(exc))
            return
        if text == self._control_text:
            return
        self._control_text = text
        if text is None:
            if self._control != Control():
                self._control = Control()
                log.info("control.cleared", file=str(path))
            return
        try:
            control = parse_control(text)
        except ValueError as exc:
            log.warning(
                "control.ignored", file=str(path), reason=str(exc), kept=self._control.to_json()
            )
            return
        if control != self._control:
            self._control = control
            log.info("control.applied", file=str(path), **control.to_json())

    # --- metrics ------------------------------------------------------------------------------

    @property
    def _metrics_wanted(self) -> bool:
        return self.settings.metrics_file is not None or self.settings.pushgateway is not None

    def _metrics(self) -> MetricsExporter:
        if self._exporter is None:
            from reanalyzer.run.metrics import MetricsExporter

            job_id = self.job_dir.name if self.job_dir is not None else ""
            host = notify.host_of(self.settings.url)
            shard = getattr(self.settings, "shard", None)  # where the job is one of shards
            extra = {"shard": str(shard)} if shard is not None else {}
            self._exporter = MetricsExporter(
                self.settings.metrics_file,
                self.settings.pushgateway,
                labels={"job_id": job_id, "appliance": host, **extra},
                grouping_key={"job_id": job_id, "instance": host, **extra},
            )
        return self._exporter

    def _figures(self, exit_code: int | None) -> Figures:
        from reanalyzer.run.metrics import Figures

        sender, sink, snapshot = self._sender, self._sink, self._snapshot
        now = self._wall().timestamp()
        common: dict[str, Any] = {
            "started": self._started,
            "now": now,
            "exit_code": exit_code,
            "succeeded": exit_code == 0,
        }
        if sender is None or sink is None or snapshot is None:
            return Figures(
                by_status={},
                by_http_status={},
                requests=0,
                retries=0,
                throttled=0,
                pace=self.settings.rate_limit_at(self._wall()),
                in_flight=0,
                lines_left=None,
                **common,
            )
        stats, shot = sender.stats, snapshot()
        left = None
        if shot.estimated_total is not None:
            left = 0 if exit_code == 0 else max(0, shot.estimated_total - shot.recorded)
        return Figures(
            by_status={s.value: n for s, n in sink.counts.items() if n},
            by_http_status=stats.by_http_status,
            requests=stats.requests,
            retries=stats.retries,
            throttled=stats.throttled,
            pace=stats.rate,
            in_flight=stats.in_flight,
            lines_left=left,
            **common,
        )


def watching(
    watch: Watch | None, sink: SendingSink, reporter: ProgressReporter
) -> contextlib.AbstractAsyncContextManager[None]:
    """`watch.running` for the sending part of a run (its sink, its progress), if watched."""
    if watch is None:
        return contextlib.nullcontext()
    return watch.running(
        sender=sink.sender, sink=sink, snapshot=reporter.snapshot, reporter=reporter
    )


async def watched(
    settings: Settings,
    command: Command,
    body: Callable[[Watch], Awaitable[int]],
    *,
    wall: Wall = _utc_now,
) -> int:
    """Run `body` (a command, given its Watch) between the start ping and the end's reports."""
    watch = Watch(settings, command, wall=wall)
    await watch.start()
    code: int | None = int(ExitCode.INTERNAL)
    error: str | None = None
    try:
        code = await body(watch)
        return code
    except ReanalyzerError as exc:
        code, error = int(exc.exit_code), str(exc)
        raise
    except asyncio.CancelledError:
        code = None  # torn down (a second Ctrl-C): no time to tell anyone
        raise
    except Exception as exc:
        error = f"internal error: {type(exc).__name__}"
        raise
    finally:
        if code is None:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                asyncio.get_running_loop().remove_signal_handler(signal.SIGUSR1)
        else:
            await watch.end(code, error)
