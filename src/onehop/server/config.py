"""Server settings: one frozen-ish object shared by every connection of a server."""

from __future__ import annotations

import importlib
import logging
import sys
from dataclasses import dataclass, field
from typing import Any

from onehop._aio.logs import LogSettings
from onehop._aio.reload import ReloadSettings
from onehop._aio.serving import KEEP_ALIVE_HEADER_CHOICES, Http2Settings, ServingConfig
from onehop._aio.tls import (
    DEFAULT_CERT_REQS,
    DEFAULT_SSL_VERSION,
    TLSSettings,
    alpn_protocols,
)
from onehop.core import Limits
from onehop.server import wsengine
from onehop.server.asgi_types import ASGIApp, Message, Receive, Scope, Send
from onehop.server.interfaces import INTERFACE_CHOICES, DefaultHeaders, InterfaceError, adapt

__all__ = [
    "KEEP_ALIVE_HEADER_CHOICES",
    "ASGIApp",
    "AppLoadError",
    "Config",
    "Message",
    "Receive",
    "Scope",
    "Send",
]

logger = logging.getLogger("onehop.error")


class AppLoadError(ImportError):
    """The ``module:attribute`` app reference cannot be resolved, or its interface cannot
    be served; the message names why."""


@dataclass
class Config:
    """Everything a :class:`~onehop.server.Server` needs; defaults follow uvicorn's.

    ``timeout_keep_alive`` is the real idle timer and the value announced in
    ``Keep-Alive: timeout=N`` (RFC 7230 §A.1.2), so pools expire first.
    ``max_requests_per_connection`` bounds one connection; its last response
    carries ``close`` (RFC 9112 §9.6). ``header_timeout`` bounds how long a
    started request head may take to arrive (slow-loris); ``body_timeout`` how
    long the server waits for the next piece of a request body while the app
    waits for it (``None`` disables it): 408 before the response, else the
    connection is cut. ``connect_to_app`` hands ``CONNECT`` requests to the app
    (which may answer anything but 2xx); by default the server answers them 501
    with ``close`` itself. ``http`` picks the protocols (``auto``: HTTP/1.x and, on
    the same port, HTTP/2 by prior knowledge or ALPN ``h2``; ``h11``: HTTP/1.x only;
    ``h2``: HTTP/2 only); the ``h2_*`` values are the HTTP/2 SETTINGS announced
    (RFC 9113 §6.5.2).

    TLS (``ssl_*``, uvicorn's names) is on when ``ssl_certfile`` is set; the context is
    built by :meth:`tls_settings` in each process. ``interface`` adapts ASGI 2 and WSGI
    apps (:mod:`onehop.server.interfaces`); ``headers`` are added to every response.
    ``proxy_headers`` is on, as in uvicorn: X-Forwarded-For/-Proto are believed from
    ``forwarded_allow_ips`` peers only. ``limit_max_requests_jitter`` adds up to that
    many requests to ``limit_max_requests``, drawn per process, so workers do not all
    restart at once. ``log_config``, ``use_colors`` and ``log_level`` are applied by the
    command line and :func:`~onehop.server.serve` (:mod:`onehop._aio.logs`); an
    embedded :class:`~onehop.server.Server` leaves logging to its host.
    """

    app: ASGIApp | str
    host: str = "127.0.0.1"
    port: int = 8000
    uds: str | None = None
    fd: int | None = None
    sockets: list[Any] | None = None
    loop: str = "auto"
    lifespan: str = "auto"
    factory: bool = False
    app_dir: str | None = None
    root_path: str = ""
    log_level: str | int | None = None
    access_log: bool = True
    server_header: bool = True
    date_header: bool = True
    keep_alive: bool = True
    http10_keep_alive: bool = True
    keep_alive_header: str = "http10"
    timeout_keep_alive: float = 5.0
    header_timeout: float = 10.0
    body_timeout: float | None = 30.0
    linger_timeout: float = 2.0
    timeout_graceful_shutdown: float | None = 30.0
    max_requests_per_connection: int | None = 1000
    limit_concurrency: int | None = None
    limit_max_requests: int | None = None
    backlog: int = 2048
    proxy_headers: bool = True
    forwarded_allow_ips: list[str] = field(default_factory=lambda: ["127.0.0.1", "::1"])
    install_signal_handlers: bool = True
    limits: Limits = field(default_factory=Limits)
    workers: int = 1
    connect_to_app: bool = False
    ws: str = "auto"
    ws_max_size: int = 16 * 1024 * 1024
    ws_ping_interval: float | None = 20.0
    ws_ping_timeout: float | None = 20.0
    ws_per_message_deflate: bool = True
    ssl_keyfile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile_password: str | None = None
    ssl_version: int = DEFAULT_SSL_VERSION
    ssl_cert_reqs: int = DEFAULT_CERT_REQS
    ssl_ca_certs: str | None = None
    ssl_ciphers: str | None = None
    interface: str = "auto"
    headers: list[tuple[str, str]] = field(default_factory=list)
    limit_max_requests_jitter: int = 0
    env_file: str | None = None
    log_config: str | dict[str, Any] | None = None
    use_colors: bool | None = None
    reload: bool = False
    reload_dirs: list[str] = field(default_factory=list)
    reload_includes: list[str] = field(default_factory=list)
    reload_excludes: list[str] = field(default_factory=list)
    reload_delay: float = 0.25
    http: str = "auto"
    h2_max_concurrent_streams: int = 100
    h2_max_header_list_size: int = 64 * 1024
    h2_initial_window_size: int = 65535

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be between 0 and 65535, got {self.port}")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if self.ws not in ("auto", "none", "websockets", "wsproto"):
            raise ValueError(f"ws must be auto, none, websockets or wsproto, got {self.ws!r}")
        if self.ws_max_size < 1:
            raise ValueError(f"ws_max_size must be >= 1, got {self.ws_max_size}")
        if self.interface not in INTERFACE_CHOICES:
            raise ValueError(f"interface must be one of {', '.join(INTERFACE_CHOICES)}, "
                             f"got {self.interface!r}")
        if self.limit_max_requests_jitter < 0:
            raise ValueError("limit_max_requests_jitter must be >= 0")
        if self.reload_delay < 0:
            raise ValueError("reload_delay must be >= 0")
        if self.ssl_keyfile is not None and self.ssl_certfile is None:
            raise ValueError("ssl_keyfile needs ssl_certfile (the certificate to serve)")
        try:
            self.serving_config()  # checks the connection rules (one place: ServingConfig)
        except ValueError as exc:
            raise ValueError(str(exc).replace("idle_timeout", "timeout_keep_alive")) from None

    def serving_config(self) -> ServingConfig:
        """The connection rules the serving endpoint applies (:mod:`onehop._aio.serving`).

        Raises:
            ValueError: a timeout, limit or choice out of range (naming it).
        """
        return ServingConfig(
            limits=self.limits,
            keep_alive=self.keep_alive,
            http10_keep_alive=self.http10_keep_alive,
            keep_alive_header=self.keep_alive_header,
            idle_timeout=self.timeout_keep_alive,
            header_timeout=self.header_timeout,
            body_timeout=self.body_timeout,
            linger_timeout=self.linger_timeout,
            max_requests_per_connection=self.max_requests_per_connection,
            limit_concurrency=self.limit_concurrency,
            http=self.http,
            # RFC 8441 over HTTP/2 wherever WebSockets are served over HTTP/1.1.
            extended_connect=wsengine.available(self.ws) is not None,
            http2=Http2Settings(
                max_concurrent_streams=self.h2_max_concurrent_streams,
                max_header_list_size=self.h2_max_header_list_size,
                initial_window_size=self.h2_initial_window_size,
            ),
        )

    @property
    def is_ssl(self) -> bool:
        """Whether connections are TLS."""
        return self.ssl_certfile is not None

    def tls_settings(self) -> TLSSettings | None:
        """The TLS settings (None without ``ssl_certfile``): plain data for the workers,
        each of which builds its context with :meth:`TLSSettings.context`."""
        if self.ssl_certfile is None:
            return None
        return TLSSettings(
            certfile=self.ssl_certfile, keyfile=self.ssl_keyfile,
            password=self.ssl_keyfile_password, version=self.ssl_version,
            cert_reqs=self.ssl_cert_reqs, ca_certs=self.ssl_ca_certs, ciphers=self.ssl_ciphers,
            alpn=alpn_protocols(self.http),
        )

    def log_settings(self) -> LogSettings:
        """How the command line (and each worker) configures logging."""
        return LogSettings(config=self.log_config, level=self.log_level,
                           use_colors=self.use_colors, access_log=self.access_log,
                           role="server")

    def reload_settings(self) -> ReloadSettings:
        """What ``reload`` watches."""
        return ReloadSettings(dirs=tuple(self.reload_dirs),
                              includes=tuple(self.reload_includes),
                              excludes=tuple(self.reload_excludes), delay=self.reload_delay)

    def load_app(self) -> ASGIApp:
        """Return the ASGI callable, importing ``module:attr`` strings.

        A missing module or attribute is the user's typo, reported as
        :class:`AppLoadError` naming it; an exception raised *inside* the app's
        own module propagates unchanged, since its traceback is what the app's
        author needs.

        The app is adapted to ASGI 3 by ``interface`` and wrapped to add ``headers``.

        Raises:
            AppLoadError: the app reference is malformed or names nothing, or its
                interface needs a package that is missing.
        """
        app = self.app
        if isinstance(app, str):
            if self.app_dir is not None and self.app_dir not in sys.path:
                sys.path.insert(0, self.app_dir)
            module_name, sep, attr = app.partition(":")
            if not sep or not module_name or not attr:
                raise AppLoadError(f"app must look like 'module:attribute', got {app!r}")
            try:
                obj: Any = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                missing = exc.name or ""
                if missing and (module_name + ".").startswith(missing + "."):
                    raise AppLoadError(f"cannot import module {module_name!r} for app {app!r}: "
                                       f"no module named {missing!r}") from None
                raise
            for part in attr.split("."):
                try:
                    obj = getattr(obj, part)
                except AttributeError:
                    raise AppLoadError(
                        f"module {module_name!r} has no attribute {attr!r} (app {app!r})"
                    ) from None
            app = obj
        if self.factory:
            app = app()  # type: ignore[call-arg,assignment]
        if not callable(app):
            raise AppLoadError(f"app {self.app!r} is not callable ({type(app).__name__})")
        try:
            app, interface = adapt(app, self.interface)
        except InterfaceError as exc:
            raise AppLoadError(str(exc)) from None
        logger.debug("Application %r runs as %s", self.app, interface)
        if self.headers:
            app = DefaultHeaders(app, self.headers)
        return app
