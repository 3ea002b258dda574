"""The command line: ``reanalyzer run|simulate|demo``.

Options that are settings default to None here, so that an option not given leaves the
environment, ``.env`` or config file in charge (see settings.py for the precedence).
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from reanalyzer import __version__
from reanalyzer.errors import ExitCode, ReanalyzerError
from reanalyzer.run.logs import say
from reanalyzer.settings import Settings, load_settings, read_token_file

EXIT_CODES_HELP = "exit codes:\n" + "\n".join(
    f"  {code.value:>3}  {code.name.lower().replace('_', ' ')}: {_doc}"
    for code, _doc in (
        (ExitCode.OK, "every hash has a final outcome, none failed"),
        (ExitCode.SOME_FAILED, "done, but some hashes failed: run the same command again"),
        (ExitCode.USAGE, "bad command line, setting or config file; nothing was done"),
        (ExitCode.INPUT, "an input cannot be opened or read"),
        (ExitCode.INTERRUPTED, "stopped by a signal or budget: the same command resumes"),
        (ExitCode.UNREACHABLE, "the appliance stayed unreachable: the same command resumes"),
        (ExitCode.CREDENTIALS, "the appliance refused the token (401/403)"),
        (ExitCode.NOT_ALLOWED, "the appliance type does not allow reanalysis"),
        (ExitCode.JOB, "the job directory is unusable, full, or in use"),
        (ExitCode.INTERNAL, "a bug in reanalyzer: please report it with the log"),
    )
)


def _default(name: str) -> str:
    """The built-in default of a setting, for --help (never the token: it has none)."""
    value = Settings.model_fields[name].default
    if value is None or value == "":
        return "none"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _setting(
    group: argparse._ArgumentGroup,
    flag: str,
    name: str,
    help_text: str,
    **kwargs: Any,
) -> None:
    help_text = f"{help_text} (env REANALYZER_{name.upper()}; default {_default(name)})"
    group.add_argument(flag, dest=name, default=None, help=help_text, **kwargs)


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs",
        nargs="*",
        metavar="INPUT",
        help="files of hashes ('-' or none: standard input); .gz is read transparently",
    )
    parser.add_argument(
        "--config", type=Path, help="TOML config file (env REANALYZER_CONFIG)", default=None
    )
    appliance = parser.add_argument_group("appliance")
    _setting(appliance, "--url", "url", "appliance base URL, e.g. https://a1000.example.com")
    _setting(
        appliance,
        "--token-file",
        "token_file",
        "file holding the API token; or set "
        "REANALYZER_TOKEN (never pass the token itself on a command line)",
        type=Path,
    )
    _setting(
        appliance,
        "--analysis",
        "analysis",
        "comma list: cloud, core; with --api v2 also rl_cloud_sandbox, cuckoo, fireeye, joe, cape",
    )
    _setting(appliance, "--api", "api", "bulk API version", choices=["v1", "v2"])
    _setting(
        appliance,
        "--endpoint",
        "endpoint",
        "bulk requests, or one sample per request",
        choices=["bulk", "single"],
    )
    _setting(
        appliance,
        "--sandbox-platform",
        "sandbox_platform",
        "platform for rl_cloud_sandbox: windows7, windows10, windows11, macos_11, linux, android12",
    )
    _setting(
        appliance,
        "--ca-bundle",
        "ca_bundle",
        "CA bundle that signs the appliance's certificate",
        type=Path,
    )
    _setting(
        appliance,
        "--insecure",
        "insecure",
        "do not verify TLS certificates (warns)",
        action="store_true",
    )
    _setting(
        appliance,
        "--trust-env",
        "trust_env",
        "use HTTP(S)_PROXY from the environment",
        action="store_true",
    )
    _setting(appliance, "--connect-timeout", "connect_timeout", "seconds to connect", type=float)
    _setting(
        appliance, "--read-timeout", "read_timeout", "seconds to wait for an answer", type=float
    )
    _setting(
        appliance, "--total-timeout", "total_timeout", "seconds for a whole request", type=float
    )

    pace = parser.add_argument_group("pace")
    _setting(pace, "--batch-size", "batch_size", "hashes per bulk request", type=int)
    _setting(pace, "--concurrency", "concurrency", "requests in flight at most", type=int)
    _setting(
        pace,
        "--rate-limit",
        "rate_limit",
        "requests per second at most (none: adapt to the appliance's 429 answers)",
        type=float,
    )
    _setting(
        pace,
        "--max-retries",
        "max_retries",
        "retries of a transient failure before a hash is recorded failed",
        type=int,
    )
    _setting(
        pace,
        "--unreachable-timeout",
        "unreachable_timeout",
        "seconds with no answer at all before the job stops, resumable (exit 5); at most 15 "
        "while the appliance has never answered",
        type=float,
    )

    budget = parser.add_argument_group("budgets and guards (a stop is clean and resumable)")
    _setting(budget, "--max-duration", "max_duration", "stop after this long: seconds, or "
             "e.g. 90m, 8h")
    _setting(budget, "--max-requests", "max_requests", "stop after this many requests",
             type=int)
    _setting(budget, "--max-failure-rate", "max_failure_rate", "stop when more than this "
             "percentage of the first --failure-sample hashes failed", type=float)
    _setting(budget, "--failure-sample", "failure_sample", "how many first hashes "
             "--max-failure-rate looks at", type=int)

    job = parser.add_argument_group("job and input")
    _setting(
        job,
        "--job-dir",
        "job_dir",
        "job directory for outcomes and checkpoint (none: jobs/<first input>-<id of the inputs "
        "and settings>, so the same command finds its job again)",
        type=Path,
    )
    _setting(
        job,
        "--input-format",
        "input_format",
        "input format (auto: text, unless --csv-column or --json-field is given)",
        choices=["auto", "text", "csv", "jsonl"],
    )
    _setting(job, "--csv-column", "csv_column", "read CSV input, the hash in this column")
    _setting(job, "--json-field", "json_field", "read JSON-lines input, the hash in this field")
    _setting(
        job,
        "--dedupe",
        "dedupe",
        "send a repeated hash once, record the rest duplicate",
        action=argparse.BooleanOptionalAction,
    )
    _setting(
        job,
        "--idle-flush",
        "idle_flush",
        "seconds of quiet input before a partial batch is sent",
        type=float,
    )
    _setting(
        job,
        "--dry-run",
        "dry_run",
        "read, validate and report what would be sent; send nothing",
        action="store_true",
    )
    _setting(
        job,
        "--precheck",
        "precheck",
        "ask the appliance's status endpoint which hashes it holds first; queue only those and "
        "record the rest not_found (one more request per batch)",
        action="store_true",
    )
    _setting(
        job,
        "--fresh",
        "fresh",
        "start the job over: discard the job directory's earlier outcomes instead of resuming",
        action="store_true",
    )
    parser.add_argument(
        "--report-format",
        choices=["text", "json"],
        default="text",
        help="how --dry-run prints its report on stdout (default text)",
    )

    logs = parser.add_argument_group("logs")
    _setting(
        logs,
        "--log-format",
        "log_format",
        "log format on stderr (auto: console on a terminal, else JSON)",
        choices=["auto", "console", "json"],
    )
    _setting(
        logs, "--log-level", "log_level", "log level", choices=["debug", "info", "warning", "error"]
    )
    _setting(
        logs,
        "--progress",
        "progress",
        "progress display (auto: a live line on a terminal, else a job.progress log event "
        "every --progress-interval)",
        choices=["auto", "bar", "log", "off"],
    )
    _setting(
        logs,
        "--progress-interval",
        "progress_interval",
        "seconds between job.progress log events",
        type=float,
    )


_NOT_SETTINGS = {"command", "inputs", "config", "report_format", "handler"}


def settings_from_args(args: argparse.Namespace) -> Settings:
    values = {k: v for k, v in vars(args).items() if k not in _NOT_SETTINGS}
    if values.get("token_file") is not None:
        # The command line outranks the environment: a token file given here beats a
        # REANALYZER_TOKEN left in the environment (read now, never put on a command line).
        values["token"] = read_token_file(values["token_file"])
    return load_settings(values, args.config)


def _run(args: argparse.Namespace) -> int:
    from reanalyzer.run.job import run_job  # imported late: --help stays fast

    settings = settings_from_args(args)
    return run_job(settings, args.inputs or ["-"], report_format=args.report_format)


def _simulate(args: argparse.Namespace) -> int:
    from reanalyzer.simulator import cli as simulator_cli

    return simulator_cli.run(args)


def _demo(args: argparse.Namespace) -> int:
    from reanalyzer.commands import demo
    from reanalyzer.run.logs import configure_logging

    configure_logging("console", "warning")  # the demo is for a person to read
    return demo.run(args)


def _module_options(name: str) -> Callable[[argparse.ArgumentParser], None]:
    """A command's options, from its module, imported only when that command is built."""

    def configure(parser: argparse.ArgumentParser) -> None:
        module = importlib.import_module(name)
        module.configure_parser(parser)
        if hasattr(module, "run") and name != "reanalyzer.commands.demo":
            parser.set_defaults(handler=module.run)

    return configure


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with `only`, just that command gets its options (the others' modules are
    not imported, so that a command starts fast)."""
    parser = argparse.ArgumentParser(
        prog="reanalyzer",
        description="Ask ReversingLabs Spectra Analyze appliances to reanalyze samples in bulk: "
        "millions of hashes, rate-limited, resumable, one outcome per input line.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"reanalyzer {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser(
        "run",
        help="reanalyze the hashes of one or more inputs",
        description="Read hashes (one per line, CSV or JSON lines; files, .gz or stdin), "
        "validate and deduplicate them, and ask the appliance to reanalyze them in bulk. "
        "The token comes from REANALYZER_TOKEN or --token-file, never the command line.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if only in (None, "run"):
        _add_run_options(run)
    run.set_defaults(handler=_run)

    simulate = commands.add_parser(
        "simulate",
        help="serve a simulated appliance on 127.0.0.1 for tests and rehearsals",
        description="Serve the appliance's reanalysis API with a generated world of samples and "
        "faults on demand. Takes its token from REANALYZER_TOKEN, like run.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    if only in (None, "simulate"):
        _configure_simulator(simulate)
    simulate.set_defaults(handler=_simulate)

    demo = commands.add_parser(
        "demo",
        help="run a real job against the built-in simulator: needs nothing but the install",
        description="Start the appliance simulator in this process, write a realistic input "
        "(mixed types, junk, repeats) and run the real job on it, faults and all.",
    )
    if only in (None, "demo"):
        _module_options("reanalyzer.commands.demo")(demo)
    demo.set_defaults(handler=_demo)

    retry = commands.add_parser(
        "retry",
        help="send again only the hashes of a job whose outcome is failed",
        description="Send again only the hashes of JOB_DIR whose final outcome is failed, with "
        "the job's own URL and analyses; their new records supersede the failed ones.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if only in (None, "retry"):
        _module_options("reanalyzer.commands.retry")(retry)

    status_parser = commands.add_parser(
        "status",
        help="how far a job is, how fast it goes, and whether a run is on it",
        description="Show a job directory's progress (running or not): its inputs, the "
        "checkpoint, final counts per status and hash type, speed, and the run holding it.",
    )
    if only in (None, "status"):
        _module_options("reanalyzer.commands.status")(status_parser)

    report_parser = commands.add_parser(
        "report",
        help="the final outcome per input line of a job, as a table, JSON, CSV or a list",
        description="Print the final outcome of every input line of JOB_DIR, optionally only "
        "some statuses; --format list prints bare hashes to feed back in.",
    )
    if only in (None, "report"):
        _module_options("reanalyzer.commands.report")(report_parser)
    return parser


def _configure_simulator(parser: argparse.ArgumentParser) -> None:
    from reanalyzer.simulator import cli as simulator_cli

    simulator_cli.configure_parser(parser)


_COMMANDS = ("run", "simulate", "demo", "retry", "status", "report")


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in args_list if not a.startswith("-")), None)
    parser = build_parser(command if command in _COMMANDS else None)
    args = parser.parse_args(args_list)
    handler: Callable[[argparse.Namespace], int] = args.handler
    if argv is None:  # the process's own command line: its signals are ours to handle
        _interrupt_on_sigterm()
    try:
        return handler(args)
    except ReanalyzerError as exc:
        named = {"job_id": exc.job_id} if exc.job_id else {}
        say(f"reanalyzer: error: {exc}", "reanalyzer.error", "error",
            exit_code=int(exc.exit_code), **named)
        return int(exc.exit_code)
    except BrokenPipeError:
        # stdout went away (| head): not an error of ours; keep Python from complaining at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return int(ExitCode.OK)
    except KeyboardInterrupt:
        print("reanalyzer: interrupted", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _interrupt_on_sigterm() -> None:
    """SIGTERM, like SIGINT, interrupts (exit 4 with a message) also before a run installs its
    own handlers: loading a big job's outcome log takes seconds, and systemd and Kubernetes
    stop with SIGTERM. Python's default would end the process silently with 143."""
    signal.signal(signal.SIGTERM, _raise_interrupt)
