"""The CLI is thin: its commands come from one table, its setting options from the settings'
table (whole names only, real defaults in --help), and a command's module loads only when asked."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from support import isolate

from reanalyzer.cli import build_parser, main
from reanalyzer.commands import COMMANDS
from reanalyzer.commands.options import setting_default, settings_of

TOKEN = "tok-cli-4b1e-SECRET"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path, TOKEN)


def test_every_command_of_the_table_is_a_module(capsys: pytest.CaptureFixture[str]) -> None:
    """Each command of the table has its module (options and a run) and is in `--help`."""
    assert set(COMMANDS) == {"run", "status", "report", "retry", "control", "simulate", "demo"}
    for command in COMMANDS.values():
        module = importlib.import_module(command.module)
        assert callable(module.configure_parser), command.name
        assert callable(module.run), command.name
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    out = capsys.readouterr().out
    for command in COMMANDS.values():
        assert command.help in " ".join(out.split()), command.name


def test_an_abbreviated_option_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--dry` is not taken for `--dry-run` (nor `--batch` for `--batch-size`): usage error."""
    (tmp_path / "small.txt").write_text("a" * 40 + "\n")
    for args in (["run", "--dry", "small.txt"], ["run", "--batch", "5", "--dry-run", "small.txt"],
                 ["retry", "--conc", "2", str(tmp_path)]):
        with pytest.raises(SystemExit) as caught:
            main(args)
        assert caught.value.code == 2
        assert "unrecognized arguments" in capsys.readouterr().err
    assert not (tmp_path / "jobs").exists()


def test_retry_help_shows_the_tables_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    """`retry --help` has an option for each of its settings with its variable and real default,
    and no token."""
    with pytest.raises(SystemExit):
        main(["retry", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name in settings_of("retry"):
        flag = "--" + name.replace("_", "-")
        assert flag in text
        assert f"REANALYZER_{name.upper()}; default {setting_default(name)})" in text, name
    assert "default 100" in text
    assert "--token " not in text
    assert TOKEN not in text


def test_a_wrong_option_value_is_named_like_a_wrong_variable(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`--batch-size many` is checked by the settings, and named with its variable (exit 2)."""
    assert main(["run", "--dry-run", "--batch-size", "many", "-"]) == 2
    err = capsys.readouterr().err
    assert "setting batch_size (--batch-size, REANALYZER_BATCH_SIZE)" in err
    assert main(["run", "--dry-run", "--api", "v3", "-"]) == 2
    assert "setting api (--api, REANALYZER_API)" in capsys.readouterr().err


def test_no_dedupe_turns_a_default_on_setting_off(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--no-dedupe beats REANALYZER_DEDUPE=true: a repeated hash is counted to send twice."""
    monkeypatch.setenv("REANALYZER_DEDUPE", "true")
    Path("in.txt").write_text(("b" * 40 + "\n") * 2)
    assert main(["run", "--dry-run", "--no-dedupe", "--report-format", "json", "in.txt"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["duplicates"], report["to_send_total"]) == (0, 2)


def test_help_does_not_load_the_sending_stack() -> None:
    """`run --help` imports neither aiohttp nor the job: it stays fast."""
    code = ("import sys\nfrom reanalyzer.cli import main\ntry:\n    main(['run', '--help'])\n"
            "except SystemExit:\n    pass\n"
            "print(sorted(m for m in ('aiohttp', 'reanalyzer.run.job', 'reanalyzer.simulator') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
