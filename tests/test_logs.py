"""What goes to stderr as log lines while a progress line is shown on a terminal."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog

from reanalyzer.run.logs import configure_logging, fold_into_progress_line


@pytest.fixture
def restore_logging() -> Iterator[None]:
    yield
    fold_into_progress_line(False)
    structlog.reset_defaults()


@pytest.mark.usefixtures("restore_logging")
def test_retries_are_folded_into_the_progress_line_on_a_terminal(
        capsys: pytest.CaptureFixture[str]) -> None:
    """With the progress line shown, a retry is counted there, not printed as an info line;
    its warnings still print, and without the line (or in JSON logs) every retry prints."""
    log = structlog.get_logger("test")
    configure_logging("console", "info")
    fold_into_progress_line(True)
    log.info("sender.retry_scheduled", delay=0.5)
    log.warning("sender.gave_up", batch_size=4)
    err = capsys.readouterr().err
    assert "sender.retry_scheduled" not in err
    assert "sender.gave_up" in err
    fold_into_progress_line(False)
    log.info("sender.retry_scheduled", delay=0.5)
    assert "sender.retry_scheduled" in capsys.readouterr().err
    configure_logging("json", "info")
    fold_into_progress_line(True)
    log.info("sender.retry_scheduled", delay=0.5)
    assert '"event": "sender.retry_scheduled"' in capsys.readouterr().err


@pytest.mark.usefixtures("restore_logging")
def test_429s_are_folded_into_the_progress_line_on_a_terminal(
        capsys: pytest.CaptureFixture[str]) -> None:
    """With the progress line shown, a 429's pause is counted there (429s), not printed as an
    info line; the warning that the pace was lowered still prints."""
    log = structlog.get_logger("test")
    configure_logging("console", "info")
    fold_into_progress_line(True)
    log.info("sender.throttled", pause=1.0)
    log.warning("sender.rate_lowered", rate=2.5)
    err = capsys.readouterr().err
    assert "sender.throttled" not in err
    assert "sender.rate_lowered" in err
    fold_into_progress_line(False)
    log.info("sender.throttled", pause=1.0)
    assert "sender.throttled" in capsys.readouterr().err
