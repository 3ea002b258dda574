"""What the sending layer is told, checked before a job directory is made: no aiohttp here.

A setting that no request could ever honour (an analysis the API does not name, the single
endpoint with API v2, no sandbox platform for rl_cloud_sandbox) is a usage error (exit 2) found
before anything is created, so that the corrected command starts the job afresh.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from reanalyzer.errors import UsageError
from reanalyzer.settings import Settings

V1_ANALYSES = frozenset({"cloud", "core"})
V2_ANALYSES = V1_ANALYSES | {"rl_cloud_sandbox", "cuckoo", "fireeye", "joe", "cape"}
SANDBOX_PLATFORMS = frozenset(
    {"windows7", "windows10", "windows11", "macos_11", "linux", "android12"}
)


@dataclass(frozen=True, slots=True)
class SendConfig:
    """Everything the sending layer needs to know, validated on construction (UsageError)."""

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

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise UsageError("url: must start with https:// (or http://)")
        if not self.token:
            raise UsageError("token: missing (set REANALYZER_TOKEN or a token file)")
        allowed = V2_ANALYSES if self.api == "v2" else V1_ANALYSES
        if not self.analysis or not set(self.analysis) <= allowed:
            raise UsageError(
                f"analysis: {','.join(self.analysis) or '(empty)'} is not allowed with api "
                f"{self.api}; choose from {','.join(sorted(allowed))}"
            )
        if self.endpoint == "single" and self.api == "v2":
            raise UsageError("endpoint: single has no v2 form; use --api v1 or --endpoint bulk")
        if "rl_cloud_sandbox" in self.analysis and self.sandbox_platform not in SANDBOX_PLATFORMS:
            raise UsageError(
                "sandbox_platform: required by rl_cloud_sandbox; choose from "
                + ",".join(sorted(SANDBOX_PLATFORMS))
            )
        if self.concurrency < 1:
            raise UsageError("concurrency: must be at least 1")
        if self.rate_limit is not None and self.rate_limit <= 0:
            raise UsageError("rate_limit: must be positive (or unset for no limit)")
        if self.max_retries < 0 or self.unreachable_after < 1:
            raise UsageError("max_retries must be >= 0 and unreachable_after >= 1")

    @property
    def base_url(self) -> str:
        return self.url.rstrip("/")


def send_config(settings: Settings) -> SendConfig:
    if not settings.url:
        raise UsageError(
            "setting url: missing; give --url or REANALYZER_URL (or try `reanalyzer demo`)"
        )
    token = settings.resolved_token()
    if token is None:
        raise UsageError("setting token: missing; set REANALYZER_TOKEN or --token-file")
    return SendConfig(
        url=settings.url,
        token=token.get_secret_value(),
        analysis=settings.analyses,
        endpoint=settings.endpoint,
        api=settings.api,
        sandbox_platform=settings.sandbox_platform,
        concurrency=settings.concurrency,
        rate_limit=settings.rate_limit,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        total_timeout=settings.total_timeout,
        ca_bundle=settings.ca_bundle,
        insecure=settings.insecure,
        trust_env=settings.trust_env,
        max_retries=settings.max_retries,
        max_requests=settings.max_requests,
        unreachable_window=settings.unreachable_timeout,
        unreachable_window_at_start=min(15.0, settings.unreachable_timeout),
    )
