"""``onehop proxy`` and ``onehop demo``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from typing import Any, Final

from onehop._aio import LOOP_CHOICES, logs, new_event_loop
from onehop._aio.logs import LogSettings
from onehop._aio.process import (
    HelpFormatter,
    add_http_arguments,
    add_log_arguments,
    add_tls_arguments,
    add_version,
    http2_from_args,
    http_from_args,
    tls_from_args,
)
from onehop._aio.sockets import bind_socket, describe
from onehop._aio.workers import run_workers
from onehop.proxy.config import (
    ConfigError,
    ProxyConfig,
    check_tls,
    load,
    parse_underscores,
    split_listen,
)
from onehop.proxy.forward import ForwardPolicy

log: Final = logging.getLogger("onehop.proxy")


def _port_or_any(value: str) -> int | None:
    if value == "*":
        return None
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port or '*', got {value!r}") from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"{port} is not a TCP port")
    return port


def register(subparsers: Any) -> None:
    """Attach ``proxy`` and ``demo``."""
    p = subparsers.add_parser(
        "proxy", help="reverse or forward proxy that strips hop-by-hop fields both ways",
        description="Reverse or forward HTTP/1.x proxy. Flags override --config (TOML; "
                    "docs/proxy.md).",
        formatter_class=HelpFormatter,
    )
    add_version(p)
    p.add_argument("--listen", metavar="HOST:PORT",
                   help="address to listen on (default: 127.0.0.1:8080, or the config's)")
    p.add_argument("--upstream", action="append", metavar="URL", default=[],
                   help="upstream http(s)://HOST[:PORT] (repeat for round-robin)")
    p.add_argument("--upstream-ca", metavar="FILE",
                   help="PEM CAs that https:// upstreams must chain to (default: the system's)")
    p.add_argument("--upstream-verify", action=argparse.BooleanOptionalAction, default=None,
                   help="verify https:// upstreams' certificates (default: on; "
                        "--no-upstream-verify is the explicit escape hatch)")
    p.add_argument("--forward", action="store_true",
                   help="forward proxy (absolute-form and CONNECT); see --allow")
    p.add_argument("--allow", action="append", metavar="HOST:PORT", default=[],
                   help="forward-proxy allow-list pattern (glob), e.g. '*.example.com:443'")
    p.add_argument("--connect-port", action="append", type=_port_or_any, default=[],
                   metavar="PORT", help="ports CONNECT may open (repeatable; '*' for any; "
                                        "default: 443)")
    p.add_argument("--config", metavar="FILE", help="TOML config; flags override it")
    p.add_argument("--check", action="store_true",
                   help="validate the config (and TLS files), warn about timeout orderings, "
                        "and exit: 0 OK, 1 warnings, 2 errors")
    p.add_argument("--underscores-in-headers", choices=("drop", "pass", "reject"),
                   help="request field names with '_': drop (default), pass, or reject with 400")
    p.add_argument("--workers", type=int, default=1,
                   help="supervised worker processes sharing the listening socket")
    p.add_argument("--limit-concurrency", type=int, metavar="N",
                   help="answer 503 past N client connections or requests in flight")
    p.add_argument("--loop", choices=LOOP_CHOICES, default="auto",
                   help="event loop (auto: uvloop when installed)")
    add_tls_arguments(p)
    add_log_arguments(p)
    add_http_arguments(p)
    p.set_defaults(func=run_proxy)
    d = subparsers.add_parser(
        "demo", help="an echo origin with the proxy in front, and curl commands to try",
        formatter_class=HelpFormatter,
    )
    d.add_argument("--listen", metavar="HOST:PORT", default="127.0.0.1:8080",
                   help="where the proxy listens")
    d.add_argument("--duration", type=float, metavar="SECONDS",
                   help="stop after this long (default: run until Ctrl-C)")
    d.set_defaults(func=run_demo)


def build_config(args: argparse.Namespace) -> ProxyConfig:
    """The config from ``--config`` with flags applied over it.

    Raises:
        ConfigError: naming the key or flag.
        OSError: the config file cannot be read.
    """
    cfg = load(args.config) if args.config else ProxyConfig()
    if args.listen:
        split_listen(args.listen, "--listen")
        cfg.listen = args.listen
    if args.upstream:
        cfg.upstreams["default"] = list(args.upstream)
    if args.upstream_ca is not None:
        cfg.upstream_ca = args.upstream_ca
    if args.upstream_verify is not None:
        cfg.upstream_verify = args.upstream_verify
    if args.limit_concurrency is not None:
        if args.limit_concurrency < 1:
            raise ConfigError("--limit-concurrency: must be at least 1")
        cfg.limits.concurrency = args.limit_concurrency
    if args.underscores_in_headers:
        cfg.headers.underscores = parse_underscores(args.underscores_in_headers,
                                                    "--underscores-in-headers")
    try:
        http = http_from_args(args, cfg.http)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if http is not None:
        cfg.http = http
    try:
        cfg.http2 = http2_from_args(args, cfg.http2)
    except ValueError as exc:
        raise ConfigError(f"--h2-*: {exc}") from None
    if args.forward:
        cfg.forward = ForwardPolicy(allow=list(args.allow))
    elif args.allow:
        raise ConfigError("--allow: only with --forward")
    if args.connect_port:
        if cfg.forward is None:
            raise ConfigError("--connect-port: only with --forward (or [forward] in the config)")
        ports = args.connect_port
        cfg.forward.connect_ports = None if None in ports else frozenset(ports)
    try:
        tls = tls_from_args(args)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if tls is not None:
        cfg.tls = tls
    cfg.validate()
    check_tls(cfg)
    cfg.upstream_ssl_context()  # (a bad upstream_ca fails here, not on the first request)
    return cfg


def _log_settings(args: argparse.Namespace) -> LogSettings:
    return LogSettings(config=args.log_config, level=args.log_level, use_colors=args.use_colors,
                       access_log=args.access_log, role="proxy")


async def _serve(cfg: ProxyConfig, access_log: bool, sock: socket.socket,
                 duration: float | None = None) -> None:
    """Serve on *sock* until SIGINT/SIGTERM (or *duration*), then shut down gracefully:
    in-flight exchanges finish (with ``close``) within ``timeouts.graceful_shutdown``."""
    from onehop.proxy.proxy import Proxy

    proxy = Proxy(cfg, access_log=access_log)
    await proxy.start(sock=sock)
    name = describe(sock, proxy.scheme)
    log.info("onehop proxy process [%d] serving on %s", os.getpid(), name)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        async with asyncio.timeout(duration):
            await stop.wait()
    except TimeoutError:
        pass
    finally:
        log.info("onehop proxy process [%d] shutting down: %d connection(s) open", os.getpid(),
                 len(proxy.state.connections))
        await proxy.aclose()
        log.info("onehop proxy process [%d] stopped serving on %s", os.getpid(), name)


def _worker(choice: str, cfg: ProxyConfig, settings: LogSettings, sock: socket.socket) -> None:
    """One worker process (spawned by the supervisor): serve on the shared socket."""
    logs.configure(settings)
    _run_loop(choice, cfg, settings.access_log, sock)


def run_proxy(args: argparse.Namespace) -> int:
    """Entry point for ``onehop proxy``: 2 on a bad config, flag or TLS file; with
    ``--check``, 0 when the config is valid and has no warnings, 1 with warnings; 3 when
    the address cannot be bound. Every failure is one line, no traceback."""
    try:
        cfg = build_config(args)
    except (ConfigError, OSError) as exc:
        print(f"onehop proxy: {exc}", file=sys.stderr)
        return 2
    if args.check:
        warnings = cfg.check_timeouts()
        for w in warnings:
            print(f"warning: {w}", file=sys.stderr)
        if warnings:
            print(f"config valid, with {len(warnings)} warning(s)", file=sys.stderr)
            return 1
        print("config OK")
        return 0
    settings = _log_settings(args)
    try:
        logs.configure(settings)
    except ValueError as exc:
        print(f"onehop proxy: {exc}", file=sys.stderr)
        return 2
    host, port = split_listen(cfg.listen, "listen")
    try:
        sock = bind_socket(host, port, inheritable=args.workers > 1)
    except (OSError, OverflowError) as exc:
        print(f"onehop proxy: cannot listen on {cfg.listen}: "
              f"{getattr(exc, 'strerror', None) or exc}", file=sys.stderr)
        return 3
    mode = "forward" if cfg.forward is not None else "reverse"
    scheme = "http" if cfg.tls is None else "https"
    log.info("onehop proxy (%s) listening on %s%s", mode, describe(sock, scheme),
             f" -> {', '.join(cfg.upstreams.get('default', []))}" if cfg.upstreams else "")
    if args.workers > 1:
        return run_workers(args.workers, _worker, (args.loop, cfg, settings), sock,
                           grace=cfg.timeouts.graceful_shutdown, label="proxy worker")
    _run_loop(args.loop, cfg, args.access_log, sock)
    return 0


def _run_loop(choice: str, cfg: ProxyConfig, access_log: bool, sock: socket.socket,
              duration: float | None = None) -> None:
    loop = new_event_loop(choice)
    try:
        loop.run_until_complete(_serve(cfg, access_log, sock, duration))
    finally:
        loop.close()


DEMO_TEXT = """\
onehop demo: echo origin on http://{origin}, proxy on http://{proxy}
The origin answers with the request head it received, as JSON.

1. Hop-by-hop stripping (Connection names X-Secret; Keep-Alive, TE, Upgrade are fixed hop-by-hop):
   curl -s http://{proxy}/ -H 'Connection: X-Secret' -H 'X-Secret: 1' \\
        -H 'Keep-Alive: timeout=5' -H 'TE: gzip' -H 'X-Kept: yes'
   -> the origin's "headers" have X-Kept, Via, X-Forwarded-For; no X-Secret, Keep-Alive or TE.

2. A client cannot make the proxy drop what it adds:
   curl -s http://{proxy}/ -H 'Connection: X-Forwarded-For' -H 'X-Forwarded-For: 203.0.113.9'
   -> X-Forwarded-For is the proxy's own (127.0.0.1), not the spoofed one.

3. HTTP/1.0 client: chunked upstream response becomes close-delimited, Connection: close:
   curl -s -0 -i http://{proxy}/chunked

4. Connection reuse: two client connections, one upstream connection:
   curl -s http://{proxy}/a; curl -s http://{proxy}/b
   -> same "origin_connection", "requests_on_this_connection" goes up.
   curl -sv http://{proxy}/a http://{proxy}/b 2>&1 | grep -i 're-using\\|origin_conn'

Press Ctrl-C to stop.
"""


async def demo_main(listen: str, duration: float | None, out: Any = None) -> None:
    """Start the echo origin and the proxy in front; print the commands; run until stopped."""
    from onehop.proxy.demo import start_echo_origin
    from onehop.proxy.proxy import Proxy

    host, port = split_listen(listen, "--listen")
    origin = await start_echo_origin("127.0.0.1", 0)
    oport = origin.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    proxy = Proxy(upstreams=[f"http://127.0.0.1:{oport}"])
    await proxy.start(host, port)
    print(DEMO_TEXT.format(origin=f"127.0.0.1:{oport}", proxy=f"{host}:{proxy.port}"),
          file=out or sys.stdout, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        async with asyncio.timeout(duration):
            await stop.wait()
    except TimeoutError:
        pass
    finally:
        await proxy.aclose()
        origin.close()


def run_demo(args: argparse.Namespace) -> int:
    """Entry point for ``onehop demo``."""
    try:
        split_listen(args.listen, "--listen")
    except ConfigError as exc:
        print(f"onehop demo: {exc}", file=sys.stderr)
        return 2
    logs.configure(LogSettings(role="proxy"))
    loop = new_event_loop("auto")
    try:
        loop.run_until_complete(demo_main(args.listen, args.duration))
    except OSError as exc:
        print(f"onehop demo: {exc}", file=sys.stderr)
        return 1
    finally:
        loop.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run ``proxy``/``demo`` without the top-level CLI (tests, ``python -m``)."""
    parser = argparse.ArgumentParser(prog="onehop")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
