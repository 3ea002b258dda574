"""Stage 6: the outcome log: one record per input record, written a line per answer.

A line holds the records of one answer that share a verdict and an input (v2: ``hashes``,
``lines`` and ``details`` aligned, fields at their default left out, a detail without the sent
hash); readers restore the documented records from it (``line_records``), every field
there, and read lines of the old form (v1: one full record a line) as they are. Lines are
appended per batch in one ``write``, flushed at once and fsynced at most every ``fsync_interval``
seconds (and on close), so a crash loses at most the last interval's records from the disk,
never a line's half: a torn last line is cut off when the log is opened again. The log's files,
its open segment and its closed, compressed ones, are record/segments.py's. A later record for
the same (source, line) supersedes an earlier one: the final outcome of a line is its last
record (only ``failed`` records are ever superseded, by a resumed or repeated run).

Reading the log back (``stored_lines``: whole lines, msgspec-decoded, a damaged line named) is
here too, beside the writing, so that one module says what a record is: with the encoding tuned
for speed that takes more than 300 lines.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import structlog

from reanalyzer.core import failpoints
from reanalyzer.core.outcomes import AnalysisResult, DetailTexts, Status, Verdict
from reanalyzer.core.private import PRIVATE_FILE
from reanalyzer.errors import JobError
from reanalyzer.record import segments

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


# On disk (v2) a line holds the records of one answer that share a verdict and a source: their
# common fields once, then `hashes`, `lines` and `details` aligned. A field at its default (null
# reason or http_status, 0 attempts, no analyses) is left out, and a detail is written without
# the sent hash (it is `hash`). ``line_records`` turns a line back into the documented records.
_NO_DETAIL = "null"


def _detail_entry(text: str, hash_type: str | None, value: str | None) -> str:
    """A detail's entry on disk: null for none, the object less the sent hash, or (when it does
    not hold the sent hash as is, flat) the object in a one-item list, kept whole."""
    if text == "{}":
        return _NO_DETAIL
    if value is not None:
        pair = f'"{hash_type}":"{value}"'
        at = text.find(pair)
        # A flat object (no other brace) holding the pair between a comma or its brace and a
        # comma or its brace: the pair goes, the object stays an object.
        if at > 0 and text.count("{") == 1:
            end = at + len(pair)
            before, after = text[at - 1], text[end : end + 1]
            if before == "," and after in (",", "}"):
                return text[: at - 1] + text[end:]
            if before == "{" and after == ",":
                return "{" + text[end + 1 :]
            if before == "{" and after == "}":
                return "{}"
    return f"[{text}]"


def _detail_entries(texts: Sequence[str], hash_type: str, hashes: Sequence[str]) -> list[str]:
    """`_detail_entry` of each detail of one answer; for the usual answer (flat details of one
    shape, the same length, each with its sent hash at one place) by slicing, a few passes at
    C speed: per record, `_detail_entry` would cost three times the rest of its encoding."""
    count = len(texts)
    first = texts[0] if count else ""
    at = first.find(f'"{hash_type}":"{hashes[0]}"') if count and hashes[0] else -1
    if at > 0 and len(set(map(len, texts))) == 1:
        key = len(hash_type) + 4  # "type":"
        end = at + key + len(hashes[0]) + 1  # after the value's closing quote
        before, after = first[at - 1], first[end : end + 1]
        cut = (
            (at - 1, end)
            if before == "," and after in (",", "}")
            else (at, end + 1)
            if before == "{" and after == ","
            else None
        )
        if (
            cut is not None
            and [t[at + key : end - 1] for t in texts] == list(hashes)
            and {t[at - 1 : at + key] + t[end : end + 1] for t in texts}
            == {first[at - 1 : at + key] + after}
            and "".join(texts).count("{") == count
        ):
            a, b = cut
            return [t[:a] + t[b:] for t in texts]
    return [
        _detail_entry(text, hash_type, value) for text, value in zip(texts, hashes, strict=True)
    ]


def _line_text(
    hash_type: str | None,
    status: Status,
    source: str,
    reason: str | None,
    http_status: int | None,
    attempts: int,
    analyses: tuple[AnalysisResult, ...],
    ts: str,
    hashes: str,
    lines: str,
    details: list[str],
) -> str:
    return (
        _head(hash_type, status, source)
        + _tail_of(reason, http_status, attempts, analyses)
        + f'"ts":"{ts}","hashes":[{hashes}],"lines":[{lines}]'
        + ("" if details.count(_NO_DETAIL) == len(details) else f',"details":[{",".join(details)}]')
        + "}\n"
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
    """One outcome record as a log line (of one record): ``line_records`` reads back what
    ``record(...)`` builds. The hash and its type are lowercase hex and a constant: they need
    no escaping."""
    entry = _detail_entry(_json_detail(detail) if detail else "{}", hash_type, hash_value)
    return _line_text(
        hash_type,
        status,
        source,
        reason,
        http_status,
        attempts,
        analyses,
        ts,
        "null" if hash_value is None else f'"{hash_value}"',
        str(line),
        [entry],
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
    """The log lines of one answered request: one per run of hashes with the same verdict and
    source (one line for the usual answer), holding the same records as encode_record would.

    `details[i]`, when given, is the detail of `hashes[i]` (its verdict is shared with other
    hashes, see `Verdicts`); else each verdict's own.
    """
    if details is None:
        details = [verdict.detail for verdict in verdicts]
    detail_texts = _json_details(details)
    entries = _detail_entries(detail_texts, hash_type, hashes)
    out = []
    start = 0
    count = len(hashes)
    while start < count:
        verdict, source = verdicts[start], sources[start]
        end = start + 1
        # Identity first (C speed): hashes judged alike share one Verdict object.
        while end < count and verdicts[end] is verdict and sources[end] is source:
            end += 1
        out.append(
            _line_text(
                hash_type,
                verdict.status,
                source,
                verdict.reason,
                verdict.http_status,
                verdict.attempts,
                verdict.analyses,
                ts,
                '"' + '","'.join(hashes[start:end]) + '"',
                ",".join(map(str, lines[start:end])),
                entries[start:end],
            )
        )
        start = end
    return out


@functools.lru_cache(maxsize=1024)
def _head(hash_type: str | None, status: Status, source: str) -> str:
    """A line's text from its start to its reason."""
    kind = "" if hash_type is None else f'"hash_type":"{hash_type}",'
    return f'{{{kind}"status":"{status}","source":{_json_text(source)},'


@functools.lru_cache(maxsize=4096)
def _tail_of(
    reason: str | None, http_status: int | None, attempts: int, analyses: tuple[AnalysisResult, ...]
) -> str:
    """A line's text from its reason to its timestamp: the fields not at their default."""
    return (
        ("" if reason is None else f'"reason":{_json_text(reason)},')
        + ("" if http_status is None else f'"http_status":{http_status},')
        + (f'"attempts":{attempts},' if attempts else "")
        + (f'"analyses":{_json_analyses(analyses)},' if analyses else "")
    )


def _storage_error(path: Path, exc: OSError) -> JobError:
    return JobError(
        f"cannot write {path}: {exc.strerror or exc}; what was recorded before stays readable, "
        "free space or fix permissions and run the same command again to resume"
    )


class OutcomeLog:
    """Appends outcome records to the job's log, durably enough to resume from; closes its
    open segment once it is large, and when the run ends (record/segments.py)."""

    def __init__(
        self, path: Path, fsync_interval: float = 1.0, segment_bytes: int = segments.SEGMENT_BYTES
    ) -> None:
        self.path = path
        self.fsync_interval = fsync_interval
        self.segment_bytes = segment_bytes
        self.records = 0
        self._closer = segments.Closer(path)
        self._broken = False  # a write or fsync failed: close leaves the log as it is
        repair_torn_tail(path)
        try:
            self._closer.finish()  # what a crash left closed but not compressed
        except OSError as exc:
            raise _storage_error(path, exc) from exc
        self._fd = -1
        self._open()
        self._last_sync = time.monotonic()

    def _open(self) -> None:
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE)
            self._size = os.fstat(self._fd).st_size
        except OSError as exc:
            raise _storage_error(self.path, exc) from exc

    def write(self, records: list[dict[str, Any]]) -> None:
        self.write_lines(
            [
                encode_record(
                    hash_value=r["hash"],
                    hash_type=r["hash_type"],
                    status=Status(r["status"]),
                    source=r["source"],
                    line=r["line"],
                    ts=r["ts"],
                    reason=r.get("reason"),
                    http_status=r.get("http_status"),
                    attempts=r.get("attempts") or 0,
                    analyses=tuple(
                        AnalysisResult(a["name"], a.get("code"), a.get("message"))
                        for a in r.get("analyses") or ()
                    ),
                    detail=r.get("detail"),
                )
                for r in records
            ]
        )

    def write_lines(self, lines: list[str]) -> None:
        """Append encoded lines (encode_record, encode_verdicts) in one write."""
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
            self._broken = True
            raise _storage_error(self.path, exc) from exc
        failpoints.hit("journal.after_write")
        self.records += len(lines)
        self._size += written
        if time.monotonic() - self._last_sync >= self.fsync_interval:
            self.sync()
        if self._size >= self.segment_bytes:
            self._close_segment(background=True)

    def _close_segment(self, background: bool) -> None:
        """Close the open segment (durable first) and compress it; a new one is opened."""
        self.sync()
        os.close(self._fd)
        self._fd = -1
        try:
            self._closer.close_open_segment()
        except OSError as exc:
            raise _storage_error(self.path, exc) from exc
        self._open()  # (at the end of a run too: the log's name stays, its open segment empty)
        if background:
            self._closer.compress_in_background()
        else:
            self._closer.finish()

    def sync(self) -> None:
        """Make every record written so far durable (before a checkpoint claims them)."""
        try:
            os.fsync(self._fd)
        except OSError as exc:
            self._broken = True
            raise _storage_error(self.path, exc) from exc
        self._last_sync = time.monotonic()

    def close(self) -> None:
        """Make the log durable, and close and compress its open segment."""
        if self._fd < 0:
            return
        try:
            os.fsync(self._fd)
        except OSError as exc:
            os.close(self._fd)
            self._fd = -1
            raise _storage_error(self.path, exc) from exc
        try:
            if self._broken:
                pass  # the disk failed: a later run, with space again, closes the segment
            elif self._size:
                self._close_segment(background=False)
            else:
                self._closer.finish()
        except OSError as exc:  # the plain segment stays whole: the next run compresses it
            log.warning("journal.not_compressed", path=str(self.path), error=str(exc))
        finally:
            if self._fd >= 0:
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


class StoredAnalysis(msgspec.Struct, frozen=True):
    name: Any = None
    code: Any = None
    message: Any = None


class Stored(msgspec.Struct):
    """A log line as stored, without its details: the records of one verdict and source (v2:
    ``hashes`` and ``lines`` aligned), or one record as the log held them before (v1)."""

    status: str
    source: str
    hash_type: str | None = None
    reason: Any = None
    http_status: Any = None
    attempts: Any = 0
    analyses: list[StoredAnalysis] = []
    ts: Any = None
    hashes: list[str | None] | None = None
    lines: list[int] | None = None
    hash: str | None = None
    line: int | None = None

    @property
    def count(self) -> int:
        return 1 if self.lines is None else len(self.lines)

    def hash_list(self) -> list[str | None]:
        return [self.hash] if self.hashes is None else self.hashes

    def line_list(self) -> list[int]:
        return [self.line or 0] if self.lines is None else self.lines


class _StoredWithDetails(Stored):
    details: list[Any] | None = None
    detail: Any = None


_lite = msgspec.json.Decoder(Stored)
_full = msgspec.json.Decoder(_StoredWithDetails)
_entries = msgspec.json.Decoder(list[Any] | None)
# A line's details as stored (None: no record of it has one), or the text of them, decoded
# only when its records are restored: held for a whole log, decoded details take ~4x the room.
Entries = list[Any] | bytes | None


def _valid(line: Stored, entries: Entries) -> bool:
    if line.lines is None:
        return line.line is not None
    return (
        line.hashes is not None
        and len(line.hashes) == len(line.lines)
        and (entries is None or isinstance(entries, bytes) or len(entries) == len(line.lines))
    )


def _lenient(raw: bytes, with_details: bool) -> Stored | None:
    """A line msgspec refused, read as json reads it (which lets in lone surrogates and integers
    beyond 64 bits an appliance may send); None if it is not a log line."""
    try:
        value = json.loads(raw)
        if type(value) is not dict:
            return None
        return msgspec.convert(value, _StoredWithDetails if with_details else Stored)
    except (ValueError, RecursionError, msgspec.ValidationError):
        return None


def _entries_of(line: Stored) -> Entries:
    if not isinstance(line, _StoredWithDetails):
        return None
    if line.lines is None:  # v1: its detail, whole
        return [[line.detail]] if line.detail else None
    return line.details


def _decode_segment(
    data: bytes,
    details: bytes | None,
    path: Path,
    damaged: Damaged | None,
    with_details: bool,
    first: int = 0,
) -> Iterator[tuple[Stored, Entries]]:
    """The lines of one segment (or of a piece of it, after its first `first` lines), each with
    its details when asked (`details`: the separate details of a compressed segment); a damaged
    one raises JobError or is told to `damaged`."""
    decoder = _full if with_details else _lite
    detail_lines: list[Entries] | None = None
    if details is not None and with_details:
        detail_lines = [None if raw == b"null" else raw for raw in details.splitlines()]
    try:
        decoded: list[Stored | None] = list(decoder.decode_lines(data))
    except (msgspec.DecodeError, msgspec.ValidationError):
        decoded = []
        for raw in data.splitlines():
            try:
                decoded.append(decoder.decode(raw))
            except (msgspec.DecodeError, msgspec.ValidationError):
                decoded.append(_lenient(raw, decoder is _full))
    if detail_lines is not None and len(detail_lines) != len(decoded):
        raise JobError(
            f"outcome log {path}: its details do not match its lines (the files "
            "were damaged or edited)"
        )
    for number, line in enumerate(decoded):
        entries = detail_lines[number] if detail_lines is not None else None
        if entries is None and line is not None:
            entries = _entries_of(line)  # a plain segment's, or a v1 line's own
        if line is not None and _valid(line, entries):
            yield line, entries
        elif damaged is None:
            raise damaged_log(path, first + number + 1)
        else:
            damaged(str(path), first + number + 1)


def _decoded_entries(raw: bytes, count: int) -> list[Any] | None:
    """A compressed segment's details of a line of `count` records; None if they are not that
    (damaged: the records are read without their details)."""
    try:
        value = _entries.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        try:
            value = json.loads(raw)  # what only json's lenient reading lets in
        except (ValueError, RecursionError):
            return None
    return value if isinstance(value, list) and len(value) == count else None


SegmentRead = Callable[[int, int], None]  # told (segments read, segments in all) as it reads
_READERS = 2  # segments decompressed at once, in threads, ahead of the decoding


def stored_lines(
    path: Path,
    damaged: Damaged | None = None,
    details: bool = False,
    on_segment: SegmentRead | None = None,
    whole: bool = False,
) -> Iterator[tuple[Stored, Entries]]:
    """Every whole line of a log (`path`: its open segment), closed segments first, each with
    its details if asked; a torn last line is skipped, a damaged one as `_decode_segment`.

    Without details, and unless `whole`, a segment is read a piece at a time: what a resume,
    `status` or `retry` holds of the log stays within a few pieces, whatever its size. `whole`
    (for `report`, which holds the job anyway): segments are inflated whole, the next ones in
    threads while this one is decoded: ~2x faster, and up to three segments held at once."""
    found = segments.segments(path)
    if not (whole or details):
        for number, segment in enumerate(found):
            first = 0
            try:
                for piece in segments.segment_chunks(segment):
                    yield from _decode_segment(piece, None, segment.path, damaged, False, first)
                    first += piece.count(b"\n")
            except FileNotFoundError:
                pass  # compressed and removed by a later --fresh: nothing to read
            except OSError as exc:
                raise JobError(f"cannot read the outcome log {segment.path}: {exc}") from exc
            if on_segment is not None:
                on_segment(number + 1, len(found))
        return

    def read(segment: segments.Segment) -> tuple[bytes, bytes | None] | None:
        try:
            data, _ = segments.read_segment(segment)
            return data, segments.read_details(segment) if details else None
        except FileNotFoundError:
            return None

    # The next segments are decompressed in threads (zlib lets go of the GIL) while this one is
    # decoded. The threads end with the reading: a resume forks its reader afterwards.
    with ThreadPoolExecutor(_READERS, thread_name_prefix="outcome-log-read") as pool:
        ahead = [pool.submit(read, segment) for segment in found[:_READERS]]
        for number, segment in enumerate(found):
            try:
                got = ahead.pop(0).result()
            except OSError as exc:
                raise JobError(f"cannot read the outcome log {segment.path}: {exc}") from exc
            if number + _READERS < len(found):
                ahead.append(pool.submit(read, found[number + _READERS]))
            if got is not None:
                yield from _decode_segment(got[0], got[1], segment.path, damaged, details)
            if on_segment is not None:
                on_segment(number + 1, len(found))


def restore_detail(entry: Any, hash_type: str | None, value: str | None) -> Any:
    """A record's detail from its entry on disk (see `_detail_entry`)."""
    if entry is None:
        return {}
    if isinstance(entry, list):
        return entry[0] if entry else {}
    if isinstance(entry, dict) and value is not None and hash_type is not None:
        return {**entry, hash_type: value}
    return entry


def line_records(line: Stored, entries: Entries) -> list[dict[str, Any]]:
    """The documented records a stored line holds, every field there."""
    if isinstance(entries, bytes):
        entries = _decoded_entries(entries, line.count)
    analyses = [{"name": a.name, "code": a.code, "message": a.message} for a in line.analyses]
    out = []
    for i, (value, number) in enumerate(zip(line.hash_list(), line.line_list(), strict=True)):
        out.append(
            {
                "hash": value,
                "hash_type": line.hash_type,
                "status": line.status,
                "source": line.source,
                "line": number,
                "reason": line.reason,
                "http_status": line.http_status,
                "attempts": line.attempts,
                "analyses": [dict(a) for a in analyses] if i else analyses,
                "detail": restore_detail(
                    None if entries is None else entries[i], line.hash_type, value
                ),
                "ts": line.ts,
            }
        )
    return out


def damaged_log(path: Path, line: int) -> JobError:
    return JobError(
        f"outcome log {path}, line {line:,}, is not a whole record (the file was damaged or "
        "edited): a run cannot resume a job from it; restore that line, or start the job over "
        "with --fresh (status and report read past it)"
    )


def numbered_records(
    path: Path, damaged: Damaged | None = None, stop: int | None = None, details: bool = True
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(index, record) for every record of a log (of its first `stop` records), the index
    counting records from 0; a torn last line is skipped. A line that is not a log line raises
    JobError naming the file and the line, or, with `damaged`, is told to it and skipped."""
    index = 0
    if stop == 0:
        return
    for line, entries in stored_lines(path, damaged, details):
        for rec in line_records(line, entries):
            if index == stop:
                return
            yield index, rec
            index += 1
        if index == stop:  # before reading on: what follows is not this reader's to judge
            return


def read_records(path: Path, damaged: Damaged | None = None) -> Iterator[dict[str, Any]]:
    """Every record of a log, every field there; a torn last line is skipped, a damaged line as
    `numbered_records` says."""
    for _, rec in numbered_records(path, damaged):
        yield rec
