"""A simulated Spectra Analyze appliance that speaks the reanalysis API, with faults on demand.

It shares no code with the rest of reanalyzer: it is a second, independent reading of the
API, so a misreading in either shows up as a failing test.

    config = SimulatorConfig(token="t", samples=10_000, rate_limit=50, error_rate=0.01)
    async with await start_simulator(config) as sim:
        counts = write_input(path, sim.world, lines=100_000)
        ...  # point the client at sim.url; then read sim.log and sim.world.times_queued()
"""

from typing import TYPE_CHECKING, Any

from reanalyzer.simulator.config import AbsentMode, ExtractedMode, SimulatorConfig
from reanalyzer.simulator.inputs import InputCounts, write_input
from reanalyzer.simulator.requestlog import Endpoint, Fault, RequestLog, RequestRecord, read_log
from reanalyzer.simulator.world import Sample, SampleKind, World

if TYPE_CHECKING:
    from reanalyzer.simulator.server import RunningSimulator, start_simulator


def __getattr__(name: str) -> Any:
    # The server brings aiohttp.web: imported when first used, so that the CLI's --help and a
    # finished job's resume do not pay for it.
    if name in ("RunningSimulator", "start_simulator"):
        from reanalyzer.simulator import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AbsentMode",
    "Endpoint",
    "ExtractedMode",
    "Fault",
    "InputCounts",
    "RequestLog",
    "RequestRecord",
    "RunningSimulator",
    "Sample",
    "SampleKind",
    "SimulatorConfig",
    "World",
    "read_log",
    "start_simulator",
    "write_input",
]
