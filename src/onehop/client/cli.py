"""``onehop get``: fetch URLs in order through one pool, with curl's flags (issue 15).

A curl user's flags mean here what they mean to curl, and the request heads
match curl's byte for byte except where ``docs/client.md`` says why not
(``User-Agent``; ``-0`` asks for keep-alive; a ``Content-Length`` is always the
true one). What onehop adds is the connection: ``-v`` prints every byte of each
request head as sent and says whether each request went over a new or a reused
connection and why a connection closed, so the keep-alive behaviour of a server
can be watched (RFC 9112 §9.3); ``-w '%{reused}'`` reports it per URL.

Exit status as curl's where it has one: 3 bad URL, 1 unsupported scheme, 6
unknown host, 7 cannot connect, 8 malformed answer, 18 body cut short, 22
``--fail`` on a status >= 400, 23 cannot write the output, 26 cannot read a
``-d @file``, 28 timeout, 35 TLS failure, 47 too many redirects, 52 nothing
answered, 56 connection lost while receiving, 60 certificate not verified, 77
bad ``--cacert``; 2 bad usage. With several URLs every one is tried and the
status is the last failure's (curl reports the last URL's only).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import socket
import ssl
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Final, Protocol, TextIO

from onehop._version import __version__
from onehop.client.client import Client
from onehop.client.errors import (
    ClientError,
    ClientTimeout,
    ClosedBeforeResponse,
    ConnectError,
    InvalidURL,
    PipelinedRequestUnanswered,
    ServerClosedIdle,
    ServerDisconnected,
    TooManyRedirects,
    UnsupportedScheme,
)
from onehop.client.response import Response, Timeout
from onehop.client.writeout import VARIABLES, Transfer, render
from onehop.errors import IncompleteMessage, LocalProtocolError, OnehopError, RemoteProtocolError

USER_AGENT: Final = f"onehop/{__version__}"
FORM: Final = "application/x-www-form-urlencoded"
JSON: Final = "application/json"

# curl's exit codes (man curl, "EXIT CODES") for the failures onehop get can meet.
EXIT_UNSUPPORTED_PROTOCOL: Final = 1
EXIT_USAGE: Final = 2
EXIT_URL_MALFORMAT: Final = 3
EXIT_COULDNT_RESOLVE_HOST: Final = 6
EXIT_COULDNT_CONNECT: Final = 7
EXIT_WEIRD_SERVER_REPLY: Final = 8
EXIT_PARTIAL_FILE: Final = 18
EXIT_HTTP_RETURNED_ERROR: Final = 22
EXIT_WRITE_ERROR: Final = 23
EXIT_READ_ERROR: Final = 26
EXIT_OPERATION_TIMEDOUT: Final = 28
EXIT_SSL_CONNECT_ERROR: Final = 35
EXIT_TOO_MANY_REDIRECTS: Final = 47
EXIT_GOT_NOTHING: Final = 52
EXIT_RECV_ERROR: Final = 56
EXIT_PEER_FAILED_VERIFICATION: Final = 60
EXIT_SSL_CACERT_BADFILE: Final = 77


class UsageError(Exception):
    """A flag's value cannot be used (exit status 2, or the ``code`` given)."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def register(subparsers: Any) -> None:
    """Add the ``get`` subcommand to the top-level parser's *subparsers*."""
    parser = subparsers.add_parser(
        "get",
        help="fetch URLs over one keep-alive pool (curl's flags)",
        description="Fetch each URL in order through one connection pool; print the bodies. "
        "Flags mean what they mean to curl; docs/client.md lists the differences.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_WRITE_OUT_HELP,
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


_WRITE_OUT_HELP: Final = "-w variables:\n" + "\n".join(
    f"  %{{{name}}}  {meaning}" for name, meaning in VARIABLES.items()
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``get`` options (shared by :func:`register` and :func:`main`)."""
    add = parser.add_argument
    add("urls", nargs="+", metavar="URL")
    add("-X", "--request", dest="method", default=None, metavar="METHOD",
        help="request method (default GET; POST with data; HEAD with -I)")
    add("-H", "--header", action="append", default=[], metavar="FIELD",
        help="'Name: value' to send (repeatable); 'Name:' drops a default, 'Name;' sends it empty")
    add("-A", "--user-agent", default=USER_AGENT, metavar="TEXT",
        help=f"User-Agent (default {USER_AGENT})")
    add("-u", "--user", default=None, metavar="USER:PASSWORD", help="HTTP Basic credentials")
    add("-d", "--data", action="append", dest="data", default=[], type=_data_arg("data"),
        metavar="DATA", help="POST this (form-encoded); @FILE reads a file without its CR/LF, "
        "@- stdin; repeated pieces are joined with &")
    add("--data-binary", action="append", dest="data", type=_data_arg("binary"),
        metavar="DATA", help="as -d, but @FILE is sent exactly")
    add("--data-raw", action="append", dest="data", type=_data_arg("raw"),
        metavar="DATA", help="as -d, with no @ meaning")
    add("--json", action="append", dest="json", default=[], metavar="DATA",
        help="POST this JSON (@FILE, @-): Content-Type and Accept application/json; "
        "repeated pieces are concatenated")
    add("-I", "--head", action="store_true", help="send HEAD; print the response head")
    add("-i", "--include", action="store_true", help="print response heads before the body")
    add("-o", "--output", action="append", default=[], metavar="FILE",
        help="write the Nth URL's body to the Nth FILE ('-' is stdout)")
    add("-s", "--silent", action="store_true", help="no error messages")
    add("-S", "--show-error", action="store_true", help="error messages even with -s")
    add("-f", "--fail", action="store_true",
        help="exit 22, printing no body, when a status is 400 or more")
    add("--fail-with-body", action="store_true", help="as --fail, but print the body")
    add("-L", "--location", action="store_true", help="follow redirects (301/302/303/307/308)")
    add("--max-redirs", type=int, default=50, metavar="N",
        help="redirects to follow with -L (default 50, as curl; -1 for no limit)")
    add("-0", "--http1.0", dest="http10", action="store_true",
        help="send HTTP/1.0 requests (with keep-alive asked for unless --no-keepalive)")
    add("--http1.1", dest="http10", action="store_false", help="send HTTP/1.1 (default)")
    add("--no-keepalive", action="store_true",
        help="send Connection: close: one connection per request")
    add("-v", "--verbose", action="store_true",
        help="print request heads as sent, response heads and connection reuse on stderr")
    add("-w", "--write-out", default=None, metavar="FORMAT",
        help="print FORMAT after each URL (see the variables below; @FILE reads it)")
    add("--cacert", default=None, metavar="FILE", help="trust the CAs in this PEM file")
    add("-k", "--insecure", action="store_true", help="do not verify TLS certificates")
    add("--connect-timeout", type=float, default=None, metavar="SECONDS",
        help="limit for opening a connection (default: --timeout)")
    add("-m", "--max-time", type=float, default=None, metavar="SECONDS",
        help="limit for each URL's whole transfer")
    add("--timeout", type=float, default=30.0, metavar="SECONDS",
        help="limit for each read, write and pool wait (default 30)")
    add("--wait", type=float, default=0.0, metavar="SECONDS", help="pause between URLs")


def main(argv: list[str] | None = None) -> int:
    """Run ``get`` without the top-level ``onehop`` parser (tests, ``python -m``)."""
    parser = argparse.ArgumentParser(prog="onehop get")
    add_arguments(parser)
    return run(parser.parse_args(argv))


# --- from flags to a plan ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Data:
    """One ``-d``-family value: its kind (``data``, ``binary``, ``raw``) and text."""

    kind: str
    text: str


def _data_arg(kind: str) -> Callable[[str], _Data]:
    def parse(text: str) -> _Data:
        return _Data(kind, text)

    return parse


@dataclass
class Plan:
    """What every URL's request is made of, settled before the first one goes."""

    method: str
    body: bytes | None
    defaults: list[tuple[str, str]]
    headers: list[tuple[str, str]]
    outputs: list[str] = field(default_factory=list)
    write_out: str | None = None


def plan(args: argparse.Namespace, stdin: BinaryIO) -> Plan:
    """Read the data files and lay out the head as curl would.

    Raises:
        UsageError: conflicting flags or a bad ``-H`` (exit 2); an unreadable
            ``@file`` (exit 26).
    """
    custom: list[tuple[str, str]] = []
    removed: set[str] = set()
    for text in args.header:
        name, value, drop = _field(text)
        if drop:
            removed.add(name.lower())
        else:
            custom.append((name, value))
    given = {name.lower() for name, _ in custom} | removed
    stdin_cache: list[bytes] = []
    body: bytes | None = None
    internal: list[tuple[str, str]] = []  # fields curl adds after the custom ones
    if args.json:
        body = b"".join(_read_data("binary", t, stdin, stdin_cache) for t in args.json)
        for name, value in (("Content-Type", JSON), ("Accept", JSON)):
            if name.lower() not in given:
                internal.append((name, value))
    if args.data:
        if body is not None:
            raise UsageError("--json and -d cannot be combined")
        body = b"&".join(_read_data(d.kind, d.text, stdin, stdin_cache) for d in args.data)
    if args.head and body is not None:
        raise UsageError("-I (HEAD) sends no body: drop -d/--json or -I")
    method = args.method or ("HEAD" if args.head else "POST" if body is not None else "GET")
    defaults: list[tuple[str, str]] = []
    if args.user is not None:
        if ":" not in args.user:
            raise UsageError("-u needs USER:PASSWORD (onehop does not prompt)")
        token = base64.b64encode(args.user.encode("utf-8")).decode("ascii")
        defaults.append(("Authorization", f"Basic {token}"))
    defaults.append(("User-Agent", args.user_agent))
    if not args.json:
        defaults.append(("Accept", "*/*"))
    defaults = [(n, v) for n, v in defaults if n.lower() not in removed]
    headers = custom + internal
    if body is not None:
        # The client writes the true length where this placeholder stands: curl's place.
        headers.append(("Content-Length", "0"))
        if args.data and "content-type" not in given:
            headers.append(("Content-Type", FORM))
    write_out = args.write_out
    if write_out is not None and write_out.startswith("@"):
        write_out = _read_data("binary", write_out, stdin, stdin_cache).decode("utf-8", "replace")
    return Plan(method, body, defaults, headers, list(args.output), write_out)


def _field(text: str) -> tuple[str, str, bool]:
    """One ``-H`` value as curl reads it: ``Name: value``; ``Name:`` (no value) drops
    a field onehop would send; ``Name;`` sends the field empty.

    Returns (name, value, drop).

    Raises:
        UsageError: neither form.
    """
    colon, semi = text.find(":"), text.find(";")
    if semi != -1 and (colon == -1 or semi < colon) and not text[semi + 1:].strip():
        name = text[:semi].strip()
        if name:
            return name, "", False
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise UsageError(f"bad header {text!r}: expected 'Name: value'")
    value = value.strip()
    return name.strip(), value, not value


def _read_data(kind: str, text: str, stdin: BinaryIO, cache: list[bytes]) -> bytes:
    """The bytes of one ``-d``-family value; ``@file`` and ``@-`` read as curl does
    (``-d`` drops CR and LF from what it reads; ``--data-binary`` keeps them).

    Raises:
        UsageError: the file cannot be read (exit 26).
    """
    if kind == "raw" or not text.startswith("@"):
        return text.encode("utf-8")
    source = text[1:]
    if source == "-":
        if not cache:
            cache.append(stdin.read())
        data = cache[0]
    else:
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read {source!r}: {exc.strerror or exc}",
                             EXIT_READ_ERROR) from None
    if kind == "data":
        data = data.replace(b"\r", b"").replace(b"\n", b"")
    return data


# --- running -----------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    """Execute the parsed ``get`` command; return the exit status."""
    quiet = args.silent and not args.show_error
    try:
        the_plan = plan(args, sys.stdin.buffer)
        client = _client(args, the_plan.defaults)
    except UsageError as exc:
        if not quiet:
            print(f"onehop get: {exc}", file=sys.stderr)
        return exc.code
    try:
        return asyncio.run(_fetch_all(args, the_plan, client, sys.stdout.buffer, sys.stderr))
    except KeyboardInterrupt:
        return 130


def _client(args: argparse.Namespace, defaults: list[tuple[str, str]]) -> Client:
    """The one client every URL goes through.

    Raises:
        UsageError: a ``--cacert`` that cannot be read (exit 77).
    """
    verify: bool | str = False if args.insecure else (args.cacert or True)
    t = args.timeout
    connect = t if args.connect_timeout is None else args.connect_timeout
    verbose: bool = args.verbose

    def trace(line: str) -> None:
        if verbose:
            shown = line if line.startswith(("> ", "< ")) else f"* {line}"
            print(shown, file=sys.stderr, flush=True)

    try:
        return Client(
            headers=defaults,
            timeout=Timeout(connect=connect, read=t, write=t, pool=t),
            keep_alive=not args.no_keepalive,
            verify=verify,
            trace=trace if verbose else None,
            follow_redirects=args.location,
            max_redirects=sys.maxsize if args.max_redirs < 0 else args.max_redirs,
            http_version="1.0" if args.http10 else "1.1",
        )
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"cannot use CA file {args.cacert!r}: {exc}",
                         EXIT_SSL_CACERT_BADFILE) from None


async def _fetch_all(
    args: argparse.Namespace, the_plan: Plan, client: Client, out: BinaryIO, err: TextIO
) -> int:
    status = 0
    async with client:
        for i, url in enumerate(args.urls):
            if i and args.wait > 0:
                await asyncio.sleep(args.wait)
            target = the_plan.outputs[i] if i < len(the_plan.outputs) else "-"
            code = await _transfer(args, the_plan, client, url, target, out, err)
            if code:
                status = code
    return status


async def _transfer(
    args: argparse.Namespace,
    the_plan: Plan,
    client: Client,
    url: str,
    target: str,
    out: BinaryIO,
    err: TextIO,
) -> int:
    """Fetch one URL into *target*; print its -w line; return its exit status."""
    quiet = args.silent and not args.show_error
    info = Transfer(url=url, method=the_plan.method)
    opened = client.pool.connections_opened
    started = time.perf_counter()
    sink: _Sink | None = None
    response: Response | None = None
    try:
        async with asyncio.timeout(args.max_time):
            response = await client.send(
                the_plan.method, url, headers=the_plan.headers, content=the_plan.body
            )
            _note(info, response)
            failed = (args.fail or args.fail_with_body) and response.status_code >= 400
            if args.include or args.head:
                sink = sink or _open(target, out)
                for hop in [*response.history, response]:
                    sink.write(_head_bytes(hop))
            if failed and not args.fail_with_body:
                await response.aread()  # (read, so the connection stays reusable)
            else:
                async for chunk in response.aiter_bytes():
                    sink = sink or _open(target, out)
                    sink.write(chunk)
                    info.size_download += len(chunk)
            if sink is None and target != "-":
                sink = _open(target, out)  # (an empty body still makes the file)
            _closed(args, response)
            if failed:
                raise _HTTPFailed(response)
    except _WriteFailed as exc:
        info.exitcode, info.errormsg = EXIT_WRITE_ERROR, str(exc)
    except _HTTPFailed as exc:
        info.exitcode = EXIT_HTTP_RETURNED_ERROR
        info.errormsg = (f"the server answered {exc.response.status_code} "
                         f"{exc.response.reason}")
    except TimeoutError:
        info.exitcode = EXIT_OPERATION_TIMEDOUT
        info.errormsg = f"the transfer took longer than --max-time ({args.max_time} s)"
    except (OnehopError, ClientError) as exc:
        info.exitcode, info.errormsg = exit_status(exc), _message(exc, the_plan.method, url)
        if response is not None:
            _closed(args, response)
    finally:
        if sink is not None:
            sink.close()
    info.seconds = time.perf_counter() - started
    info.num_connects = client.pool.connections_opened - opened
    if info.exitcode and not quiet:
        print(f"onehop get: {info.method} {info.url}: {info.errormsg}", file=err, flush=True)
    if the_plan.write_out is not None:
        text, unknown = render(the_plan.write_out, info)
        for name in dict.fromkeys(unknown):
            print(f"onehop get: unknown --write-out variable: {name!r}", file=err)
        out.write(text.encode("utf-8"))
        out.flush()
    return info.exitcode


class _HTTPFailed(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


class _WriteFailed(Exception):
    pass


class _Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...
    def close(self) -> None: ...


def _open(target: str, out: BinaryIO) -> _Sink:
    if target == "-":
        return _Flushing(out)
    try:
        return open(target, "wb")  # (closed by the caller)
    except OSError as exc:
        raise _WriteFailed(f"cannot write {target!r}: {exc.strerror or exc}") from None


class _Flushing:
    """stdout for a body: flushed after each piece, as curl's unbuffered output is."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out

    def write(self, data: bytes) -> int:
        n = self._out.write(data)
        self._out.flush()
        return n

    def close(self) -> None:
        self._out.flush()


def _note(info: Transfer, response: Response) -> None:
    info.url = response.url
    info.method = response.method
    info.status = response.status_code
    info.http_version = response.http_version
    info.content_type = response.headers.get("content-type", "")
    info.num_redirects = len(response.history)
    info.reused = response.reused
    info.connection_id = response.connection_id


def _closed(args: argparse.Namespace, response: Response) -> None:
    """With ``-v``, say which connections closed after these responses, and why."""
    if not args.verbose:
        return
    for hop in [*response.history, response]:
        if hop.close_reason:
            print(f"* connection #{hop.connection_id} closed: {hop.close_reason}",
                  file=sys.stderr, flush=True)


def _head_bytes(response: Response) -> bytes:
    """A response head for ``-i``/``-I``: status line, end-to-end fields, then the
    connection-specific ones (the core keeps them apart), CRLF-terminated."""
    lines = [f"HTTP/{response.http_version} {response.status_code} {response.reason}"]
    lines += [f"{n.decode('latin-1')}: {v.decode('latin-1')}" for n, v in response.headers.raw]
    lines += [f"{n.decode('latin-1')}: {v.decode('latin-1')}"
              for n, v in response.connection.fields]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def exit_status(exc: BaseException) -> int:
    """curl's exit status for a failure (man curl, EXIT CODES); 1 for anything else."""
    if isinstance(exc, UnsupportedScheme):
        return EXIT_UNSUPPORTED_PROTOCOL
    if isinstance(exc, InvalidURL):
        return EXIT_URL_MALFORMAT
    if isinstance(exc, ClientTimeout):
        return EXIT_OPERATION_TIMEDOUT
    if isinstance(exc, ConnectError):
        cause = exc.__cause__
        if isinstance(cause, ssl.SSLCertVerificationError):
            return EXIT_PEER_FAILED_VERIFICATION
        if isinstance(cause, ssl.SSLError):
            return EXIT_SSL_CONNECT_ERROR
        if isinstance(cause, socket.gaierror):
            return EXIT_COULDNT_RESOLVE_HOST
        return EXIT_COULDNT_CONNECT
    if isinstance(exc, TooManyRedirects):
        return EXIT_TOO_MANY_REDIRECTS
    if isinstance(exc, ClosedBeforeResponse | ServerClosedIdle | PipelinedRequestUnanswered):
        return EXIT_GOT_NOTHING
    if isinstance(exc, ServerDisconnected):
        return EXIT_RECV_ERROR
    if isinstance(exc, IncompleteMessage):
        return EXIT_PARTIAL_FILE
    if isinstance(exc, RemoteProtocolError):
        return EXIT_WEIRD_SERVER_REPLY
    if isinstance(exc, LocalProtocolError):
        return EXIT_USAGE
    return 1


def _message(exc: BaseException, method: str, url: str) -> str:
    """``Class: cause`` for one line on stderr, without the ``METHOD URL:`` the client's
    own messages start with (the line names them already)."""
    text = str(exc)
    prefix = f"{method} {url}: "
    if text.startswith(prefix):
        text = text[len(prefix):]
    return f"{type(exc).__name__}: {text}"
