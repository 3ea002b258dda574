"""A wrong config file is named in its error: a wrong value it holds, and a table (the file has
none: settings are top-level keys)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import isolate

from reanalyzer.cli import main

TOKEN = "tok-config-6f1e-SECRET"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path, TOKEN)
    Path("in.txt").write_text("ab" * 20 + "\n")


def _error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """The message of the one error event a dry run with these arguments ends with (exit 2)."""
    assert main(["run", "--dry-run", *args, "in.txt"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    message: str = json.loads(line)["message"]
    return message


def test_a_wrong_value_in_the_config_file_names_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`batch_size = 0` in the config file is refused naming the file and the setting."""
    config = tmp_path / "nightly.toml"
    config.write_text("batch_size = 0\n")
    message = _error(capsys, "--config", str(config))
    assert f"config file {config}: setting batch_size (--batch-size" in message


def test_a_wrong_value_from_elsewhere_does_not_blame_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrong value set by the environment over the file's is not said to be the file's, and a
    wrong file value the command line overrides stops nothing."""
    config = tmp_path / "nightly.toml"
    config.write_text("batch_size = 0\n")
    assert main(["run", "--dry-run", "--config", str(config), "--batch-size", "5", "in.txt"]) == 0
    capsys.readouterr()
    monkeypatch.setenv("REANALYZER_BATCH_SIZE", "-1")
    message = _error(capsys, "--config", str(config))
    assert message.startswith("reanalyzer: error: setting batch_size")
    assert "nightly.toml" not in message


def test_a_table_in_the_config_file_is_named_as_such(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A `[run]` table is refused saying that the file has no tables, not "did you mean
    dry_run?"."""
    config = tmp_path / "nightly.toml"
    config.write_text("[run]\nbatch_size = 200\n")
    message = _error(capsys, "--config", str(config))
    assert f"config file {config}: [run] is a table, but the file has no tables" in message
    assert "top-level key" in message
    assert "did you mean" not in message


def test_an_unreadable_env_line_is_a_usage_error_naming_the_file_and_line(
    capsys: pytest.CaptureFixture[str]
) -> None:
    """A .env line that is not NAME=value stops the run (exit 2) with one error event naming
    .env and the line, without echoing the line (it may hold a token) or python-dotenv's own
    unnamed warning."""
    Path(".env").write_text(f"REANALYZER_BATCH_SIZE=20\nREANALYZER_TOKEN {TOKEN}\n")
    message = _error(capsys, "--log-format", "json")
    assert message.startswith("reanalyzer: error: .env (in the working directory): line 2 ")
    assert TOKEN not in message


def test_a_wrong_value_from_env_file_says_so(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrong value .env holds is named "in .env"; the same value from the environment (which
    outranks .env) is not."""
    Path(".env").write_text("REANALYZER_BATCH_SIZE=0\n")
    assert "in .env: setting batch_size (--batch-size" in _error(capsys, "--log-format", "json")
    monkeypatch.setenv("REANALYZER_BATCH_SIZE", "-1")
    assert "in .env" not in _error(capsys, "--log-format", "json")
