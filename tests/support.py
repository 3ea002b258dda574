"""What the CLI tests share: a run's environment of its own, and the CLI run in a subprocess."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from reanalyzer.simulator import RunningSimulator, SimulatorConfig, start_simulator

StartSim = Callable[..., Awaitable[RunningSimulator]]


@dataclass(frozen=True, slots=True)
class Ran:
    """How a run of the CLI ended: its exit code, what it wrote, how long it took."""

    code: int
    out: str
    err: str
    seconds: float


def cli_env(token: str | None, **extra: str) -> dict[str, str]:
    """This process's environment without the REANALYZER_ settings of whoever runs the tests,
    with `token` (None: no token) and `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REANALYZER_")}
    if token is not None:
        env["REANALYZER_TOKEN"] = token
    env.update(extra)
    return env


async def run_cli(
    *args: str,
    cwd: Path,
    token: str | None,
    env: dict[str, str] | None = None,
    stdin: bytes | Path | None = None,
    code: str | None = None,
    limit: float = 60,
) -> Ran:
    """`python -m reanalyzer ARGS` (or `python -c CODE ARGS`) in `cwd`, its standard input the
    bytes or the file `stdin` (else /dev/null)."""
    started = time.monotonic()
    head = ["-c", code] if code is not None else ["-m", "reanalyzer"]
    feed = stdin.open("rb") if isinstance(stdin, Path) else None
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *head,
            *args,
            cwd=cwd,
            env=cli_env(token, **(env or {})),
            stdin=feed
            if feed is not None
            else asyncio.subprocess.PIPE
            if stdin is not None
            else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        given = stdin if isinstance(stdin, bytes) else None
        out, err = await asyncio.wait_for(proc.communicate(given), limit)
    finally:
        if feed is not None:
            feed.close()
    assert proc.returncode is not None
    return Ran(proc.returncode, out.decode(), err.decode(), time.monotonic() - started)


def isolate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, token: str | None = None) -> None:
    """A test in this process: no REANALYZER_ setting of the developer's (or .env: it runs in
    `tmp_path`) but `token`, if given."""
    for name in list(os.environ):
        if name.startswith("REANALYZER_"):
            monkeypatch.delenv(name)
    if token is not None:
        monkeypatch.setenv("REANALYZER_TOKEN", token)
    monkeypatch.chdir(tmp_path)


@asynccontextmanager
async def simulators(token: str, **defaults: Any) -> AsyncIterator[StartSim]:
    """Start simulators in the test's loop, each with SimulatorConfig `defaults` and the fields
    given (a `world=` goes to start_simulator); all closed at the end."""
    running: list[RunningSimulator] = []

    async def start(world: Any = None, **fields: Any) -> RunningSimulator:
        config = SimulatorConfig(token=token, **{**defaults, **fields})
        sim = await start_simulator(config, world=world)
        running.append(sim)
        return sim

    try:
        yield start
    finally:
        for sim in running:
            await sim.aclose()
