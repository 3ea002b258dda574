"""The appliance URL: credentials in it are refused before any work, and never written anywhere
(the password is not echoed); the scheme and host are taken in any case."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from reanalyzer.errors import ExitCode
from reanalyzer.simulator import SimulatorConfig, start_simulator, write_input

TOKEN = "tok-url-91f0-SECRET"
PASSWORD = "pw-8c1d-PASSWORD"


async def _cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    """The CLI in a subprocess with only the token set (and `env`); exit code and stderr."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("REANALYZER_")}
    full.update({"REANALYZER_TOKEN": TOKEN, **(env or {})})
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reanalyzer", *args, env=full, cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, err.decode()


@pytest.mark.parametrize("where", ["option", "environment"])
@pytest.mark.parametrize("userinfo", [f"user:{PASSWORD}@", f"{PASSWORD}@"])
async def test_credentials_in_the_url_are_refused_and_not_echoed(
    tmp_path: Path, where: str, userinfo: str
) -> None:
    """`--url http://user:pw@host` (or REANALYZER_URL) is a usage error (exit 2) that says how to
    give the token, writes no job directory, and shows the password nowhere."""
    (tmp_path / "hashes.txt").write_text("ab" * 20 + "\n")
    url = f"http://{userinfo}127.0.0.1:9"
    args, env = (["--url", url], None) if where == "option" else ([], {"REANALYZER_URL": url})
    code, err = await _cli("run", *args, "hashes.txt", cwd=tmp_path, env=env)
    assert code == ExitCode.USAGE, err
    for part in ("setting url", "must not hold credentials", "REANALYZER_TOKEN", "--token-file"):
        assert part in err
    assert PASSWORD not in err
    assert not (tmp_path / "jobs").exists()


async def test_an_upper_case_scheme_and_host_are_accepted(tmp_path: Path) -> None:
    """`--url HTTP://127.0.0.1:PORT` works, and the job records the URL in lower case."""
    sim = await start_simulator(SimulatorConfig(token=TOKEN, samples=30, seed=4))
    try:
        write_input(tmp_path / "hashes.txt", sim.world, 30, seed=4, junk_share=0)
        loud = sim.url.replace("http://", "HTTP://") + "/"
        code, err = await _cli("run", "--url", loud, "--job-dir", "job", "--progress", "off",
                               "hashes.txt", cwd=tmp_path)
        assert code == ExitCode.OK, err
        job = json.loads((tmp_path / "job" / "job.json").read_text())
        assert job["settings"]["url"] == sim.url
    finally:
        await sim.aclose()
