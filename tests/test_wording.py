"""Small things said to the operator: the help that lists the option meant, singular for one,
the directory given twice, a shard with a minus sign, options that contradict each other, and
the progress line's counts as whole numbers."""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import pytest

from reanalyzer.cli import main
from reanalyzer.run.progress import ProgressReporter, Snapshot


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("REANALYZER_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("REANALYZER_TOKEN", "tok-wording-3c9e")
    monkeypatch.chdir(tmp_path)
    Path("in.txt").write_text("ab" * 20 + "\n")


def _error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """The message of the one error event these arguments end with (exit 2)."""
    try:  # argparse's errors exit; the settings' are returned
        code: object = main(list(args))
    except SystemExit as exited:
        code = exited.code
    assert code == 2
    (line,) = capsys.readouterr().err.splitlines()
    message: str = json.loads(line)["message"]
    return message


def test_an_unknown_option_points_at_the_commands_own_help(
        capsys: pytest.CaptureFixture[str]) -> None:
    """`run --nosuchopt` says to see `reanalyzer run --help`, where the options of run are."""
    message = _error(capsys, "run", "--nosuchopt", "in.txt")
    assert message == ("reanalyzer run: error: unrecognized arguments: --nosuchopt "
                       "(see reanalyzer run --help)")


def test_a_shard_with_a_minus_sign_is_judged_as_a_shard(
        capsys: pytest.CaptureFixture[str]) -> None:
    """`--shard -1/4` is refused for what it is, not with argparse's "expected one argument"."""
    message = _error(capsys, "run", "--dry-run", "--shard", "-1/4", "in.txt")
    assert "setting shard (--shard" in message
    assert "'-1/4'" in message


def test_text_input_with_a_csv_column_is_a_usage_error(
        capsys: pytest.CaptureFixture[str]) -> None:
    """--input-format text with --csv-column (or jsonl with it) contradict each other: exit 2,
    rather than a column silently ignored."""
    message = _error(capsys, "run", "--dry-run", "--input-format", "text", "--csv-column", "a",
                     "in.txt")
    assert "input_format text does not read csv_column (--csv-column)" in message
    message = _error(capsys, "run", "--dry-run", "--input-format", "csv", "--json-field", "a",
                     "in.txt")
    assert "input_format csv does not read json_field (--json-field)" in message


def test_a_job_directory_given_twice_is_named(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`status DIR DIR` names the directory given twice, and both spellings of it."""
    (tmp_path / "job").mkdir()
    message = _error(capsys, "status", "job", str(tmp_path / "job"))
    assert message == (f"reanalyzer: error: the job directory {tmp_path / 'job'} is given "
                       f"twice (as job and {tmp_path / 'job'}); give each once")


async def test_the_progress_line_counts_in_whole_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    """4 lines of 24 show as "4/24", not tqdm's scaled "4.00/24.0"."""
    screen = io.StringIO()
    monkeypatch.setattr(sys, "stderr", screen)
    now = Snapshot(recorded=4, estimated_total=24, requests=1, retries=0, throttled=0,
                   pace=None, in_flight=0)
    async with ProgressReporter(lambda: now, on_terminal=True, interval=3600):
        pass
    drawn = screen.getvalue()
    assert "4/24" in drawn
    assert "4.00" not in drawn
