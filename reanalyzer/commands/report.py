"""``reanalyzer report JOB_DIR``: the final outcome of every input line, in input order, as a
table, JSON, CSV or a bare list of hashes to feed back in. The final outcomes are read by
``record.final`` (``load_finals``: the log at once, in columns, so that list and CSV are written
at speed); the writers of ``write_report`` take any records, as several directories give them.

A little over 300 lines for one concern: each format is written twice, over records and over
columns, so that the column writers stay held to the record writers' text (the tests compare).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from pathlib import Path
from typing import Any, TextIO

import msgspec
import numpy as np

from reanalyzer.core.outcomes import Status
from reanalyzer.core.words import counted
from reanalyzer.errors import JobError, UsageError
from reanalyzer.read.dedupe import SeenSet
from reanalyzer.record.atomic import replacing
from reanalyzer.record.final import Finals, load_finals
from reanalyzer.record.outcome_log import OUTCOMES_FILE
from reanalyzer.run.logs import say

FORMATS = ("table", "json", "csv", "list")
_encode = msgspec.json.encode
CSV_FIELDS = (
    "hash",
    "hash_type",
    "status",
    "source",
    "line",
    "reason",
    "http_status",
    "attempts",
    "analyses",
    "ts",
)


def warn_of_damage(path: str, line: int) -> None:
    """Tell of a line of the log that is not a record, which status and report read past."""
    say(
        f"reanalyzer: warning: {path} line {line:,} is not a whole record (the file was damaged "
        "or edited): read past it; that input line may have no outcome shown",
        "outcome_log.damaged_line",
        "warning",
        path=path,
        line=line,
    )


def parse_statuses(text: str | None) -> frozenset[Status] | None:
    """``failed,not_found`` → those statuses; None (no filter) for None. Raises UsageError."""
    if text is None:
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    allowed = {s.value: s for s in Status}
    unknown = [name for name in names if name not in allowed]
    if unknown or not names:
        raise UsageError(
            f"--status: unknown status {', '.join(repr(n) for n in unknown) or '(none given)'}; "
            f"allowed: {', '.join(allowed)}"
        )
    return frozenset(allowed[name] for name in names)


def outcome_log(job_dir: Path) -> Path:
    """The job's outcome log; JobError if the directory or the log does not exist."""
    if not job_dir.is_dir():
        raise JobError(f"no job directory {job_dir}")
    path = job_dir / OUTCOMES_FILE
    if not path.is_file():
        raise JobError(f"no outcome log in {job_dir} ({OUTCOMES_FILE}): has a run started on it?")
    return path


def filtered(
    records: Iterable[dict[str, Any]], statuses: frozenset[Status] | None
) -> Iterator[dict[str, Any]]:
    if statuses is None:
        yield from records
        return
    wanted = {s.value for s in statuses}
    yield from (r for r in records if r["status"] in wanted)


def write_list(records: Iterable[dict[str, Any]], out: TextIO) -> int:
    """Bare hashes, one per line, each once; lines that are not a hash are left out."""
    seen = SeenSet()  # ~9 bytes per hash: a list of 10 million hashes stays small
    written = 0
    for rec in records:
        value = rec["hash"]
        if value and seen.add(value):
            out.write(value + "\n")
            written += 1
    return written


def write_json(records: Iterable[dict[str, Any]], out: TextIO) -> int:
    written = 0
    batch: list[str] = []
    for rec in records:
        try:
            batch.append(_encode(rec).decode() + "\n")
        except (TypeError, ValueError):  # what msgspec cannot write (lone surrogates): json can
            batch.append(json.dumps(rec, separators=(",", ":")) + "\n")
        if len(batch) >= 4096:
            out.write("".join(batch))
            batch.clear()
        written += 1
    out.write("".join(batch))
    return written


def csv_row(rec: dict[str, Any]) -> list[Any]:
    analyses = ";".join(
        f"{a['name']}:{'' if a['code'] is None else a['code']}" for a in rec.get("analyses") or ()
    )
    return [
        rec.get("hash"),
        rec.get("hash_type"),
        rec["status"],
        rec["source"],
        rec["line"],
        rec.get("reason"),
        rec.get("http_status"),
        rec.get("attempts"),
        analyses,
        rec.get("ts"),
    ]


def write_csv(records: Iterable[dict[str, Any]], out: TextIO) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    written = 0
    for rec in records:
        writer.writerow(csv_row(rec))
        written += 1
    return written


def _table_cells(rec: dict[str, Any]) -> tuple[str, str, str, str, str]:
    return (
        rec.get("hash") or "-",
        rec.get("hash_type") or "-",
        rec["status"],
        f"{rec['source']}:{rec['line']}",
        (rec.get("reason") or "").replace("\n", " "),
    )


def write_table(records: Iterable[dict[str, Any]], out: TextIO, err: TextIO) -> int:
    """Aligned columns sized to the data, and a count line per status on ``err``."""
    rows = [_table_cells(rec) for rec in records]
    header = ("HASH", "TYPE", "STATUS", "SOURCE:LINE", "REASON")
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(header[:-1])]

    def line(cells: tuple[str, ...]) -> str:
        padded = [cell.ljust(w) for cell, w in zip(cells, widths, strict=False)]
        return ("  ".join([*padded, cells[-1]])).rstrip() + "\n"

    out.write(line(header))
    counts: Counter[str] = Counter(row[2] for row in rows)
    out.writelines(map(line, rows))
    total = len(rows)
    by_status = ", ".join(f"{s.value} {counts[s.value]:,}" for s in Status if counts[s.value])
    print(
        f"reanalyzer: {counted(total, 'line')}" + (f" ({by_status})" if by_status else ""), file=err
    )
    return total


def _finals_list(finals: Finals, out: TextIO) -> int:
    """`write_list` over final records in columns: the same text, at C speed."""
    hashes = finals.hashes
    keep = _first_of_each(hashes, finals.order)
    for start in range(0, len(keep), 65536):
        part = map(hashes.__getitem__, keep[start : start + 65536])
        out.write("\n".join(part) + "\n")  # type: ignore[arg-type]  # (no None is left)
    return len(keep)


def _first_of_each(hashes: list[str | None], order: list[int]) -> list[int]:
    """`order` without the records that have no hash or one an earlier record has."""
    if not order:
        return []
    # Equal hashes have equal hash(): only records whose hash() another record's matches (or
    # that of None) can be repeats, and they are few; they are looked at one by one. Sorting
    # numbers is several times faster than a dict of two million strings.
    keys = np.fromiter(map(hash, hashes), np.int64, len(hashes))
    ranked = np.sort(keys)
    shared = ranked[1:][ranked[1:] == ranked[:-1]]
    doubtful = np.isin(keys, np.unique(np.append(shared, hash(None))))
    if not doubtful.any():
        return order
    in_order = np.array(order, dtype=np.int64)
    at = np.flatnonzero(doubtful[in_order])
    seen: set[str] = set()
    drop = []
    for k, r in zip(at.tolist(), in_order[at].tolist(), strict=True):
        value = hashes[r]
        if not value or value in seen:
            drop.append(k)
        else:
            seen.add(value)
    return order if not drop else np.delete(in_order, drop).tolist()


def _csv_text(cells: Iterable[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(cells)
    return buffer.getvalue()


def _finals_csv(finals: Finals, out: TextIO) -> int:
    """`write_csv` over final records in columns: the cells a stored line's records share are
    written once per line."""
    heads, tails = [], []
    for line in finals.lines:
        analyses = ";".join(f"{a.name}:{'' if a.code is None else a.code}" for a in line.analyses)
        heads.append(_csv_text([line.hash_type, line.status, line.source]))
        tails.append(_csv_text([line.reason, line.http_status, line.attempts, analyses, line.ts]))
    hashes, numbers, line_of = finals.hashes, finals.numbers, finals.line_of
    out.write(",".join(CSV_FIELDS) + "\n")
    order = finals.order
    for start in range(0, len(order), 65536):
        out.write(
            "".join(
                [
                    f"{hashes[r] or ''},{heads[line_of[r]]},{numbers[r]},{tails[line_of[r]]}\n"
                    for r in order[start : start + 65536]
                ]
            )
        )
    return len(order)


def _finals_table(finals: Finals, out: TextIO, err: TextIO) -> int:
    """`write_table` over final records in columns."""
    lines, hashes, numbers, line_of = finals.lines, finals.hashes, finals.numbers, finals.line_of
    order = finals.order
    header = ("HASH", "TYPE", "STATUS", "SOURCE:LINE", "REASON")
    hash_w = max([len(header[0]), *(len(hashes[r] or "-") for r in order)])
    type_w = max([len(header[1]), *(len(line.hash_type or "-") for line in lines)])
    status_w = max([len(header[2]), *(len(line.status) for line in lines)])
    where_w = max(
        [len(header[3]), *(len(f"{line.source}:{max(line.line_list())}") for line in lines)]
    )
    mids = [f"{(line.hash_type or '-'):<{type_w}}  {line.status:<{status_w}}  " for line in lines]
    reasons = [
        (line.reason or "").replace("\n", " ")
        if isinstance(line.reason, str | None)
        else str(line.reason)
        for line in lines
    ]
    out.write(
        f"{header[0]:<{hash_w}}  {header[1]:<{type_w}}  {header[2]:<{status_w}}  "
        f"{header[3]:<{where_w}}  {header[4]}\n"
    )
    counts: Counter[str] = Counter()
    for start in range(0, len(order), 65536):
        part = order[start : start + 65536]
        out.write(
            "".join(
                [
                    (
                        f"{(hashes[r] or '-'):<{hash_w}}  {mids[line_of[r]]}"
                        f"{f'{lines[line_of[r]].source}:{numbers[r]}':<{where_w}}  "
                        f"{reasons[line_of[r]]}"
                    ).rstrip()
                    + "\n"
                    for r in part
                ]
            )
        )
        counts.update(lines[line_of[r]].status for r in part)
    total = len(order)
    by_status = ", ".join(f"{s.value} {counts[s.value]:,}" for s in Status if counts[s.value])
    print(
        f"reanalyzer: {counted(total, 'line')}" + (f" ({by_status})" if by_status else ""), file=err
    )
    return total


def write_report(
    records: Iterable[dict[str, Any]], fmt: str, out: TextIO, err: TextIO | None = None
) -> int:
    """Write records in one of FORMATS; the number of rows written."""
    if fmt == "list":
        return write_list(records, out)
    if fmt == "json":
        return write_json(records, out)
    if fmt == "csv":
        return write_csv(records, out)
    return write_table(records, out, err or sys.stderr)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "job_dirs",
        metavar="JOB_DIR",
        type=Path,
        nargs="+",
        help="the job directory; several (the shards of one job, or one job per appliance) "
        "are reported as one: every line of each, once",
    )
    parser.add_argument(
        "--status",
        default=None,
        metavar="S[,S...]",
        help="only lines whose final outcome is one of these: "
        + ", ".join(s.value for s in Status),
    )
    parser.add_argument(
        "--format",
        dest="report_format",
        choices=FORMATS,
        default="table",
        help="table (aligned columns), json (JSON lines), csv (with a header), or list (bare "
        "hashes, one per line, each once: an input for another run); default table",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        metavar="FILE",
        help="write the report to FILE instead of standard output",
    )


def read_finals(job_dir: Path, statuses: frozenset[Status] | None, fmt: str) -> Finals:
    """The final records of a job's log for a report in `fmt`, in input order."""
    wanted = None if statuses is None else frozenset(s.value for s in statuses)
    return load_finals(
        outcome_log(job_dir), damaged=warn_of_damage, details=fmt == "json", statuses=wanted
    )


def write_finals(finals: Finals, fmt: str, out: TextIO, err: TextIO | None = None) -> int:
    """`write_report` for records read by `read_finals`: list and CSV at C speed."""
    if fmt == "list":
        return _finals_list(finals, out)
    if fmt == "csv":
        return _finals_csv(finals, out)
    if fmt == "table":
        return _finals_table(finals, out, err or sys.stderr)
    return write_report(finals.records(), fmt, out, err)


def run(args: argparse.Namespace) -> int:
    statuses = parse_statuses(args.status)
    paths = _outcome_logs(args.job_dirs)
    fmt = args.report_format
    if len(paths) == 1:
        finals = read_finals(args.job_dirs[0], statuses, fmt)

        def write(out: TextIO) -> int:
            return write_finals(finals, fmt, out)
    else:

        def write(out: TextIO) -> int:
            # Several directories as one job: each one's final records in its input order, one
            # directory after another (a list names each hash once across all of them).
            records = chain.from_iterable(
                read_finals(job_dir, statuses, fmt).records() for job_dir in args.job_dirs
            )
            return write_report(records, fmt, out)

    if args.output is not None:
        _write_file(args.output, write)
        return 0
    try:
        write(sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (| head): it has what it wanted. Point stdout at /dev/null so
        # that the interpreter's last flush does not complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _outcome_logs(job_dirs: list[Path]) -> list[Path]:
    """The outcome log of each directory; with several, every shard of a sharded job must be
    among them (UsageError naming the missing one), so that every line is reported."""
    if len(job_dirs) > 1:
        from reanalyzer.commands.several import members_of

        _, missing = members_of(job_dirs)
        if missing:
            raise UsageError(
                "cannot report every line: missing "
                + "; ".join(map(str, missing))
                + "; give it too"
            )
    return [outcome_log(job_dir) for job_dir in job_dirs]


def _write_file(path: Path, write: Callable[[TextIO], int]) -> None:
    # Replaced whole: an interrupted report never leaves half a list behind.
    try:
        with replacing(path) as out:
            write(out)
    except OSError as exc:
        raise UsageError(f"--output: cannot write {path}: {exc.strerror or exc}") from exc
