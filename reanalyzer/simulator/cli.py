"""`reanalyzer simulate`: serve a simulated appliance until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path

from reanalyzer.simulator.config import AbsentMode, ExtractedMode, SimulatorConfig, WrongShape
from reanalyzer.simulator.inputs import write_input
from reanalyzer.simulator.world import World

TOKEN_ENV = "REANALYZER_TOKEN"
URL_ENV = "REANALYZER_URL"


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the simulator's options to `parser`."""
    defaults = SimulatorConfig(token="")
    net = parser.add_argument_group("address")
    net.add_argument("--host", default=defaults.host, help="address to listen on")
    net.add_argument("--port", type=int, default=defaults.port, help="port; 0 picks a free one")

    world = parser.add_argument_group("world")
    world.add_argument(
        "--samples",
        type=int,
        default=defaults.samples,
        help="samples to generate (absent ones included)",
    )
    world.add_argument(
        "--seed",
        type=int,
        default=defaults.seed,
        help="seed of the generated world and of --write-input",
    )
    world.add_argument(
        "--share-absent",
        type=float,
        default=defaults.share_absent,
        help="share of generated samples the appliance does not hold",
    )
    world.add_argument(
        "--share-extracted",
        type=float,
        default=defaults.share_extracted,
        help="share of generated samples that are extracted (405)",
    )
    world.add_argument(
        "--share-queued",
        type=float,
        default=defaults.share_queued,
        help="share of generated samples already queued at start (200)",
    )
    world.add_argument(
        "--world",
        type=Path,
        metavar="FILE",
        help="load the world from this JSON-lines file instead of generating it",
    )
    world.add_argument(
        "--save-world",
        type=Path,
        metavar="FILE",
        help="write the world to this JSON-lines file before serving",
    )
    world.add_argument(
        "--write-input",
        type=Path,
        metavar="FILE",
        help="write an input hash list drawn from the world before serving",
    )
    world.add_argument(
        "--lines",
        type=int,
        default=10_000,
        help="lines for --write-input (junk and duplicates included)",
    )

    faults = parser.add_argument_group("faults")
    faults.add_argument(
        "--latency-ms", type=float, default=0.0, help="fixed delay before each answer"
    )
    faults.add_argument(
        "--latency-jitter-ms",
        type=float,
        default=0.0,
        help="uniform random extra delay, up to this",
    )
    faults.add_argument(
        "--rate-limit",
        type=float,
        metavar="PER_SECOND",
        help="answer 429 with Retry-After above this many requests/s",
    )
    faults.add_argument(
        "--rate-limit-schedule",
        type=_schedule,
        default=(),
        metavar="S:R,...",
        help="a rate limit that changes: R requests/s from S seconds after start, e.g. 0:20,20:40",
    )
    faults.add_argument(
        "--error-rate",
        type=float,
        default=0.0,
        help="share of answers replaced by an HTML 500/502/503/504",
    )
    faults.add_argument(
        "--drop-rate",
        type=float,
        default=0.0,
        help="share of connections cut after the work was done",
    )
    faults.add_argument(
        "--wrong-shape-rate",
        type=float,
        default=defaults.wrong_shape_rate,
        metavar="SHARE",
        help="share of 2xx bulk and status answers whose items cannot be attributed to the "
        "hashes sent, after the work was done (the samples are queued)",
    )
    faults.add_argument(
        "--wrong-shape",
        choices=[s.value for s in WrongShape],
        default=defaults.wrong_shape.value,
        help="how those items are wrong: not objects, without detail (status: without "
        "hash_value), a detail naming no hash of the type sent, codes as strings (status: "
        "a status that is no string); mixed draws one per answer",
    )
    faults.add_argument(
        "--proxy-page-rate",
        type=float,
        default=defaults.proxy_page_rate,
        metavar="SHARE",
        help="share of requests answered with a proxy's HTML sign-in page and 200, before "
        "reaching the appliance (nothing is done)",
    )
    faults.add_argument(
        "--big-body-rate",
        type=float,
        default=defaults.big_body_rate,
        metavar="SHARE",
        help="share of answers padded with whitespace to --big-body-mb and streamed, after "
        "the work was done (the JSON is the real answer)",
    )
    faults.add_argument(
        "--big-body-mb",
        type=float,
        default=defaults.big_body_mb,
        metavar="MB",
        help="size of those answers, in MB of 10^6 bytes",
    )
    faults.add_argument(
        "--max-bulk",
        type=int,
        metavar="N",
        help="answer 413 to bulk requests of more than N hashes",
    )
    faults.add_argument(
        "--absent-mode",
        choices=[m.value for m in AbsentMode],
        default=defaults.absent_mode.value,
        help="absent samples: omitted from bulk results, or items with code 404",
    )
    faults.add_argument(
        "--extracted-mode",
        choices=[m.value for m in ExtractedMode],
        default=defaults.extracted_mode.value,
        help="extracted samples: a 405 item, or the whole request answered 405",
    )
    faults.add_argument(
        "--refuse",
        action="store_true",
        help="an appliance type that answers every reanalysis with 405",
    )
    faults.add_argument(
        "--cloud-disconnected",
        action="store_true",
        help="not connected to Spectra Intelligence: `cloud` refused per analysis",
    )
    faults.add_argument(
        "--fault-seed", type=int, default=0, help="seed of the latency jitter, 5xx and drop dice"
    )
    parser.add_argument(
        "--request-log",
        type=Path,
        metavar="FILE",
        help="append one JSON line per request to this file",
    )


def _schedule(text: str) -> tuple[tuple[float, float], ...]:
    """`0:20,20:40` as ((0.0, 20.0), (20.0, 40.0)); checked further by SimulatorConfig."""
    try:
        pairs = [part.split(":") for part in text.split(",") if part.strip()]
        return tuple((float(at), float(rate)) for at, rate in pairs)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected SECONDS:RATE pairs, comma-separated, e.g. 0:20,20:40"
        ) from None


def config_from_args(args: argparse.Namespace, token: str) -> SimulatorConfig:
    """The configuration the parsed options describe."""
    return SimulatorConfig(
        token=token,
        host=args.host,
        port=args.port,
        samples=args.samples,
        seed=args.seed,
        share_absent=args.share_absent,
        share_extracted=args.share_extracted,
        share_queued=args.share_queued,
        world_file=args.world,
        latency_ms=args.latency_ms,
        latency_jitter_ms=args.latency_jitter_ms,
        rate_limit=args.rate_limit,
        rate_limit_schedule=args.rate_limit_schedule,
        error_rate=args.error_rate,
        drop_rate=args.drop_rate,
        wrong_shape_rate=args.wrong_shape_rate,
        wrong_shape=WrongShape(args.wrong_shape),
        proxy_page_rate=args.proxy_page_rate,
        big_body_rate=args.big_body_rate,
        big_body_mb=args.big_body_mb,
        max_bulk=args.max_bulk,
        absent_mode=AbsentMode(args.absent_mode),
        extracted_mode=ExtractedMode(args.extracted_mode),
        appliance_refuses=args.refuse,
        cloud_connected=not args.cloud_disconnected,
        fault_seed=args.fault_seed,
        request_log_file=args.request_log,
    )


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM; 0 then, 2 without a token or with bad settings."""
    token = os.environ.get(TOKEN_ENV, "")
    if not token:
        print(
            f"reanalyzer simulate: set {TOKEN_ENV} to the token clients must send", file=sys.stderr
        )
        return 2
    from reanalyzer.simulator.server import make_world  # aiohttp.web: only when serving

    try:
        config = config_from_args(args, token)
        world = make_world(config)
    except (OSError, ValueError) as exc:
        print(f"reanalyzer simulate: {exc}", file=sys.stderr)
        return 2
    if args.save_world:
        world.save(args.save_world)
    if args.write_input:
        counts = write_input(args.write_input, world, args.lines, seed=config.seed)
        print(
            f"wrote {counts.lines:,} lines to {args.write_input}: {counts.distinct:,} distinct "
            f"hashes ({counts.queueable:,} to queue, {counts.already_queued:,} already queued, "
            f"{counts.extracted:,} extracted, {counts.absent:,} absent), "
            f"{counts.duplicates:,} repeats, {counts.invalid:,} invalid, "
            f"{counts.blank + counts.comments:,} blank or comment",
            file=sys.stderr,
        )
    # The world lives as long as the process: out of the collector's sight, or every full
    # collection walks millions of samples and stalls every answer meanwhile (bench.py saw the
    # bare loop swing between 150k and 225k hashes/s at a million samples).
    gc.freeze()
    try:
        asyncio.run(_serve(replace(config, world_file=None), world))
    except OSError as exc:  # the port is taken, or the address is not ours
        print(
            f"reanalyzer simulate: cannot listen on {config.host}:{config.port}: "
            f"{exc.strerror or exc}",
            file=sys.stderr,
        )
        return 2
    return 0


async def _serve(config: SimulatorConfig, world: World) -> None:
    from reanalyzer.simulator.server import start_simulator

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    simulator = await start_simulator(config, world=world)
    try:
        print(f"simulator listening on {simulator.url} ({URL_ENV}={simulator.url})", flush=True)
        await stop.wait()
    finally:
        await simulator.aclose()
