"""``reanalyzer retry JOB_DIR``: send again only the hashes whose final outcome is ``failed``.

The job's own settings (URL, analyses, API, endpoint) come from its ``job.json``; the inputs are
not read again, since each failed record holds its hash, type, source and line. New records
supersede the failed ones (the log's rule: a line's last record is its final outcome), and the
checkpoint keeps its mark, with the count of what is still failed.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from reanalyzer.core.hashes import HashType
from reanalyzer.core.outcomes import Status
from reanalyzer.core.positions import position
from reanalyzer.core.watermark import Watermark
from reanalyzer.errors import ExitCode, JobError, ReanalyzerError
from reanalyzer.read.batching import Chunk
from reanalyzer.record import jobdir
from reanalyzer.record.checkpoint import read_checkpoint, write_checkpoint
from reanalyzer.record.final import final_failures
from reanalyzer.record.outcome_log import OUTCOMES_FILE, OutcomeLog
from reanalyzer.run.logs import configure_logging, say
from reanalyzer.send.config import send_config
from reanalyzer.settings import load_settings

if TYPE_CHECKING:
    from reanalyzer.run.sink import SendingSink

_PACE_OPTIONS = ("concurrency", "rate_limit", "max_retries", "batch_size", "token_file", "url",
                 "ca_bundle", "insecure", "trust_env", "log_format", "log_level")


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job_dir", type=Path, metavar="JOB_DIR", help="the job's directory")
    parser.add_argument("--url", help="the appliance, if not the job's own (REANALYZER_URL)")
    parser.add_argument("--token-file", type=Path, help="file holding the API token; or set "
                        "REANALYZER_TOKEN")
    parser.add_argument("--batch-size", type=int, help="hashes per request (default 100)")
    parser.add_argument("--concurrency", type=int, help="requests in flight (default 4)")
    parser.add_argument("--rate-limit", type=float, help="requests per second at most")
    parser.add_argument("--max-retries", type=int, help="retries per request (default 5)")
    parser.add_argument("--ca-bundle", type=Path, help="CA bundle for the appliance's TLS")
    parser.add_argument("--insecure", action="store_true", default=None,
                        help="do not verify TLS certificates")
    parser.add_argument("--trust-env", action="store_true", default=None,
                        help="use proxies from the environment")
    parser.add_argument("--log-format", choices=["auto", "console", "json"])
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"])


def run(args: argparse.Namespace) -> int:
    job_file = args.job_dir / jobdir.JOB_FILE
    try:
        job = json.loads(job_file.read_text())
    except FileNotFoundError:
        raise JobError(f"{args.job_dir} is not a job directory (no {jobdir.JOB_FILE})") from None
    except (OSError, ValueError) as exc:
        raise JobError(f"cannot read {job_file}: {exc}") from exc
    given = {name: getattr(args, name, None) for name in _PACE_OPTIONS}
    own = {key: job["settings"][key] for key in ("url", "analysis", "api", "endpoint")}
    settings = load_settings({**own, **{k: v for k, v in given.items() if v is not None},
                              "job_dir": args.job_dir})
    configure_logging(settings.log_format, settings.log_level)
    return asyncio.run(_retry(settings.job_dir or args.job_dir, settings))


async def _retry(job_dir: Path, settings: Any) -> int:
    from reanalyzer.run.sink import SendingSink  # the sending stack: only when sending
    from reanalyzer.send.sender import Sender

    config = send_config(settings)
    lock = jobdir.JobLock(job_dir)
    lock.acquire()
    structlog.contextvars.bind_contextvars(job_id=job_dir.name)  # on every event, as in a run
    try:
        failed = final_failures(job_dir / OUTCOMES_FILE)
        if not failed:
            say(f"reanalyzer: nothing to retry: no line of {job_dir} ended failed",
                "retry.nothing_to_do", job_dir=str(job_dir))
            return int(ExitCode.OK)
        started = time.monotonic()
        sources = sorted({source for source, _ in failed})
        index = {source: i for i, source in enumerate(sources)}
        journal = OutcomeLog(job_dir / OUTCOMES_FILE)
        try:
            async with Sender(config) as sender:
                # Never checkpoint from here: the mark belongs to the job's runs, not to us.
                sink = SendingSink(sender, journal, sources, window=config.concurrency * 2,
                                   job_dir=job_dir, watermark=Watermark(),
                                   checkpoint_interval=math.inf)
                await _send_failures(sink, failed, index, settings.batch_size)
                await sink.drain()
                if sink.error is not None:
                    raise sink.error
        finally:
            journal.close()
        still_failed = sink.counts[Status.FAILED]
        checkpoint = read_checkpoint(job_dir)
        if still_failed:
            left_to_do = f"{still_failed:,} hashes failed again: retry later"
        elif checkpoint is None or not checkpoint.complete:  # the job's run stopped early
            left_to_do = "the rest of the input: run the job's run command again to resume"
        else:
            left_to_do = "nothing: every input line has its final outcome"
        summary = {
            "command": "retry", "job_dir": str(job_dir), "state": "done",
            "stopped_by": None, "error": None, "elapsed_s": round(time.monotonic() - started, 2),
            "recorded": {s.value: n for s, n in sink.counts.items()},
            "recorded_total": sum(sink.counts.values()), "requests": sender.stats.requests,
            "retries": sender.stats.retries, "throttled": sender.stats.throttled,
            "left_to_do": left_to_do,
        }
        jobdir.write_summary(job_dir, summary)
        if checkpoint is not None:
            write_checkpoint(job_dir, dataclasses.replace(checkpoint, failed=still_failed))
        say(f"reanalyzer: retried {len(failed):,} failed hashes: "
            + ", ".join(f"{s.value} {n:,}" for s, n in sink.counts.items())
            + f"; outcomes in {job_dir / OUTCOMES_FILE}", "retry.finished",
            retried=len(failed), recorded={s.value: n for s, n in sink.counts.items()})
        return int(ExitCode.SOME_FAILED if still_failed else ExitCode.OK)
    except ReanalyzerError as exc:
        exc.job_id = job_dir.name
        raise
    finally:
        lock.release()
        structlog.contextvars.unbind_contextvars("job_id")


async def _send_failures(sink: SendingSink, failed: dict[tuple[str, int], dict[str, Any]],
                         index: dict[str, int], batch_size: int) -> None:
    by_type: dict[HashType, list[tuple[str, int]]] = {}
    for (source, line), record in sorted(failed.items()):
        by_type.setdefault(HashType(record["hash_type"]), []).append(
            (record["hash"], position(index[source], line)))
    for hash_type, items in by_type.items():
        for i in range(0, len(items), batch_size):
            part = items[i : i + batch_size]
            await sink.retry(Chunk(hash_type, tuple(h for h, _ in part),
                                   tuple(p for _, p in part)))
