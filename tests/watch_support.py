"""Shared by the watch tests: a simulator per test, the CLI in a subprocess, an in-process HTTP
server that records what it is sent (pings, webhooks), and the outcome log's accounting."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from reanalyzer.record.outcome_log import OUTCOMES_FILE, read_records

TOKEN = "tok-5d2e81c4a9f04b37-watch"  # distinctive, so that a leak is found by grep


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REANALYZER_")}
    env["REANALYZER_TOKEN"] = TOKEN
    return env


async def start_cli(url: str, inputs: list[Path], job_dir: Path, *args: str,
                    env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    """`python -m reanalyzer run` against `url`, JSON logs on its stderr (piped)."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reanalyzer", "run", "--url", url, "--job-dir", str(job_dir),
        "--log-format", "json", "--idle-flush", "0.05", *args, *(str(p) for p in inputs),
        env=env or cli_env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def run_cli(url: str, inputs: list[Path], job_dir: Path, *args: str,
                  env: dict[str, str] | None = None) -> tuple[int, str]:
    proc = await start_cli(url, inputs, job_dir, *args, env=env)
    _, stderr = await asyncio.wait_for(proc.communicate(), timeout=90)
    assert proc.returncode is not None
    return proc.returncode, stderr.decode()


def records(job_dir: Path) -> list[dict[str, Any]]:
    return list(read_records(job_dir / OUTCOMES_FILE))


def status_counts(job_dir: Path) -> Counter[str]:
    return Counter(r["status"] for r in records(job_dir))


def assert_every_line_accounted_for(path: Path, job_dir: Path) -> None:
    """One record for each line that is not blank or a comment, and none for any other."""
    wanted = {n for n, line in enumerate(path.read_text().splitlines(), 1)
              if line.strip() and not line.strip().startswith("#")}
    lines = Counter(r["line"] for r in records(job_dir))
    assert set(lines) == wanted
    assert max(lines.values()) == 1


@dataclass
class Hit:
    method: str
    path: str
    body: bytes
    at: float  # time.time()


@dataclass
class Hook:
    """What an in-process HTTP server on 127.0.0.1 was sent; `answers` scripts statuses."""

    url: str = ""
    hits: list[Hit] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)  # popped per request; then 200

    async def handle(self, request: web.Request) -> web.Response:
        self.hits.append(Hit(request.method, request.path, await request.read(), time.time()))
        return web.Response(status=self.answers.pop(0) if self.answers else 200, text="OK")


async def serve_hook() -> AsyncIterator[Hook]:
    hook = Hook()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", hook.handle)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    hook.url = str(server.make_url("")).rstrip("/")
    yield hook
    await server.close()
