"""``onehop get``: fetch URLs in order through one pool and print the bodies.

With ``-v`` it prints each request and response head on stderr, whether each
request went over a new or a reused connection, and why a connection closed,
so the keep-alive behaviour of a server can be watched (RFC 9112 §9.3).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any, TextIO

from onehop.client.client import Client, Response, Timeout
from onehop.client.errors import ClientError
from onehop.errors import OnehopError


def register(subparsers: Any) -> None:
    """Add the ``get`` subcommand to the top-level parser's *subparsers*."""
    parser = subparsers.add_parser(
        "get",
        help="fetch URLs over one keep-alive pool (curl-like)",
        description="Fetch each URL in order through one connection pool; print the bodies.",
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``get`` options (shared by :func:`register` and :func:`main`)."""
    parser.add_argument("urls", nargs="+", metavar="URL")
    parser.add_argument("-X", "--request", dest="method", default=None, help="method (GET)")
    parser.add_argument("-d", "--data", default=None, help="request body (implies POST)")
    parser.add_argument("-H", "--header", action="append", default=[], metavar="FIELD",
                        help="'Name: value' to send; repeatable")
    parser.add_argument("-0", "--no-keepalive", action="store_true",
                        help="send Connection: close (no reuse)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="print heads and connection reuse on stderr")
    parser.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                        help="pause between requests")
    parser.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS")
    parser.add_argument("-k", "--insecure", action="store_true",
                        help="do not verify TLS certificates")


def main(argv: list[str] | None = None) -> int:
    """Run ``get`` without the top-level ``onehop`` parser (tests, ``python -m``)."""
    parser = argparse.ArgumentParser(prog="onehop get")
    add_arguments(parser)
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Execute the parsed ``get`` command; return the exit status."""
    try:
        headers = [_field(h) for h in args.header]
    except ValueError as exc:
        print(f"onehop get: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_fetch_all(args, headers, sys.stdout.buffer, sys.stderr))
    except KeyboardInterrupt:
        return 130


def _field(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise ValueError(f"bad header {text!r}: expected 'Name: value'")
    return name.strip(), value.strip()


async def _fetch_all(
    args: argparse.Namespace, headers: list[tuple[str, str]], out: Any, err: TextIO
) -> int:
    verbose: bool = args.verbose

    def trace(line: str) -> None:
        if verbose:
            print(f"* {line}", file=err, flush=True)

    method = args.method or ("POST" if args.data is not None else "GET")
    body = args.data.encode() if args.data is not None else None
    status = 0
    async with Client(
        headers=[("User-Agent", "onehop")],
        timeout=Timeout.of(args.timeout),
        keep_alive=not args.no_keepalive,
        verify=not args.insecure,
        trace=trace,
    ) as client:
        for i, url in enumerate(args.urls):
            if i and args.wait > 0:
                await asyncio.sleep(args.wait)
            try:
                response = await client.request(method, url, headers=headers, content=body)
            except (OnehopError, ClientError) as exc:
                text = str(exc)
                if text.startswith(f"{method} {url}: "):  # the client's own messages say it
                    text = text[len(method) + len(url) + 3:]
                print(f"onehop get: {method} {url}: {type(exc).__name__}: {text}", file=err)
                status = 1
                continue
            if verbose:
                _print_head(response, err)
            out.write(response.content)
            out.flush()
            if verbose and response.close_reason:
                trace(f"connection #{response.connection_id} closed: {response.close_reason}")
    return status


def _print_head(response: Response, err: TextIO) -> None:
    print(f"< HTTP/{response.http_version} {response.status_code} {response.reason}", file=err)
    for name, value in response.headers:
        print(f"< {name.decode('latin-1')}: {value.decode('latin-1')}", file=err)
    for name, value in response.connection.fields:
        print(f"< {name.decode('latin-1')}: {value.decode('latin-1')}  (hop-by-hop)", file=err)
    print("<", file=err, flush=True)
