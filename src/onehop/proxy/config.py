"""Proxy configuration: dataclasses, and a TOML loader whose errors name the key.

Example::

    listen = "127.0.0.1:8080"
    upstream_ca = "internal-ca.pem"   # CAs for https:// upstreams (default: the system's)
    upstream_verify = true            # false skips verification (say so explicitly)
    [upstreams]
    app = ["http://127.0.0.1:9000", "https://10.0.0.2:8443"]
    [tls]                     # listen with TLS (the names of `onehop serve`'s --ssl-* flags)
    certfile = "proxy.pem"
    keyfile = "proxy.key"
    # keyfile_password, version (17), cert_reqs (0|1|2), ca_certs, ciphers
    [[routes]]
    host = "example.com"      # optional; matched without the port, case-insensitively
    path = "/api"             # path prefix; the longest match wins
    upstream = "app"
    [timeouts]                # seconds
    connect = 5
    read = 60                 # upstream silence while waiting for or reading a response
    write = 60
    client_idle = 15          # idle client connection kept open
    client_header = 10        # a started request head must arrive within this (else 408)
    client_body = 60          # silence allowed between pieces of a request body (408)
    linger = 2                # reading and discarding after closing early (RFC 9112 §9.6)
    graceful_shutdown = 30    # in-flight exchanges allowed to finish on SIGTERM
    upstream_idle = 4         # idle upstream connection kept in the pool
    upstream_keepalive = 5    # the upstream's own idle timeout (for --check)
    [limits]
    max_connections = 1000    # upstream pool, total
    max_per_upstream = 100
    concurrency = 10000       # client connections or requests in flight before 503
    [headers]
    forwarded = "x-forwarded" # or "forwarded" (RFC 7239) or "none"
    trust_forwarded = false
    via = "onehop"
    preserve_host = true
    underscores = "drop"      # field names with "_": drop | pass | reject (400)
    [headers.nomination]      # reject | ignore | strip, per protected field
    host = "reject"
    http = "auto"             # auto (HTTP/1.x and HTTP/2 from clients), h11, h2
    [http2]                   # the SETTINGS sent to HTTP/2 clients (RFC 9113 §6.5.2)
    max_concurrent_streams = 100
    max_header_list_size = 65536
    initial_window_size = 65535
    [forward]
    enabled = false
    allow = ["*.example.com:443"]
    connect_ports = [443]     # or "*" for any port
"""

from __future__ import annotations

import os
import ssl
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from onehop._aio.serving import HTTP_CHOICES, Http2Settings, ServingConfig, http2_available
from onehop._aio.tls import TLSConfigError, TLSSettings
from onehop.client.pool import default_ssl_context
from onehop.proxy.forward import ForwardPolicy
from onehop.proxy.hop import (
    PROTECTED_FIELDS,
    ForwardedStyle,
    HeaderPolicy,
    Nomination,
    Underscores,
)


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key."""


@dataclass
class Timeouts:
    """Seconds; see the module docstring for each."""

    connect: float = 5.0
    read: float = 60.0
    write: float = 60.0
    client_idle: float = 15.0
    client_header: float = 10.0
    client_body: float = 60.0
    linger: float = 2.0
    graceful_shutdown: float = 30.0
    upstream_idle: float = 4.0
    upstream_keepalive: float | None = 5.0


@dataclass
class Limits:
    """Upstream pool limits, and the client-side overload limit (503 past it)."""

    max_connections: int = 1000
    max_per_upstream: int = 100
    concurrency: int | None = None


@dataclass
class Route:
    """Requests for *host* (None: any) whose path starts with *path* go to *group*."""

    path: str = "/"
    group: str = "default"
    host: str | None = None


@dataclass
class ProxyConfig:
    """Everything a :class:`~onehop.proxy.reverse.Proxy` needs."""

    listen: str = "127.0.0.1:8080"
    upstreams: dict[str, list[str]] = field(default_factory=dict)
    routes: list[Route] = field(default_factory=list)
    timeouts: Timeouts = field(default_factory=Timeouts)
    limits: Limits = field(default_factory=Limits)
    headers: HeaderPolicy = field(default_factory=HeaderPolicy)
    forward: ForwardPolicy | None = None
    retry_non_idempotent_close: bool = False
    #: The protocols clients may speak (:data:`~onehop._aio.serving.HTTP_CHOICES`):
    #: HTTP/2 from clients is forwarded over HTTP/1.1 through the pool.
    http: str = "auto"
    http2: Http2Settings = field(default_factory=Http2Settings)
    #: Listen with TLS (``[tls]``, ``--ssl-certfile``...); None: plain TCP.
    tls: TLSSettings | None = None
    #: CAs ``https://`` upstreams must chain to (None: the system's).
    upstream_ca: str | None = None
    #: Verify ``https://`` upstreams' certificates and names (False only when asked).
    upstream_verify: bool = True

    def upstream_ssl_context(self) -> ssl.SSLContext | None:
        """The context for ``https://`` upstreams (None when there are none): verification
        on, against ``upstream_ca`` or the system's CAs, ALPN ``http/1.1``.

        Raises:
            ConfigError: ``upstream_ca`` cannot be loaded.
        """
        if not any(u.startswith("https:") for urls in self.upstreams.values() for u in urls):
            return None
        verify: bool | str = (self.upstream_ca or True) if self.upstream_verify else False
        try:
            return default_ssl_context(verify=verify)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"upstream_ca: cannot load {self.upstream_ca!r}: {exc}") from None

    def validate(self) -> None:
        """Check cross-field rules.

        Raises:
            ConfigError: naming the key at fault.
        """
        for name, urls in self.upstreams.items():
            if not urls:
                raise ConfigError(f"upstreams.{name}: needs at least one URL")
            for url in urls:
                check_upstream_url(url, f"upstreams.{name}")
        for i, route in enumerate(self.routes):
            if route.group not in self.upstreams:
                raise ConfigError(f"routes[{i}].upstream: no upstream group {route.group!r}")
            if not route.path.startswith("/"):
                raise ConfigError(f"routes[{i}].path: must start with '/'")
        if not self.upstreams and self.forward is None:
            raise ConfigError("upstreams: give at least one upstream (or enable forward)")
        split_listen(self.listen, "listen")
        if self.http not in HTTP_CHOICES:
            raise ConfigError(f"http: expected one of {', '.join(HTTP_CHOICES)}, "
                              f"got {self.http!r}")
        if self.http == "h2" and not http2_available():
            raise ConfigError("http: h2 needs the h2 package: pip install 'onehop[h2]'")
        if self.upstream_ca is not None:
            if not self.upstream_verify:
                raise ConfigError("upstream_ca: unused with upstream_verify = false "
                                  "(remove one of them)")
            if not os.path.isfile(self.upstream_ca):
                raise ConfigError(f"upstream_ca: no such file {self.upstream_ca!r}")

    def serving_config(self) -> ServingConfig:
        """The client-side connection rules: the serving endpoint's, as for the origin
        server, with the proxy's own (an HTTP/1.0 client is never kept alive, RFC 9112
        §9.3; a client half-close while its answer is awaited abandons it)."""
        t = self.timeouts
        return ServingConfig(
            intermediary=True,
            keep_alive_header="never",
            idle_timeout=t.client_idle,
            header_timeout=t.client_header,
            body_timeout=t.client_body,
            linger_timeout=t.linger,
            max_requests_per_connection=None,
            limit_concurrency=self.limits.concurrency,
            read_high_water=256 * 1024,
            half_close_abandons=True,
            http=self.http,
            http2=self.http2,
            # (An HTTP/2 client's WebSocket goes up as an HTTP/1.1 upgrade, RFC 8441.)
            extended_connect=True,
        )

    def check_timeouts(self) -> list[str]:
        """Warnings about timeout orderings that cause failed reuse (``--check``).

        The pool must drop an idle upstream connection before the upstream
        does, else it may send a request on a connection the upstream is
        closing (RFC 9112 §9.3.1): a retry for idempotent requests, a 502 for
        the rest.
        """
        t = self.timeouts
        warnings = []
        if t.upstream_keepalive is not None and t.upstream_idle >= t.upstream_keepalive:
            warnings.append(
                f"timeouts.upstream_idle ({t.upstream_idle:g} s) >= timeouts.upstream_keepalive "
                f"({t.upstream_keepalive:g} s): the upstream can close a connection the pool "
                "still thinks is idle; set upstream_idle below the upstream's keep-alive timeout"
            )
        if t.upstream_keepalive is None:
            warnings.append(
                "timeouts.upstream_keepalive is not set: cannot check upstream_idle against "
                "the upstream's own idle timeout (the pool still honours Keep-Alive: timeout)"
            )
        if t.read <= 0 or t.connect <= 0:
            warnings.append("timeouts.read/connect must be positive")
        return warnings


def split_listen(value: str, key: str) -> tuple[str, int]:
    """``HOST:PORT`` to (host, port).

    Raises:
        ConfigError: naming *key*.
    """
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"{key}: expected HOST:PORT, got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


#: Upstream URL schemes and their default ports.
UPSTREAM_SCHEMES = {"http": 80, "https": 443}


def check_upstream_url(url: str, key: str) -> tuple[str, str, int]:
    """Validate an ``http://`` or ``https://`` ``host[:port]`` upstream URL; return
    (scheme, host, port).

    Raises:
        ConfigError: naming *key*.
    """
    try:
        parts = urlsplit(url)
        port = parts.port or UPSTREAM_SCHEMES.get(parts.scheme, 80)
    except ValueError as exc:
        raise ConfigError(f"{key}: invalid URL {url!r}: {exc}") from None
    if parts.scheme not in UPSTREAM_SCHEMES or not parts.hostname:
        raise ConfigError(f"{key}: expected http(s)://HOST[:PORT], got {url!r}")
    if parts.path not in ("", "/"):
        raise ConfigError(f"{key}: a path in the upstream URL is not supported: {url!r}")
    return parts.scheme, parts.hostname, port


def _typed(table: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = table[key]
    if kind is float:
        kind = (int, float)
    if isinstance(value, bool) and kind is not bool:
        raise ConfigError(f"{where}{key}: expected a number, got {value!r}")
    if not isinstance(value, kind):
        raise ConfigError(f"{where}{key}: wrong type {type(value).__name__} ({value!r})")
    return value


def _unknown(table: dict[str, Any], known: set[str], where: str) -> None:
    for key in table:
        if key not in known:
            raise ConfigError(f"{where}{key}: unknown key")


def _table(data: dict[str, Any], key: str, where: str = "") -> dict[str, Any]:
    """The sub-table *key* of *data* (empty when absent); anything else names the key."""
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{where}{key}: expected a table ([{where}{key}]), "
                          f"got {type(value).__name__} ({value!r})")
    return value


def from_dict(data: dict[str, Any]) -> ProxyConfig:
    """Build and validate a config from parsed TOML.

    Raises:
        ConfigError: naming the key.
    """
    cfg = ProxyConfig()
    _unknown(data, {"listen", "upstreams", "routes", "timeouts", "limits", "headers", "forward",
                    "retry_non_idempotent_close", "tls", "upstream_ca", "upstream_verify",
                    "http", "http2"}, "")
    if "http" in data:
        cfg.http = _typed(data, "http", str, "")
    h2 = _table(data, "http2")
    _unknown(h2, set(Http2Settings.__dataclass_fields__), "http2.")
    for key in h2:
        try:
            cfg.http2 = replace(cfg.http2, **{key: _typed(h2, key, int, "http2.")})
        except ValueError as exc:
            raise ConfigError(f"http2.{key}: {exc}") from None
    if "listen" in data:
        cfg.listen = _typed(data, "listen", str, "")
    if "upstream_ca" in data:
        cfg.upstream_ca = _typed(data, "upstream_ca", str, "")
    if "upstream_verify" in data:
        cfg.upstream_verify = _typed(data, "upstream_verify", bool, "")
    if "tls" in data:
        cfg.tls = tls_from_table(_table(data, "tls"))
    if "retry_non_idempotent_close" in data:
        cfg.retry_non_idempotent_close = _typed(data, "retry_non_idempotent_close", bool, "")
    ups = _table(data, "upstreams")
    for name, urls in ups.items():
        if isinstance(urls, str):
            urls = [urls]
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise ConfigError(f"upstreams.{name}: expected a list of URLs")
        cfg.upstreams[name] = list(urls)
    routes = data.get("routes", [])
    if not isinstance(routes, list):
        raise ConfigError("routes: expected an array of tables ([[routes]])")
    for i, r in enumerate(routes):
        where = f"routes[{i}]."
        if not isinstance(r, dict):
            raise ConfigError(f"routes[{i}]: expected a table")
        _unknown(r, {"host", "path", "upstream"}, where)
        if "upstream" not in r:
            raise ConfigError(f"{where}upstream: missing")
        cfg.routes.append(Route(
            path=_typed(r, "path", str, where) if "path" in r else "/",
            group=_typed(r, "upstream", str, where),
            host=_typed(r, "host", str, where).lower() if "host" in r else None,
        ))
    t = _table(data, "timeouts")
    _unknown(t, set(Timeouts.__dataclass_fields__), "timeouts.")
    for key in t:
        value = float(_typed(t, key, float, "timeouts."))
        if value <= 0:
            raise ConfigError(f"timeouts.{key}: must be positive, got {value}")
        setattr(cfg.timeouts, key, value)
    lim = _table(data, "limits")
    _unknown(lim, set(Limits.__dataclass_fields__), "limits.")
    for key in lim:
        value = _typed(lim, key, int, "limits.")
        if value < 1:
            raise ConfigError(f"limits.{key}: must be at least 1, got {value}")
        setattr(cfg.limits, key, value)
    h = _table(data, "headers")
    _unknown(h, {"forwarded", "trust_forwarded", "via", "preserve_host", "nomination",
                 "underscores"}, "headers.")
    if "underscores" in h:
        cfg.headers.underscores = parse_underscores(_typed(h, "underscores", str, "headers."),
                                                    "headers.underscores")
    if "forwarded" in h:
        try:
            cfg.headers.forwarded = ForwardedStyle(_typed(h, "forwarded", str, "headers."))
        except ValueError:
            raise ConfigError(
                "headers.forwarded: expected x-forwarded, forwarded or none, got "
                f"{h['forwarded']!r}"
            ) from None
    for key in ("trust_forwarded", "preserve_host"):
        if key in h:
            setattr(cfg.headers, key, _typed(h, key, bool, "headers."))
    if "via" in h:
        cfg.headers.via = _typed(h, "via", str, "headers.")
    for name, rule in _table(h, "nomination", "headers.").items():
        lname = name.lower().encode("latin-1", "replace")
        if lname not in PROTECTED_FIELDS:
            raise ConfigError(f"headers.nomination.{name}: not a protected field "
                              f"({', '.join(sorted(f.decode() for f in PROTECTED_FIELDS))})")
        try:
            cfg.headers.nomination[lname] = Nomination(rule)
        except ValueError:
            raise ConfigError(
                f"headers.nomination.{name}: expected reject, ignore or strip, got {rule!r}"
            ) from None
    if "forward" in data:
        fw = _table(data, "forward")
        _unknown(fw, {"enabled", "allow", "connect_ports"}, "forward.")
        if fw.get("enabled", True):
            allow = fw.get("allow", [])
            if not isinstance(allow, list) or not all(isinstance(a, str) for a in allow):
                raise ConfigError("forward.allow: expected a list of HOST:PORT patterns")
            ports = fw.get("connect_ports", [443])
            if ports == "*":
                cfg.forward = ForwardPolicy(allow=list(allow), connect_ports=None)
            else:
                cfg.forward = ForwardPolicy(allow=list(allow), connect_ports=parse_ports(
                    ports, "forward.connect_ports"))
    cfg.validate()
    return cfg


def parse_ports(ports: Any, key: str) -> frozenset[int]:
    """A list of TCP ports (CONNECT's).

    Raises:
        ConfigError: naming *key*.
    """
    if not isinstance(ports, list) or not all(
            isinstance(p, int) and not isinstance(p, bool) for p in ports):
        raise ConfigError(f"{key}: expected a list of ports or \"*\", got {ports!r}")
    for p in ports:
        if not 0 < p < 65536:
            raise ConfigError(f"{key}: {p} is not a TCP port")
    return frozenset(ports)


#: ``[tls]`` keys and their types (the names of ``--ssl-*`` without the prefix).
TLS_KEYS: dict[str, type] = {"certfile": str, "keyfile": str, "keyfile_password": str,
                             "version": int, "cert_reqs": int, "ca_certs": str, "ciphers": str}


def tls_from_table(table: dict[str, Any]) -> TLSSettings:
    """The ``[tls]`` table as :class:`TLSSettings` (files are checked by ``--check`` and
    at start, when the context is built).

    Raises:
        ConfigError: naming the key.
    """
    _unknown(table, set(TLS_KEYS), "tls.")
    for key, kind in TLS_KEYS.items():
        if key in table:
            _typed(table, key, kind, "tls.")
    if "certfile" not in table:
        raise ConfigError("tls.certfile: missing (the certificate to serve)")
    return TLSSettings(
        certfile=table["certfile"], keyfile=table.get("keyfile"),
        password=table.get("keyfile_password"),
        version=table.get("version", TLSSettings.version),
        cert_reqs=table.get("cert_reqs", TLSSettings.cert_reqs),
        ca_certs=table.get("ca_certs"), ciphers=table.get("ciphers"))


def check_tls(cfg: ProxyConfig) -> None:
    """Build the listening context once, so a bad file fails at start in one line.

    Raises:
        ConfigError: naming ``tls`` and the cause.
    """
    if cfg.tls is not None:
        try:
            cfg.tls.context()
        except TLSConfigError as exc:
            raise ConfigError(f"tls: {exc}") from None


def parse_underscores(value: str, key: str) -> Underscores:
    """The underscore policy named *value*.

    Raises:
        ConfigError: naming *key*.
    """
    try:
        return Underscores(value)
    except ValueError:
        raise ConfigError(f"{key}: expected drop, pass or reject, got {value!r}") from None


def load(path: str | Path) -> ProxyConfig:
    """Read and validate a TOML config file.

    Raises:
        ConfigError: invalid TOML or values (the message names the key).
        OSError: the file cannot be read.
    """
    with open(path, "rb") as f:
        try:
            data = tomllib.load(f)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    return from_dict(data)
