"""The ``onehop probe`` subcommand: ``probe server URL`` and ``probe proxy HOST:PORT``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from onehop.probe import report
from onehop.probe.checks import PROXY_CHECKS, SERVER_CHECKS, Check, Result, ServerTarget


def register(subparsers: Any) -> None:
    """Attach ``probe`` with its ``server`` and ``proxy`` sub-subcommands to *subparsers*."""
    probe = subparsers.add_parser(
        "probe", help="check a server or proxy against the Connection rules (RFC 9112 §9)"
    )
    kinds = probe.add_subparsers(dest="probe_kind", metavar="KIND", required=True)
    server = kinds.add_parser("server", help="run the origin-server checks against URL")
    server.add_argument("url", metavar="URL")
    proxy = kinds.add_parser("proxy", help="run the intermediary checks against HOST:PORT")
    proxy.add_argument("address", metavar="HOST:PORT")
    proxy.add_argument(
        "--origin-port",
        type=int,
        required=True,
        metavar="N",
        help="loopback port for the probe's recording origin (the proxy must forward there)",
    )
    for sub in (server, proxy):
        sub.add_argument("--json", type=Path, metavar="FILE", help="also write results as JSON")
        sub.add_argument("--markdown", action="store_true", help="print a Markdown table")
        sub.add_argument("--timeout", type=float, default=5.0, help="per-read timeout (s)")
        sub.add_argument(
            "--idle-limit", type=float, default=5.0, help="longest idle-timeout wait (s)"
        )
        sub.add_argument("--only", action="append", metavar="ID", help="run only these checks")
        sub.set_defaults(func=run)


def _select(checks: Sequence[Check], only: list[str] | None) -> list[Check]:
    return [c for c in checks if not only or c.id in only]


def run_server(
    url: str,
    timeout: float = 5.0,
    idle_limit: float = 5.0,
    only: list[str] | None = None,
    progress: bool = True,
) -> list[Result]:
    """Run the origin-server checks against *url* and return the results."""
    target = ServerTarget.from_url(url, timeout=timeout, idle_limit=idle_limit)
    return report.run_all(_select(SERVER_CHECKS, only), target, sys.stderr if progress else None)


def run_proxy(
    address: str,
    origin_port: int,
    timeout: float = 5.0,
    only: list[str] | None = None,
    progress: bool = True,
) -> list[Result]:
    """Start the recording origin on *origin_port* and run the proxy checks via *address*."""
    from onehop.probe.origin import RecordingOrigin
    from onehop.probe.proxy_checks import ProxyTarget

    host, _, port = address.rpartition(":")
    with RecordingOrigin(origin_port) as origin:
        target = ProxyTarget(host or "127.0.0.1", int(port), origin, timeout)
        return report.run_all(_select(PROXY_CHECKS, only), target, sys.stderr if progress else None)


def run(args: argparse.Namespace) -> int:
    """Entry point for ``onehop probe``; returns 1 if any check failed, 2 on bad usage."""
    try:
        if args.probe_kind == "server":
            name = args.url
            results = run_server(args.url, args.timeout, args.idle_limit, args.only)
        else:
            name = args.address
            results = run_proxy(args.address, args.origin_port, args.timeout, args.only)
    except (ValueError, OSError) as exc:
        print(f"onehop probe: {exc}", file=sys.stderr)
        return 2
    if args.markdown:
        print(report.markdown(results, f"{args.probe_kind} {name}"))
    else:
        print(report.table(results))
    if args.json:
        report.write_json(results, args.json, name, args.probe_kind)
    return report.exit_status(results)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``probe ...`` without the top-level CLI (for tests and ``python -m``)."""
    parser = argparse.ArgumentParser(prog="onehop")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result
