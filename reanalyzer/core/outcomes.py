"""What happened to each input line: the values the pipeline records, one per line."""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias


class Status(enum.StrEnum):
    QUEUED = "queued"  # 201: the appliance queued the sample for every requested analysis
    ALREADY_QUEUED = "already_queued"  # 200: the sample was already waiting for analysis
    PARTIAL = "partial"  # some requested analyses were accepted, others refused
    NOT_FOUND = "not_found"  # 404, or absent from a bulk answer: the appliance does not hold it
    NOT_ALLOWED = "not_allowed"  # 405 for this sample (an extracted sample)
    # 405 for the appliance's configuration, not the sample: every analysis asked is one it is
    # not set up for (not connected to Spectra Intelligence, a sandbox not configured). Final
    # for a run; `retry --status not_configured` sends it again once the appliance is fixed.
    NOT_CONFIGURED = "not_configured"
    INVALID = "invalid"  # the line is not a hash, or the appliance said 400 for it
    DUPLICATE = "duplicate"  # the same hash appeared earlier in this job and was not sent again
    FAILED = "failed"  # retries ran out; a later run tries it again

    @property
    def accepted(self) -> bool:
        return self in (Status.QUEUED, Status.ALREADY_QUEUED, Status.PARTIAL)


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


class DetailTexts(list[str]):
    """Details kept as the JSON text of an object, each on one line, as the appliance sent it."""


InOrderDetails: TypeAlias = list[dict[str, str]] | DetailTexts


class Verdicts(Mapping[str, Verdict]):
    """The verdicts of the hashes of one or more requests, keyed by hash, stored compactly.

    Most hashes of an answer are judged alike, so `shared` maps each hash to a Verdict that they
    share (built once per judgement, its detail empty) and `details` holds each hash's own
    detail beside it: building a frozen Verdict per hash cost ~1 µs, a fair share of the
    runner's CPU. Reading `verdicts[h]` joins the two; the recording reads the parts.

    An answer that lists its results in the order the hashes were sent (the usual case) is kept
    `in_order`: lists aligned with the hashes sent, which the recording takes as they are. The
    two dicts are then built only if someone asks for them. Its details may be kept as the JSON
    text the appliance sent (`DetailTexts`), which the recording writes without encoding them.
    """

    __slots__ = ("_details", "_in_order", "_shared")

    def __init__(
        self,
        shared: dict[str, Verdict] | None = None,
        details: dict[str, dict[str, str]] | None = None,
    ) -> None:
        self._shared: dict[str, Verdict] | None = shared if shared is not None else {}
        self._details: dict[str, dict[str, str]] | None = details if details is not None else {}
        self._in_order: tuple[Sequence[str], list[Verdict], InOrderDetails] | None = None

    @classmethod
    def in_order(
        cls, hashes: Sequence[str], verdicts: list[Verdict], details: InOrderDetails
    ) -> Verdicts:
        """The verdict and detail of `hashes[i]` are `verdicts[i]` and `details[i]`."""
        made = cls()
        made._shared = made._details = None
        made._in_order = (hashes, verdicts, details)
        return made

    def aligned_with(self, hashes: Sequence[str]) -> tuple[list[Verdict], InOrderDetails] | None:
        """The verdicts and details of `hashes`, in their order, if kept that way; else None."""
        if self._in_order is None:
            return None
        sent, verdicts, details = self._in_order
        return (verdicts, details) if sent is hashes or sent == hashes else None

    @property
    def shared(self) -> dict[str, Verdict]:
        if self._shared is None:
            self._materialize()
        assert self._shared is not None
        return self._shared

    @property
    def details(self) -> dict[str, dict[str, str]]:
        if self._details is None:
            self._materialize()
        assert self._details is not None
        return self._details

    def _materialize(self) -> None:
        assert self._in_order is not None
        hashes, verdicts, details = self._in_order
        self._shared = dict(zip(hashes, verdicts, strict=True))
        if isinstance(details, DetailTexts):
            details = [json.loads(text) for text in details]
        self._details = dict(zip(hashes, details, strict=True))

    def __getitem__(self, hash_value: str) -> Verdict:
        verdict = self.shared[hash_value]
        detail = self.details.get(hash_value)
        return verdict if detail is None else dataclasses.replace(verdict, detail=detail)

    def __iter__(self) -> Iterator[str]:
        return iter(self.shared)

    def __len__(self) -> int:
        return len(self.shared)

    def __contains__(self, hash_value: object) -> bool:
        return hash_value in self.shared

    def update(self, other: Mapping[str, Verdict]) -> None:
        """Add (or replace) the verdicts of `other`."""
        shared, details = self.shared, self.details
        self._in_order = None  # no longer the answer to one request
        if isinstance(other, Verdicts):
            for hash_value in other.shared.keys() & details.keys():
                del details[hash_value]  # a replaced verdict's old detail is not its own
            shared.update(other.shared)
            details.update(other.details)
            return
        for hash_value, verdict in other.items():
            shared[hash_value] = verdict
            details.pop(hash_value, None)

    def __or__(self, other: Mapping[str, Verdict]) -> Verdicts:
        merged = Verdicts(dict(self.shared), dict(self.details))
        merged.update(other)
        return merged

    def __repr__(self) -> str:
        return f"<Verdicts of {len(self.shared)} hashes, {len(self.details)} with a detail>"
