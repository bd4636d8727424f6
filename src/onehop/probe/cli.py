"""The ``onehop probe`` subcommand: ``server URL``, ``proxy HOST:PORT``, ``client -- CMD``
and ``matrix CONFIG``."""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from onehop.probe import matrix, report
from onehop.probe.checks import (
    CLIENT_CHECKS,
    PROXY_CHECKS,
    SERVER_CHECKS,
    Check,
    Result,
)
from onehop.probe.server_target import ServerTarget


def register(subparsers: Any) -> None:
    """Attach ``probe`` with its ``server``, ``proxy``, ``client`` and ``matrix`` kinds."""
    probe = subparsers.add_parser(
        "probe", help="check a server, proxy or client against the Connection rules (RFC 9112 §9)"
    )
    kinds = probe.add_subparsers(dest="probe_kind", metavar="KIND", required=True)
    server = kinds.add_parser("server", help="run the origin-server checks against URL")
    server.add_argument("url", metavar="URL")
    server.add_argument(
        "--no-content-path", metavar="PATH", help="a path the server answers with 204"
    )
    server.add_argument("--http2", action="store_true",
                        help="run the HTTP/2 checks (http:// by prior knowledge, https:// by "
                             "ALPN h2): connection-specific fields, malformed requests")
    server.add_argument("--path", action="append", metavar="PATH",
                        help="with --http2: another path to fetch and judge (repeatable)")
    proxy = kinds.add_parser("proxy", help="run the intermediary checks against HOST:PORT")
    proxy.add_argument("address", metavar="HOST:PORT")
    proxy.add_argument(
        "--origin-port",
        type=int,
        required=True,
        metavar="N",
        help="loopback port for the probe's recording origin (the proxy must forward there)",
    )
    client = kinds.add_parser(
        "client", help="run a client command against a scripted server: client -- CMD {url}"
    )
    client.add_argument(
        "--command-timeout", type=float, default=20.0, help="kill the command after (s)"
    )
    client.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND {url}")
    mat = kinds.add_parser("matrix", help="run the targets in a TOML CONFIG, one column each")
    mat.add_argument("config", type=Path, metavar="CONFIG")
    mat.add_argument("--markdown", type=Path, metavar="FILE", help="write the table to FILE")
    mat.set_defaults(func=run_matrix_cli)
    for sub in (server, proxy, client):
        sub.add_argument("--json", type=Path, metavar="FILE", help="also write results as JSON")
        sub.add_argument("--markdown", action="store_true", help="print a Markdown table")
        sub.add_argument("--only", action="append", metavar="ID", help="run only these checks")
        sub.set_defaults(func=run)
    for sub in (server, proxy, mat):
        sub.add_argument("--timeout", type=float, default=5.0, help="per-read timeout (s)")
    for sub in (server, mat):
        sub.add_argument(
            "--idle-limit", type=float, default=5.0, help="longest idle-timeout wait (s)"
        )


def _select(checks: Sequence[Check], only: list[str] | None) -> list[Check]:
    return [c for c in checks if not only or c.id in only]


def run_server(
    url: str,
    timeout: float = 5.0,
    idle_limit: float = 5.0,
    only: list[str] | None = None,
    progress: bool = True,
    no_content_path: str | None = None,
) -> list[Result]:
    """Run the origin-server checks against *url* and return the results."""
    target = ServerTarget.from_url(url, timeout, idle_limit, no_content_path)
    return report.run_all(_select(SERVER_CHECKS, only), target, sys.stderr if progress else None)


def run_http2(
    url: str, paths: list[str] | None = None, timeout: float = 5.0,
    only: list[str] | None = None, progress: bool = True,
) -> list[Result]:
    """Run the HTTP/2 checks (:mod:`onehop.probe.h2checks`) against *url* and *paths*."""
    from onehop.probe.h2checks import H2_CHECKS, H2Target

    target = H2Target.from_url(url, paths, timeout)
    return report.run_all(_select(H2_CHECKS, only), target, sys.stderr if progress else None)


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


def run_client(
    command: Sequence[str],
    command_timeout: float = 20.0,
    only: list[str] | None = None,
    progress: bool = True,
) -> list[Result]:
    """Start the scripted server and run the client checks with *command* (``{url}``)."""
    from onehop.probe.client import ClientTarget, ScriptedServer

    argv = list(command[1:] if command and command[0] == "--" else command)
    if not argv:
        raise ValueError("no client command given (probe client -- COMMAND {url})")
    if not any("{url}" in arg for arg in argv):
        raise ValueError("the client command must contain {url}")
    with ScriptedServer() as server:
        target = ClientTarget(argv, server, command_timeout)
        return report.run_all(
            _select(CLIENT_CHECKS, only), target, sys.stderr if progress else None
        )


def run_target(
    t: matrix.Target, timeout: float = 5.0, idle_limit: float = 5.0, progress: bool = True
) -> list[Result]:
    """Run one matrix target by its kind."""
    if progress:
        print(f"== {t.label} ({t.kind})", file=sys.stderr, flush=True)
    spec = t.spec
    if t.kind == "server":
        return run_server(
            spec["url"],
            float(spec.get("timeout", timeout)),
            float(spec.get("idle-limit", idle_limit)),
            progress=progress,
            no_content_path=spec.get("no-content-path"),
        )
    if t.kind == "http2":
        return run_http2(spec["url"], list(spec.get("paths", [])),
                         float(spec.get("timeout", timeout)), progress=progress)
    if t.kind == "proxy":
        address, port = spec["address"], int(spec["origin-port"])
        return run_proxy(address, port, float(spec.get("timeout", timeout)), progress=progress)
    return run_client(spec["command"], float(spec.get("command-timeout", 20.0)), progress=progress)


def run_matrix_cli(args: argparse.Namespace) -> int:
    """Entry point for ``onehop probe matrix``; 1 if any check failed, 2 on a bad config."""
    try:
        targets, options = matrix.load(args.config)
    except (ValueError, OSError) as exc:
        print(f"onehop probe: {exc}", file=sys.stderr)
        return 2
    timeout = float(options.get("timeout", args.timeout))
    idle = float(options.get("idle-limit", args.idle_limit))
    try:
        results = matrix.run(targets, lambda t: run_target(t, timeout, idle))
    except (ValueError, OSError) as exc:
        print(f"onehop probe: {exc}", file=sys.stderr)
        return 2
    text = matrix.markdown(targets, results)
    if args.markdown:
        args.markdown.write_text(text)
    else:
        print(text)
    return max(report.exit_status(rs) for rs in results.values())


def reachable(host: str, port: int, timeout: float) -> str | None:
    """None if a TCP connection to *host*:*port* opens within *timeout*; else why not,
    in words (``connection refused``, ``no answer within 5.0 s``, ``unknown host``).

    Run before the checks, so a target that is down gives one line instead of a
    FAIL per check (issue 15): each check would only have re-discovered that.
    """
    try:
        with socket.create_connection((host, port), timeout):
            return None
    except ConnectionRefusedError:
        return "connection refused"
    except TimeoutError:
        return f"no answer within {timeout} s"
    except socket.gaierror as exc:
        return f"unknown host ({exc.strerror or exc})"
    except OSError as exc:
        return (exc.strerror or str(exc)).lower()


def run(args: argparse.Namespace) -> int:
    """Entry point for ``onehop probe``; returns 1 if any check failed, 2 on bad usage
    or when the server or proxy cannot be reached at all."""
    try:
        if args.probe_kind in ("server", "proxy"):
            where = (_server_address(args) if args.probe_kind == "server"
                     else _proxy_address(args.address))
            why = reachable(where.host, where.port, args.timeout)
            if why is not None:
                shown = args.url if args.probe_kind == "server" else args.address
                print(f"onehop probe: cannot connect to {shown}: {why}", file=sys.stderr)
                return 2
        if args.probe_kind == "server" and args.http2:
            name = args.url
            results = run_http2(args.url, args.path, args.timeout, args.only)
        elif args.probe_kind == "server":
            name = args.url
            results = run_server(
                args.url,
                args.timeout,
                args.idle_limit,
                args.only,
                no_content_path=args.no_content_path,
            )
        elif args.probe_kind == "proxy":
            name = args.address
            results = run_proxy(args.address, args.origin_port, args.timeout, args.only)
        else:
            command = [c for c in args.command]
            name = " ".join(command[1:] if command[:1] == ["--"] else command)
            results = run_client(command, args.command_timeout, args.only)
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


@dataclass(frozen=True)
class _Address:
    host: str
    port: int


def _server_address(args: argparse.Namespace) -> _Address | ServerTarget:
    """Where ``probe server`` connects (``--http2`` takes https:// URLs too)."""
    if args.http2:
        from onehop.probe.h2checks import H2Target

        t = H2Target.from_url(args.url)
        return _Address(t.host, t.port)
    return ServerTarget.from_url(args.url)


def _proxy_address(address: str) -> _Address:
    """HOST:PORT as ``run_proxy`` reads it (an empty host is loopback).

    Raises:
        ValueError: no port, or not a number.
    """
    host, _, port = address.rpartition(":")
    if not port.isdigit():
        raise ValueError(f"need HOST:PORT, got {address!r}")
    return _Address(host or "127.0.0.1", int(port))


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``probe ...`` without the top-level CLI (for tests and ``python -m``)."""
    parser = argparse.ArgumentParser(prog="onehop")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result
