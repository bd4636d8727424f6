"""The one place a listening TLS context is built: ``onehop serve``, its workers, the proxy.

A :class:`TLSSettings` holds uvicorn's ``--ssl-*`` values as plain data (file paths,
numbers): an :class:`ssl.SSLContext` cannot be pickled, so a spawned worker gets the
settings and builds its own context with :meth:`TLSSettings.context`. The parent
builds one first too, only to fail early, with one line, on a bad file or password.

ALPN (RFC 7301) offers what the listener speaks, ``h2`` first (RFC 9113 §3.2): a
browser then speaks HTTP/2 at once, and the endpoint reads the choice off the
handshake (:func:`alpn_protocols` names the list for each ``http`` setting).
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from typing import Final

from onehop._aio.serving import http2_available

#: uvicorn's defaults: ``--ssl-version 17`` (PROTOCOL_TLS_SERVER), ``--ssl-cert-reqs 0``.
DEFAULT_SSL_VERSION: Final = int(ssl.PROTOCOL_TLS_SERVER)
DEFAULT_CERT_REQS: Final = int(ssl.CERT_NONE)
#: What ALPN offers by default (RFC 7301): HTTP/2 first, as a listener with
#: ``http = "auto"`` speaks it on the same port.
ALPN_PROTOCOLS: Final = ("h2", "http/1.1")


def alpn_protocols(http: str) -> tuple[str, ...]:
    """What ALPN offers for a listener's ``http`` setting (``auto``, ``h11``,
    ``httptools``, ``h2``): ``h2`` only where HTTP/2 is served (``auto`` needs the
    ``h2`` package), ``http/1.1`` only where HTTP/1.x is."""
    if http == "h2":
        return ("h2",)
    if http == "auto" and http2_available():
        return ALPN_PROTOCOLS
    return ("http/1.1",)


class TLSConfigError(ValueError):
    """The TLS settings cannot make a context; the message names the file or value."""


@dataclass(frozen=True)
class TLSSettings:
    """A server-side TLS setup (uvicorn's ``--ssl-*`` flags; the TOML ``[tls]`` table).

    Attributes:
        certfile: PEM certificate chain (may hold the key too).
        keyfile: PEM private key (None: it is in *certfile*).
        password: the key file's password, if encrypted.
        version: an ``ssl.PROTOCOL_*`` number (``17``, PROTOCOL_TLS_SERVER: TLS 1.2+).
        cert_reqs: ``0`` no client certificate, ``1`` optional, ``2`` required
            (``ssl.CERT_*``); a client certificate is checked against *ca_certs*.
        ca_certs: PEM file of CAs that client certificates must chain to.
        ciphers: an OpenSSL cipher string for TLS 1.2 and below (None: OpenSSL's
            defaults; TLS 1.3 suites are not affected).
        alpn: protocols offered by ALPN, in order of preference.
    """

    certfile: str
    keyfile: str | None = None
    password: str | None = None
    version: int = DEFAULT_SSL_VERSION
    cert_reqs: int = DEFAULT_CERT_REQS
    ca_certs: str | None = None
    ciphers: str | None = None
    alpn: tuple[str, ...] = ALPN_PROTOCOLS

    def context(self) -> ssl.SSLContext:
        """A new server context from these settings.

        Raises:
            TLSConfigError: a file is missing or unreadable, the key does not match
                the certificate or needs a password, a number names no protocol or
                verify mode, or OpenSSL refuses the cipher string.
        """
        for what, path in (("certificate", self.certfile), ("key", self.keyfile),
                           ("CA", self.ca_certs)):
            if path is not None and not os.path.isfile(path):
                raise TLSConfigError(f"TLS {what} file {path!r} does not exist")
        try:
            protocol = ssl._SSLMethod(self.version)
        except ValueError:
            raise TLSConfigError(f"ssl version {self.version} is not an ssl.PROTOCOL_* "
                                 f"number (17: TLS server, the default)") from None
        try:
            verify = ssl.VerifyMode(self.cert_reqs)
        except ValueError:
            raise TLSConfigError(f"ssl cert reqs {self.cert_reqs}: expected 0 (none), "
                                 "1 (optional) or 2 (required)") from None
        if verify is not ssl.CERT_NONE and self.ca_certs is None:
            raise TLSConfigError("client certificates are asked for (ssl cert reqs "
                                 f"{self.cert_reqs}) but no CA file (ssl ca certs) is given "
                                 "to check them against")
        ctx = ssl.SSLContext(protocol)
        password = self.password

        def get_password() -> str:
            # Always a callback: without one OpenSSL would prompt on the terminal.
            if password is None:
                raise TLSConfigError(f"the key in {self.keyfile or self.certfile!r} is "
                                     "encrypted: give its password (ssl keyfile password)")
            return password

        try:
            ctx.load_cert_chain(self.certfile, self.keyfile, get_password)
        except TLSConfigError:
            raise
        except (ssl.SSLError, OSError) as exc:
            raise TLSConfigError(
                f"cannot load the TLS certificate {self.certfile!r}"
                + (f" and key {self.keyfile!r}" if self.keyfile else "")
                + f": {_reason(exc)}") from None
        ctx.verify_mode = verify
        if self.ca_certs is not None:
            try:
                ctx.load_verify_locations(self.ca_certs)
            except (ssl.SSLError, OSError) as exc:
                raise TLSConfigError(f"cannot load the CA file {self.ca_certs!r}: "
                                     f"{_reason(exc)}") from None
        if self.ciphers:
            try:
                ctx.set_ciphers(self.ciphers)
            except ssl.SSLError as exc:
                raise TLSConfigError(f"ssl ciphers {self.ciphers!r}: {_reason(exc)}") from None
        if self.alpn:
            ctx.set_alpn_protocols(list(self.alpn))
        return ctx

    def describe(self) -> str:
        """A one-line summary for a debug log line."""
        verify = {0: "no client certificate", 1: "client certificate optional",
                  2: "client certificate required"}.get(self.cert_reqs, str(self.cert_reqs))
        return (f"TLS: certificate {self.certfile}, ALPN {', '.join(self.alpn) or '-'}, "
                f"{verify}" + (f", ciphers {self.ciphers}" if self.ciphers else ""))


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    if reason == "PEM lib" or "PEM lib" in str(exc):  # (OpenSSL: "could not read that PEM")
        return "not a PEM certificate/key, or a wrong key password"
    if reason:
        return str(reason).replace("_", " ").lower()
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc.args[0] if exc.args else exc) or type(exc).__name__
