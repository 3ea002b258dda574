"""Start and stop a simulated appliance inside the running event loop."""

from __future__ import annotations

import ssl
import time
from types import TracebackType

from aiohttp import web

from reanalyzer.simulator.app import Appliance, Sleep, build_app
from reanalyzer.simulator.config import SimulatorConfig
from reanalyzer.simulator.faults import Clock
from reanalyzer.simulator.requestlog import RequestLog
from reanalyzer.simulator.world import World


class RunningSimulator:
    """A simulator serving on `url`; `world` and `log` show what it was asked to do."""

    def __init__(self, runner: web.AppRunner, appliance: Appliance, url: str) -> None:
        self._runner = runner
        self.appliance = appliance
        self.url = url
        self.world = appliance.world
        self.log = appliance.log
        self.config = appliance.config

    def __repr__(self) -> str:
        return f"<RunningSimulator {self.url} {self.log!r}>"

    async def aclose(self) -> None:
        """Stop serving and close the request log file."""
        await self._runner.cleanup()
        self.log.close()

    async def __aenter__(self) -> RunningSimulator:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def make_world(config: SimulatorConfig) -> World:
    """The world `config` describes: its file if it names one, else generated from the seed."""
    if config.world_file is not None:
        return World.load(config.world_file)
    return World.generate(
        config.samples,
        seed=config.seed,
        share_absent=config.share_absent,
        share_extracted=config.share_extracted,
        share_queued=config.share_queued,
    )


async def start_simulator(
    config: SimulatorConfig,
    *,
    world: World | None = None,
    clock: Clock = time.monotonic,
    sleep: Sleep | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> RunningSimulator:
    """Serve a simulated appliance until `aclose()`; use it as `async with await start_...`.

    `world` overrides the one the config describes (tests build small ones by hand); `clock`
    drives the rate limit and the log's times, and `sleep` the latency, so tests need not wait.
    With `ssl_context` it serves HTTPS, as an appliance with its own certificate does.
    """
    appliance = Appliance(
        config,
        world if world is not None else make_world(config),
        RequestLog(config.request_log_file, keep=config.keep_request_log),
        clock,
        sleep,
    )
    # No access log: one line per request would cost more than answering it.
    runner = web.AppRunner(build_app(appliance), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.host, config.port, ssl_context=ssl_context)
        await site.start()
    except BaseException:
        await runner.cleanup()
        appliance.log.close()
        raise
    host, port = runner.addresses[0][:2]
    scheme = "https" if ssl_context is not None else "http"
    return RunningSimulator(runner, appliance, f"{scheme}://{_url_host(host)}:{port}")


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
