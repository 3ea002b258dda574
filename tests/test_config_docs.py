"""Every setting and exit code is documented where users look, in step with its one table: the
example config, the README and `--help`."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from reanalyzer.cli import build_parser
from reanalyzer.commands.options import setting_commands, setting_default, setting_flag
from reanalyzer.errors import EXIT_MEANINGS, ExitCode, UsageError
from reanalyzer.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config" / "reanalyzer.example.toml"
README = ROOT / "README.md"


def _documented() -> dict[str, str]:
    """The example's commented-out `name = value` lines."""
    return dict(re.findall(r"^# ([a-z_]+) = (.+)$", EXAMPLE.read_text(), flags=re.MULTILINE))


def _readme_section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", text, re.MULTILINE | re.DOTALL)
    assert match, f"README.md has no section '## {title}'"
    return match.group(1)


def _table_rows(section: str) -> list[list[str]]:
    """The cells of a markdown table's body rows (after the header and its |---| line)."""
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows[2:]]


def settings_table_gaps(readme_rows: list[list[str]], example: dict[str, str]) -> list[str]:
    """What the README's settings table and the example config lack or get wrong, in words."""
    problems = []
    readme = {row[0].strip("`"): row for row in readme_rows}
    for name in Settings.model_fields:
        if name not in readme:
            problems.append(f"setting {name} is missing from README.md's settings table")
        else:
            _, option, commands, default, _ = readme[name]
            flag = f"`{setting_flag(name)}`" if setting_commands(name) else "—"
            if option != flag:
                problems.append(f"README.md: setting {name}'s option is {flag}, not {option}")
            if commands != (", ".join(setting_commands(name)) or "—"):
                problems.append(f"README.md: setting {name} is taken by "
                                f"{', '.join(setting_commands(name)) or 'no command'}")
            if default != setting_default(name):
                problems.append(f"README.md: setting {name}'s default is "
                                f"{setting_default(name)}, not {default}")
        if name != "token" and name not in example:  # the token is a secret: kept out of files
            problems.append(f"setting {name} is missing from config/reanalyzer.example.toml")
    for name in sorted(set(readme) - set(Settings.model_fields)):
        problems.append(f"README.md's settings table names {name}, which is no setting")
    for name in sorted(set(example) - set(Settings.model_fields)):
        problems.append(f"config/reanalyzer.example.toml names {name}, which is no setting")
    return problems


def test_readme_and_example_config_list_every_setting() -> None:
    """The README's settings table and the example config have a line for each setting of the
    table, with its option, commands and default, and none for a setting that does not exist."""
    rows = _table_rows(_readme_section("Settings"))
    assert settings_table_gaps(rows, _documented()) == []


def test_the_docs_check_names_what_is_missing() -> None:
    """A setting left out of the docs is named, with the file it is missing from."""
    rows = [row for row in _table_rows(_readme_section("Settings")) if row[0] != "`url`"]
    example = {k: v for k, v in _documented().items() if k != "max_requests"}
    assert settings_table_gaps(rows, example) == [
        "setting url is missing from README.md's settings table",
        "setting max_requests is missing from config/reanalyzer.example.toml",
    ]


def test_example_values_are_the_defaults() -> None:
    """A setting with a built-in default shows that default in the example config."""
    for name, value in _documented().items():
        default = Settings.model_fields[name].default
        if default is not None and default != "":
            assert tomllib.loads(f"x = {value}")["x"] == default, name


def test_example_marks_each_value_that_is_no_default() -> None:
    """A setting whose default is none shows an example value marked "# example (default: none)",
    and a setting with a default shows it unmarked: the file never passes an example off as a
    default."""
    for name, value in _documented().items():
        default = Settings.model_fields[name].default
        marked = value.endswith("  # example (default: none)")
        assert marked == (default is None or default == ""), name


# Settings checked to name an existing file: the example's path is a placeholder.
_PLACEHOLDER_FILES = {"ca_bundle"}


def test_each_example_value_is_a_valid_setting(tmp_path: Path) -> None:
    """Each example line, uncommented on its own, is a valid config file for that setting."""
    config = tmp_path / "config.toml"
    for name, value in _documented().items():
        config.write_text(f"{name} = {value}\n")
        assert set(tomllib.loads(config.read_text())) == {name}
        if name in _PLACEHOLDER_FILES:  # taken as a path, and refused only for its absence
            with pytest.raises(UsageError, match=rf"setting {name} .*: no file "):
                load_settings({}, config)
            continue
        load_settings({}, config)  # raises UsageError naming the setting if the example is wrong


def test_every_setting_has_an_option_in_run_help(capsys: pytest.CaptureFixture[str]) -> None:
    """`reanalyzer run --help` names an option for each setting, with its environment name."""
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name in set(Settings.model_fields) - {"token"}:
        assert f"REANALYZER_{name.upper()}" in text.replace("- ", "-").replace(" _", "_"), name


def test_readme_exit_codes_are_the_table() -> None:
    """The README's exit-code table has the same codes, with the same meanings, as errors.py."""
    rows = _table_rows(_readme_section("Exit codes"))
    readme = {int(code): meaning.replace("`", "") for code, meaning in rows}
    assert readme == {int(code): meaning for code, meaning in EXIT_MEANINGS.items()}
    assert set(EXIT_MEANINGS) == set(ExitCode)


@pytest.mark.parametrize("command", ["run", "retry", "status", "report"])
def test_help_ends_with_the_exit_code_table(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The --help of each command that ends in an exit code lists every code with its meaning."""
    with pytest.raises(SystemExit):
        build_parser(command).parse_args([command, "--help"])
    out = capsys.readouterr().out
    text = " ".join(out[out.index("exit codes:"):].split())
    for code, meaning in EXIT_MEANINGS.items():
        assert f"{code.value} {code.name.lower().replace('_', ' ')}: {meaning}" in text
