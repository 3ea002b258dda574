"""``reanalyzer run [INPUT ...]``: the job. Its options are the settings (commands/options.py)
and the few that only say what to read and how to print."""

from __future__ import annotations

import argparse
from pathlib import Path

from reanalyzer.commands.options import add_setting_options, settings_from_args


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs",
        nargs="*",
        metavar="INPUT",
        help="files of hashes ('-' or none: standard input); .gz is read transparently",
    )
    parser.add_argument(
        "--config", type=Path, help="TOML config file (env REANALYZER_CONFIG)", default=None
    )
    parser.add_argument(
        "--report-format",
        choices=["text", "json"],
        default="text",
        help="how --dry-run prints its report on stdout (default text)",
    )
    add_setting_options(parser, "run")


def run(args: argparse.Namespace) -> int:
    from reanalyzer.run.job import run_job  # imported late: --help stays fast

    settings = settings_from_args(args, "run", args.config)
    return run_job(settings, args.inputs or ["-"], report_format=args.report_format)
