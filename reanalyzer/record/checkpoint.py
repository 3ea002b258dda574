"""The checkpoint: a low watermark below which every input record has its outcome recorded.

``Watermark`` decides (pure): blocks are registered in input order with the number of hashes
they still wait for; as outcomes are recorded the oldest finished blocks fall below the mark.
``write_checkpoint`` makes it durable: temp file, fsync, rename, fsync the directory, so a crash
leaves either the old checkpoint or the new one, never half of one. The outcome log is fsynced
first, so that the checkpoint never claims more than the disk holds.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from reanalyzer.core import failpoints
from reanalyzer.core.positions import ResumePoint
from reanalyzer.errors import JobError

CHECKPOINT_FILE = "checkpoint.json"
_VERSION = 1


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What a resumed run needs to skip to where the job stood."""

    source_index: int  # reading resumes in this source ...
    line: int  # ... at this line ...
    offset: int | None  # ... found at this byte offset (None: reread the source, skip lines)
    complete: bool  # every input was read to its end and every record is below the mark
    failed: int  # records whose final outcome is `failed`: a resume sends them again

    @property
    def resume_point(self) -> ResumePoint:
        return ResumePoint(self.source_index, self.line, self.offset)


def write_checkpoint(job_dir: Path, checkpoint: Checkpoint) -> None:
    path = job_dir / CHECKPOINT_FILE
    tmp = path.with_suffix(".tmp")
    data = json.dumps({"version": _VERSION, **asdict(checkpoint)}, indent=2).encode() + b"\n"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
            failpoints.hit("checkpoint.before_fsync")
            os.fsync(fd)
        finally:
            os.close(fd)
        failpoints.hit("checkpoint.before_rename")
        os.replace(tmp, path)
        failpoints.hit("checkpoint.after_rename")
        dir_fd = os.open(job_dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)  # a half-written one, of no use to anyone
        raise JobError(
            f"cannot write the checkpoint {path}: {exc.strerror or exc}; the outcome log stays "
            "readable, fix the disk and run the same command again"
        ) from exc


def read_checkpoint(job_dir: Path) -> Checkpoint | None:
    path = job_dir / CHECKPOINT_FILE
    try:
        raw: dict[str, Any] = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise JobError(
            f"cannot read the checkpoint {path}: {exc}; use --fresh to start over"
        ) from exc
    if raw.pop("version", None) != _VERSION:
        raise JobError(f"checkpoint {path} is of another version; use --fresh to start over")
    return Checkpoint(**raw)
