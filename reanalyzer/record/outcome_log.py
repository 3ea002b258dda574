"""Stage 6: the outcome log, ``outcomes.jsonl``: one JSON record per input record, per batch.

Records are appended per batch in one ``write``, flushed at once and fsynced at most every
``fsync_interval`` seconds (and on close), so a crash loses at most the last interval's records
from the disk, never a record's half: a torn last line is cut off when the log is opened again.
A later record for the same (source, line) supersedes an earlier one: the final outcome of a line
is its last record (only ``failed`` records are ever superseded, by a resumed or repeated run).

Reading the log back (``numbered_records``: whole records, a damaged line named) is here too,
beside the writing, so that one module says what a record is: with the encoding tuned for speed
that takes more than 300 lines.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import structlog

from reanalyzer.core import failpoints
from reanalyzer.core.outcomes import AnalysisResult, DetailTexts, Status, Verdict
from reanalyzer.core.private import PRIVATE_FILE
from reanalyzer.errors import JobError

log = structlog.get_logger("reanalyzer.record.outcome_log")

OUTCOMES_FILE = "outcomes.jsonl"


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def record(
    *,
    hash_value: str | None,
    hash_type: str | None,
    status: Status,
    source: str,
    line: int,
    ts: str,
    reason: str | None = None,
    http_status: int | None = None,
    attempts: int = 0,
    analyses: Iterable[tuple[str, int | None, str | None]] = (),
    detail: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One outcome record, in the schema the README documents (stable: add fields, never rename)."""
    return {
        "hash": hash_value,
        "hash_type": hash_type,
        "status": status.value,
        "source": source,
        "line": line,
        "reason": reason,
        "http_status": http_status,
        "attempts": attempts,
        "analyses": [{"name": n, "code": c, "message": m} for n, c, m in analyses],
        "detail": detail or {},
        "ts": ts,
    }


# Encoding a record is the hottest step of recording, so the parts that repeat (sources,
# reasons, messages, analyses) are encoded once and cached; json.dumps per record was ~14 µs.
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_fast_dumps = msgspec.json.encode


@functools.lru_cache(maxsize=8192)
def _json_text(value: str | None) -> str:
    return "null" if value is None else _dumps(value)


@functools.lru_cache(maxsize=4096)
def _json_analyses(analyses: tuple[AnalysisResult, ...]) -> str:
    return _dumps([{"name": a.name, "code": a.code, "message": a.message} for a in analyses])


def _json_detail(detail: dict[str, str]) -> str:
    return _json_details([detail])[0] if detail else "{}"


def _json_details(details: Sequence[dict[str, str]] | DetailTexts) -> list[str]:
    """The JSON text of each detail, as _dumps writes it. msgspec writes the same text ~5x
    faster; what it cannot encode (lone surrogates, which only json's lenient parse lets in)
    goes to _dumps. Details the appliance sent as JSON text (`DetailTexts`) stay as they are."""
    if isinstance(details, DetailTexts):
        return details
    try:
        return [_fast_dumps(d).decode() for d in details]
    except (TypeError, ValueError):  # (UnicodeEncodeError is a ValueError)
        return [_dumps(d) for d in details]


_RECORD = (
    '{"hash":%s,"hash_type":%s,"status":"%s","source":%s,"line":%d,"reason":%s,'
    '"http_status":%s,"attempts":%d,"analyses":%s,"detail":%s,"ts":"%s"}\n'
)


def encode_record(
    *,
    hash_value: str | None,
    hash_type: str | None,
    status: Status,
    source: str,
    line: int,
    ts: str,
    reason: str | None = None,
    http_status: int | None = None,
    attempts: int = 0,
    analyses: tuple[AnalysisResult, ...] = (),
    detail: dict[str, str] | None = None,
) -> str:
    """One outcome record as a JSON line, the same as json.dumps(record(...)) but ~5x faster.

    The hash and its type are lowercase hex and a constant: they need no escaping.
    """
    return _RECORD % (
        "null" if hash_value is None else f'"{hash_value}"',
        "null" if hash_type is None else f'"{hash_type}"',
        status,  # a StrEnum formats as its value
        _json_text(source),
        line,
        _json_text(reason),
        "null" if http_status is None else http_status,
        attempts,
        _json_analyses(analyses) if analyses else "[]",
        _json_detail(detail) if detail else "{}",
        ts,
    )


def encode_verdicts(
    hash_type: str,
    hashes: Sequence[str],
    sources: Sequence[str],
    lines: Sequence[int],
    verdicts: Sequence[Verdict],
    ts: str,
    details: Sequence[dict[str, str]] | DetailTexts | None = None,
) -> list[str]:
    """The records of one answered request, as encode_record would write them, faster.

    `details[i]`, when given, is the detail of `hashes[i]` (its verdict is shared with other
    hashes, see `Verdicts`); else each verdict's own. The parts of a record that hashes of one
    answer share (its source and status, and the verdict's reason, codes and analyses) are
    encoded once per distinct value, and once per run of hashes with the same verdict object.
    """
    if details is None:
        details = [verdict.detail for verdict in verdicts]
    detail_texts = _json_details(details)
    end = f',"ts":"{ts}"}}\n'
    if verdicts and (verdicts.count(verdicts[0]) == len(verdicts)  # identity first: C speed
                     and sources.count(sources[0]) == len(sources)):
        # One verdict and one source for all (the usual case): no checks per hash. (An f-string
        # builds a record in less than half the time %-formatting takes.)
        head, tail = _head(hash_type, verdicts[0].status, sources[0]), _tail(verdicts[0])
        return [f'{{"hash":"{value}{head}{line}{tail}{detail}{end}'
                for value, line, detail in zip(hashes, lines, detail_texts, strict=True)]
    out = []
    last_verdict: Verdict | None = None
    last_source: str | None = None
    head = tail = ""
    for value, source, line, verdict, detail in zip(
        hashes, sources, lines, verdicts, detail_texts, strict=True
    ):
        if verdict is not last_verdict or source is not last_source:
            last_verdict, last_source = verdict, source
            head, tail = _head(hash_type, verdict.status, source), _tail(verdict)
        out.append(f'{{"hash":"{value}{head}{line}{tail}{detail}{end}')
    return out


@functools.lru_cache(maxsize=1024)
def _head(hash_type: str, status: Status, source: str) -> str:
    """A record's text from after its hash to its line number."""
    return (f'","hash_type":"{hash_type}","status":"{status}","source":'
            f'{_json_text(source)},"line":')


def _tail(verdict: Verdict) -> str:
    """A record's text from after its line number to its detail."""
    # The analyses tuple of hashes judged alike is one object: its id is a cheap key.
    return _tail_of(verdict.reason, verdict.http_status, verdict.attempts, verdict.analyses)


@functools.lru_cache(maxsize=4096)
def _tail_of(reason: str | None, http_status: int | None, attempts: int,
             analyses: tuple[AnalysisResult, ...]) -> str:
    return (
        f',"reason":{_json_text(reason)},"http_status":'
        f'{"null" if http_status is None else http_status},'
        f'"attempts":{attempts},"analyses":'
        f'{_json_analyses(analyses) if analyses else "[]"},"detail":'
    )


def _storage_error(path: Path, exc: OSError) -> JobError:
    return JobError(
        f"cannot write {path}: {exc.strerror or exc}; what was recorded before stays readable, "
        "free space or fix permissions and run the same command again to resume"
    )


class OutcomeLog:
    """Appends outcome records to the job's log, durably enough to resume from."""

    def __init__(self, path: Path, fsync_interval: float = 1.0) -> None:
        self.path = path
        self.fsync_interval = fsync_interval
        self.records = 0
        repair_torn_tail(path)
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                               PRIVATE_FILE)
        except OSError as exc:
            raise _storage_error(path, exc) from exc
        self._last_sync = time.monotonic()

    def write(self, records: list[dict[str, Any]]) -> None:
        self.write_lines([_dumps(r) + "\n" for r in records])

    def write_lines(self, lines: list[str]) -> None:
        """Append encoded records (encode_record) in one write."""
        if not lines:
            return
        data = "".join(lines).encode()
        written = 0
        try:
            while written < len(data):  # only a full disk or a signal makes a write short
                written += os.write(self._fd, data[written:])
        except OSError as exc:
            if written:  # keep the whole records that made it; cut the torn one
                with contextlib.suppress(OSError):
                    end = os.lseek(self._fd, 0, os.SEEK_END)
                    os.ftruncate(self._fd, end - written + data.rfind(b"\n", 0, written) + 1)
            raise _storage_error(self.path, exc) from exc
        failpoints.hit("journal.after_write")
        self.records += len(lines)
        if time.monotonic() - self._last_sync >= self.fsync_interval:
            self.sync()

    def sync(self) -> None:
        """Make every record written so far durable (before a checkpoint claims them)."""
        try:
            os.fsync(self._fd)
        except OSError as exc:
            raise _storage_error(self.path, exc) from exc
        self._last_sync = time.monotonic()

    def close(self) -> None:
        if self._fd < 0:
            return
        try:
            os.fsync(self._fd)
        except OSError as exc:
            raise _storage_error(self.path, exc) from exc
        finally:
            os.close(self._fd)
            self._fd = -1


def repair_torn_tail(path: Path) -> None:
    """Cut a last line that a crash left without its newline: it was never a whole record."""
    try:
        with path.open("rb+") as f:
            size = f.seek(0, os.SEEK_END)
            if size == 0:
                return
            f.seek(size - 1)
            if f.read(1) == b"\n":
                return
            back = min(size, 1 << 16)
            f.seek(size - back)
            tail = f.read(back)
            cut = size - back + tail.rfind(b"\n") + 1
            f.truncate(cut)
            log.warning("journal.torn_line_removed", path=str(path), bytes=size - cut)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise _storage_error(path, exc) from exc


Damaged = Callable[[str, int], None]  # told a damaged line's file and line number (1-based)


def parse_record(raw: bytes) -> dict[str, Any] | None:
    """A log line's record; None if the line is not one (not JSON, or not an object with the
    source, line and status every record has): a disk or a hand damaged it."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # (UnicodeDecodeError is a ValueError)
        return None
    if type(value) is not dict or not ("source" in value and "line" in value
                                        and "status" in value):
        return None
    return value


def damaged_log(path: Path, line: int) -> JobError:
    return JobError(
        f"outcome log {path}, line {line:,}, is not a whole record (the file was damaged or "
        "edited): a run cannot resume a job from it; restore that line, or start the job over "
        "with --fresh (status and report read past it)"
    )


def numbered_records(path: Path, damaged: Damaged | None = None, stop: int | None = None,
                     ) -> Iterator[tuple[int, dict[str, Any]]]:
    """(index, record) for every whole record of a log (of its first `stop` lines), the index
    counting every whole line from 0; a torn last line is skipped. A line that is not a record
    raises JobError naming the file and the line, or, with `damaged`, is told to it and
    skipped."""
    try:
        f = path.open("rb")
    except FileNotFoundError:
        return
    with f:
        for index, raw in enumerate(f):
            if index == stop:
                return
            if not raw.endswith(b"\n"):
                continue
            rec = parse_record(raw)
            if rec is not None:
                yield index, rec
            elif damaged is None:
                raise damaged_log(path, index + 1)
            else:
                damaged(str(path), index + 1)


def read_records(path: Path, damaged: Damaged | None = None) -> Iterator[dict[str, Any]]:
    """Every whole record of a log; a torn last line is skipped, a damaged line as
    `numbered_records` says."""
    for _, rec in numbered_records(path, damaged):
        yield rec
