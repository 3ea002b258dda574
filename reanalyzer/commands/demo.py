"""``reanalyzer demo``: the real job, end to end, against the built-in appliance simulator.

It starts the simulator in this process with a realistic world and a few faults (latency, 5xx
answers, dropped connections, a bulk limit below the batch size, 429 over an undisclosed rate),
writes an input an operator would feed in, and runs it through the same code path as ``run``.
The answers proxies and half-broken appliances give (a wrong shape after the work, a proxy's
HTML page, bodies far too large) are options of their own, off unless asked for.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
from pathlib import Path
from typing import Any

from reanalyzer.errors import JobError, UsageError
from reanalyzer.record.outcome_log import OUTCOMES_FILE, read_records
from reanalyzer.settings import load_settings
from reanalyzer.simulator.config import SimulatorConfig
from reanalyzer.simulator.inputs import write_input


def _line_count(text: str) -> int:
    """--lines: a whole number of lines, at least 1 (argparse turns the error into exit 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path("reanalyzer-demo"),
        help="where the demo writes its input and job (default ./reanalyzer-demo)",
    )
    parser.add_argument(
        "--lines", type=_line_count, default=20_000, help="input lines, at least 1 (default 20000)"
    )
    parser.add_argument("--no-faults", action="store_true", help="a well-behaved appliance")
    parser.add_argument(
        "--wrong-shape-rate",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="share of 2xx answers whose items cannot be attributed, after the "
        "work was done (default 0)",
    )
    parser.add_argument(
        "--proxy-page-rate",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="share of requests answered by a proxy's HTML page with 200, nothing done (default 0)",
    )
    parser.add_argument(
        "--big-body-rate",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="share of answers padded to --big-body-mb, after the work was done (default 0)",
    )
    parser.add_argument(
        "--big-body-mb",
        type=float,
        default=400.0,
        metavar="MB",
        help="size of those answers in MB (default 400)",
    )


async def _demo(args: argparse.Namespace) -> int:
    from reanalyzer.run.job import send_job
    from reanalyzer.simulator.server import start_simulator

    token = secrets.token_urlsafe(24)  # lives only in this process: never on a command line
    faults = (
        {}
        if args.no_faults
        else {
            "latency_ms": 5.0,
            "latency_jitter_ms": 10.0,
            "rate_limit": 150.0,
            "error_rate": 0.03,
            "drop_rate": 0.01,
            "max_bulk": 64,
            "absent_mode": "404",
        }
    )
    answers = {
        "wrong_shape_rate": args.wrong_shape_rate,
        "proxy_page_rate": args.proxy_page_rate,
        "big_body_rate": args.big_body_rate,
        "big_body_mb": args.big_body_mb,
    }
    try:
        fields: dict[str, Any] = {**faults, **answers}  # of the dataclass's own fields
        config = SimulatorConfig(token=token, samples=max(1000, args.lines // 2), seed=1, **fields)
    except ValueError as exc:  # a share outside 0..1, a size not positive
        raise UsageError(f"demo: {exc}") from None
    input_path = args.dir / "hashes.txt"
    async with await start_simulator(config) as simulator:
        try:
            args.dir.mkdir(parents=True, exist_ok=True)
            counts = write_input(input_path, simulator.world, args.lines, seed=1)
        except OSError as exc:
            raise JobError(
                f"demo: cannot write its input in --dir {args.dir}: "
                f"{exc.strerror or exc}; give a directory you can write"
            ) from exc
        print(
            f"demo: simulated appliance at {simulator.url}"
            + (
                ""
                if args.no_faults
                else " (faults: latency, 3% 5xx, 1% dropped connections, "
                "bulk limit 64, 429 above 150 requests/s)"
            )
            + _answer_faults(args),
            file=sys.stderr,
        )
        # Blank lines and comments are no records: only the invalid lines are recorded so.
        print(
            f"demo: wrote {counts.lines:,} lines to {input_path} ({counts.distinct:,} distinct "
            f"hashes, {counts.duplicates:,} repeats, {counts.invalid:,} invalid lines, and "
            f"{counts.blank + counts.comments:,} blank lines and comments, which are not "
            "records)",
            file=sys.stderr,
        )
        settings = load_settings(
            {
                "url": simulator.url,
                "token": token,
                "job_dir": args.dir / "job",
                "fresh": True,
                "concurrency": 8,
            }
        )
        code = await send_job(settings, [str(input_path)])
    outcomes = args.dir / "job" / OUTCOMES_FILE
    records = sum(1 for _ in read_records(outcomes))
    expected = counts.lines - counts.blank - counts.comments
    verdict = "every input line accounted for" if records == expected else "MISMATCH"
    print(
        f"demo: {records:,} outcome records for {expected:,} non-blank, non-comment lines: "
        f"{verdict}\ndemo: the outcome log is in {outcomes.parent} (its closed segments are "
        f"gzip): read it with `reanalyzer report {outcomes.parent} --format json`",
        file=sys.stderr,
    )
    return code if records == expected else 70


def _answer_faults(args: argparse.Namespace) -> str:
    """The answer faults asked for, in words; empty when none."""
    asked = [
        f"{share:.0%} {what}"
        for share, what in (
            (args.wrong_shape_rate, "answers of the wrong shape"),
            (args.proxy_page_rate, "proxy pages"),
            (args.big_body_rate, f"bodies of {args.big_body_mb:g} MB"),
        )
        if share
    ]
    return f" (answers: {', '.join(asked)})" if asked else ""


def run(args: argparse.Namespace) -> int:
    from reanalyzer.run.logs import configure_logging

    configure_logging("console", "warning")  # the demo is for a person to read
    return asyncio.run(_demo(args))
