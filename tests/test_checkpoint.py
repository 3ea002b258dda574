"""The low watermark, the atomic checkpoint, and the resume state read from checkpoint and log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reanalyzer.core.hashes import HashType
from reanalyzer.core.outcomes import Status
from reanalyzer.core.positions import Block, ResumePoint, position
from reanalyzer.core.watermark import Watermark
from reanalyzer.errors import JobError
from reanalyzer.read.dedupe import SeenSet
from reanalyzer.record.checkpoint import (
    CHECKPOINT_FILE,
    Checkpoint,
    read_checkpoint,
    write_checkpoint,
)
from reanalyzer.record.outcome_log import OUTCOMES_FILE, record
from reanalyzer.run.resume import load_resume_state

SOURCE = "in.txt"


def block(first: int, last: int, *, source: int = 0, offset: int | None = None) -> Block:
    """Lines first..last of a source; the next block starts at last + 1 (at `offset`)."""
    return Block(source, [b"x"] * (last - first + 1), first, end_line=last + 1, end_offset=offset)


def pos(line: int, source: int = 0) -> int:
    return position(source, line)


# --- Watermark ------------------------------------------------------------------------------


def test_mark_advances_only_past_blocks_fully_recorded_in_input_order() -> None:
    """Outcomes recorded out of order move the mark only past the oldest fully recorded blocks."""
    mark = Watermark()
    mark.open_block(block(1, 10, offset=100))
    mark.register(3)
    mark.open_block(block(11, 20, offset=200))
    mark.register(2)
    mark.open_block(block(21, 30, offset=300))
    mark.register(1)

    mark.recorded([pos(25)])  # the newest block is done first
    mark.recorded([pos(12), pos(18)])
    assert mark.mark == ResumePoint(0, 1, 0)
    mark.recorded([pos(1), pos(5)])
    assert mark.mark == ResumePoint(0, 1, 0)  # one hash of the oldest block still out
    mark.recorded([pos(9)])
    assert mark.mark == ResumePoint(0, 31, 300)
    assert not mark.complete


def test_mark_stops_at_the_first_unfinished_block() -> None:
    """The mark moves to the end of the last block before the first one still waiting."""
    mark = Watermark()
    mark.open_block(block(1, 10, offset=100))
    mark.register(1)
    mark.open_block(block(11, 20, offset=200))
    mark.register(1)
    mark.open_block(block(21, 30, offset=300))
    mark.register(1)
    mark.recorded([pos(3), pos(27)])
    assert mark.mark == ResumePoint(0, 11, 100)


def test_an_opened_block_holds_the_mark_until_registered() -> None:
    """A block the front has opened but not yet batched keeps the mark below it."""
    mark = Watermark()
    mark.open_block(block(1, 10, offset=100))
    assert mark.mark == ResumePoint(0, 1, 0)
    mark.register(0)  # all its records were settled locally (invalid, duplicate)
    assert mark.mark == ResumePoint(0, 11, 100)


def test_mark_moves_to_the_start_of_the_next_source() -> None:
    """Once a source is fully recorded the mark moves on into the next one, and past the last
    input at the end."""
    mark = Watermark()
    mark.open_block(block(1, 5, offset=50))
    mark.register(2)
    mark.open_block(block(1, 4, source=1, offset=40))
    mark.register(1)
    mark.recorded([pos(2, source=1)])
    assert mark.mark == ResumePoint(0, 1, 0)  # source 0 still waits
    mark.recorded([pos(1), pos(3)])
    assert mark.mark == ResumePoint(1, 5, 40)
    mark.finish(2)
    assert mark.mark == ResumePoint(2, 1, 0)
    assert mark.complete


def test_a_source_transition_waits_for_the_earlier_source() -> None:
    """The start of a new source is not passed while the previous source has hashes out."""
    mark = Watermark()
    mark.open_block(block(1, 5, offset=50))
    mark.register(1)
    mark.open_block(block(1, 4, source=1, offset=40))
    mark.register(0)
    assert mark.mark == ResumePoint(0, 1, 0)
    mark.recorded([pos(4)])
    assert mark.mark == ResumePoint(1, 5, 40)


def test_a_block_without_end_offset_gives_a_mark_without_offset() -> None:
    """Where a block's end has no byte offset (CSV), the mark says to reread the source."""
    mark = Watermark()
    mark.open_block(block(1, 10, offset=None))
    mark.register(1)
    mark.recorded([pos(4)])
    assert mark.mark == ResumePoint(0, 11, None)


def test_a_resumed_watermark_starts_at_its_resume_point() -> None:
    """A watermark started at a checkpoint's point stays there until more is recorded."""
    start = ResumePoint(0, 41, 4000)
    mark = Watermark(start)
    mark.open_block(block(41, 50, offset=5000))
    mark.register(1)
    assert mark.mark == start
    mark.recorded([pos(45)])
    assert mark.mark == ResumePoint(0, 51, 5000)


def test_complete_only_after_finish_and_everything_recorded() -> None:
    """`complete` needs both the end of every input and every sent hash recorded."""
    mark = Watermark()
    mark.open_block(block(1, 10, offset=100))
    mark.register(2)
    mark.recorded([pos(1), pos(2)])
    assert not mark.complete  # all recorded, but reading has not ended
    mark.open_block(block(11, 12, offset=120))
    mark.register(1)
    mark.finish(1)
    assert not mark.complete  # reading ended, one hash still out
    mark.recorded([pos(11)])
    assert mark.complete
    assert mark.mark == ResumePoint(1, 1, 0)


def test_many_blocks_recorded_in_reverse_keep_positions_right() -> None:
    """Past the lazy trim of block starts, each recorded position still finds its own block."""
    mark = Watermark()
    for n in range(300):
        mark.open_block(block(10 * n + 1, 10 * n + 10, offset=100 * (n + 1)))
        mark.register(1)
    for n in range(200):  # the oldest 200 done: the trim runs
        mark.recorded([pos(10 * n + 5)])
    assert mark.mark == ResumePoint(0, 2001, 20000)
    for n in reversed(range(200, 300)):
        mark.recorded([pos(10 * n + 1)])
        expected = ResumePoint(0, 3001, 30000) if n == 200 else ResumePoint(0, 2001, 20000)
        assert mark.mark == expected


@pytest.mark.parametrize("order", ["ascending", "shuffled"])
def test_one_chunk_spanning_blocks_counts_each_block_its_own_hashes(order: str) -> None:
    """A chunk's positions usually ascend (counted a block at a time); in any order, each
    position still counts against its own block, past the lazy trim of block starts too."""
    mark = Watermark()
    for n in range(120):  # blocks of 10 lines, 4 hashes each at lines +1, +3, +5, +7
        mark.open_block(block(10 * n + 1, 10 * n + 10, offset=100 * (n + 1)))
        mark.register(4)
    lines = [10 * n + k for n in range(120) for k in (1, 3, 5, 7)]
    if order == "shuffled":
        lines = lines[::-1]
    # blocks 0..99 whole, and three of the four hashes of block 100
    chunk = [line for line in lines if line < 1000] + [1001, 1003, 1005]
    mark.recorded([pos(line) for line in chunk])
    assert mark.mark == ResumePoint(0, 1001, 10000)
    mark.recorded([pos(line) for line in lines if line > 1010])  # blocks 101..119
    assert mark.mark == ResumePoint(0, 1001, 10000)  # block 100 still waits for line 1007
    mark.recorded([pos(1007)])
    assert mark.mark == ResumePoint(0, 1201, 12000)


# --- the checkpoint file --------------------------------------------------------------------


def test_checkpoint_round_trips(tmp_path: Path) -> None:
    """What is written is read back, and the temp file does not stay behind."""
    checkpoint = Checkpoint(source_index=1, line=42, offset=4096, complete=False, failed=3)
    write_checkpoint(tmp_path, checkpoint)
    assert read_checkpoint(tmp_path) == checkpoint
    assert checkpoint.resume_point == ResumePoint(1, 42, 4096)
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_FILE]


def test_no_checkpoint_reads_as_none(tmp_path: Path) -> None:
    """A job directory without a checkpoint starts from the beginning."""
    assert read_checkpoint(tmp_path) is None


def test_a_leftover_temp_file_is_ignored_and_replaced(tmp_path: Path) -> None:
    """A crash between writing the temp file and renaming it leaves the old checkpoint in force."""
    old = Checkpoint(source_index=0, line=10, offset=100, complete=False, failed=0)
    write_checkpoint(tmp_path, old)
    (tmp_path / "checkpoint.tmp").write_text('{"version": 1, "source_ind')  # torn
    assert read_checkpoint(tmp_path) == old
    new = Checkpoint(source_index=0, line=20, offset=200, complete=True, failed=0)
    write_checkpoint(tmp_path, new)
    assert read_checkpoint(tmp_path) == new
    assert not (tmp_path / "checkpoint.tmp").exists()


def test_a_checkpoint_of_another_version_is_refused(tmp_path: Path) -> None:
    """A checkpoint written by another format version stops the run with a JobError."""
    (tmp_path / CHECKPOINT_FILE).write_text(json.dumps(
        {"version": 99, "source_index": 0, "line": 1, "offset": 0, "complete": False,
         "failed": 0}))
    with pytest.raises(JobError, match="another version"):
        read_checkpoint(tmp_path)


def test_an_unreadable_checkpoint_is_a_job_error(tmp_path: Path) -> None:
    """A checkpoint that does not parse stops the run with a JobError suggesting --fresh."""
    (tmp_path / CHECKPOINT_FILE).write_text("{not json")
    with pytest.raises(JobError, match="--fresh"):
        read_checkpoint(tmp_path)


def test_an_unwritable_checkpoint_is_a_job_error(tmp_path: Path) -> None:
    """A job directory that cannot take the checkpoint raises a JobError, not an OSError."""
    (tmp_path / "gone").write_text("a file, not a directory")
    with pytest.raises(JobError, match="cannot write the checkpoint"):
        write_checkpoint(tmp_path / "gone", Checkpoint(0, 1, 0, False, 0))


# --- the resume state -----------------------------------------------------------------------

MD5 = [f"{n:032x}" for n in range(1, 20)]


def rec(line: int, status: Status, n: int | None = None) -> dict[str, Any]:
    value = MD5[n if n is not None else line] if status is not Status.INVALID else None
    return record(hash_value=value, hash_type="md5" if value else None, status=status,
                  source=SOURCE, line=line, ts="2024-01-01T00:00:00.000Z")


def write_log(job_dir: Path, records: list[dict[str, Any]]) -> None:
    with (job_dir / OUTCOMES_FILE).open("w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")


def test_resume_state_splits_the_log_at_the_mark(tmp_path: Path) -> None:
    """Below the mark only `failed` records matter (unless superseded); above it every line
    with a final non-failed record is done."""
    write_checkpoint(tmp_path, Checkpoint(0, 7, 700, complete=False, failed=2))
    write_log(tmp_path, [
        rec(1, Status.QUEUED),
        rec(2, Status.FAILED),
        rec(3, Status.INVALID),
        rec(5, Status.FAILED),
        rec(8, Status.QUEUED),  # above the mark, before the mark's own records: out of order
        rec(4, Status.DUPLICATE, n=1),
        rec(5, Status.ALREADY_QUEUED),  # a later run's retry supersedes the failure
        rec(9, Status.FAILED),
        rec(10, Status.FAILED),
        rec(10, Status.QUEUED),
        rec(7, Status.NOT_FOUND),  # the mark's line itself is above it
        {**rec(6, Status.QUEUED), "source": "another-input.txt"},  # foreign: ignored
    ])
    state = load_resume_state(tmp_path, [SOURCE], dedupe=True)
    assert state.start == ResumePoint(0, 7, 700)
    assert not state.complete
    assert state.done_above == {pos(7), pos(8), pos(10)}
    assert state.failed_below == {pos(2): (HashType.MD5, MD5[2])}
    assert state.records == 12
    assert state.done_below == 4  # lines 1, 3, 4 and 5 (once: its failure was superseded)
    assert not state.nothing_to_do
    assert state.seen_from is not None
    seen = SeenSet()
    for hashes in state.seen_from():  # as the reading child builds its dedupe set
        seen.mark_repeats(hashes)
    assert seen.mark_repeats([MD5[1], MD5[2], MD5[5], MD5[8], MD5[18]]) == [
        True, True, True, False, False]  # recorded below the mark; line 8 is reread


def test_without_a_checkpoint_every_record_is_above_the_mark(tmp_path: Path) -> None:
    """Killed before its first checkpoint, a job finds what it recorded from the log alone."""
    write_log(tmp_path, [rec(1, Status.QUEUED), rec(2, Status.FAILED), rec(3, Status.INVALID)])
    state = load_resume_state(tmp_path, [SOURCE], dedupe=False)
    assert state.start == ResumePoint(0, 1, 0)
    assert state.done_above == {pos(1), pos(3)}
    assert state.failed_below == {}
    assert state.seen_from is None


def test_a_finished_job_needs_nothing_and_does_not_read_the_log(tmp_path: Path) -> None:
    """A checkpoint saying complete with nothing failed is enough: the log is not even opened
    (here it could not be: it is a directory)."""
    write_checkpoint(tmp_path, Checkpoint(1, 1, 0, complete=True, failed=0))
    (tmp_path / OUTCOMES_FILE).mkdir()
    state = load_resume_state(tmp_path, [SOURCE], dedupe=True)
    assert state.nothing_to_do
    assert state.records == 0


def test_a_finished_job_without_its_log_needs_nothing(tmp_path: Path) -> None:
    """The same with the log gone: the checkpoint alone says the job is done."""
    write_checkpoint(tmp_path, Checkpoint(1, 1, 0, complete=True, failed=0))
    assert load_resume_state(tmp_path, [SOURCE], dedupe=False).nothing_to_do


def test_a_finished_job_with_failures_sends_them_again(tmp_path: Path) -> None:
    """A complete checkpoint that counts failures reads the log for the hashes to retry."""
    write_checkpoint(tmp_path, Checkpoint(1, 1, 0, complete=True, failed=1))
    write_log(tmp_path, [rec(1, Status.QUEUED), rec(2, Status.FAILED)])
    state = load_resume_state(tmp_path, [SOURCE], dedupe=False)
    assert state.complete
    assert state.failed_below == {pos(2): (HashType.MD5, MD5[2])}
    assert not state.nothing_to_do
