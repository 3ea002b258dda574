"""What the appliance answers to a reanalysis or status request: pure functions over the world.

Bodies follow the vendor's page where it shows them. Where it does not, they follow the
Django REST framework the appliance is built on: validation errors are
`{"code": 400, "message": "Validation error.", "detail": {field: [messages]}}`, other refusals
are `{"code": N, "message": text}`.

Success bodies are assembled from string fragments rather than `json.dumps` of nested dicts:
every piece is either a validated hex hash or a constant, so nothing needs escaping, and the
simulator must answer 1,000 bulk requests/s without becoming a benchmark's bottleneck.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from reanalyzer.simulator.config import AbsentMode, ExtractedMode, SimulatorConfig
from reanalyzer.simulator.hashes import hash_type
from reanalyzer.simulator.world import Sample, SampleKind, World

QUEUED = "Sample is queued for analysis."
SENT_TO_CORE = "Sample is sent to core analysis."
ALREADY_QUEUED = "Sample is already queued for analysis."
NOT_FOUND = "Sample is not found on the appliance."
EXTRACTED = "Reanalysis not allowed for extracted samples."
REFUSED = "Not allowed for this type of appliance."
NOT_CONNECTED = "Appliance is not connected to Spectra Intelligence."
NO_SANDBOX = "Sandbox integration is not configured."
BAD_HASH = "Value is not valid sha1, sha256, sha512 or md5 hash value."
MIXED_TYPES = "All hashes in a request must be of the same type."
REQUIRED = "This field is required."
TOO_LARGE = "Request entity too large."


class Analysis(StrEnum):
    """An analysis a sample can be queued for, named as in the `analysis` field."""

    CLOUD = "cloud"  # Spectra Intelligence; needs the appliance connected to it
    CORE = "core"  # Spectra Core static analysis
    RL_CLOUD_SANDBOX = "rl_cloud_sandbox"  # v2 only; needs rl_cloud_sandbox_platform
    CUCKOO = "cuckoo"  # v2 only, like the other sandboxes below
    FIREEYE = "fireeye"
    JOE = "joe"
    CAPE = "cape"
    # Named for v2 by Spectra Analyze 9.1-9.3 (and, the last two, another version's API
    # definition): services an appliance may or may not have configured (see `sandboxes`).
    RL_AUXILIARY_ANALYSIS = "rl_auxiliary_analysis"
    CISCO_SECURE_MALWARE_ANALYTICS = "cisco_secure_malware_analytics"
    VMRAY_TCBASE = "vmray_tcbase"
    ASSEMBLYLINE = "assemblyline"
    RL_DYNAMIC_ANALYSIS = "rl_dynamic_analysis"


V1_ANALYSES = frozenset({Analysis.CLOUD, Analysis.CORE})
V2_ANALYSES = frozenset(Analysis)
SANDBOX_PLATFORMS = frozenset(
    {"windows7", "windows10", "windows11", "macos_11", "linux", "android12"}
)
_HASH_LENGTHS = frozenset({32, 40, 64, 128})
_HEX = frozenset("0123456789abcdefABCDEF")
_BIT = {a: 1 << i for i, a in enumerate(Analysis)}


@dataclass(frozen=True)
class Reply:
    """An HTTP answer, body already encoded."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


def error(status: int, message: str) -> Reply:
    """A refusal of the whole request."""
    return Reply(status, json.dumps({"code": status, "message": message}).encode())


def invalid(fields: dict[str, list[str]]) -> Reply:
    """A 400 naming each field that failed validation."""
    body = {"code": 400, "message": "Validation error.", "detail": fields}
    return Reply(400, json.dumps(body).encode())


def parse_analyses(
    raw: object, allowed: frozenset[Analysis], errors: dict[str, list[str]]
) -> tuple[Analysis, ...]:
    """The analyses named in a comma-separated `analysis` value; problems go to `errors`."""
    if not isinstance(raw, str) or not raw.strip():
        errors["analysis"] = [REQUIRED]
        return ()
    names: list[Analysis] = []
    for part in raw.split(","):
        name = part.strip()
        if not name:
            continue
        try:
            analysis = Analysis(name)
        except ValueError:
            analysis = None
        if analysis is None or analysis not in allowed:
            errors["analysis"] = [f'"{name}" is not a valid choice.']
            return ()
        if analysis not in names:
            names.append(analysis)
    if not names:
        errors["analysis"] = [REQUIRED]
    return tuple(names)


def parse_hashes(
    raw: object, field: str, errors: dict[str, list[str]], *, mixed_ok: bool = False
) -> list[str]:
    """The hashes of a request, lowercased; problems go to `errors` under `field`."""
    if not isinstance(raw, list) or not raw:
        errors[field] = [REQUIRED]
        return []
    # Checked in C rather than per hash: all strings, all of hash lengths, all hex digits.
    if all(isinstance(v, str) for v in raw):
        lengths = set(map(len, raw))
        if lengths <= _HASH_LENGTHS and _HEX.issuperset("".join(raw)):
            if len(lengths) > 1 and not mixed_ok:
                errors[field] = [MIXED_TYPES]
                return []
            return [value.lower() for value in raw]
    errors[field] = [BAD_HASH]
    return []


def check_platform(
    names: Sequence[Analysis], platform: object, errors: dict[str, list[str]]
) -> None:
    """The RL cloud sandbox detonates on a platform that must be named, and known."""
    if Analysis.RL_CLOUD_SANDBOX not in names:
        return
    if not platform:
        errors["rl_cloud_sandbox_platform"] = [REQUIRED]
    elif not isinstance(platform, str) or platform not in SANDBOX_PLATFORMS:
        errors["rl_cloud_sandbox_platform"] = [f'"{platform}" is not a valid choice.']


class Reanalysis:
    """Queues the samples of one accepted request and renders each one's result item.

    The per-analysis outcome depends only on which analyses were newly queued, so each
    distinct outcome is rendered once per request and reused for every sample that has it.
    """

    def __init__(self, world: World, config: SimulatorConfig, names: Sequence[Analysis]) -> None:
        self._world = world
        self._legacy = config.legacy_fields
        self._names = tuple(names)
        self._refused: dict[Analysis, str] = {}
        for name in self._names:
            if name in (Analysis.CLOUD, Analysis.RL_CLOUD_SANDBOX) and not config.cloud_connected:
                self._refused[name] = NOT_CONNECTED
            elif name not in V1_ANALYSES and name.value not in config.sandboxes:
                self._refused[name] = NO_SANDBOX
        self._mask = 0
        for name in self._names:
            if name not in self._refused:
                self._mask |= _BIT[name]
        # The text of an item up to its `detail`, per bitmask of newly queued analyses.
        self._heads: dict[int, tuple[int, str]] = {}
        self._extracted = self._head(405, EXTRACTED, self._all(405, EXTRACTED))
        self.any_new = False  # whether some sample was queued for the first time

    def item(self, index: int) -> tuple[int, str]:
        """Queue sample `index`; its result code and its item as JSON text."""
        sample = self._world.samples[index]
        if sample.kind is SampleKind.EXTRACTED:
            return 405, self._extracted + _detail(sample) + "}"
        new = self._world.queue(index, self._mask) if self._mask else 0
        head = self._heads.get(new)
        if head is None:
            head = self._heads[new] = self._outcome(new)
        if head[0] == 201:
            self.any_new = True
        return head[0], head[1] + _detail(sample) + "}"

    def absent(self, value: str) -> tuple[int, str]:
        """The item reporting a hash the appliance does not hold."""
        kind = hash_type(value)
        detail = f'{{"{kind.value if kind else "sha1"}":"{value}"}}'
        return 404, self._head(404, NOT_FOUND, self._all(404, NOT_FOUND)) + detail + "}"

    def _outcome(self, new: int) -> tuple[int, str]:
        parts = []
        for name in self._names:
            refusal = self._refused.get(name)
            if refusal is not None:
                code, message = 405, refusal
            elif new & _BIT[name]:
                code, message = 201, SENT_TO_CORE if name is Analysis.CORE else QUEUED
            else:
                code, message = 200, ALREADY_QUEUED
            parts.append(f'{{"name":"{name.value}","code":{code},"message":"{message}"}}')
        analysis = "[" + ",".join(parts) + "]"
        if not self._mask:
            return 405, self._head(405, analysis_refusal(self._refused), analysis)
        if new:
            return 201, self._head(201, QUEUED, analysis)
        return 200, self._head(200, ALREADY_QUEUED, analysis)

    def _all(self, code: int, message: str) -> str:
        parts = (f'{{"name":"{n.value}","code":{code},"message":"{message}"}}' for n in self._names)
        return "[" + ",".join(parts) + "]"

    def _head(self, code: int, message: str, analysis: str) -> str:
        if self._legacy:
            return f'{{"code":{code},"message":"{message}","analysis":{analysis},"detail":'
        return f'{{"analysis":{analysis},"detail":'


def _detail(sample: Sample) -> str:
    return (
        f'{{"sha1":"{sample.sha1}","sha256":"{sample.sha256}",'
        f'"sha512":"{sample.sha512}","md5":"{sample.md5}"}}'
    )


def analysis_refusal(refused: dict[Analysis, str]) -> str:
    """The message of a sample refused for every analysis asked: the first refusal's."""
    return next(iter(refused.values()), REFUSED)


def bulk(
    world: World, config: SimulatorConfig, hashes: list[str], names: Sequence[Analysis]
) -> Reply:
    """Answer a validated bulk reanalysis request (v1 or v2)."""
    if config.max_bulk is not None and len(hashes) > config.max_bulk:
        return error(413, TOO_LARGE)
    found = world.find_all(hashes)
    if config.extracted_mode is ExtractedMode.REQUEST and any(
        i is not None and world.samples[i].kind is SampleKind.EXTRACTED for i in found
    ):
        # Refused before anything is queued, as the whole request is.
        return error(405, EXTRACTED)
    job = Reanalysis(world, config, names)
    items: list[str] = []
    report_absent = config.absent_mode is AbsentMode.NOT_FOUND
    for value, index in zip(hashes, found, strict=True):
        if index is not None:
            items.append(job.item(index)[1])
        elif report_absent:
            items.append(job.absent(value)[1])
    body = '{"results":[' + ",".join(items) + "]}"
    return Reply(201 if job.any_new else 200, body.encode())


def single(world: World, config: SimulatorConfig, value: str, names: Sequence[Analysis]) -> Reply:
    """Answer a validated single-sample reanalysis request."""
    index = world.find(value)
    if index is None:
        return error(404, NOT_FOUND)
    if world.samples[index].kind is SampleKind.EXTRACTED:
        return error(405, EXTRACTED)
    code, item = Reanalysis(world, config, names).item(index)
    return Reply(code, item.encode())


def status(world: World, hashes: list[str], only: str | None) -> Reply:
    """Answer a validated status request: processed or not_found per hash, queuing nothing."""
    results = []
    for value in hashes:
        state = "not_found" if world.find(value) is None else "processed"
        if only is None or only == state:
            results.append({"hash_value": value, "status": state})
    return Reply(200, json.dumps({"results": results}).encode())
