"""One exception tree, and the exit codes it maps to.

    ReanalyzerError             every error the tool raises on purpose   → ExitCode.INTERNAL
    ├── UsageError              bad command line, setting or config file → ExitCode.USAGE
    ├── InputError              an input cannot be opened or read        → ExitCode.INPUT
    ├── JobError                the job directory is unusable or in use  → ExitCode.JOB
    ├── ControlFlow             a state the sending layer acts on and catches: no failure
    │   ├── TransportError      no HTTP answer (refused, reset, timeout): retried
    │   │   └── NameNotResolved the host name does not resolve (DNS)
    │   └── SendingStopped      the run is stopping: this request was not sent (resume it)
    └── ApplianceError          the appliance cannot be worked with      → ExitCode.UNREACHABLE
        ├── CredentialsError    401/403: the token or its rights, wrong  → ExitCode.CREDENTIALS
        ├── NotAllowedError     the appliance type refuses reanalysis    → ExitCode.NOT_ALLOWED
        ├── MisconfiguredError  no reanalysis API at --url / --api       → ExitCode.USAGE
        └── UnreachableError    the appliance stays unreachable          → ExitCode.UNREACHABLE

The exit codes are one table: each ``ExitCode`` member (code and name) with its meaning in
``EXIT_MEANINGS``; the CLI's help and the README's table are checked against it.

Library errors (aiohttp, OSError, pydantic) are translated at the boundary with
``raise ... from exc`` so that the CLI can print one line and choose the exit code.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    SOME_FAILED = 1
    USAGE = 2
    INPUT = 3
    INTERRUPTED = 4
    UNREACHABLE = 5
    CREDENTIALS = 6
    NOT_ALLOWED = 7
    JOB = 8
    NO_INPUT = 9
    INTERNAL = 70


# What each exit code means, as --help and the README say it (a test keeps all three in step).
EXIT_MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "done: every input line has a final outcome, none failed",
    ExitCode.SOME_FAILED: "done, but some hashes ended failed: run the same command again "
    "(or retry); or not_configured: set the appliance up, then retry --status not_configured",
    ExitCode.USAGE: "bad command line, setting or config file, or a --url/--api with no "
    "reanalysis API",
    ExitCode.INPUT: "an input file cannot be opened or read",
    ExitCode.INTERRUPTED: "stopped by SIGINT/SIGTERM or a budget (--max-*): the same command "
    "resumes (a stdin job: as its summary says); or a retry of a job whose input is not all "
    "read: its run command goes on",
    ExitCode.UNREACHABLE: "the appliance stayed unreachable: the same command resumes",
    ExitCode.CREDENTIALS: "the appliance refused the token (401/403)",
    ExitCode.NOT_ALLOWED: "the appliance type does not allow reanalysis",
    ExitCode.JOB: "the job directory is unusable, full, or in use by another run",
    ExitCode.NO_INPUT: "the input held no hash to send (empty, or only invalid lines): "
    "nothing was sent",
    ExitCode.INTERNAL: "a bug in reanalyzer: please report it with the log",
}


def exit_codes_help() -> str:
    """The exit-code table as a --help epilog."""
    return "exit codes:\n" + "\n".join(
        f"  {code.value:>3}  {code.name.lower().replace('_', ' ')}: {EXIT_MEANINGS[code]}"
        for code in ExitCode
    )


class ReanalyzerError(Exception):
    exit_code: ExitCode = ExitCode.INTERNAL
    job_id: str | None = None  # the job it ended, for the error's event (set by the job)


class UsageError(ReanalyzerError):
    exit_code = ExitCode.USAGE


class InputError(ReanalyzerError):
    exit_code = ExitCode.INPUT


class JobError(ReanalyzerError):
    exit_code = ExitCode.JOB


class ApplianceError(ReanalyzerError):
    exit_code = ExitCode.UNREACHABLE


class CredentialsError(ApplianceError):
    exit_code = ExitCode.CREDENTIALS


class NotAllowedError(ApplianceError):
    exit_code = ExitCode.NOT_ALLOWED


class MisconfiguredError(ApplianceError):
    """The address answers, but not as the reanalysis API: a wrong --url or --api."""

    exit_code = ExitCode.USAGE


class UnreachableError(ApplianceError):
    exit_code = ExitCode.UNREACHABLE


class ControlFlow(ReanalyzerError):
    """Raised and caught inside the sending layer to carry a state, not a failure: where both
    end a group of requests, the tool's other errors are the ones reported."""


class TransportError(ControlFlow):
    """No HTTP answer: connection refused or reset, TLS failure, timeout. Worth retrying."""

    exit_code = ExitCode.UNREACHABLE  # were it ever to escape: the appliance gave no answer


class NameNotResolved(TransportError):
    """The appliance's host name does not resolve (DNS): a misspelt --url, or a resolver's
    moment; the sender tells them apart by whether the appliance has answered before."""


class SendingStopped(ControlFlow):
    """The run is stopping (or --max-requests is spent): this request was not sent. Its hashes
    get no outcome from this run; the resume sends them."""

    exit_code = ExitCode.INTERRUPTED  # were it ever to escape: the same command resumes
