"""``onehop serve module:app``: uvicorn's flags where they overlap, plus onehop's own."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from onehop._aio import LOOP_CHOICES, logs
from onehop._aio.envfile import EnvFileError
from onehop._aio.process import (
    HelpFormatter,
    add_http_arguments,
    add_log_arguments,
    add_tls_arguments,
    add_version,
    http_from_args,
    tls_from_args,
)
from onehop._aio.reload import ReloadUnavailable, check_available
from onehop.core import DEFAULT_LIMITS, Limits
from onehop.server.config import KEEP_ALIVE_HEADER_CHOICES, Config
from onehop.server.interfaces import INTERFACE_CHOICES, parse_header
from onehop.server.wsengine import WS_CHOICES


def _header(value: str) -> tuple[str, str]:
    try:
        return parse_header(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(subparsers: Any) -> None:
    """Add the ``serve`` subcommand to the top-level parser's *subparsers*."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "serve", help="run an ASGI application (HTTP/1.0, 1.1 and 2, lifespan, TLS)",
        description="Run an ASGI application with RFC 9112 §9 connection management. "
                    "Flags follow uvicorn's (the README's \"Moving from uvicorn\" lists "
                    "every difference).",
        formatter_class=HelpFormatter,
    )
    p.add_argument("app", help="the application, as module:attribute")
    add_version(p)
    g = p.add_argument_group("listening")
    g.add_argument("--host", default="127.0.0.1", help="address to bind")
    g.add_argument("--port", type=int, default=8000, help="TCP port (0: any free one)")
    g.add_argument("--uds", default=None, help="bind to this Unix domain socket")
    g.add_argument("--fd", type=int, default=None, help="serve on this inherited socket fd")
    g.add_argument("--backlog", type=int, default=2048, help="listen() backlog")
    add_tls_arguments(p)
    g = p.add_argument_group("application")
    g.add_argument("--app-dir", default=".", help="put this directory on sys.path first")
    g.add_argument("--factory", action="store_true", help="APP is a factory to call")
    g.add_argument("--interface", choices=INTERFACE_CHOICES, default="auto",
                   help="the app's interface; auto tells ASGI 3 from ASGI 2 as uvicorn does "
                        "(wsgi needs onehop[wsgi])")
    g.add_argument("--lifespan", choices=("auto", "on", "off"), default="auto",
                   help="run the ASGI lifespan protocol")
    g.add_argument("--env-file", metavar="FILE",
                   help="set KEY=VALUE lines as environment variables (not overriding) "
                        "before loading the app")
    g.add_argument("--root-path", default="", help="ASGI root_path for a sub-mounted app")
    g = p.add_argument_group("processes")
    g.add_argument("--workers", type=int,
                   default=int(os.environ.get("WEB_CONCURRENCY", "1") or 1),
                   help="supervised worker processes sharing the socket ($WEB_CONCURRENCY)")
    g.add_argument("--loop", choices=LOOP_CHOICES, default="auto",
                   help="event loop (auto: uvloop when installed)")
    g.add_argument("--reload", action="store_true",
                   help="restart the server when watched files change (needs onehop[reload])")
    g.add_argument("--reload-dir", action="append", default=[], metavar="DIR",
                   help="directory to watch (repeatable; default: the working directory)")
    g.add_argument("--reload-include", action="append", default=[], metavar="GLOB",
                   help="also watch files matching this (default: *.py)")
    g.add_argument("--reload-exclude", action="append", default=[], metavar="GLOB",
                   help="ignore files matching this (default: .*, .py[cod], .sw.*, ~*)")
    g.add_argument("--reload-delay", type=float, default=0.25, metavar="SECONDS",
                   help="quiet time after a change before the restart")
    g.add_argument("--limit-max-requests", type=int, default=None,
                   help="stop a process after this many requests (workers are restarted)")
    g.add_argument("--limit-max-requests-jitter", type=int, default=0, metavar="N",
                   help="add 0..N (random, per process) to --limit-max-requests")
    g.add_argument("--timeout-graceful-shutdown", type=float, default=30.0,
                   help="seconds in-flight requests and WebSockets get on SIGTERM before "
                        "they are cut (0: no limit)")
    add_log_arguments(p)
    g = p.add_argument_group("HTTP")
    g.add_argument("--timeout-keep-alive", type=float, default=5.0,
                   help="idle seconds before a keep-alive connection is closed (and announced)")
    g.add_argument("--limit-concurrency", type=int, default=None,
                   help="answer 503 beyond this many connections or tasks")
    g.add_argument("--proxy-headers", action=argparse.BooleanOptionalAction, default=True,
                   help="take the client address and scheme from X-Forwarded-For/-Proto "
                        "sent by --forwarded-allow-ips peers")
    g.add_argument("--forwarded-allow-ips",
                   default=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1"),
                   help="comma-separated addresses trusted for X-Forwarded-*, or * "
                        "($FORWARDED_ALLOW_IPS)")
    g.add_argument("--server-header", action=argparse.BooleanOptionalAction, default=True,
                   help="send Server: onehop")
    g.add_argument("--date-header", action=argparse.BooleanOptionalAction, default=True,
                   help="send Date")
    g.add_argument("--header", action="append", type=_header, default=[], dest="headers",
                   metavar="NAME:VALUE", help="add this field to every response (repeatable)")
    # onehop's own
    g = p.add_argument_group("onehop's own")
    g.add_argument("--keep-alive", action=argparse.BooleanOptionalAction, default=True,
                   help="persist connections at all (RFC 9112 §9.3)")
    g.add_argument("--http10-keep-alive", action=argparse.BooleanOptionalAction, default=True,
                   help="honour Connection: keep-alive from HTTP/1.0 clients")
    g.add_argument("--keep-alive-header", choices=KEEP_ALIVE_HEADER_CHOICES, default="http10",
                   help="when to send Keep-Alive: timeout=N, max=M")
    g.add_argument("--max-requests-per-connection", type=int, default=1000,
                   help="the last response on a connection carries close")
    g.add_argument("--header-timeout", type=float, default=10.0,
                   help="seconds a started request head may take (answered 408)")
    g.add_argument("--body-timeout", type=float, default=30.0,
                   help="seconds to wait for the next piece of a request body the app is "
                        "reading (408, or the connection is cut); 0 disables")
    g.add_argument("--linger-timeout", type=float, default=2.0,
                   help="seconds to read and discard after closing early (RFC 9112 §9.6)")
    g.add_argument("--max-head-size", type=int, default=DEFAULT_LIMITS.max_head_size,
                   help="request head bytes (431 past it)")
    g.add_argument("--max-line-size", type=int, default=DEFAULT_LIMITS.max_line_size,
                   help="request-line bytes (414 past it)")
    g.add_argument("--max-fields", type=int, default=DEFAULT_LIMITS.max_fields,
                   help="header fields (431 past it)")
    g.add_argument("--max-body-size", type=int, default=None,
                   help="request body bytes (413 past it; default: no limit)")
    g.add_argument("--ws", choices=WS_CHOICES, default="auto",
                   help="WebSocket engine: auto (websockets, else wsproto), none, websockets, "
                        "wsproto")
    g.add_argument("--ws-max-size", type=int, default=16 * 1024 * 1024,
                   help="largest WebSocket message accepted, in bytes (else close 1009)")
    g.add_argument("--ws-ping-interval", type=float, default=20.0,
                   help="seconds between keep-alive pings (0 disables)")
    g.add_argument("--ws-ping-timeout", type=float, default=20.0,
                   help="seconds a ping may wait for its pong (else close 1011)")
    g.add_argument("--ws-per-message-deflate", action=argparse.BooleanOptionalAction,
                   default=True, help="offer permessage-deflate compression (RFC 7692)")
    g.add_argument("--connect-to-app", action="store_true",
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
        timeout_graceful_shutdown=args.timeout_graceful_shutdown or None,
        root_path=args.root_path,
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
        ssl_keyfile=args.ssl_keyfile, ssl_certfile=args.ssl_certfile,
        ssl_keyfile_password=args.ssl_keyfile_password, ssl_version=args.ssl_version,
        ssl_cert_reqs=args.ssl_cert_reqs, ssl_ca_certs=args.ssl_ca_certs,
        ssl_ciphers=args.ssl_ciphers, interface=args.interface, headers=list(args.headers),
        limit_max_requests_jitter=args.limit_max_requests_jitter, env_file=args.env_file,
        log_config=args.log_config, use_colors=args.use_colors, reload=args.reload,
        reload_dirs=list(args.reload_dir), reload_includes=list(args.reload_include),
        reload_excludes=list(args.reload_exclude), reload_delay=args.reload_delay,
        **_http_options(args),
    )


def _http_options(args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`Config` keywords of ``--http`` and the ``--h2-*`` flags given."""
    out: dict[str, Any] = {}
    http = http_from_args(args)
    if http is not None:
        out["http"] = http
    for name in ("max_concurrent_streams", "max_header_list_size", "initial_window_size"):
        value = getattr(args, f"h2_{name}")
        if value is not None:
            out[f"h2_{name}"] = value
    return out


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM; return the exit status: 2 for a bad option (one line
    naming it: a TLS file, the log config, the env file, --reload without watchfiles),
    3 when the server cannot listen or start."""
    try:
        config = config_from_args(args)
        tls = tls_from_args(args)
        if tls is not None:
            tls.context()  # (fail here, in one line; each process builds its own)
        if config.reload:
            check_available()
        logs.configure(config.log_settings())
    except (ValueError, ReloadUnavailable) as exc:  # (TLSConfigError, LogConfigError too)
        print(f"onehop serve: {exc}", file=sys.stderr)
        return 2
    from onehop.server.run import run as run_server

    try:
        return run_server(config)
    except EnvFileError as exc:
        print(f"onehop serve: {exc}", file=sys.stderr)
        return 2
    except (OSError, OverflowError) as exc:  # bind failures
        print(f"onehop serve: cannot listen: {exc}", file=sys.stderr)
        return 3

