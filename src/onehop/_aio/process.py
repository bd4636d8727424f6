"""Command-line pieces ``onehop serve`` and ``onehop proxy`` share, so a flag means the
same in both: the TLS, HTTP/2 and logging flags, ``--version``, and help that shows
defaults."""

from __future__ import annotations

import argparse
import dataclasses
import platform
from typing import Any

from onehop._aio.logs import LOG_LEVELS
from onehop._aio.serving import HTTP_CHOICES, Http2Settings, http2_available
from onehop._aio.tls import DEFAULT_CERT_REQS, DEFAULT_SSL_VERSION, TLSSettings
from onehop._version import __version__


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` with each option's default, except where there is none to show."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default is None or action.default == [] or "%(default)" in text:
            return text
        return super()._get_help_string(action)


def version_text(prog: str = "onehop") -> str:
    """What ``--version`` prints (uvicorn's shape: the versions a bug report needs)."""
    return (f"Running {prog} {__version__} with {platform.python_implementation()} "
            f"{platform.python_version()} on {platform.system()}")


def add_version(parser: argparse.ArgumentParser) -> None:
    """``--version``: print :func:`version_text` and exit."""
    parser.add_argument("--version", action="version", version=version_text(),
                        help="print the onehop, Python and OS versions and exit")


def add_tls_arguments(parser: argparse.ArgumentParser) -> None:
    """uvicorn's ``--ssl-*`` flags (see :class:`~onehop._aio.tls.TLSSettings`)."""
    g = parser.add_argument_group("TLS (listening)")
    g.add_argument("--ssl-certfile", metavar="FILE",
                   help="PEM certificate chain: serve https with it")
    g.add_argument("--ssl-keyfile", metavar="FILE",
                   help="PEM private key (when not in --ssl-certfile)")
    g.add_argument("--ssl-keyfile-password", metavar="PASSWORD",
                   help="password of an encrypted --ssl-keyfile")
    g.add_argument("--ssl-version", type=int, default=DEFAULT_SSL_VERSION, metavar="N",
                   help="ssl.PROTOCOL_* number (17: PROTOCOL_TLS_SERVER, TLS 1.2 and up)")
    g.add_argument("--ssl-cert-reqs", type=int, default=DEFAULT_CERT_REQS, choices=(0, 1, 2),
                   help="client certificate: 0 none, 1 optional, 2 required "
                        "(checked against --ssl-ca-certs)")
    g.add_argument("--ssl-ca-certs", metavar="FILE",
                   help="PEM CAs that client certificates must chain to")
    g.add_argument("--ssl-ciphers", metavar="CIPHERS",
                   help="OpenSSL cipher string for TLS <= 1.2 (default: OpenSSL's)")


def tls_from_args(args: argparse.Namespace) -> TLSSettings | None:
    """The TLS settings the ``--ssl-*`` flags give (None without ``--ssl-certfile``).

    Raises:
        ValueError: ``--ssl-keyfile`` without ``--ssl-certfile``.
    """
    if args.ssl_certfile is None:
        if args.ssl_keyfile is not None:
            raise ValueError("--ssl-keyfile needs --ssl-certfile")
        return None
    return TLSSettings(certfile=args.ssl_certfile, keyfile=args.ssl_keyfile,
                       password=args.ssl_keyfile_password, version=args.ssl_version,
                       cert_reqs=args.ssl_cert_reqs, ca_certs=args.ssl_ca_certs,
                       ciphers=args.ssl_ciphers)


def add_log_arguments(parser: argparse.ArgumentParser, *, default_level: str = "info") -> Any:
    """``--log-level``, ``--log-config``, ``--use-colors``, ``--access-log``."""
    g = parser.add_argument_group("logging")
    g.add_argument("--log-level", choices=tuple(LOG_LEVELS), default=None,
                   help=f"level of onehop's loggers (default: {default_level}, or what "
                        "--log-config sets); trace adds a line per connection")
    g.add_argument("--log-config", metavar="FILE",
                   help="logging config: .json or .yaml (dictConfig), else .ini (fileConfig)")
    g.add_argument("--use-colors", action=argparse.BooleanOptionalAction, default=None,
                   help="colour level names and status codes (default: on a terminal)")
    g.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=True,
                   help="one line per request on the access logger")
    return g


def add_http_arguments(parser: argparse.ArgumentParser) -> None:
    """``--http`` and the HTTP/2 SETTINGS flags (``args.http``, ``args.h2_*``; None when
    not given, so a config file's value stands)."""
    g = parser.add_argument_group("HTTP/2")
    g.add_argument(
        "--http", choices=HTTP_CHOICES, default=None,
        help="protocols: auto (HTTP/1.x, and HTTP/2 on the same port by prior knowledge or "
             "ALPN h2; the default), h11 or httptools (HTTP/1.x only), h2 (HTTP/2 only)")
    g.add_argument(
        "--http2", action="store_true",
        help="uvicorn's flag: HTTP/2 is on by default here, so this only checks that it "
             "stays on (an error with --http h11, or without the h2 package)")
    defaults = Http2Settings()
    g.add_argument("--h2-max-concurrent-streams", type=int, default=None, metavar="N",
                   help="HTTP/2 streams a client may have open at once "
                        f"(default {defaults.max_concurrent_streams})")
    g.add_argument("--h2-max-header-list-size", type=int, default=None, metavar="BYTES",
                   help="largest HTTP/2 field section accepted, RFC 9113 §6.5.2 "
                        f"(default {defaults.max_header_list_size})")
    g.add_argument("--h2-initial-window-size", type=int, default=None, metavar="BYTES",
                   help="HTTP/2 flow-control window per stream for request content "
                        f"(default {defaults.initial_window_size})")


def http_from_args(args: argparse.Namespace, configured: str | None = None) -> str | None:
    """The protocol choice: ``--http`` when given (None otherwise, so a config file's
    value stands). uvicorn's ``--http2`` only asks that HTTP/2 stay on, so it checks
    the choice that will be used (``--http``, else *configured*: a config file's).

    Raises:
        ValueError: ``--http2`` with an HTTP/1.x-only choice, or without the ``h2``
            package.
    """
    chosen: str | None = args.http
    if getattr(args, "http2", False):
        effective = chosen or configured
        if effective in ("h11", "httptools"):
            where = "--http" if chosen else "the config file's http"
            raise ValueError(f"--http2 contradicts {where} {effective} (HTTP/1.x only)")
        if not http2_available():
            raise ValueError("--http2 needs the h2 package: pip install 'onehop[h2]'")
    return chosen


def http2_from_args(args: argparse.Namespace, base: Http2Settings) -> Http2Settings:
    """*base* with the ``--h2-*`` values given on the command line.

    Raises:
        ValueError: a value out of range (naming the setting).
    """
    given = {name: getattr(args, f"h2_{name}") for name in Http2Settings.__dataclass_fields__
             if getattr(args, f"h2_{name}", None) is not None}
    return dataclasses.replace(base, **given) if given else base
