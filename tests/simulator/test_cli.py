"""`reanalyzer simulate` as the lead mounts it: configure_parser and run."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from reanalyzer.simulator import cli
from reanalyzer.simulator.config import AbsentMode, ExtractedMode
from reanalyzer.simulator.requestlog import read_log
from reanalyzer.simulator.world import World

from .support import BULK_V1, post_json

# What `reanalyzer simulate` will run once the lead mounts it.
_MAIN = (
    "import argparse, sys; from reanalyzer.simulator import cli; "
    "p = argparse.ArgumentParser(); cli.configure_parser(p); "
    "sys.exit(cli.run(p.parse_args(sys.argv[1:])))"
)


def parse(*argv: str) -> argparse.Namespace:
    """Parse simulator options as the mounted command would."""
    parser = argparse.ArgumentParser()
    cli.configure_parser(parser)
    return parser.parse_args(argv)


def test_options_become_the_config() -> None:
    """Each fault option lands in its SimulatorConfig field."""
    args = parse(
        "--port", "8080", "--samples", "99", "--latency-ms", "5", "--latency-jitter-ms", "2",
        "--rate-limit", "10", "--error-rate", "0.1", "--drop-rate", "0.2", "--max-bulk", "50",
        "--absent-mode", "404", "--extracted-mode", "request", "--refuse", "--cloud-disconnected",
    )  # fmt: skip
    config = cli.config_from_args(args, "tok")
    assert (config.port, config.samples, config.rate_limit, config.max_bulk) == (8080, 99, 10, 50)
    assert (config.latency_ms, config.latency_jitter_ms) == (5, 2)
    assert (config.error_rate, config.drop_rate) == (0.1, 0.2)
    assert config.absent_mode is AbsentMode.NOT_FOUND
    assert config.extracted_mode is ExtractedMode.REQUEST
    assert config.appliance_refuses
    assert not config.cloud_connected


def test_every_option_has_help() -> None:
    """No option is left without help text."""
    parser = argparse.ArgumentParser()
    cli.configure_parser(parser)
    for action in parser._actions:
        assert action.help, action.dest


def test_no_token_is_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without REANALYZER_TOKEN the simulator refuses to start."""
    monkeypatch.delenv("REANALYZER_TOKEN", raising=False)
    assert cli.run(parse()) == 2
    assert "REANALYZER_TOKEN" in capsys.readouterr().err


async def test_subprocess_serves_until_sigterm(tmp_path: Path) -> None:
    """As its own process it prints its URL, serves, writes its files and exits 0 on SIGTERM."""
    token = "subprocess-secret-token"
    log_path, world_path, input_path = tmp_path / "log.jsonl", tmp_path / "w.jsonl", tmp_path / "in"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _MAIN, "--port", "0", "--samples", "50",
        "--request-log", str(log_path), "--save-world", str(world_path),
        "--write-input", str(input_path), "--lines", "100",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "REANALYZER_TOKEN": token},
    )  # fmt: skip
    assert process.stdout is not None
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        match = re.fullmatch(r"simulator listening on (\S+) \(REANALYZER_URL=(\S+)\)\n", line)
        assert match
        assert match[1] == match[2]
        world = World.load(world_path)
        sample = next(s for s in world.samples if s.kind == "present" and not s.queued)
        async with aiohttp.ClientSession(headers={"Authorization": f"Token {token}"}) as client:
            status, _ = await post_json(
                client, match[1] + BULK_V1, {"hash_value": [sample.sha1], "analysis": "core"}
            )
        assert status == 201
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0
    assert token not in (line + out.decode() + err.decode())
    assert len(input_path.read_text().splitlines()) == 100
    [record] = read_log(log_path)
    assert record.hashes == (sample.sha1,)


def test_bad_settings_are_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An impossible setting is refused before serving, and the token is never printed."""
    monkeypatch.setenv("REANALYZER_TOKEN", "very-secret")
    assert cli.run(parse("--error-rate", "2")) == 2
    captured = capsys.readouterr()
    assert "error_rate" in captured.err
    assert "very-secret" not in captured.out + captured.err
