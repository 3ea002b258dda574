"""One exception tree, and the exit codes it maps to.

    ReanalyzerError                 every error the tool raises on purpose
    ├── UsageError                  bad command line, setting or config file   → EXIT_USAGE
    ├── InputError                  an input cannot be opened or read          → EXIT_INPUT
    ├── JobError                    the job directory is unusable or in use    → EXIT_JOB
    └── ApplianceError              the appliance cannot be worked with
        ├── CredentialsError        401/403: the token or its rights are wrong → EXIT_CREDENTIALS
        ├── NotAllowedError         the appliance type refuses reanalysis      → EXIT_NOT_ALLOWED
        ├── MisconfiguredError      no reanalysis API at --url / --api         → EXIT_USAGE
        └── UnreachableError        the appliance stays unreachable            → EXIT_UNREACHABLE

Library errors (aiohttp, OSError, pydantic) are translated at the boundary with
``raise ... from exc`` so that the CLI can print one line and choose the exit code.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0  # every hash has a final outcome and none failed
    SOME_FAILED = 1  # the job finished, but some hashes ended `failed` (run again to retry them)
    USAGE = 2  # bad command line, setting or config file (or a --url that is no appliance)
    INPUT = 3  # an input file cannot be opened or read
    INTERRUPTED = 4  # stopped by a signal or a budget; the same command resumes
    UNREACHABLE = 5  # the appliance stayed unreachable; the same command resumes
    CREDENTIALS = 6  # the appliance refused the token (401/403)
    NOT_ALLOWED = 7  # the appliance type does not allow reanalysis
    JOB = 8  # the job directory is unusable, full, or in use by another run
    INTERNAL = 70  # a bug: please report it with the log


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
