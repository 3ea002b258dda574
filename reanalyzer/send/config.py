"""What the sending layer is told: a plain value, no aiohttp here.

It is built from the settings by ``reanalyzer.run.wiring.send_config`` and not checked again: a
setting that no request could honour (an analysis the API does not name, the single endpoint
with API v2, no sandbox platform for rl_cloud_sandbox) is refused by ``Settings`` itself, a
usage error (exit 2) before any job directory is made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal


@dataclass(frozen=True, slots=True)
class SendConfig:
    """Everything the sending layer needs to know, as the settings gave it."""

    url: str  # https://appliance.example.com, no path
    token: str = field(repr=False)  # secret: never in a repr, a log line or an error message
    analysis: tuple[str, ...] = ("cloud", "core")
    endpoint: Literal["bulk", "single"] = "bulk"
    api: Literal["v1", "v2"] = "v1"
    sandbox_platform: str | None = None  # required by the v2 analysis rl_cloud_sandbox
    concurrency: int = 4  # requests in flight at most
    rate_limit: float | None = None  # requests per second at most; None: as fast as answered
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    total_timeout: float = 120.0
    ca_bundle: Path | None = None
    insecure: bool = False  # no TLS verification (warned about)
    trust_env: bool = False  # take proxies and .netrc from the environment
    max_retries: int = 5  # per request, for 408/5xx/timeouts/resets; then the hashes are `failed`
    backoff_base: float = 0.5  # seconds: retry n waits uniform(0, min(cap, base * 2**(n-1)))
    backoff_cap: float = 30.0
    max_throttled: int = 50  # 429s one request may draw before its hashes are `failed`
    # Consecutive failures across requests that mean an outage (keep it <= max_retries + 1, so a
    # lone request cannot give up before the outage is recognized) ...
    unreachable_after: int = 5
    unreachable_window: float = 60.0  # ... once no answer came for this many seconds: stop
    max_requests: int | None = None  # requests this run may send at most (--max-requests)
    unreachable_window_at_start: float = 15.0  # the same, before the appliance ever answered
    # An answer is read up to base + per_hash * hashes sent bytes at most, then cut off.
    answer_base_bytes: int = 64 * 1024
    answer_bytes_per_hash: int = 4 * 1024

    @property
    def base_url(self) -> str:
        return self.url.rstrip("/")
