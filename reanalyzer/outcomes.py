"""What happened to each input line: the values the pipeline records, one per line."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from reanalyzer.hashes import HashType


class Status(enum.StrEnum):
    QUEUED = "queued"  # 201: the appliance queued the sample for every requested analysis
    ALREADY_QUEUED = "already_queued"  # 200: the sample was already waiting for analysis
    PARTIAL = "partial"  # some requested analyses were accepted, others refused
    NOT_FOUND = "not_found"  # 404, or absent from a bulk answer: the appliance does not hold it
    NOT_ALLOWED = "not_allowed"  # 405 for this sample (an extracted sample)
    INVALID = "invalid"  # the line is not a hash, or the appliance said 400 for it
    DUPLICATE = "duplicate"  # the same hash appeared earlier in this job and was not sent again
    FAILED = "failed"  # retries ran out; a later run tries it again

    @property
    def accepted(self) -> bool:
        return self in (Status.QUEUED, Status.ALREADY_QUEUED, Status.PARTIAL)


@dataclass(frozen=True, slots=True)
class LineRef:
    """Where an input line came from: the input's name and its 1-based line number."""

    source: str
    line: int


@dataclass(frozen=True, slots=True)
class AnalysisResult:
    """The appliance's answer for one requested analysis of one sample."""

    name: str
    code: int | None
    message: str | None


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the appliance (or the tool) decided for one hash, before it is tied to its line."""

    status: Status
    http_status: int | None = None
    attempts: int = 0
    analyses: tuple[AnalysisResult, ...] = ()
    detail: dict[str, str] = field(default_factory=dict)  # the hashes the appliance returned
    reason: str | None = None  # in words, for invalid, failed and not_allowed


@dataclass(frozen=True, slots=True)
class Outcome:
    """The one recorded result of one input line."""

    ref: LineRef
    verdict: Verdict
    hash: str | None = None  # normalized; None for a line that is not a hash
    hash_type: HashType | None = None
