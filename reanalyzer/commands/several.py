"""Several job directories read as one job, for ``status DIR...`` and ``report DIR...``.

The directories may be the shards of one job (``run --shard K/N``: each records its own slice of
the same input, so together they hold every line once) or separate jobs (one per appliance, say).
Shards are recognised by job.json: the same inputs and settings but for ``shard``. Those of one
job must all be given, each once, with one count N: a missing shard is named, since without it
the lines of its slice have no outcome to show.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reanalyzer.core.shards import Shard, parse_shard
from reanalyzer.errors import JobError, UsageError
from reanalyzer.record.jobdir import JOB_FILE


@dataclass(frozen=True, slots=True)
class Member:
    """One directory given: its job.json, and its shard if it is one."""

    job_dir: Path
    identity: str  # the job's identity without the shard: equal for the shards of one job
    shard: Shard | None


@dataclass(frozen=True, slots=True)
class MissingShard:
    """A shard of a job of which other shards were given."""

    shard: Shard
    sibling: Path  # a directory of the same job, to say which job

    def __str__(self) -> str:
        return f"shard {self.shard} of the job of {self.sibling} (the directory of that shard)"


def read_member(job_dir: Path) -> Member:
    """A directory's place among the others; JobError if it is no job directory."""
    if not job_dir.is_dir():
        raise JobError(f"no job directory {job_dir}")
    try:
        job = json.loads((job_dir / JOB_FILE).read_bytes())
    except (OSError, ValueError):
        job = None
    if not isinstance(job, dict):
        raise JobError(f"{job_dir} is not a job directory: no readable {JOB_FILE}")
    settings: dict[str, Any] = dict(job.get("settings") or {})
    shard_text = settings.pop("shard", None)
    shard = None
    if isinstance(shard_text, str):
        try:
            shard = parse_shard(shard_text)
        except ValueError:
            raise JobError(f"{job_dir / JOB_FILE}: shard {shard_text!r} is not K/N") from None
    identity = json.dumps({"inputs": job.get("inputs"), "settings": settings}, sort_keys=True)
    return Member(job_dir, identity, shard)


def check_shards(members: Sequence[Member]) -> list[MissingShard]:
    """The shards missing among `members` (by job, then K). UsageError for a shard given twice
    or the shards of one job cut into different counts: no answer adds those up."""
    by_job: dict[str, list[Member]] = {}
    for member in members:
        if member.shard is not None:
            by_job.setdefault(member.identity, []).append(member)
    missing: list[MissingShard] = []
    for shards in by_job.values():
        counts = sorted({m.shard.count for m in shards if m.shard is not None})
        if len(counts) > 1:
            raise UsageError(
                "shards of one job with different shard counts were given: "
                + ", ".join(f"{m.job_dir} is shard {m.shard}" for m in shards)
                + "; give the directories of one count N"
            )
        seen: dict[int, Path] = {}
        for m in shards:
            assert m.shard is not None
            if m.shard.index in seen:
                raise UsageError(
                    f"shard {m.shard} of one job is given twice: "
                    f"{seen[m.shard.index]} and {m.job_dir}"
                )
            seen[m.shard.index] = m.job_dir
        count = counts[0]
        missing += [
            MissingShard(Shard(k, count), shards[0].job_dir) for k in range(count) if k not in seen
        ]
    return missing


def members_of(job_dirs: Sequence[Path]) -> tuple[list[Member], list[MissingShard]]:
    """The directories given, each once, and the shards missing among them."""
    seen: dict[Path, Path] = {}
    for job_dir in job_dirs:
        if (same := seen.setdefault(job_dir.resolve(), job_dir)) is not job_dir:
            also = "" if same == job_dir else f" (as {same} and {job_dir})"
            raise UsageError(f"the job directory {job_dir} is given twice{also}; give each once")
    members = [read_member(job_dir) for job_dir in job_dirs]
    return members, check_shards(members)
