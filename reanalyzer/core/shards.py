"""Shards: which worker of N records which input line (pure; no I/O).

A hash line belongs to shard ``first 8 bytes of sha256(lowercase hex hash), big-endian, mod N``:
a function of the normalized hash alone, so every run, machine and Python version cuts the same
slices (Python's ``hash()`` is salted per process), and a hash and its repeats fall in one shard,
which keeps dedupe exact within it. A line that is not a hash (``invalid``) belongs to shard 0.
Rehashing rather than reading the hash's own leading digits keeps the slices even for inputs
whose hashes are not uniform (test fixtures, hand-made lists, one sample's md5 and sha1 side by
side). It costs about 0.7 µs a hash, in the read-ahead child, not in the sending process.

``--shard auto`` reads the shard from the scheduler's environment (``shard_from_environment``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from hashlib import sha256

INVALID_SHARD = 0  # the shard that records every line that is not a hash

# Where each scheduler puts the worker's index (and the base it counts from), in the order
# --shard auto looks: (variable of the index, variable to subtract from it or None).
INDEX_VARIABLES: tuple[tuple[str, str | None], ...] = (
    ("JOB_COMPLETION_INDEX", None),  # Kubernetes Indexed Job: 0..completions-1
    ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN"),  # Slurm job array: --array=MIN-MAX
    ("AWS_BATCH_JOB_ARRAY_INDEX", None),  # AWS Batch array job: 0..size-1
)
# Where the number of workers may be found, after --shard-count (Kubernetes sets none).
COUNT_VARIABLES = ("SLURM_ARRAY_TASK_COUNT", "AWS_BATCH_JOB_ARRAY_SIZE")


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard ``index`` of ``count`` (0 <= index < count)."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def label(self) -> str:
        """How a job directory names it: ``shard-2of8``."""
        return f"shard-{self.index}of{self.count}"

    @property
    def records_invalid(self) -> bool:
        """Whether this shard records the lines that are not a hash."""
        return self.index == INVALID_SHARD


def shard_of(value: str, count: int) -> int:
    """The shard of one normalized (stripped, lowercase) hash among `count`."""
    return int.from_bytes(sha256(value.encode("ascii")).digest()[:8], "big") % count


def shards_of(values: Sequence[str], count: int) -> list[int]:
    """`shard_of` for each of a block's hashes (the loop the front runs per hash)."""
    if count == 1:
        return [0] * len(values)
    from_bytes = int.from_bytes
    encoded = "\n".join(values).encode("ascii").split(b"\n") if values else []
    return [from_bytes(sha256(v).digest()[:8], "big") % count for v in encoded]


def parse_shard(text: str) -> Shard:
    """``K/N`` → Shard(K, N); ValueError saying what is allowed."""
    index_text, sep, count_text = text.strip().partition("/")
    if not sep or not index_text.strip().isdigit() or not count_text.strip().isdigit():
        raise ValueError(f"must be K/N (shard K of N, 0 <= K < N, e.g. 2/8) or auto, not {text!r}")
    index, count = int(index_text), int(count_text)
    if count < 1:
        raise ValueError(f"{text}: the shard count N must be at least 1")
    if index >= count:
        raise ValueError(f"{text}: the shard K must be below N (shards are 0 to {count - 1})")
    return Shard(index, count)


def _number(env: Mapping[str, str], name: str, what: str) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        raise ValueError(f"--shard auto: {name} is not set ({what})")
    if not raw.isdigit():
        raise ValueError(f"--shard auto: {name}={raw!r} is not a whole number ({what})")
    return int(raw)


def shard_from_environment(env: Mapping[str, str], count: int | None) -> Shard:
    """The shard a scheduler gave this worker: K from the first index variable set (see
    INDEX_VARIABLES), N from `count` (--shard-count) or COUNT_VARIABLES. ValueError naming the
    variable that is missing, not a number or out of range."""
    found = next(
        ((name, base) for name, base in INDEX_VARIABLES if env.get(name, "").strip()), None
    )
    if found is None:
        names = ", ".join(name for name, _ in INDEX_VARIABLES)
        raise ValueError(
            f"--shard auto: none of {names} is set; give --shard K/N outside a "
            "Kubernetes Indexed Job, a Slurm job array or an AWS Batch array job"
        )
    name, base = found
    index = _number(env, name, "the shard index")
    source = f"{name} {index}"
    if base is not None:
        first = _number(env, base, f"the first index of the array, subtracted from {name}")
        index -= first
        source = f"{name} {index + first} - {base} {first}"
    count_source = "--shard-count"
    if count is None:
        named = next((n for n in COUNT_VARIABLES if env.get(n, "").strip()), None)
        if named is None:
            raise ValueError(
                f"--shard auto: {name} gives the shard index but no shard count is given: set "
                f"--shard-count (REANALYZER_SHARD_COUNT), or {' or '.join(COUNT_VARIABLES)}"
            )
        count, count_source = _number(env, named, "the shard count"), named
    if count < 1:
        raise ValueError(
            f"--shard auto: {count_source}={count}: the shard count must be at least 1"
        )
    if not 0 <= index < count:
        raise ValueError(
            f"--shard auto: shard {index} ({source}) is out of range: shards are 0 "
            f"to {count - 1} ({count_source} {count})"
        )
    return Shard(index, count)
