"""structlog on stderr: readable on a terminal, JSON lines otherwise (cron, systemd, Kubernetes)."""

from __future__ import annotations

import logging
import sys

import structlog

from reanalyzer.run.progress import clear_for_output


class _StderrLogger(structlog.PrintLogger):
    """Prints each event on its own line on stderr, above the progress line if one is shown."""

    def msg(self, message: str) -> None:
        with clear_for_output():
            print(message, file=sys.stderr, flush=True)

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg


def _stderr_logger(*_args: object) -> structlog.PrintLogger:
    return _StderrLogger(sys.stderr)


# The processors of a JSON log line, whether or not logging is configured yet.
_JSON_PROCESSORS: list[structlog.typing.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.processors.format_exc_info,
    structlog.processors.JSONRenderer(),
]
_json_logs = False  # set by configure_logging: then stderr carries JSON lines only

# Info events that the progress line on a terminal already counts (its retries and 429s): while
# that line is shown, they are not printed, so that a bad minute does not scroll the terminal
# with one line per retry. Their warnings still print; JSON logs keep every event.
_FOLDED_EVENTS = frozenset({"sender.retry_scheduled", "sender.throttled"})
_folding = False


def fold_into_progress_line(shown: bool) -> None:
    """Whether a progress line is shown on the terminal now (see `_FOLDED_EVENTS`)."""
    global _folding
    _folding = shown and not _json_logs


def _drop_folded(
    logger: object, method_name: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    if _folding and method_name == "info" and event_dict.get("event") in _FOLDED_EVENTS:
        raise structlog.DropEvent
    return event_dict


def _wants_json(log_format: str) -> bool:
    return log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())


def set_early_format(log_format: str = "auto") -> None:
    """How `say` prints before the settings are known (a usage error among them): JSON lines
    unless stderr is a terminal, as configure_logging will decide, so that a log collector
    gets one JSON event for a bad setting or option too."""
    global _json_logs
    _json_logs = _wants_json(log_format)


def json_logs() -> bool:
    """Whether stderr carries JSON lines (no terminal, or --log-format json)."""
    return _json_logs


def say(text: str, event: str, level: str = "info", /, **fields: object) -> None:
    """Tell the person running the tool: a line of text on a terminal, an event in JSON logs,
    so that a JSON log stays one JSON object per line."""
    if _json_logs:
        # Meant for the person, so never filtered out by --log-level.
        logger = structlog.wrap_logger(
            _StderrLogger(sys.stderr),
            processors=_JSON_PROCESSORS,
            wrapper_class=structlog.make_filtering_bound_logger(logging.NOTSET),
        )
        getattr(logger, level)(event, message=text, **fields)
    else:
        with clear_for_output():
            print(text, file=sys.stderr, flush=True)


def configure_logging(log_format: str = "auto", level: str = "info") -> None:
    global _json_logs
    as_json = _json_logs = _wants_json(log_format)
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[_drop_folded, *_JSON_PROCESSORS[:-1], renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        # Looked up at each call, not bound now: tests and daemons may swap sys.stderr.
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
