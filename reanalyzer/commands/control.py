"""``reanalyzer control JOB_DIR --rate-limit 20 --concurrency 8``: change a running job's pace.

It writes the job's ``control.json`` (run/control.py) whole, as every job file, for its owner
only; the running job reads it within a few seconds and logs the change. Values are checked
here as the job checks them, so that a typo is a usage error now rather than a file the job
ignores. Options not given keep what the file already asks; ``--clear`` removes it (the job
goes back to its own settings). It prints what the file asks for now.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from reanalyzer.commands.status import probe_lock
from reanalyzer.errors import ExitCode, JobError, UsageError
from reanalyzer.record import jobdir
from reanalyzer.record.atomic import write_atomically
from reanalyzer.run.control import (
    CONTROL_FILE,
    CONTROL_INTERVAL,
    Control,
    check_concurrency,
    check_rate,
    parse_control,
)
from reanalyzer.run.logs import configure_logging, say


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job_dir", type=Path, metavar="JOB_DIR", help="the job's directory")
    parser.add_argument(
        "--rate-limit",
        metavar="RATE",
        help="requests per second at most, or a timetable such as 07:00=5,19:00=50 "
        "(in the job's --timezone); 'job': the job's own setting again",
    )
    parser.add_argument(
        "--concurrency",
        metavar="N",
        help="requests in flight at most (1 to 512); 'job': the job's own setting again",
    )
    parser.add_argument(
        "--clear", action="store_true", help="remove the control file: the job's own settings again"
    )


def run(args: argparse.Namespace) -> int:
    configure_logging()
    job_dir: Path = args.job_dir
    if not (job_dir / jobdir.JOB_FILE).is_file():
        raise JobError(f"{job_dir} is not a job directory (no {jobdir.JOB_FILE})")
    path = job_dir / CONTROL_FILE
    if args.clear:
        if args.rate_limit is not None or args.concurrency is not None:
            raise UsageError("--clear takes no --rate-limit or --concurrency")
        path.unlink(missing_ok=True)
        say(
            f"reanalyzer: {path} removed: the job's own settings apply again",
            "control.cleared",
            file=str(path),
        )
        return int(ExitCode.OK)
    if args.rate_limit is None and args.concurrency is None:
        raise UsageError("give --rate-limit, --concurrency or --clear")
    control = _current(path)
    rate, concurrency = control.rate_limit, control.concurrency
    try:
        if args.rate_limit is not None:
            rate = None if args.rate_limit == "job" else check_rate(args.rate_limit)
        if args.concurrency is not None:
            concurrency = None if args.concurrency == "job" else check_concurrency(args.concurrency)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    wanted = Control(rate_limit=rate, concurrency=concurrency)
    try:
        write_atomically(path, json.dumps(wanted.to_json()) + "\n")
    except OSError as exc:
        raise JobError(f"cannot write {path}: {exc.strerror}") from exc
    holder = probe_lock(job_dir)
    when = (
        f"the running job (pid {holder.pid}) applies it within {CONTROL_INTERVAL:g} s"
        if holder.running
        else "no run holds the job now: its next run starts with it"
    )
    print(json.dumps(wanted.to_json()), flush=True)
    say(
        f"reanalyzer: {path} written; {when}",
        "control.written",
        file=str(path),
        running=holder.running,
        **wanted.to_json(),
    )
    return int(ExitCode.OK)


def _current(path: Path) -> Control:
    """What the control file asks now (nothing if it is absent or not a valid one)."""
    try:
        return parse_control(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return Control()
