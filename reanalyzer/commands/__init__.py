"""The subcommands, one module each, registered in one table that the CLI reads.

Each module has ``configure_parser(parser)`` and ``run(args) -> exit code``; the CLI imports a
module only when its command is asked for, so that ``--help`` and a finished job start fast.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    module: str  # imported only when this command is built or run
    help: str  # its line in `reanalyzer --help`
    description: str  # the top of `reanalyzer NAME --help`
    exit_codes: bool = True  # its --help ends with the exit-code table
    show_defaults: bool = False  # its options' help shows argparse defaults (the simulator's)


COMMANDS: dict[str, Command] = {
    command.name: command
    for command in (
        Command(
            "run",
            "reanalyzer.commands.run",
            "reanalyze the hashes of one or more inputs",
            "Read hashes (one per line, CSV or JSON lines; files, .gz or stdin), validate and "
            "deduplicate them, and ask the appliance to reanalyze them in bulk. The token comes "
            "from REANALYZER_TOKEN or --token-file, never the command line.",
        ),
        Command(
            "status",
            "reanalyzer.commands.status",
            "how far a job is, how fast it goes, and whether a run is on it",
            "Show a job directory's progress (running or not): its inputs, the checkpoint, final "
            "counts per status and hash type, speed, and the run holding it. Several directories "
            "(the shards of one job, or one job per appliance) are shown as one job.",
        ),
        Command(
            "report",
            "reanalyzer.commands.report",
            "the final outcome per input line of a job, as a table, JSON, CSV or a list",
            "Print the final outcome of every input line of JOB_DIR, optionally only some "
            "statuses; --format list prints bare hashes to feed back in. Several directories "
            "(the shards of one job, or one job per appliance) are reported as one job.",
        ),
        Command(
            "retry",
            "reanalyzer.commands.retry",
            "send again only the hashes of a job whose outcome is failed",
            "Send again only the hashes of JOB_DIR whose final outcome is failed, with the "
            "settings the job recorded in its job.json (the options below override them); their "
            "new records supersede the failed ones.",
        ),
        Command(
            "control",
            "reanalyzer.commands.control",
            "change a running job's rate limit or concurrency, without a restart",
            "Write JOB_DIR/control.json, which the running job reads every few seconds: its rate "
            "limit (a number or a timetable) and its requests in flight at most. A later run of "
            "the job starts with it too, until --clear.",
        ),
        Command(
            "simulate",
            "reanalyzer.commands.simulate",
            "serve a simulated appliance on 127.0.0.1 for tests and rehearsals",
            "Serve the appliance's reanalysis API with a generated world of samples and faults on "
            "demand. Takes its token from REANALYZER_TOKEN, like run.",
            exit_codes=False,
            show_defaults=True,
        ),
        Command(
            "demo",
            "reanalyzer.commands.demo",
            "run a real job against the built-in simulator: needs nothing but the install",
            "Start the appliance simulator in this process, write a realistic input (mixed types, "
            "junk, repeats) and run the real job on it, faults and all.",
            exit_codes=False,
        ),
    )
}
