"""A fatal answer ends the run at once even while its input is idle: the real CLI in a subprocess,
fed one line through a pipe that stays open, against the simulator (another subprocess)."""

from __future__ import annotations

import os
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reanalyzer.errors import ExitCode

TOKEN = "tok-idle-fatal-7c41d09e"
LINE = b"3395856ce81f2b7382dee72602f798b642f14140\n"  # a SHA-1
ENDS_WITHIN = 30.0  # seconds: generous for a shared machine; the run used to wait forever


def env(token: str) -> dict[str, str]:
    """The environment of a subprocess: no REANALYZER_* of the developer's, the given token."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("REANALYZER_")}
    return {**clean, "REANALYZER_TOKEN": token}


@pytest.fixture
def simulator_url(tmp_path: Path) -> Iterator[str]:
    """A simulator on 127.0.0.1 that knows only TOKEN; its URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "reanalyzer", "simulate", "--port", "0", "--samples", "10"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env(TOKEN), cwd=tmp_path)
    try:
        assert proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            if not sel.select(60.0):
                pytest.fail("the simulator did not say where it listens")
        first = proc.stdout.readline().decode()
        assert first.startswith("simulator listening on "), first
        yield first.split()[3]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_with_one_line_then_idle(url: str, token: str, where: Path, *args: str) -> tuple[int, str]:
    """`reanalyzer run URL -` fed one hash line through a pipe kept open: its exit code and
    stderr, or a failure if it has not ended within ENDS_WITHIN seconds."""
    stderr_path = where / "run.stderr"
    with stderr_path.open("wb") as err, subprocess.Popen(
        [sys.executable, "-m", "reanalyzer", "run", "--url", url, "--job-dir", str(where / "job"),
         "--log-format", "json", "--progress", "off", *args, "-"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err, env=env(token),
        cwd=where,
    ) as proc:
        assert proc.stdin is not None
        proc.stdin.write(LINE)  # and then nothing more, the pipe left open
        proc.stdin.flush()
        started = time.monotonic()
        try:
            code = proc.wait(timeout=ENDS_WITHIN)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail(f"the run was still waiting for input after {ENDS_WITHIN} s:\n"
                        + stderr_path.read_text(errors="replace"))
        finally:
            proc.stdin.close()
        assert time.monotonic() - started < ENDS_WITHIN
    return code, stderr_path.read_text(errors="replace")


def test_a_refused_token_ends_a_run_whose_input_is_idle(
    simulator_url: str, tmp_path: Path
) -> None:
    """A 401 to the first batch exits 6 at once, without waiting for the next input line."""
    code, stderr = run_with_one_line_then_idle(simulator_url, "not-the-token", tmp_path)
    assert code == ExitCode.CREDENTIALS, stderr
    assert "refused the token" in stderr


def test_an_unreachable_appliance_ends_a_run_whose_input_is_idle(tmp_path: Path) -> None:
    """A closed port exits 5 once the unreachable timeout has run, without waiting for input."""
    url = f"http://127.0.0.1:{closed_port()}"
    code, stderr = run_with_one_line_then_idle(url, TOKEN, tmp_path,
                                               "--unreachable-timeout", "2")
    assert code == ExitCode.UNREACHABLE, stderr
    assert "no usable answer" in stderr
