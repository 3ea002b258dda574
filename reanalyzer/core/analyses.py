"""The analysis names each bulk API documents, and the pure rules that read an `--analysis` list.

Names change with appliance versions (see shared/api/NOTES.md): Spectra Analyze 9.1-9.3 document
ten for v2, another version's API definition two more, and a service that is not configured is
refused per analysis (405) inside an accepted answer. So a name this table does not know is not
refused here when it is well-formed (lowercase letters, digits, underscores): it is sent with a
warning, and the appliance's per-analysis answer decides. Only a malformed name, or a name
documented for v2 alone asked of v1, is a usage error.

The list is one set: `core,cloud` and `cloud,core` (or `core,core,cloud`) ask for the same
reanalysis, so they normalise to one sorted text, which is what identifies a job.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from reanalyzer.errors import UsageError

V1_NAMES = frozenset({"cloud", "core"})
# Spectra Analyze 9.1-9.3 for /api/samples/v2/analyze_bulk/, and `assemblyline` and
# `rl_dynamic_analysis` from the vendor's API definition for another version.
V2_NAMES = V1_NAMES | {
    "rl_cloud_sandbox",
    "cuckoo",
    "fireeye",
    "joe",
    "cape",
    "rl_auxiliary_analysis",
    "cisco_secure_malware_analytics",
    "vmray_tcbase",
    "assemblyline",
    "rl_dynamic_analysis",
}
DOCUMENTED: dict[str, frozenset[str]] = {"v1": V1_NAMES, "v2": V2_NAMES}
# Analyses that need `rl_cloud_sandbox_platform` (--sandbox-platform), and its documented values.
NEEDS_PLATFORM = frozenset({"rl_cloud_sandbox"})
SANDBOX_PLATFORMS = frozenset(
    {"windows7", "windows10", "windows11", "macos_11", "linux", "android12"}
)
_WELL_FORMED = re.compile(r"[a-z0-9_]+")


class NameKind(enum.StrEnum):
    KNOWN = "known"  # documented for the API chosen
    UNKNOWN = "unknown"  # well-formed, documented nowhere we know: sent, with a warning
    OTHER_API = "other_api"  # documented for v2 only, asked of v1: a usage error
    MALFORMED = "malformed"  # not lowercase letters, digits and underscores: a usage error


def classify(name: str, api: str) -> NameKind:
    """What `name` (already stripped and lowercased) is for bulk API `api` ("v1" or "v2")."""
    if name in DOCUMENTED[api]:
        return NameKind.KNOWN
    if _WELL_FORMED.fullmatch(name) is None:
        return NameKind.MALFORMED
    if any(name in names for names in DOCUMENTED.values()):
        return NameKind.OTHER_API
    return NameKind.UNKNOWN


def split_names(raw: str) -> tuple[str, ...]:
    """The names of a comma list, stripped, lowercased, deduplicated and sorted; empty items
    (`core,` from a script) are dropped."""
    return tuple(sorted({part.strip().lower() for part in raw.split(",") if part.strip()}))


def canonical(raw: str) -> str:
    """The one spelling of a comma list: `core,cloud` and `cloud, core` are both `cloud,core`.
    For comparing settings, a job directory's included; it checks nothing."""
    return ",".join(split_names(raw))


@dataclass(frozen=True, slots=True)
class AnalysisNames:
    """An `--analysis` list read for one API: the names to send, and those to warn about."""

    api: str
    names: tuple[str, ...]  # sorted, distinct, every one well-formed
    unknown: tuple[str, ...]  # those this version of the tool does not know for `api`

    @property
    def text(self) -> str:
        """The comma list as sent, and as it identifies a job."""
        return ",".join(self.names)

    @property
    def needs_platform(self) -> bool:
        return not NEEDS_PLATFORM.isdisjoint(self.names)

    def warning(self) -> str | None:
        """One line about the names not known, or None."""
        if not self.unknown:
            return None
        listed = ", ".join(self.unknown)
        plural = "s" if len(self.unknown) > 1 else ""
        return (
            f"analysis name{plural} {listed} not documented for --api {self.api} as far as this "
            "version of reanalyzer knows: sent as given, the appliance's answer per analysis "
            "decides"
        )


def read_names(raw: str, api: str) -> AnalysisNames:
    """Read an `--analysis` comma list for bulk API `api`; UsageError for an empty list, a
    malformed name, or a v2 name asked of v1."""
    if api not in DOCUMENTED:
        raise UsageError(f"setting api: must be one of {', '.join(sorted(DOCUMENTED))}")
    names = split_names(raw)
    if not names:
        raise UsageError("setting analysis: must name at least one analysis")
    kinds = {name: classify(name, api) for name in names}
    malformed = [n for n in names if kinds[n] is NameKind.MALFORMED]
    if malformed:
        raise UsageError(
            f"setting analysis: {', '.join(repr(n) for n in malformed)} is not an analysis name "
            "(lowercase letters, digits and underscores, separated by commas)"
        )
    other = [n for n in names if kinds[n] is NameKind.OTHER_API]
    if other:
        raise UsageError(
            f"setting analysis: {', '.join(other)} needs --api v2 "
            f"(v1 allows {', '.join(sorted(DOCUMENTED[api]))})"
        )
    unknown = tuple(n for n in names if kinds[n] is NameKind.UNKNOWN)
    return AnalysisNames(api, names, unknown)
