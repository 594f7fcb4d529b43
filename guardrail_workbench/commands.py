"""The workbench's `guardrail` commands, registered in pyproject.toml's `guardrail.commands`
entry-point group: the product CLI finds them there and names no module of the workbench.

Each takes (argv, out, err) and returns the exit code; a problem with the caller's input or set-up
is `guardrail.cli.InputProblem` (one line on stderr, exit 2), as for the product's own commands.
This module stays light: the CLI imports it to list the commands in `guardrail --help`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TextIO

from guardrail.cli import InputProblem, one_line

AZURITE_HINT = "Azurite is not installed: run ./scripts/setup (or npm ci in the repository root)"


def _positive(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {value})")
    return value


def _demo_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="guardrail demo", description=demo.__doc__)
    parser.add_argument("--fast", action="store_true", help="a short timeline (under 30 seconds)")
    parser.add_argument("--out", default="out/demo", help="folder for findings, cards and the HTML report")
    parser.add_argument(
        "--accounts", type=_positive, default=50, help="accounts in the seeded tenant (at least 1)"
    )
    return parser


def demo(argv: Sequence[str], out: TextIO, err: TextIO) -> int:
    """run the whole guardrail on a live local tenant (no Azure needed)"""
    try:
        args = _demo_parser().parse_args(list(argv))
    except SystemExit as exit_:  # argparse printed its one-line usage error
        return int(exit_.code) if isinstance(exit_.code, int) else 2
    from guardrail_workbench import demo as run
    from guardrail_workbench.azurite import AzuriteError, AzuriteNotInstalledError

    try:
        return run.cmd_demo(args, out, err)
    except AzuriteNotInstalledError:
        raise InputProblem(AZURITE_HINT) from None
    except AzuriteError as error:
        raise InputProblem(f"Azurite did not start: {one_line(str(error))[:300]}") from None


def emulator(argv: Sequence[str], out: TextIO, err: TextIO) -> int:
    """run the local ARM emulator (HTTPS on 127.0.0.1); see --help"""
    from guardrail_workbench import emulator as local_arm

    return int(local_arm.main(list(argv)) or 0)
