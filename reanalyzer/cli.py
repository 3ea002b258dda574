"""The command line: ``reanalyzer run|status|report|retry|simulate|demo``, kept thin.

It parses, dispatches to the command's module (the table in reanalyzer/commands/__init__.py),
and turns a ReanalyzerError into one line and its exit code (the table in errors.py). A
command's module is imported only when that command is asked for, so --help stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import signal
import sys
import typing
from collections.abc import Sequence

from reanalyzer import __version__
from reanalyzer.commands import COMMANDS
from reanalyzer.errors import ExitCode, ReanalyzerError, exit_codes_help
from reanalyzer.run import logs
from reanalyzer.run.logs import say

_LOG_FORMATS = ("auto", "console", "json")


class _Parser(argparse.ArgumentParser):
    """argparse, but a command-line error is one reanalyzer.error event where logs are JSON
    lines (no terminal), instead of the usage text a log collector cannot read. (Subcommands'
    parsers are of this class too: argparse makes them of their parent's.)"""

    subcommands: dict[str, argparse.ArgumentParser]  # set by build_parser

    def error(self, message: str) -> typing.NoReturn:
        if not logs.json_logs():
            super().error(message)  # on a terminal: argparse's usage and message
        say(
            f"{self.prog}: error: {message} (see {self.prog} --help)",
            "reanalyzer.error",
            "error",
            exit_code=int(ExitCode.USAGE),
        )
        sys.exit(int(ExitCode.USAGE))


def _early_log_format(args: Sequence[str]) -> str:
    """The log format asked for, before the settings are read (`say` needs it for an error
    found while reading them): --log-format, else REANALYZER_LOG_FORMAT, else auto."""
    given = os.environ.get("REANALYZER_LOG_FORMAT", "auto")
    for i, arg in enumerate(args):
        if arg == "--log-format" and i + 1 < len(args):
            given = args[i + 1]
        elif arg.startswith("--log-format="):
            given = arg.partition("=")[2]
    return given if given in _LOG_FORMATS else "auto"


def build_parser(only: str | None = None) -> _Parser:
    """The parser; with `only`, just that command gets its options (the others' modules are
    not imported, so that a command starts fast)."""
    parser = _Parser(
        prog="reanalyzer",
        description="Ask ReversingLabs Spectra Analyze appliances to reanalyze samples in bulk: "
        "millions of hashes, rate-limited, resumable, one outcome per input line.",
        epilog=exit_codes_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"reanalyzer {__version__}")
    parser.subcommands = {}
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS.values():
        formatter: type[argparse.HelpFormatter] = (
            argparse.ArgumentDefaultsHelpFormatter
            if command.show_defaults
            else argparse.RawDescriptionHelpFormatter
        )
        sub = subparsers.add_parser(
            command.name,
            help=command.help,
            description=command.description,
            epilog=exit_codes_help() if command.exit_codes else None,
            formatter_class=formatter,
            # --batch small.txt must not be taken for --batch-size small.txt
            allow_abbrev=False,
        )
        parser.subcommands[command.name] = sub
        if only in (None, command.name):
            importlib.import_module(command.module).configure_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    logs.set_early_format(_early_log_format(args_list))
    name = next((a for a in args_list if not a.startswith("-")), None)
    parser = build_parser(name if name in COMMANDS else None)
    args, unknown = parser.parse_known_args(_negative_shard_joined(args_list))
    if unknown:  # said by the command's own parser: its --help lists the options meant
        parser.subcommands.get(args.command, parser).error(
            f"unrecognized arguments: {' '.join(unknown)}"
        )
    module = importlib.import_module(COMMANDS[args.command].module)
    if argv is None:  # the process's own command line: its signals are ours to handle
        _interrupt_on_sigterm()
    try:
        code: int = module.run(args)
        return code
    except ReanalyzerError as exc:
        named = {"job_id": exc.job_id} if exc.job_id else {}
        say(
            f"reanalyzer: error: {exc}",
            "reanalyzer.error",
            "error",
            exit_code=int(exc.exit_code),
            **named,
        )
        return int(exc.exit_code)
    except BrokenPipeError:
        # stdout went away (| head): not an error of ours; keep Python from complaining at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return int(ExitCode.OK)
    except KeyboardInterrupt:
        print("reanalyzer: interrupted", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)


def _negative_shard_joined(args: list[str]) -> list[str]:
    """`--shard -1/4` as `--shard=-1/4`: argparse takes a value starting with "-" for an option
    and says only "expected one argument"; joined, the setting's own check names what is wrong."""
    joined: list[str] = []
    for arg in args:
        if joined and joined[-1] == "--shard" and re.fullmatch(r"-\d[\d/]*", arg):
            joined[-1] = f"--shard={arg}"
        else:
            joined.append(arg)
    return joined


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _interrupt_on_sigterm() -> None:
    """SIGTERM, like SIGINT, interrupts (exit 4 with a message) also before a run installs its
    own handlers: loading a big job's outcome log takes seconds, and systemd and Kubernetes
    stop with SIGTERM. Python's default would end the process silently with 143."""
    signal.signal(signal.SIGTERM, _raise_interrupt)
