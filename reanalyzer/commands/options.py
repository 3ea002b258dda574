"""The command-line options of the settings, generated from their one table (``Settings``).

A small generator rather than pydantic-settings' own CLI support: that would parse the command
line inside ``Settings()`` (so --help would pay for every source), would offer ``--token`` and
turn ``--insecure`` into ``--insecure true|false`` unless each were suppressed or overridden,
and builds a parser per model, where ``retry`` takes a subset of ``run``'s settings.

Each option defaults to None, so that an option not given leaves the environment, ``.env`` or
the config file in charge; its value goes to ``Settings`` as the string given, checked there
like a variable's, so that a wrong one is named the same way whichever source it came from.
"""

from __future__ import annotations

import argparse
import types
import typing
from pathlib import Path
from typing import Any

from reanalyzer.settings import GROUPS, Settings, load_settings, read_token_file


def setting_group(name: str) -> str:
    """The --help group of setting `name`: a key of settings.GROUPS."""
    return str(_extra(name)["group"])


def setting_commands(name: str) -> tuple[str, ...]:
    """The commands taking setting `name` as an option (none for the token)."""
    return tuple(_extra(name)["commands"])


def _extra(name: str) -> dict[str, Any]:
    extra = Settings.model_fields[name].json_schema_extra
    assert isinstance(extra, dict), name  # every field is declared with _setting
    return extra


def setting_default(name: str) -> str:
    """The built-in default of a setting as --help and the docs show it ('none': unset)."""
    value = Settings.model_fields[name].default
    if value is None or value == "":
        return "none"
    return str(value).lower() if isinstance(value, bool) else str(value)


def setting_flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def settings_of(command: str) -> tuple[str, ...]:
    """The settings `command` takes as options, in the table's order."""
    return tuple(name for name in Settings.model_fields if command in setting_commands(name))


def add_setting_options(parser: argparse.ArgumentParser, command: str) -> None:
    """An option for each setting `command` takes, in its group, with its real default."""
    groups: dict[str, argparse._ArgumentGroup] = {}
    for name in settings_of(command):
        key = setting_group(name)
        if key not in groups:
            groups[key] = parser.add_argument_group(GROUPS[key])
        field = Settings.model_fields[name]
        text = (
            f"{field.description} (env REANALYZER_{name.upper()}; default {setting_default(name)})"
        ).replace("%", "%%")
        groups[key].add_argument(
            setting_flag(name),
            dest=name,
            default=None,
            help=text,
            **_kind(field.annotation, field.default),
        )


def _kind(annotation: Any, default: Any) -> dict[str, Any]:
    """How argparse takes a setting of this type: a flag for a bool, else one value."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):  # X | None
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    if annotation is bool:
        # A setting on by default can be turned off (--no-dedupe); the others are plain flags.
        return {"action": argparse.BooleanOptionalAction if default else "store_true"}
    if typing.get_origin(annotation) is typing.Literal:
        return {"metavar": "{" + ",".join(typing.get_args(annotation)) + "}"}
    return {}


def setting_values(args: argparse.Namespace, command: str) -> dict[str, Any]:
    """The settings given on the command line (None: not given)."""
    return {name: getattr(args, name, None) for name in settings_of(command)}


def settings_from_args(
    args: argparse.Namespace, command: str, config_file: Path | None = None
) -> Settings:
    """The settings of a command: its command line over every other source."""
    values = setting_values(args, command)
    if values.get("token_file") is not None:
        # The command line outranks the environment: a token file given here beats a
        # REANALYZER_TOKEN left in the environment (read now, never put on a command line).
        values["token"] = read_token_file(Path(values["token_file"]))
    return load_settings(values, config_file)
