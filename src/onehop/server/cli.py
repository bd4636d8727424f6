"""``onehop serve module:app``: uvicorn's flags where they overlap, plus onehop's own."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from onehop._aio import LOOP_CHOICES
from onehop._aio.serving import add_http_arguments
from onehop.core import DEFAULT_LIMITS, Limits
from onehop.server.config import KEEP_ALIVE_HEADER_CHOICES, Config
from onehop.server.wsengine import WS_CHOICES

_LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def register(subparsers: Any) -> None:
    """Add the ``serve`` subcommand to the top-level parser's *subparsers*."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "serve", help="run an ASGI application (HTTP/1.0, 1.1 and 2, lifespan)",
        description="Run an ASGI 3 application with RFC 9112 §9 connection management.",
    )
    p.add_argument("app", help="the application, as module:attribute")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--uds", default=None, help="bind to this Unix domain socket")
    p.add_argument("--fd", type=int, default=None, help="serve on this inherited socket fd")
    p.add_argument("--app-dir", default=".", help="put this directory on sys.path first")
    p.add_argument("--factory", action="store_true", help="APP is a factory to call")
    p.add_argument("--workers", type=int, default=1, help="supervised worker processes")
    p.add_argument("--loop", choices=LOOP_CHOICES, default="auto")
    p.add_argument("--lifespan", choices=("auto", "on", "off"), default="auto")
    p.add_argument("--log-level", choices=_LOG_LEVELS, default="info")
    p.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--timeout-keep-alive", type=float, default=5.0,
                   help="idle seconds before a keep-alive connection is closed (and announced)")
    p.add_argument("--limit-max-requests", type=int, default=None,
                   help="stop the server after this many requests")
    p.add_argument("--limit-concurrency", type=int, default=None,
                   help="answer 503 beyond this many connections or tasks")
    p.add_argument("--timeout-graceful-shutdown", type=float, default=None)
    p.add_argument("--root-path", default="")
    p.add_argument("--proxy-headers", action=argparse.BooleanOptionalAction, default=False)
    p.add_argument("--forwarded-allow-ips", default="127.0.0.1",
                   help="comma-separated addresses trusted for X-Forwarded-*, or *")
    p.add_argument("--server-header", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--date-header", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--backlog", type=int, default=2048)
    # onehop's own
    p.add_argument("--keep-alive", action=argparse.BooleanOptionalAction, default=True,
                   help="persist connections at all (RFC 9112 §9.3)")
    p.add_argument("--http10-keep-alive", action=argparse.BooleanOptionalAction, default=True,
                   help="honour Connection: keep-alive from HTTP/1.0 clients")
    p.add_argument("--keep-alive-header", choices=KEEP_ALIVE_HEADER_CHOICES, default="http10",
                   help="when to send Keep-Alive: timeout=N, max=M")
    p.add_argument("--max-requests-per-connection", type=int, default=1000)
    p.add_argument("--header-timeout", type=float, default=10.0,
                   help="seconds a started request head may take (answered 408)")
    p.add_argument("--body-timeout", type=float, default=30.0,
                   help="seconds to wait for the next piece of a request body the app is "
                        "reading (408, or the connection is cut); 0 disables")
    p.add_argument("--linger-timeout", type=float, default=2.0)
    p.add_argument("--max-head-size", type=int, default=DEFAULT_LIMITS.max_head_size)
    p.add_argument("--max-line-size", type=int, default=DEFAULT_LIMITS.max_line_size)
    p.add_argument("--max-fields", type=int, default=DEFAULT_LIMITS.max_fields)
    p.add_argument("--max-body-size", type=int, default=None)
    p.add_argument("--ws", choices=WS_CHOICES, default="auto",
                   help="WebSocket engine: auto (websockets, else wsproto), none, websockets, "
                        "wsproto")
    p.add_argument("--ws-max-size", type=int, default=16 * 1024 * 1024,
                   help="largest WebSocket message accepted, in bytes (else close 1009)")
    p.add_argument("--ws-ping-interval", type=float, default=20.0,
                   help="seconds between keep-alive pings (0 disables)")
    p.add_argument("--ws-ping-timeout", type=float, default=20.0,
                   help="seconds a ping may wait for its pong (else close 1011)")
    p.add_argument("--ws-per-message-deflate", action=argparse.BooleanOptionalAction,
                   default=True, help="offer permessage-deflate compression (RFC 7692)")
    p.add_argument("--connect-to-app", action="store_true",
                   help="pass CONNECT requests to the app (default: answer 501 and close)")
    add_http_arguments(p)
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> Config:
    """Build the :class:`Config` the parsed arguments describe."""
    limits = Limits(
        max_head_size=args.max_head_size, max_line_size=args.max_line_size,
        max_fields=args.max_fields, max_body_size=args.max_body_size,
    )
    return Config(
        app=args.app, host=args.host, port=args.port, uds=args.uds, fd=args.fd,
        app_dir=args.app_dir, factory=args.factory, workers=args.workers, loop=args.loop,
        lifespan=args.lifespan, log_level=args.log_level, access_log=args.access_log,
        timeout_keep_alive=args.timeout_keep_alive, limit_max_requests=args.limit_max_requests,
        limit_concurrency=args.limit_concurrency,
        timeout_graceful_shutdown=args.timeout_graceful_shutdown, root_path=args.root_path,
        proxy_headers=args.proxy_headers,
        forwarded_allow_ips=[ip.strip() for ip in args.forwarded_allow_ips.split(",")],
        server_header=args.server_header, date_header=args.date_header, backlog=args.backlog,
        keep_alive=args.keep_alive, http10_keep_alive=args.http10_keep_alive,
        keep_alive_header=args.keep_alive_header,
        max_requests_per_connection=args.max_requests_per_connection,
        header_timeout=args.header_timeout,
        body_timeout=args.body_timeout if args.body_timeout > 0 else None,
        linger_timeout=args.linger_timeout, limits=limits, connect_to_app=args.connect_to_app,
        ws=args.ws, ws_max_size=args.ws_max_size,
        ws_ping_interval=args.ws_ping_interval or None,
        ws_ping_timeout=args.ws_ping_timeout or None,
        ws_per_message_deflate=args.ws_per_message_deflate,
        **_http_options(args),
    )


def _http_options(args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`Config` keywords of ``--http`` and the ``--h2-*`` flags given."""
    out: dict[str, Any] = {}
    if args.http is not None:
        out["http"] = args.http
    for name in ("max_concurrent_streams", "max_header_list_size", "initial_window_size"):
        value = getattr(args, f"h2_{name}")
        if value is not None:
            out[f"h2_{name}"] = value
    return out


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM; return the exit status."""
    level = logging.DEBUG if args.log_level == "trace" else getattr(logging,
                                                                     args.log_level.upper())
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s")
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"onehop serve: {exc}", file=sys.stderr)
        return 2
    from onehop.server.run import run as run_server

    try:
        return run_server(config)
    except (OSError, OverflowError) as exc:  # bind failures
        print(f"onehop serve: cannot listen: {exc}", file=sys.stderr)
        return 3
