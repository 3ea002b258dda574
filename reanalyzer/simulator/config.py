"""Everything the simulator can be told: the token, the address, the world and each fault."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


class AbsentMode(StrEnum):
    """How a bulk answer reports a hash the appliance does not hold (undocumented upstream)."""

    OMIT = "omit"  # left out of `results`
    NOT_FOUND = "404"  # reported as an item with code 404


class WrongShape(StrEnum):
    """How a 2xx answer's items are made unattributable (`wrong_shape_rate`)."""

    MIXED = "mixed"  # one of the others, drawn per answer
    NOT_OBJECTS = "not_objects"  # each item a string instead of an object
    NO_DETAIL = "no_detail"  # items without `detail` (status: without `hash_value`)
    OTHER_TYPE = "other_type"  # `detail` names no hash of the type sent (status: no hash)
    STRING_CODES = "string_codes"  # every code a string ("201"; status: `status` a number)


class ExtractedMode(StrEnum):
    """How a bulk request that names an extracted sample is refused."""

    ITEM = "item"  # an item with code 405; the rest of the request is queued
    REQUEST = "request"  # the whole request answered 405 and nothing queued


@dataclass(frozen=True)
class SimulatorConfig:
    """One simulated appliance; the defaults are a well-behaved, fast, connected appliance."""

    token: str
    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port, read it back from RunningSimulator.url
    # A second token that authenticates but may not reanalyze (403), as a read-only user's would.
    readonly_token: str | None = None

    # The world: generated from the seed unless a world file is given.
    samples: int = 1000
    seed: int = 0
    share_absent: float = 0.1  # generated samples the appliance does not hold
    share_extracted: float = 0.05  # held, but extracted from another sample: 405
    share_queued: float = 0.05  # held and already queued at start: the first answer is 200
    world_file: Path | None = None

    # Faults. Each one off by default.
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0  # uniform extra delay in [0, jitter)
    rate_limit: float | None = None  # requests/s over a sliding second; above it 429
    # The limit changing with time: (seconds since start, requests/s) pairs, the first at 0;
    # given, it replaces rate_limit (which becomes its first rate).
    rate_limit_schedule: tuple[tuple[float, float], ...] = ()
    error_rate: float = 0.0  # share of answers replaced by an HTML 500/502/503/504
    drop_rate: float = 0.0  # share of connections cut after the work was done
    # Share of 2xx bulk and status answers whose items cannot be attributed to the hashes sent,
    # after the work was done (the samples are queued); `wrong_shape` says how.
    wrong_shape_rate: float = 0.0
    wrong_shape: WrongShape = WrongShape.MIXED
    # Share of requests answered by a proxy's HTML page with 200 before reaching the appliance:
    # nothing is done, as when a proxy or an SSO gateway answers in its place.
    proxy_page_rate: float = 0.0
    # Share of answers streamed padded (with whitespace after the JSON) to `big_body_mb` MB,
    # after the work was done: the body is the real answer, only far larger.
    big_body_rate: float = 0.0
    big_body_mb: float = 400.0
    max_bulk: int | None = None  # bulk requests naming more hashes get 413
    absent_mode: AbsentMode = AbsentMode.OMIT
    extracted_mode: ExtractedMode = ExtractedMode.ITEM
    appliance_refuses: bool = False  # every reanalysis answered 405
    cloud_connected: bool = True  # False: `cloud` refused per analysis, `core` still queued
    # Sandbox integrations configured on the appliance; the others are refused per analysis.
    sandboxes: frozenset[str] = frozenset({"rl_cloud_sandbox"})
    v2_mixed_types: bool = True  # whether v2 bulk takes mixed hash types (unverified upstream)
    legacy_fields: bool = True  # False: leave out the deprecated top-level code/message
    fault_seed: int = 0  # seeds the dice for latency jitter, errors and drops

    request_log_file: Path | None = None  # JSON lines, for tests that run the server apart
    keep_request_log: bool = True  # False: count only, for long rehearsals that would fill memory

    def __post_init__(self) -> None:
        # Callers (and argparse) may pass the modes as plain strings; store the enum members.
        object.__setattr__(self, "absent_mode", AbsentMode(self.absent_mode))
        object.__setattr__(self, "extracted_mode", ExtractedMode(self.extracted_mode))
        object.__setattr__(self, "wrong_shape", WrongShape(self.wrong_shape))
        object.__setattr__(self, "sandboxes", frozenset(self.sandboxes))
        for name in (
            "share_absent",
            "share_extracted",
            "share_queued",
            "error_rate",
            "drop_rate",
            "wrong_shape_rate",
            "proxy_page_rate",
            "big_body_rate",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.latency_ms < 0 or self.latency_jitter_ms < 0 or self.samples < 0:
            raise ValueError("latency and samples cannot be negative")
        if self.rate_limit_schedule:
            schedule = tuple((float(at), float(rate)) for at, rate in self.rate_limit_schedule)
            times = [at for at, _ in schedule]
            if times[0] != 0 or times != sorted(set(times)):
                raise ValueError("rate_limit_schedule must start at 0 s, times increasing")
            object.__setattr__(self, "rate_limit_schedule", schedule)
            object.__setattr__(self, "rate_limit", schedule[0][1])
        if self.rate_limit is not None and self.rate_limit <= 0:
            raise ValueError("rate_limit must be positive")
        if any(rate <= 0 for _, rate in self.rate_limit_schedule):
            raise ValueError("rate_limit_schedule rates must be positive")
        if self.big_body_mb <= 0:
            raise ValueError("big_body_mb must be positive")
        if self.max_bulk is not None and self.max_bulk < 1:
            raise ValueError("max_bulk must be at least 1")
