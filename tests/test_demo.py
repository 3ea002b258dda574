"""`reanalyzer demo` from the command line: what it says, and how it refuses what it cannot do."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from reanalyzer.errors import ExitCode
from reanalyzer.record.outcome_log import read_records


def demo(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reanalyzer", "demo", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120, check=False)


def test_a_demo_directory_that_cannot_be_made_is_a_clear_error(tmp_path: Path) -> None:
    """--dir where no directory can be made (under a file) ends with exit 8 and one line naming
    the directory, not a traceback."""
    (tmp_path / "a-file").write_text("")
    done = demo("--dir", "a-file/demo", cwd=tmp_path)
    assert done.returncode == ExitCode.JOB, done.stderr
    assert "Traceback" not in done.stderr
    assert "cannot write its input in --dir a-file/demo" in done.stderr


@pytest.mark.parametrize("lines", ["-5", "0", "many"])
def test_a_demo_of_no_lines_is_a_usage_error(tmp_path: Path, lines: str) -> None:
    """--lines below 1 (or not a number) is refused by the command line (exit 2), before any
    work: no "MISMATCH", no job."""
    done = demo("--lines", lines, "--dir", "d", cwd=tmp_path)
    assert done.returncode == ExitCode.USAGE, done.stderr
    assert "--lines" in done.stderr
    assert "MISMATCH" not in done.stderr
    assert not (tmp_path / "d").exists()


def test_the_demo_counts_its_input_as_the_log_records_it(tmp_path: Path) -> None:
    """The demo's description of its input names as invalid exactly the lines the log records
    invalid, and says that the blank lines and comments beside them are not records."""
    done = demo("--lines", "3000", "--no-faults", "--dir", "d", cwd=tmp_path)
    assert done.returncode == ExitCode.OK, done.stderr
    wrote = next(line for line in done.stderr.splitlines() if line.startswith("demo: wrote"))
    said = re.search(r"([\d,]+) invalid lines, and ([\d,]+) blank lines and comments, which are "
                     r"not records", wrote)
    assert said is not None, wrote
    logged = list(read_records(tmp_path / "d" / "job" / "outcomes.jsonl"))
    invalid = sum(r["status"] == "invalid" for r in logged)
    assert int(said[1].replace(",", "")) == invalid > 0
    assert "junk" not in wrote
    written = (tmp_path / "d" / "hashes.txt").read_text().splitlines()
    blank_or_comment = sum(not line.strip() or line.startswith("#") for line in written)
    assert int(said[2].replace(",", "")) == blank_or_comment > 0
