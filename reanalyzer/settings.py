"""Every setting of a job, declared once, where it comes from, and how a wrong one is reported.

``Settings`` is the one table of settings: each field has its type, default, rules, help text,
--help group and the commands that take it as an option (``_setting``); the command lines of
``run`` and ``retry`` are generated from it (commands/options.py), and a test keeps the README
and config/reanalyzer.example.toml in step with it. Every check of a setting is here: what the
sending layer is given (run/job.py's ``send_config``) is not checked again. (Over 300 lines
for that reason: the table alone is a third of it, and it belongs beside the checks it obeys.)

Precedence, highest first: command line > environment (``REANALYZER_*``) > ``.env`` in the
working directory > the TOML config file (``--config PATH`` or ``REANALYZER_CONFIG``) > defaults.
The command line reaches this module as keyword arguments (pydantic-settings' init source).
"""

from __future__ import annotations

import contextvars
import difflib
import io
import os
import ssl
import tomllib
import urllib.parse
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from reanalyzer.core import analyses as analysis_table
from reanalyzer.core.shards import Shard, parse_shard, shard_from_environment
from reanalyzer.core.timetable import EXPECTED, Timetable, parse_rate, zone_named
from reanalyzer.errors import UsageError

# The analysis names are one table, core/analyses.py: documented names per API, and the rules.
V1_ANALYSES = tuple(sorted(analysis_table.V1_NAMES))
V2_ONLY = tuple(sorted(analysis_table.V2_NAMES - analysis_table.V1_NAMES))
SANDBOX_PLATFORMS = tuple(sorted(analysis_table.SANDBOX_PLATFORMS))

# Which TOML file the settings being built should read; a context variable rather than a class
# attribute so that two loads (a test, say) cannot see each other's file.
_config_file: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "reanalyzer_config_file", default=None
)


# The groups of settings, in the order --help shows them.
GROUPS = {
    "appliance": "appliance",
    "pace": "pace",
    "budgets": "budgets and guards (a stop is clean and resumable)",
    "job": "job and input",
    "shards": "shards (many workers, one input: each records its own slice)",
    "logs": "logs",
    "watch": "metrics, notifications and pings",
}
RUN_RETRY = ("run", "retry")  # the settings `retry` takes too: how to send, not what


def _setting(
    default: Any, help: str, group: str, commands: tuple[str, ...] = ("run",), **rules: Any
) -> Any:
    """One row of the table: a default, the help --help shows, the --help group, the commands
    taking it as an option (``()``: none, as the token), and pydantic's rules (ge, le, gt)."""
    if group not in GROUPS:
        raise ValueError(f"unknown settings group {group!r}")
    extra: dict[str, Any] = {"group": group, "commands": list(commands)}
    return Field(default, description=help, json_schema_extra=extra, **rules)


class Settings(BaseSettings):
    """A job's settings. The token is a secret: it is never part of a repr, a log or an error."""

    model_config = SettingsConfigDict(
        env_prefix="REANALYZER_",
        env_file=".env",
        env_file_encoding="utf-8",
        # A .env may be shared with other tools; the TOML file, ours alone, is checked strictly.
        extra="ignore",
        # An empty variable is an unset one (a Kubernetes or systemd secret left empty): an
        # empty REANALYZER_TOKEN must not hide the token file.
        env_ignore_empty=True,
        frozen=True,
        validate_default=True,
    )

    # The table: one entry per setting (see _setting); --help shows its text and default.
    # The appliance
    url: str = _setting(
        "", "appliance base URL, e.g. https://a1000.example.com", "appliance", RUN_RETRY
    )
    token: SecretStr | None = _setting(
        None,
        "API token: only from REANALYZER_TOKEN, .env or the config file, never a command line",
        "appliance",
        (),
    )
    token_file: Path | None = _setting(
        None,
        "file holding the API token; or set REANALYZER_TOKEN (never pass the token itself "
        "on a command line)",
        "appliance",
        RUN_RETRY,
    )
    analysis: str = _setting(
        "core",
        f"comma list, in any order: {', '.join(V1_ANALYSES)}; with --api v2 also "
        f"{', '.join(V2_ONLY)}; another name is sent with a warning",
        "appliance",
    )
    api: Literal["v1", "v2"] = _setting("v1", "bulk API version", "appliance")
    endpoint: Literal["bulk", "single"] = _setting(
        "bulk", "bulk requests, or one sample per request (v1 only)", "appliance"
    )
    sandbox_platform: str | None = _setting(
        None, f"platform for rl_cloud_sandbox: {', '.join(SANDBOX_PLATFORMS)}", "appliance"
    )
    ca_bundle: Path | None = _setting(
        None, "CA bundle that signs the appliance's certificate", "appliance", RUN_RETRY
    )
    insecure: bool = _setting(
        False, "do not verify TLS certificates (warns)", "appliance", RUN_RETRY
    )
    trust_env: bool = _setting(
        False, "use HTTP(S)_PROXY from the environment", "appliance", RUN_RETRY
    )
    connect_timeout: float = _setting(10.0, "seconds to connect", "appliance", gt=0)
    read_timeout: float = _setting(60.0, "seconds to wait for an answer", "appliance", gt=0)
    total_timeout: float = _setting(120.0, "seconds for a whole request", "appliance", gt=0)
    max_answer_kib_per_hash: int = _setting(
        4,
        "an answer is read up to 64 KiB plus this many KiB per hash sent; a larger one is "
        "cut off and retried",
        "appliance",
        RUN_RETRY,
        ge=1,
        le=1024,
    )

    # Pace
    batch_size: int = _setting(100, "hashes per bulk request", "pace", RUN_RETRY, ge=1, le=10_000)
    concurrency: int = _setting(4, "requests in flight at most", "pace", RUN_RETRY, ge=1, le=512)
    rate_limit: float | str | None = _setting(
        None,
        "requests per second at most (none: adapt to the appliance's 429 answers); or "
        "a timetable of local times, e.g. 07:00=5,19:00=50 (see --timezone)",
        "pace",
        RUN_RETRY,
    )
    max_retries: int = _setting(
        5,
        "retries of a transient failure before a hash is recorded failed (retries during "
        "an outage do not count: unreachable_timeout bounds them)",
        "pace",
        RUN_RETRY,
        ge=0,
        le=100,
    )
    unreachable_timeout: float = _setting(
        60.0,
        "seconds with no answer at all before the job stops, resumable (exit 5); at most "
        "15 while the appliance has never answered",
        "pace",
        gt=0,
    )

    # Budgets and guards
    max_duration: float | None = _setting(
        None, "stop after this long: seconds, or e.g. 90m, 8h", "budgets", gt=0
    )
    max_requests: int | None = _setting(None, "stop after this many requests", "budgets", ge=1)
    max_failure_rate: float | None = _setting(
        None,
        "stop when more than this percentage of the first --failure-sample hashes failed",
        "budgets",
        gt=0,
        le=100,
    )
    failure_sample: int = _setting(
        1000, "how many first hashes --max-failure-rate looks at", "budgets", ge=1
    )

    # The job and its input
    job_dir: Path | None = _setting(
        None,
        "job directory for outcomes and checkpoint (none: jobs/<first input>-<id of the "
        "inputs and settings>, so the same command finds its job again)",
        "job",
    )
    input_format: Literal["auto", "text", "csv", "jsonl"] = _setting(
        "auto", "input format (auto: text, unless --csv-column or --json-field is given)", "job"
    )
    csv_column: str | None = _setting(None, "read CSV input, the hash in this column", "job")
    json_field: str | None = _setting(None, "read JSON-lines input, the hash in this field", "job")
    dedupe: bool = _setting(True, "send a repeated hash once, record the rest duplicate", "job")
    dedupe_memory: str = _setting(
        "256M",
        "memory the dedupe set may take (about 9 bytes a distinct hash): bytes, or with "
        "K, M or G (binary), e.g. 64M, 1G; past it new hashes are not remembered, and a later "
        "repeat of one is sent again (the appliance answers already_queued)",
        "job",
    )
    idle_flush: float = _setting(
        0.5, "seconds of quiet input before a partial batch is sent", "job", gt=0, le=60
    )
    dry_run: bool = _setting(
        False, "read, validate and report what would be sent; send nothing", "job"
    )
    precheck: bool = _setting(
        False,
        "ask the appliance's status endpoint which hashes it holds first; queue only "
        "those and record the rest not_found (one more request per batch)",
        "job",
    )
    fresh: bool = _setting(
        False,
        "start the job over: discard the job directory's earlier outcomes instead of resuming",
        "job",
    )

    # Logs and progress
    log_format: Literal["auto", "console", "json"] = _setting(
        "auto", "log format on stderr (auto: console on a terminal, else JSON)", "logs", RUN_RETRY
    )
    log_level: Literal["debug", "info", "warning", "error"] = _setting(
        "info", "log level", "logs", RUN_RETRY
    )
    progress: Literal["auto", "bar", "log", "off"] = _setting(
        "auto",
        "progress display (auto: a live line on a terminal, else a job.progress log "
        "event every --progress-interval)",
        "logs",
    )
    progress_interval: float = _setting(
        30.0, "seconds between job.progress log events", "logs", gt=0
    )

    # Shards
    shard: str | None = _setting(
        None,
        "record only shard K of N of the input, K/N (0 <= K < N), or auto: from "
        "JOB_COMPLETION_INDEX, SLURM_ARRAY_TASK_ID or AWS_BATCH_JOB_ARRAY_INDEX",
        "shards",
    )
    shard_count: int | None = _setting(
        None,
        "N for --shard auto (none: SLURM_ARRAY_TASK_COUNT or AWS_BATCH_JOB_ARRAY_SIZE)",
        "shards",
        ge=1,
    )
    # Metrics, notifications and pings (and the timetable's zone)
    timezone: str | None = _setting(
        None,
        "IANA time zone of a --rate-limit timetable, e.g. Europe/Berlin (none: the machine's)",
        "pace",
        RUN_RETRY,
    )
    metrics_file: Path | None = _setting(
        None,
        "write Prometheus metrics to this file (text format, replaced whole) every "
        "--progress-interval and at the end: for node_exporter's textfile collector",
        "watch",
        RUN_RETRY,
    )
    pushgateway: str | None = _setting(
        None,
        "push the same metrics to this Prometheus Pushgateway URL; basic auth from "
        "REANALYZER_PUSHGATEWAY_USER and REANALYZER_PUSHGATEWAY_PASSWORD",
        "watch",
        RUN_RETRY,
    )
    ping_url: str | None = _setting(
        None,
        "healthchecks-style ping URL: URL/start at the start, URL on success, "
        "URL/<exit code> otherwise",
        "watch",
        RUN_RETRY,
    )
    notify_url: str | None = _setting(
        None,
        "POST the run's summary as JSON to this URL at the end (see --notify-on)",
        "watch",
        RUN_RETRY,
    )
    notify_on: Literal["failure", "always"] = _setting(
        "failure",
        "when to POST to --notify-url: failure (an exit code other than 0), or always",
        "watch",
        RUN_RETRY,
    )

    @field_validator("analysis")
    @classmethod
    def _normalize_analysis(cls, value: str) -> str:
        # Kept as given (order and all, repeats dropped): a job directory named after this
        # spelling by an earlier version is found again (run/job.py). The names themselves are
        # checked against the API in _check_combinations; `analyses` is the canonical set.
        names = [name.strip().lower() for name in value.split(",") if name.strip()]
        if not names:
            raise ValueError("must name at least one analysis")
        return ",".join(dict.fromkeys(names))

    @field_validator("max_duration", mode="before")
    @classmethod
    def _parse_duration(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip().lower()
            units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
            try:
                if text and text[-1] in units:
                    return float(text[:-1]) * units[text[-1]]
                return float(text)
            except ValueError:
                raise ValueError("must be seconds, or a number with s, m, h or d") from None
        return value

    @field_validator("dedupe_memory", mode="before")
    @classmethod
    def _check_memory_size(cls, value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str):
            parse_size(value)
            return value.strip()
        return value

    @field_validator("rate_limit", mode="before")
    @classmethod
    def _parse_rate_limit(cls, value: object) -> object:
        # A number stays a number; a timetable is kept in one spelling (07:00=5,19:00=50).
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            return value
        if isinstance(value, int | float):
            value = str(value)
        rate = parse_rate(value)
        return rate if isinstance(rate, float) else str(rate)

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str | None) -> str | None:
        if value is not None:
            zone_named(value)
        return value

    @field_validator("pushgateway", "ping_url", "notify_url")
    @classmethod
    def _check_watch_url(cls, value: str | None) -> str | None:
        # As for url: never echoed (a ping URL is a capability), never with credentials.
        if value is None:
            return value
        value = value.strip()
        parts = urllib.parse.urlsplit(value)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        if "@" in parts.netloc:
            raise ValueError(
                "must not hold credentials (user:password@); the Pushgateway's "
                "come from REANALYZER_PUSHGATEWAY_USER and _PASSWORD"
            )
        return value

    @field_validator("sandbox_platform")
    @classmethod
    def _check_platform(cls, value: str | None) -> str | None:
        if value is not None and value not in SANDBOX_PLATFORMS:
            raise ValueError(f"must be one of {', '.join(SANDBOX_PLATFORMS)}")
        return value

    @field_validator("ca_bundle")
    @classmethod
    def _check_ca_bundle(cls, value: Path | None) -> Path | None:
        # Found here, not at the first request: a wrong path stops the run before any work.
        if value is None:
            return value
        if not value.is_file():
            raise ValueError(f"{value} is not a file" if value.exists() else f"no file {value}")
        try:
            ssl.create_default_context(cafile=str(value))
        except ssl.SSLError:  # (an OSError too: first)
            raise ValueError(f"{value} holds no PEM certificate") from None
        except OSError as exc:
            raise ValueError(f"cannot read {value}: {exc.strerror}") from None
        return value

    @field_validator("shard")
    @classmethod
    def _check_shard(cls, value: str | None) -> str | None:
        if value is None or value.strip().lower() == "auto":
            return None if value is None else "auto"
        return str(parse_shard(value))  # one spelling ("2/8"): it is part of the job's identity

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        # The messages never echo the URL: one with a password in it must not reach a log.
        value = value.strip().rstrip("/")
        if not value:
            return value
        scheme, sep, _ = value.partition("://")
        if scheme.lower() not in ("http", "https") or not sep:
            raise ValueError("must start with http:// or https://")
        parts = urllib.parse.urlsplit(value)
        if "@" in parts.netloc:
            raise ValueError(
                "must not hold credentials (user:password@): the appliance takes an API token; "
                "give it by REANALYZER_TOKEN or --token-file"
            )
        if not parts.hostname:
            raise ValueError("names no host; e.g. https://a1000.example.com")
        try:
            parts.port  # noqa: B018  (a port that is no number raises here)
        except ValueError:
            raise ValueError("has a port that is not a number from 0 to 65535") from None
        # Scheme and host are case-blind (HTTP://A1000 is http://a1000): one spelling, so that
        # the job's identity does not depend on it.
        return urllib.parse.urlunsplit(
            parts._replace(scheme=parts.scheme.lower(), netloc=parts.netloc.lower())
        )

    @model_validator(mode="after")
    def _check_combinations(self) -> Settings:
        try:
            names = self.analysis_names
        except UsageError as exc:
            raise ValueError(str(exc)) from None
        if names.needs_platform and self.sandbox_platform is None:
            raise ValueError(
                "analysis rl_cloud_sandbox needs a sandbox_platform (--sandbox-platform): "
                f"{', '.join(SANDBOX_PLATFORMS)}"
            )
        if self.endpoint == "single" and self.api == "v2":
            raise ValueError("endpoint single has no v2 form; use --api v1 or --endpoint bulk")
        if self.csv_column and self.json_field:
            raise ValueError("give --csv-column or --json-field, not both")
        given = (
            "csv_column (--csv-column)"
            if self.csv_column
            else ("json_field (--json-field)" if self.json_field else None)
        )
        if given and self.input_format not in ("auto", "csv" if self.csv_column else "jsonl"):
            raise ValueError(
                f"input_format {self.input_format} does not read {given}: "
                "give one or the other (auto reads the format the column or "
                "field names)"
            )
        if self.input_format == "csv" and not self.csv_column:
            raise ValueError(
                "input_format csv needs csv_column (--csv-column): the column holding the hash"
            )
        if self.input_format == "jsonl" and not self.json_field:
            raise ValueError(
                "input_format jsonl needs json_field (--json-field): the field holding the hash"
            )
        # (A shard_count alone is no error: a site may set it for every worker of an array.)
        if (
            self.shard_count is not None
            and self.shard not in (None, "auto")
            and parse_shard(self.shard).count != self.shard_count
        ):
            raise ValueError(
                f"--shard {self.shard} and --shard-count {self.shard_count} "
                "disagree; give one of them"
            )
        self.resolved_shard  # noqa: B018  (--shard auto is checked here, before any work)
        return self

    @property
    def analysis_names(self) -> analysis_table.AnalysisNames:
        """The --analysis list read for --api: the names to send, those to warn about."""
        return analysis_table.read_names(self.analysis, self.api)

    @property
    def dedupe_memory_bytes(self) -> int:
        return parse_size(self.dedupe_memory)

    @property
    def resolved_shard(self) -> Shard | None:
        """The shard this worker records (--shard auto: from the scheduler's environment)."""
        if self.shard is None:
            return None
        if self.shard == "auto":
            return shard_from_environment(os.environ, self.shard_count)
        return parse_shard(self.shard)

    @property
    def timetable(self) -> Timetable | None:
        """The --rate-limit timetable, if the rate limit is one."""
        rate = self.rate_limit
        if not isinstance(rate, str):
            return None
        parsed = parse_rate(rate)
        assert isinstance(parsed, Timetable), EXPECTED
        return parsed

    @property
    def zone(self) -> tzinfo:
        """The timetable's zone: --timezone, else the machine's."""
        return zone_named(self.timezone)

    def rate_limit_at(self, when: datetime) -> float | None:
        """The rate limit in force at `when`: the fixed one, or the timetable's."""
        timetable = self.timetable
        if timetable is None:
            return self.rate_limit if isinstance(self.rate_limit, float) else None
        return timetable.rate_at(when, self.zone)

    @property
    def analyses(self) -> tuple[str, ...]:
        """The analyses asked for, in their one (sorted) order: what is sent, and what
        identifies the job (`core,cloud` and `cloud,core` are one job)."""
        return analysis_table.split_names(self.analysis)

    @property
    def resolved_format(self) -> Literal["text", "csv", "jsonl"]:
        """The input format: explicit, or implied by --csv-column / --json-field."""
        if self.input_format != "auto":
            return self.input_format
        if self.csv_column:
            return "csv"
        if self.json_field:
            return "jsonl"
        return "text"

    def resolved_token(self) -> SecretStr | None:
        """The token from the setting, else from the token file; never logged."""
        if self.token is not None:
            return self.token
        if self.token_file is None:
            return None
        return SecretStr(read_token_file(self.token_file))

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, dotenv_settings]
        config_file = _config_file.get()
        if config_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)


_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """Bytes from `64M`, `1G`, `512k`, `1GiB` or a plain number of bytes (at least 1)."""
    spelled = text.strip().lower().removesuffix("ib").removesuffix("b")
    unit = spelled[-1:] if spelled[-1:] in _SIZE_UNITS else ""
    number = spelled[: len(spelled) - len(unit)].strip()
    try:
        size = float(number) * _SIZE_UNITS[unit]
    except ValueError:
        raise ValueError("must be bytes, or a number with K, M or G, e.g. 64M or 1G") from None
    if not 1 <= size < 1 << 62:  # (NaN and infinity fail this too)
        raise ValueError("must be at least 1 byte and below 4 EiB, e.g. 64M or 1G")
    return int(size)


def read_token_file(path: Path) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise UsageError(f"cannot read token_file {path}: {exc.strerror}") from exc
    if not text:
        raise UsageError(f"token_file {path} is empty")
    return text


def load_settings(cli_values: dict[str, Any], config_file: Path | None = None) -> Settings:
    """Settings from every source; a wrong one raises UsageError naming it, before any work."""
    if config_file is None and os.environ.get("REANALYZER_CONFIG"):
        config_file = Path(os.environ["REANALYZER_CONFIG"])
    in_file = _check_config_keys(config_file) if config_file is not None else set()
    _check_dotenv()
    _check_environment_names()
    given = {key: value for key, value in cli_values.items() if value is not None}
    token = _config_file.set(config_file)
    try:
        return Settings(**given)
    except ValidationError as exc:
        # A wrong value that came from the config file is named with the file.
        from_file = in_file - set(given) - _set_in_environment()
        from_dotenv = _set_in_dotenv() - set(given) - _set_in_environment(dotenv=False)
        raise UsageError(  # from None: the cause may echo a token
            describe_validation_error(exc, config_file, from_file, from_dotenv)
        ) from None
    except ValueError as exc:  # a malformed TOML file or .env line
        raise UsageError(f"cannot read the configuration: {exc}") from None
    finally:
        _config_file.reset(token)


_OTHER_VARIABLES = {
    "REANALYZER_CONFIG",
    "REANALYZER_FAILPOINT",
    # The Pushgateway's basic auth: from the environment only (run/metrics.py).
    "REANALYZER_PUSHGATEWAY_USER",
    "REANALYZER_PUSHGATEWAY_PASSWORD",
}


def _check_environment_names() -> None:
    """A REANALYZER_* variable that names no setting, in the environment or in .env, is a typo
    a cron job would never show: refuse it, and suggest the setting meant. (.env's other
    entries may belong to other tools.)"""
    known = {f"REANALYZER_{name.upper()}" for name in Settings.model_fields} | _OTHER_VARIABLES
    for where, names in (("environment variable", os.environ), (".env entry", _dotenv_names())):
        for variable in sorted(names):
            if variable.upper().startswith("REANALYZER_") and variable.upper() not in known:
                close = difflib.get_close_matches(variable.upper(), sorted(known), n=1)
                hint = f"; did you mean {close[0]}?" if close else ""
                raise UsageError(f"{where} {variable} is not a setting{hint}")


def _check_dotenv() -> None:
    """A .env line that is not NAME=value would be skipped by python-dotenv with a warning that
    names neither the file nor what happens: a setting meant there would be silently lost.
    Refuse it, naming the line (not its text: it may hold a token)."""
    env_file = Path(".env")
    if not env_file.is_file():
        return
    from dotenv.parser import parse_stream

    try:
        text = env_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read .env in the working directory: {exc}") from None
    bad = [b.original.line for b in parse_stream(io.StringIO(text)) if b.error]
    if bad:
        lines = ", ".join(str(n) for n in bad)
        raise UsageError(
            f".env (in the working directory): {'line' if len(bad) == 1 else 'lines'} "
            f"{lines} cannot be read: each line is NAME=value, a # comment or blank"
        )


def _dotenv_names() -> list[str]:
    env_file = Path(".env")
    if not env_file.is_file():
        return []
    from dotenv import dotenv_values  # pydantic-settings reads .env with it

    return list(dotenv_values(env_file, encoding="utf-8"))


def _set_in_environment(dotenv: bool = True) -> set[str]:
    """The settings the environment or .env sets (they outrank the config file)."""
    names = {n.upper() for n in os.environ if os.environ[n]}
    if dotenv:
        names |= set(_dotenv_names())
    return {name for name in Settings.model_fields if f"REANALYZER_{name.upper()}" in names}


def _set_in_dotenv() -> set[str]:
    """The settings .env sets (under the environment's)."""
    names = {n.upper() for n in _dotenv_names()}
    return {name for name in Settings.model_fields if f"REANALYZER_{name.upper()}" in names}


def _check_config_keys(config_file: Path) -> set[str]:
    """The settings the TOML file sets. A key that is no setting is a typo: say so, instead of
    ignoring it; a table is a layout the file does not have (its settings are top-level)."""
    try:
        data = tomllib.loads(config_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"config file {config_file} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read config file {config_file}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config file {config_file} is not valid TOML: {exc}") from None
    tables = sorted(key for key, value in data.items() if isinstance(value, dict))
    if tables:
        raise UsageError(
            f"config file {config_file}: [{tables[0]}] is a table, but the file has no tables: "
            "each setting is a top-level key, e.g. batch_size = 200 at the top of the file "
            "(see config/reanalyzer.example.toml)"
        )
    unknown = sorted(set(data) - set(Settings.model_fields))
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(Settings.model_fields), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise UsageError(
            f"config file {config_file}: {', '.join(unknown)} is not a known setting{hint} "
            "(see config/reanalyzer.example.toml)"
        )
    return set(data)


def describe_validation_error(
    exc: ValidationError,
    config_file: Path | None = None,
    from_file: set[str] | None = None,
    from_dotenv: set[str] | None = None,
) -> str:
    """One line per wrong setting, naming it and what it allows (and the config file, for a
    setting in `from_file`, the ones whose value came from it), never echoing a secret."""
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        name = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "is not a known setting (see config/reanalyzer.example.toml)"
        if not name:  # a rule across settings: its message names them
            lines.append(message)
            continue
        flag = "--" + name.replace("_", "-")
        where = (
            f"config file {config_file}: "
            if name in (from_file or ())
            else "in .env: "
            if name in (from_dotenv or ())
            else ""
        )
        lines.append(f"{where}setting {name} ({flag}, REANALYZER_{name.upper()}): {message}")
    return "; ".join(lines)
