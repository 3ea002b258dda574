"""The one atomic replace every job file and `report --output` goes through."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from reanalyzer.record import atomic
from reanalyzer.record.atomic import replacing, write_atomically


def test_a_write_replaces_the_file_and_fsyncs_it_and_its_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A successful write leaves only the new file, after fsyncing both it and its directory."""
    target = tmp_path / "summary.json"
    target.write_text("old\n")
    synced: list[bool] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real_fsync(fd)

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    write_atomically(target, "new\n")
    assert target.read_text() == "new\n"
    assert synced == [False, True]  # the file's data first, then the rename in the directory
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    """An error while writing leaves the old file as it was and no temporary file behind."""
    target = tmp_path / "report.txt"
    target.write_text("old\n")

    def write_half() -> None:
        with replacing(target) as out:
            out.write("half of a rep")
            raise RuntimeError("the disk is full")

    with pytest.raises(RuntimeError, match="disk is full"):
        write_half()
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.txt"]


def test_a_failed_rename_leaves_no_temp_file(tmp_path: Path) -> None:
    """An OSError at the rename (here: the target is a directory) leaves no temporary file."""
    target = tmp_path / "job.json"
    target.mkdir()
    tmp = tmp_path / "job.tmp"
    with pytest.raises(IsADirectoryError):
        write_atomically(target, "{}\n", tmp=tmp)
    assert not tmp.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["job.json"]
