"""The ``onehop`` command line: argv in, output and exit codes out.

Each role package owns its subcommand in a ``cli`` module exposing
``register(subparsers)``; this module only assembles them, so nothing imports
``cli`` and the role packages stay independent of each other.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from onehop._compiled import describe as build_description
from onehop._version import __version__

#: Modules that contribute a subcommand, in the order ``--help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "onehop.proxy.cli",
    "onehop.server.cli",
    "onehop.client.cli",
    "onehop.probe.cli",
)


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every role's subcommand attached."""
    parser = argparse.ArgumentParser(
        prog="onehop",
        description="HTTP/1.x connection management done right (RFC 9110 §7.6.1, RFC 9112 §9).",
    )
    parser.add_argument("--version", action="version",
                        version=f"onehop {__version__} ({build_description()})")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command named in *argv*; return the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        result: int = func(args)
    except KeyboardInterrupt:
        return 130
    return result
