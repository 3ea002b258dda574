"""Without a terminal, every error before any work is one reanalyzer.error JSON event on stderr
with its exit code (a bad option or setting, a missing file or job directory); on a terminal it
is readable text."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from reanalyzer.errors import ExitCode

TOKEN = "tok-events-2a9b-SECRET"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REANALYZER_")}
    return {**env, "REANALYZER_TOKEN": TOKEN, **extra}


@pytest.mark.parametrize(("args", "code", "says"), [
    (["run", "--url", "http://127.0.0.1:9", "--rate-limit", "abc", "in.txt"], ExitCode.USAGE,
     "setting rate_limit (--rate-limit, REANALYZER_RATE_LIMIT)"),
    (["run", "--no-such-option", "in.txt"], ExitCode.USAGE, "unrecognized arguments"),
    (["run", "--report-format", "xml", "in.txt"], ExitCode.USAGE, "invalid choice: 'xml'"),
    (["status"], ExitCode.USAGE, "required: JOB_DIR"),
    (["run", "--url", "http://127.0.0.1:9", "--token-file", "absent", "in.txt"],
     ExitCode.USAGE, "cannot read token_file absent"),
    (["run", "--url", "http://127.0.0.1:9", "--config", "absent.toml", "in.txt"],
     ExitCode.USAGE, "config file absent.toml does not exist"),
    (["status", "absent"], ExitCode.JOB, "absent"),
    (["report", "absent"], ExitCode.JOB, "absent"),
    (["retry", "absent"], ExitCode.JOB, "absent"),
], ids=["setting", "option", "choice", "positional", "token-file", "config", "status",
        "report", "retry"])
def test_an_error_without_a_terminal_is_one_json_event(
    tmp_path: Path, args: list[str], code: ExitCode, says: str
) -> None:
    """stderr holds exactly one JSON line, a reanalyzer.error naming the problem and its exit
    code, and the process exits with that code; stdout is empty, and no job directory is made."""
    (tmp_path / "in.txt").write_text("ab" * 20 + "\n")
    result = subprocess.run([sys.executable, "-m", "reanalyzer", *args], cwd=tmp_path,
                            env=_env(), capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == code, result.stderr
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    event = json.loads(line)
    assert (event["event"], event["level"], event["exit_code"]) == ("reanalyzer.error", "error",
                                                                   int(code))
    assert says in event["message"]
    assert TOKEN not in result.stderr
    assert not (tmp_path / "jobs").exists()


def _on_a_terminal(args: list[str], cwd: Path) -> tuple[int, str]:
    """The CLI with stderr on a pseudo-terminal: its exit code and what it printed there."""
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "reanalyzer", *args], cwd=cwd, env=_env(),
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=follower, timeout=60)
        os.close(follower)
        chunks = []
        while True:
            try:
                data = os.read(leader, 4096)
            except OSError:  # EIO: the terminal's other end is closed and drained
                break
            if not data:
                break
            chunks.append(data)
        return proc.returncode, b"".join(chunks).decode()
    finally:
        os.close(leader)


@pytest.mark.parametrize(("args", "says"), [
    (["run", "--no-such-option"], "usage: reanalyzer"),
    (["status", "absent"], "reanalyzer: error: no job directory absent"),
], ids=["option", "job-dir"])
def test_on_a_terminal_an_error_is_text(tmp_path: Path, args: list[str], says: str) -> None:
    """On a terminal the same errors are plain text, not JSON."""
    code, text = _on_a_terminal(args, tmp_path)
    assert code in (ExitCode.USAGE, ExitCode.JOB)
    assert says in text
    # Not JSON (a command's usage may hold braces: its choices, `{text,json}`).
    assert '"event"' not in text
    assert not text.lstrip().startswith("{")


def test_log_format_console_keeps_text_without_a_terminal(tmp_path: Path) -> None:
    """`--log-format console` asks for text: an option error is argparse's usage and message."""
    result = subprocess.run(
        [sys.executable, "-m", "reanalyzer", "run", "--log-format", "console", "--nope"],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL)
    assert result.returncode == ExitCode.USAGE
    assert result.stderr.startswith("usage: reanalyzer")
