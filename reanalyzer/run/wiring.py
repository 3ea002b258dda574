"""What each stage is given, built from the settings: the sender's SendConfig and the reader's
blocks. The settings have checked every value; what only sending needs is required here."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from reanalyzer.core.positions import STDIN, Block, ResumePoint
from reanalyzer.errors import UsageError
from reanalyzer.read.formats import InputFormat, read_blocks
from reanalyzer.send.config import SendConfig
from reanalyzer.settings import Settings


def send_config(settings: Settings) -> SendConfig:
    """What the sender is told, from the settings (which have checked every value); a setting
    only sending needs (the URL, the token) is required here, before any job directory."""
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
        rate_limit=settings.rate_limit_at(datetime.now(UTC)),  # a timetable: its rate now
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
        answer_bytes_per_hash=settings.max_answer_kib_per_hash * 1024,
    )


def blocks_of(
    settings: Settings,
    inputs: Sequence[str],
    start: ResumePoint | None = None,
    stdin_spool: Path | None = None,
) -> Iterator[Block]:
    input_format = InputFormat(settings.resolved_format)
    column = settings.csv_column or settings.json_field
    if input_format is not InputFormat.TEXT and not column:
        flag = "--csv-column" if input_format is InputFormat.CSV else "--json-field"
        raise UsageError(f"--input-format {input_format.value} needs {flag}")
    if list(inputs).count(STDIN) > 1:
        raise UsageError("standard input ('-') can be read only once per job")
    return read_blocks(inputs, input_format, column, start, stdin_spool)
