"""The checkpoint: a low watermark below which every input record has its outcome recorded.

``Watermark`` decides (pure): blocks are registered in input order with the number of hashes
they still wait for; as outcomes are recorded the oldest finished blocks fall below the mark.
``write_checkpoint`` makes it durable (``atomic.write_atomically``: temp file, fsync, rename,
fsync of the directory), so a crash leaves either the old checkpoint or the new one, never half
of one. The outcome log is fsynced first, so that the checkpoint never claims more than the disk
holds.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from reanalyzer.core.positions import ResumePoint
from reanalyzer.errors import JobError
from reanalyzer.record.atomic import write_atomically

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
    text = json.dumps({"version": _VERSION, **asdict(checkpoint)}, indent=2) + "\n"
    try:
        write_atomically(path, text, tmp=path.with_suffix(".tmp"), failpoint="checkpoint")
    except OSError as exc:
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
