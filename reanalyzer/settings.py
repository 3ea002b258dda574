"""Every setting of a job, where it comes from, and how a wrong one is reported.

Precedence, highest first: command line > environment (``REANALYZER_*``) > ``.env`` in the
working directory > the TOML config file (``--config PATH`` or ``REANALYZER_CONFIG``) > defaults.
The command line reaches this module as keyword arguments (pydantic-settings' init source).
"""

from __future__ import annotations

import contextvars
import difflib
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from reanalyzer.errors import UsageError

V1_ANALYSES = ("cloud", "core")
V2_ANALYSES = (*V1_ANALYSES, "rl_cloud_sandbox", "cuckoo", "fireeye", "joe", "cape")
SANDBOX_PLATFORMS = ("windows7", "windows10", "windows11", "macos_11", "linux", "android12")

# Which TOML file the settings being built should read; a context variable rather than a class
# attribute so that two loads (a test, say) cannot see each other's file.
_config_file: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "reanalyzer_config_file", default=None
)


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

    # The appliance
    url: str = Field("", description="base URL of the appliance, e.g. https://a1000.example.com")
    token: SecretStr | None = Field(None, description="API token (REANALYZER_TOKEN)")
    token_file: Path | None = Field(None, description="file holding the API token")
    analysis: str = Field("core", description="comma list of analyses to request")
    api: Literal["v1", "v2"] = Field("v1", description="bulk API version")
    endpoint: Literal["bulk", "single"] = Field("bulk", description="bulk or single-sample")
    sandbox_platform: str | None = Field(None, description="platform for rl_cloud_sandbox")
    ca_bundle: Path | None = Field(None, description="CA bundle to verify the appliance's TLS")
    insecure: bool = Field(False, description="do not verify TLS certificates")
    trust_env: bool = Field(False, description="use proxies from the environment")
    connect_timeout: float = Field(10.0, gt=0, description="seconds to connect")
    read_timeout: float = Field(60.0, gt=0, description="seconds to wait for an answer")
    total_timeout: float = Field(120.0, gt=0, description="seconds for a whole request")

    # Pace
    batch_size: int = Field(100, ge=1, le=10_000, description="hashes per bulk request")
    concurrency: int = Field(4, ge=1, le=512, description="requests in flight at most")
    rate_limit: float | None = Field(None, gt=0, description="requests per second at most")
    max_retries: int = Field(5, ge=0, le=100, description="retries of a transient failure")
    unreachable_timeout: float = Field(
        60.0, gt=0, description="seconds without any answer before the job stops (exit 5)"
    )

    # Budgets and guards
    max_duration: float | None = Field(
        None, gt=0, description="stop cleanly (resumable) after this long: seconds, or 90m, 8h"
    )
    max_requests: int | None = Field(None, ge=1, description="stop after this many requests")
    max_failure_rate: float | None = Field(
        None, gt=0, le=100, description="stop when more than this % of the first hashes failed"
    )
    failure_sample: int = Field(1000, ge=1, description="how many first hashes the rate is over")

    # The job
    job_dir: Path | None = Field(None, description="job directory (outcomes, checkpoint)")
    input_format: Literal["auto", "text", "csv", "jsonl"] = Field("auto", description="format")
    csv_column: str | None = Field(None, description="CSV column holding the hash")
    json_field: str | None = Field(None, description="JSON-lines field holding the hash")
    dedupe: bool = Field(True, description="record repeated hashes as duplicate, send once")
    idle_flush: float = Field(0.5, gt=0, le=60, description="seconds before a partial batch goes")
    dry_run: bool = Field(False, description="read and report, send nothing")
    precheck: bool = Field(
        False, description="ask the status endpoint first; queue only what the appliance holds"
    )
    fresh: bool = Field(False, description="start the job over, discarding earlier outcomes")

    # Logs and progress
    progress: Literal["auto", "bar", "log", "off"] = Field(
        "auto", description="progress display: a bar on a terminal, log events otherwise"
    )
    progress_interval: float = Field(30.0, gt=0, description="seconds between progress events")
    log_format: Literal["auto", "console", "json"] = Field("auto", description="log format")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="level")

    @field_validator("analysis")
    @classmethod
    def _normalize_analysis(cls, value: str) -> str:
        names = [name.strip().lower() for name in value.split(",") if name.strip()]
        if not names:
            raise ValueError("must name at least one analysis")
        unknown = sorted(set(names) - set(V2_ANALYSES))
        if unknown:
            raise ValueError(f"unknown {', '.join(unknown)}; allowed: {', '.join(V2_ANALYSES)}")
        return ",".join(dict.fromkeys(names))  # keep order, drop repeats

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

    @field_validator("sandbox_platform")
    @classmethod
    def _check_platform(cls, value: str | None) -> str | None:
        if value is not None and value not in SANDBOX_PLATFORMS:
            raise ValueError(f"must be one of {', '.join(SANDBOX_PLATFORMS)}")
        return value

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @model_validator(mode="after")
    def _check_combinations(self) -> Settings:
        extra = [name for name in self.analyses if name not in V1_ANALYSES]
        if extra and self.api != "v2":
            raise ValueError(
                f"analysis {', '.join(extra)} needs --api v2 (v1 allows {', '.join(V1_ANALYSES)})"
            )
        if "rl_cloud_sandbox" in self.analyses and self.sandbox_platform is None:
            raise ValueError(
                "analysis rl_cloud_sandbox needs --sandbox-platform "
                f"({', '.join(SANDBOX_PLATFORMS)})"
            )
        if self.csv_column and self.json_field:
            raise ValueError("give --csv-column or --json-field, not both")
        return self

    @property
    def analyses(self) -> tuple[str, ...]:
        return tuple(self.analysis.split(","))

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
    if config_file is not None:
        _check_config_keys(config_file)
    _check_environment_names()
    given = {key: value for key, value in cli_values.items() if value is not None}
    token = _config_file.set(config_file)
    try:
        return Settings(**given)
    except ValidationError as exc:
        raise UsageError(describe_validation_error(exc)) from None  # the cause may echo a token
    except ValueError as exc:  # a malformed TOML file or .env line
        raise UsageError(f"cannot read the configuration: {exc}") from None
    finally:
        _config_file.reset(token)


_OTHER_VARIABLES = {"REANALYZER_CONFIG", "REANALYZER_FAILPOINT"}


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


def _dotenv_names() -> list[str]:
    env_file = Path(".env")
    if not env_file.is_file():
        return []
    from dotenv import dotenv_values  # pydantic-settings reads .env with it

    return list(dotenv_values(env_file, encoding="utf-8"))


def _check_config_keys(config_file: Path) -> None:
    """A key of the TOML file that is no setting is a typo: say so, instead of ignoring it."""
    try:
        data = tomllib.loads(config_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"config file {config_file} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read config file {config_file}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config file {config_file} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - set(Settings.model_fields))
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(Settings.model_fields), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise UsageError(
            f"config file {config_file}: {', '.join(unknown)} is not a known setting{hint} "
            "(see config/reanalyzer.example.toml)"
        )


def describe_validation_error(exc: ValidationError) -> str:
    """One line per wrong setting, naming it and what it allows, never echoing a secret."""
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
        lines.append(f"setting {name} ({flag}, REANALYZER_{name.upper()}): {message}")
    return "; ".join(lines)
