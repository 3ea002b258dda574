"""``reanalyzer simulate``: the simulated appliance, served on 127.0.0.1 (reanalyzer/simulator/,
which shares no code with the runner, has the options and the serving)."""

from __future__ import annotations

import argparse


def configure_parser(parser: argparse.ArgumentParser) -> None:
    from reanalyzer.simulator import cli

    cli.configure_parser(parser)


def run(args: argparse.Namespace) -> int:
    from reanalyzer.simulator import cli

    return cli.run(args)
