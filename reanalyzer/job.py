"""One job, wired end to end: settings and inputs in, outcomes out, an exit code back."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence

from reanalyzer import dryrun
from reanalyzer.errors import ExitCode, UsageError
from reanalyzer.front import run_front
from reanalyzer.inputs import STDIN, InputFormat, read_blocks, source_name
from reanalyzer.settings import Settings


def _blocks(settings: Settings, inputs: Sequence[str]):  # type: ignore[no-untyped-def]
    input_format = InputFormat(settings.resolved_format)
    column = settings.csv_column or settings.json_field
    if input_format is not InputFormat.TEXT and not column:
        flag = "--csv-column" if input_format is InputFormat.CSV else "--json-field"
        raise UsageError(f"--format {input_format.value} needs {flag}")
    if list(inputs).count(STDIN) > 1:
        raise UsageError("standard input ('-') can be read only once per job")
    return read_blocks(inputs, input_format, column)


async def _dry_run(settings: Settings, inputs: Sequence[str], report_format: str) -> int:
    sink = dryrun.DryRunSink([source_name(path) for path in inputs])
    started = time.perf_counter()
    stats = await run_front(
        _blocks(settings, inputs),
        sink,
        settings.batch_size,
        dedupe=settings.dedupe,
        idle_flush=settings.idle_flush,
    )
    report = dryrun.build_report(sink, stats, time.perf_counter() - started)
    print(dryrun.format_report(report, as_json=report_format == "json"), flush=True)
    return int(ExitCode.OK)


def run_job(settings: Settings, inputs: Sequence[str], report_format: str = "text") -> int:
    if settings.dry_run:
        return asyncio.run(_dry_run(settings, inputs, report_format))
    print("reanalyzer: sending is not wired yet; use --dry-run", file=sys.stderr)
    return int(ExitCode.USAGE)
