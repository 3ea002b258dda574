"""Every setting is documented where users look: the example config and `run --help`."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from reanalyzer.cli import build_parser
from reanalyzer.settings import Settings, load_settings

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "reanalyzer.example.toml"


def _documented() -> dict[str, str]:
    """The example's commented-out `name = value` lines."""
    return dict(re.findall(r"^# ([a-z_]+) = (.+)$", EXAMPLE.read_text(), flags=re.MULTILINE))


def test_every_setting_is_in_the_example_config() -> None:
    """Each setting but the token (a secret, kept out of files) has a line in the example."""
    missing = set(Settings.model_fields) - {"token"} - set(_documented())
    assert not missing


def test_each_example_value_is_a_valid_setting(tmp_path: Path) -> None:
    """Each example line, uncommented on its own, is a valid config file for that setting."""
    config = tmp_path / "config.toml"
    for name, value in _documented().items():
        config.write_text(f"{name} = {value}\n")
        assert set(tomllib.loads(config.read_text())) == {name}
        load_settings({}, config)  # raises UsageError naming the setting if the example is wrong


def test_every_setting_has_an_option_in_run_help(capsys: pytest.CaptureFixture[str]) -> None:
    """`reanalyzer run --help` names an option for each setting, with its environment name."""
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name in set(Settings.model_fields) - {"token"}:
        assert f"REANALYZER_{name.upper()}" in text.replace("- ", "-").replace(" _", "_"), name
