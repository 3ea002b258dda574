"""An input with no hash to send is not a job done: it ends with a warning and exit 9, and a
compressed format that is not read is named in an input error (exit 3)."""

from __future__ import annotations

import bz2
import json
import lzma
import os
import random
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from support import isolate

from reanalyzer.cli import main
from reanalyzer.errors import ExitCode
from reanalyzer.record.outcome_log import read_records

TOKEN = "tok-noinput-5d2c-SECRET"
URL = "http://127.0.0.1:9"  # nothing may be sent: a closed port
HASH = "ab" * 20


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path, TOKEN)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REANALYZER_TOKEN": TOKEN}
    return subprocess.run([sys.executable, "-m", "reanalyzer", "run", "--url", URL, *args],
                          capture_output=True, text=True, timeout=60, env=env,
                          stdin=subprocess.DEVNULL)


def _events(stderr: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


@pytest.mark.parametrize(
    "content", [b"", b"\n# only a comment\n\n", random.Random(12).randbytes(4096)],
    ids=["empty", "comments", "random-bytes"])
def test_an_input_with_no_hash_exits_9_with_a_warning(tmp_path: Path, content: bytes) -> None:
    """An empty input, or one of comments or random bytes, exits 9 with a job.no_input warning."""
    path = tmp_path / "export.txt"
    path.write_bytes(content.replace(HASH.encode(), b""))
    result = _run(str(path))
    assert result.returncode == ExitCode.NO_INPUT == 9, result.stderr
    (warning,) = [e for e in _events(result.stderr) if e["event"] == "job.no_input"]
    assert warning["level"] == "warning"
    assert "held no hash to send" in str(warning["message"])


def test_only_invalid_lines_exit_9_with_summary_and_log_intact(tmp_path: Path) -> None:
    """A job that read only invalid lines exits 9, and still records each and writes its summary;
    run again, the job is done: exit 0."""
    Path("junk.txt").write_text("not a hash\nzz\n")
    assert main(["run", "--url", URL, "--log-format", "json", "junk.txt"]) == 9
    (job,) = (tmp_path / "jobs").iterdir()
    records = list(read_records(job / "outcomes.jsonl"))
    assert [(r["line"], r["status"]) for r in records] == [(1, "invalid"), (2, "invalid")]
    summary = json.loads((job / "summary.json").read_text())
    assert (summary["state"], summary["recorded"]) == ("done", {"invalid": 2})
    assert main(["run", "--url", URL, "--log-format", "json", "junk.txt"]) == 0


def test_a_dry_run_with_nothing_to_send_exits_9(capsys: pytest.CaptureFixture[str]) -> None:
    """`--dry-run` of an input with no hash reports it and exits 9, as the run would."""
    Path("junk.txt").write_text("nothing here\n")
    assert main(["run", "--dry-run", "--log-format", "json", "junk.txt"]) == 9
    captured = capsys.readouterr()
    assert "invalid" in captured.out
    assert "held no hash to send" in captured.err


def _zstd(payload: bytes) -> bytes:
    return b"\x28\xb5\x2f\xfd" + payload  # the magic bytes are what is recognised


def _zip(path: Path, payload: bytes) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hashes.txt", payload)


@pytest.mark.parametrize(("suffix", "name", "command"), [
    ("xz", "xz-compressed", "xz -dc"), ("bz2", "bzip2-compressed", "bzip2 -dc"),
    ("zst", "zstd-compressed", "zstd -dc"), ("zip", "a zip archive", "unzip -p"),
])
def test_a_compressed_format_not_read_is_named(
    tmp_path: Path, suffix: str, name: str, command: str
) -> None:
    """An xz, bzip2, zstd or zip input is refused with exit 3, naming its format and the way to
    feed it in, instead of being read as junk lines."""
    payload = (HASH + "\n").encode() * 3
    path = tmp_path / f"hashes.txt.{suffix}"
    if suffix == "xz":
        path.write_bytes(lzma.compress(payload))
    elif suffix == "bz2":
        path.write_bytes(bz2.compress(payload))
    elif suffix == "zst":
        path.write_bytes(_zstd(payload))
    else:
        _zip(path, payload)
    result = _run(str(path))
    assert result.returncode == ExitCode.INPUT, result.stderr
    (error,) = [e for e in _events(result.stderr) if e["event"] == "reanalyzer.error"]
    assert error["message"] == (f"reanalyzer: error: input {path} is {name}; decompress it "
                                f"first ({command} {path} | reanalyzer run -)")


def test_a_text_line_starting_like_bzip2_is_read_as_text(tmp_path: Path) -> None:
    """A text input whose first line happens to start with "BZh" is read, not refused."""
    Path("odd.txt").write_text("BZh not a digit\n")
    assert main(["run", "--dry-run", "--log-format", "json", "odd.txt"]) == 9  # read: invalid
