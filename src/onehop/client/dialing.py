"""Opening a client connection: TCP, then TLS for ``https`` (ALPN ``http/1.1``),
within the connect timeout, with a typed error that names the origin and says
what to do about a certificate that fails verification.
"""

from __future__ import annotations

import asyncio
import ssl

from onehop.client.connection import HTTPConnection, Origin
from onehop.client.errors import ConnectError, ConnectTimeout


async def dial(
    conn: HTTPConnection, ctx: ssl.SSLContext | None, timeout: float | None
) -> None:
    """Connect *conn* to its origin (with TLS when *ctx* is given) within *timeout* s.

    Raises:
        ConnectTimeout: not connected within *timeout*.
        ConnectError: refused, unreachable, or the TLS handshake failed.
    """
    _, host, port = conn.origin
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            await loop.create_connection(
                lambda: conn, host, port, ssl=ctx, server_hostname=host if ctx else None
            )
    except TimeoutError:
        raise ConnectTimeout(
            f"connecting to {origin_text(conn.origin)} took longer than {timeout} s"
        ) from None
    except ssl.SSLCertVerificationError as exc:
        raise _caused_by(ConnectError(
            f"cannot connect to {origin_text(conn.origin)}: TLS certificate verification failed "
            f"({exc.verify_message or exc}); give the CA with verify='ca.pem' (--cacert) "
            "or an ssl_context, or pass verify=False (--insecure) to skip verification"
        ), exc) from exc
    except (OSError, ssl.SSLError) as exc:
        raise _caused_by(ConnectError(f"cannot connect to {origin_text(conn.origin)}: {exc}"),
                         exc) from exc


def _caused_by(error: ConnectError, cause: BaseException) -> ConnectError:
    """*error* with its ``__cause__`` set by hand: the CLI's exit status reads the cause
    (60 for a certificate, 6 for a name...), and mypyc-compiled code drops the cause of
    ``raise ... from`` (tests/test_builds.py pins this)."""
    error.__cause__ = cause
    return error


def origin_text(origin: Origin) -> str:
    """``scheme://host:port``, for messages."""
    scheme, host, port = origin
    return f"{scheme}://{host}:{port}"


def default_ssl_context(*, verify: bool | str = True) -> ssl.SSLContext:
    """A TLS context that offers only ``http/1.1`` by ALPN (RFC 7301); verification on.

    *verify* is True (the system's CAs), a path to a PEM file of CAs to trust
    instead, or False (no verification at all; only when the user asks).
    """
    ctx = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
    if verify is False:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx
