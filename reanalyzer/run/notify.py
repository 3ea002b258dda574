"""Telling the outside: healthchecks-style pings, and a webhook with the run's summary.

Pings (``--ping-url``) follow healthchecks.io: ``URL/start`` when the run starts, ``URL`` on
success, ``URL/<exit code>`` otherwise, each with a short timeout. The webhook
(``--notify-url``) is a POST of the summary (as in summary.json, with the job directory and the
exit code) as JSON, on failure or always (``--notify-on``), with a few retries. Neither ever
fails the job: what goes wrong is logged, and the URLs themselves are never logged (a ping URL
is a capability): only their host. Nothing sent holds a token: the summary never does.

Each request runs in a thread of its own that is gone once it is answered: the process must
run one thread when a run's reading starts, for it to read ahead in a child process (a thread
pool's idle thread would stay; see read/readahead.py).
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import structlog

from reanalyzer import __version__

log = structlog.get_logger("reanalyzer.run.notify")

PING_TIMEOUT = 5.0
PING_ATTEMPTS = 2
NOTIFY_TIMEOUT = 10.0
NOTIFY_ATTEMPTS = 3
NOTIFY_BACKOFF = 1.0  # seconds before the second attempt; doubled each time
_AGENT = f"reanalyzer/{__version__}"

T = TypeVar("T")


async def in_own_thread(work: Callable[[], T]) -> T:
    """Blocking `work` in a thread that ends with it (see the module's docstring)."""
    pool = ThreadPoolExecutor(1, thread_name_prefix="reanalyzer-notify")
    try:
        return await asyncio.get_running_loop().run_in_executor(pool, work)
    finally:
        pool.shutdown(wait=True)


def ping_target(url: str, exit_code: int | None) -> str:
    """The healthchecks URL of a moment: None is the start, 0 success, else the exit code."""
    base = url.rstrip("/")
    if exit_code is None:
        return f"{base}/start"
    return base if exit_code == 0 else f"{base}/{exit_code}"


def host_of(url: str) -> str:
    return urllib.parse.urlsplit(url).hostname or ""


def should_notify(notify_on: str, exit_code: int) -> bool:
    return notify_on == "always" or exit_code != 0


def notify_body(
    summary: Mapping[str, Any] | None, job_dir: str | None, exit_code: int, error: str | None
) -> dict[str, Any]:
    """The webhook's JSON: the summary, or what is known when the run ended before one."""
    body: dict[str, Any] = (
        dict(summary) if summary else {"state": "aborted" if exit_code else "done", "error": error}
    )
    body["job_dir"] = job_dir if job_dir is not None else body.get("job_dir")
    body["exit_code"] = exit_code
    return body


def _post(url: str, data: bytes, content_type: str, timeout: float) -> int:
    request = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": content_type, "User-Agent": _AGENT}
    )
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return int(answer.status)


def _failure(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__


async def ping(url: str, exit_code: int | None, body: str = "") -> bool:
    """Ping the moment `exit_code` stands for (see ping_target); False, logged, if it failed."""
    target = ping_target(url, exit_code)
    moment = "start" if exit_code is None else ("success" if exit_code == 0 else "failure")
    reason = ""
    for attempt in range(1, PING_ATTEMPTS + 1):
        try:
            status = await in_own_thread(
                lambda: _post(
                    target, body.encode("utf-8")[:10_000], "text/plain; charset=utf-8", PING_TIMEOUT
                )
            )
        except Exception as exc:  # a ping never fails the job
            reason = _failure(exc)
        else:
            log.info(
                "watch.pinged",
                moment=moment,
                exit_code=exit_code,
                host=host_of(url),
                http_status=status,
            )
            return True
        if attempt < PING_ATTEMPTS:
            await asyncio.sleep(0.5)
    log.warning(
        "watch.ping_failed", moment=moment, exit_code=exit_code, host=host_of(url), error=reason
    )
    return False


async def notify(url: str, body: Mapping[str, Any]) -> bool:
    """POST `body` as JSON, retried; False, logged, if no attempt got a 2xx answer."""
    data = json.dumps(body).encode("utf-8")
    reason = ""
    delay = NOTIFY_BACKOFF
    for attempt in range(1, NOTIFY_ATTEMPTS + 1):
        try:
            status = await in_own_thread(
                lambda: _post(url, data, "application/json", NOTIFY_TIMEOUT)
            )
        except Exception as exc:  # a webhook never fails the job
            reason = _failure(exc)
        else:
            log.info("watch.notified", host=host_of(url), http_status=status, attempt=attempt)
            return True
        if attempt < NOTIFY_ATTEMPTS:
            await asyncio.sleep(delay)
            delay *= 2
    log.warning("watch.notify_failed", host=host_of(url), attempts=NOTIFY_ATTEMPTS, error=reason)
    return False
