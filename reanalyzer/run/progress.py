"""Progress: a live line on a terminal, a ``job.progress`` log event every interval elsewhere.

On a terminal, tqdm draws one line on stderr (done / estimated total, rate, ETA, retries, 429s,
the current pace), and log lines are printed above it (``logs.py`` clears it for them). Without a
terminal (cron, systemd, Kubernetes) the same figures go out as one log event per interval, never
per hash. The figures come from a ``snapshot`` callable: this module only displays. The ETA
is from the recent rate (``RateMeter``, an exponentially weighted average over about 30 s),
not the whole run's average, which start-up and the first 429s pull down; a total estimated
from a gzip input's compressed size is marked as an estimate ("~").
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import structlog

from reanalyzer.core.positions import ResumePoint

if TYPE_CHECKING:
    from tqdm import tqdm

log = structlog.get_logger("reanalyzer.run.progress")

_active_bar: tqdm[object] | None = None

# The live line, with the rate always in lines/s: tqdm's own format turns a rate below one into
# seconds per line ("5.51s/ lines"), which reads as a unit gone wrong. Without a total
# (stdin, gzip) there is no bar, percentage or ETA to show.
BAR_FORMAT = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_noinv_fmt}{postfix}]"
BAR_FORMAT_NO_TOTAL = "{desc}: {n_fmt}{unit} [{elapsed}, {rate_noinv_fmt}{postfix}]"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the run has done so far."""

    recorded: int  # outcome records written by this run
    estimated_total: int | None  # records this run will write, when the inputs' size is known
    requests: int  # reanalysis requests
    retries: int
    throttled: int  # 429 answers
    pace: float | None  # the rate gate's current requests/s; None: unlimited
    in_flight: int
    status_requests: int = 0  # requests to the status endpoint (--precheck), apart
    total_is_estimate: bool = False  # the total is from a gzip input's estimated size
    recent_rate: float | None = None  # records/s lately (RateMeter); None: not measured yet


class RateMeter:
    """A rate that follows the recent pace: an exponentially weighted average of the rate
    between samples, weighted by time (`tau` seconds), so that samples taken at any interval
    (the progress line, the checkpoint) agree."""

    def __init__(self, tau: float = 30.0) -> None:
        self.tau = tau
        self._last: tuple[float, int] | None = None
        self.rate: float | None = None

    def update(self, now: float, count: int) -> float | None:
        if self._last is None:
            self._last = (now, count)
            return self.rate
        then, before = self._last
        dt = now - then
        if dt < 0.2:  # too close to the last sample to say anything
            return self.rate
        instant = (count - before) / dt
        weight = 1 - math.exp(-dt / self.tau)
        self.rate = instant if self.rate is None else self.rate + weight * (instant - self.rate)
        self._last = (now, count)
        return self.rate


def figures(now: Snapshot, started: float) -> dict[str, object]:
    """The progress figures of a snapshot of a run started at `started` (time.monotonic):
    done, total, percentage, rates and ETA."""
    elapsed = time.monotonic() - started
    rate = now.recorded / elapsed if elapsed > 0 else 0.0
    total = None if now.estimated_total is None else max(now.recorded, now.estimated_total)
    recent = now.recent_rate if now.recent_rate else rate
    eta = (total - now.recorded) / recent if total and recent > 0 else None
    return {
        "recorded": now.recorded,
        "estimated_total": total,
        "total_is_estimate": now.total_is_estimate if total else False,
        "percent": round(100 * now.recorded / total, 1) if total else None,
        "records_per_s": round(rate, 1),
        "recent_records_per_s": None if now.recent_rate is None else round(now.recent_rate, 1),
        "eta_s": round(eta) if eta is not None else None,
        "elapsed_s": round(elapsed, 1),
    }


@contextlib.contextmanager
def clear_for_output() -> Iterator[None]:
    """Lift the progress line (if any) while something else writes to stderr."""
    if _active_bar is None:
        yield
        return
    with type(_active_bar).external_write_mode(file=sys.stderr):
        yield


class ProgressReporter:
    """Shows progress every `interval` seconds until stopped."""

    def __init__(
        self,
        snapshot: Callable[[], Snapshot],
        *,
        on_terminal: bool,
        interval: float,
    ) -> None:
        self._snapshot = snapshot
        self._on_terminal = on_terminal
        self._interval = interval
        self._started = time.monotonic()
        self._bar: tqdm[object] | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def on_terminal(self) -> bool:
        """Whether this is the live line on a terminal (else log events, or nothing)."""
        return self._on_terminal

    @classmethod
    def for_mode(
        cls, mode: str, snapshot: Callable[[], Snapshot], log_interval: float
    ) -> ProgressReporter:
        """The reporter --progress asks for: `bar` on a terminal (auto, when stderr is one),
        `log` events every `log_interval` seconds, or `off`."""
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "log"
        interval = 0.5 if mode == "bar" else log_interval
        if mode == "off":
            interval = math.inf
        return cls(snapshot, on_terminal=mode == "bar", interval=interval)

    async def __aenter__(self) -> ProgressReporter:
        global _active_bar
        if self._on_terminal:
            from tqdm import tqdm  # imported only for a terminal: the CLI starts faster

            # No monitor thread (this loop refreshes the bar): a second thread would keep the
            # front from reading ahead in a forked child (see `readahead`).
            tqdm.monitor_interval = 0
            bar = tqdm(  # no iterable: stubs call that tqdm[Never]; we only set n and total
                total=None,
                unit=" lines",
                unit_scale=False,
                dynamic_ncols=True,
                file=sys.stderr,
                desc="reanalyzing",
                leave=True,
                smoothing=0.1,
                mininterval=0.2,
                bar_format=BAR_FORMAT_NO_TOTAL,
            )
            self._bar = _active_bar = cast("tqdm[object]", bar)
        self._task = asyncio.create_task(self._loop())
        return self

    async def __aexit__(self, *_exc: object) -> None:
        global _active_bar
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._bar is not None:
            self._show(self._snapshot())
            self._bar.close()
            self._bar = _active_bar = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            self._show(self._snapshot())

    def _show(self, now: Snapshot) -> None:
        shown = figures(now, self._started)
        total = cast("int | None", shown["estimated_total"])
        pace = "unlimited" if now.pace is None else f"{now.pace:.0f}/s"
        if self._bar is not None:
            self._bar.total = total
            self._bar.bar_format = BAR_FORMAT if total else BAR_FORMAT_NO_TOTAL
            self._bar.n = now.recorded
            status = f" · status {now.status_requests:,}" if now.status_requests else ""
            estimate = " · total ~estimated" if shown["total_is_estimate"] else ""
            self._bar.set_postfix_str(
                f"requests {now.requests:,}{status} · retries {now.retries:,} · 429s "
                f"{now.throttled:,} · pace {pace}{estimate}",
                refresh=False,
            )
            self._bar.refresh()
            return
        self._log(now, shown)

    def snapshot(self) -> Snapshot:
        return self._snapshot()

    def report_now(self) -> None:
        """A snapshot logged at once, whatever the display (SIGUSR1); on a terminal the log
        line is printed above the live line."""
        now = self._snapshot()
        self._log(now, figures(now, self._started))

    def _log(self, now: Snapshot, shown: dict[str, object]) -> None:
        log.info(
            "job.progress",
            **shown,
            requests=now.requests,
            status_requests=now.status_requests,
            retries=now.retries,
            throttled=now.throttled,
            pace=now.pace,
            in_flight=now.in_flight,
        )


def share_read(
    sizes: Sequence[int] | None, start: ResumePoint, source_index: int, offset: int | None
) -> float | None:
    """How much of what this run has to read is read (0..1), reading at (source_index, offset)
    having started at `start`; None when the inputs' sizes are not known."""
    if sizes is None or offset is None:
        return None

    def at(index: int, within: int) -> int:
        return sum(sizes[:index]) + within

    begun = at(start.source_index, start.offset or 0)
    total = at(len(sizes), 0) - begun
    done = at(source_index, offset) - begun
    return min(1.0, done / total) if total > 0 else None
