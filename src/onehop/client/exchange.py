"""One resend rule, and one request's attempt bookkeeping, for every sender.

The client, the pipeline and the proxy each send a request, meet a failure and
must decide whether to send it again. They decide here, by reading the error's
type, as Go's ``shouldRetryRequest`` does, not by re-deriving at each site what
happened from counters. :class:`~onehop.client.connection.HTTPConnection` raises
the typed errors where the fact is known:

- :class:`~onehop.client.errors.NothingWritten`: the connection was gone before a
  byte of the request went out. The server never saw it: any method may go
  again, if its body can be produced again (RFC 9110 §9.2.2, "some means to
  detect that the original request was never applied").
- :class:`~onehop.client.errors.ClosedBeforeResponse`: written, then the server
  closed or reset before any byte of the answer. On a *reused* connection this is
  the keep-alive race (RFC 9112 §9.3.1): resend only an idempotent request (RFC
  9110 §9.2.2) or one with an ``Idempotency-Key``, with a replayable body. On a
  new connection it is a real failure.
- anything else (a partial answer, a malformed one, a timeout, our own request
  refused by the core, a fault in the caller's body): never resend. The server
  may be acting on the request, or sending it again would fail the same way.

:class:`Attempt` carries one request through its sends; nothing in it awaits,
so a task and an event-loop callback use it alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from onehop.client.connection import HTTPConnection
from onehop.client.errors import (
    ClientTimeout,
    ClosedBeforeResponse,
    NothingWritten,
    ServerDisconnected,
)
from onehop.client.retry import is_idempotent_request
from onehop.core import Request, State
from onehop.errors import LocalProtocolError, RemoteProtocolError

#: The client sends a request at most twice: once more on a fresh connection after
#: the keep-alive race (RFC 9110 §9.2.2: "SHOULD NOT automatically retry a failed
#: automatic retry").
CLIENT_MAX_SENDS: Final = 2
NOT_REPLAYABLE: Final = "its body is a stream that cannot be replayed"


def should_resend(
    error: BaseException,
    *,
    method: bytes | str,
    headers: Iterable[tuple[bytes | str, bytes | str]],
    reused: bool,
    replayable: bool,
    sends: int,
    max_sends: int,
) -> str | None:
    """Whether a request that failed with *error* may go again on a fresh connection.

    Returns None to resend, else a short reason why not (for error messages and
    trace lines). *reused*: the failed send went on a connection that had
    carried an earlier exchange (for a pipelined request, one behind another
    on it); *replayable*: the body can be produced again; *sends*: sends so
    far, the failed one included; *max_sends*: the caller's limit.

    A bare ``OSError`` says nothing of whether an answer had begun, so it is
    never resent: callers type it first (:meth:`HTTPConnection.lost_error`).
    """
    if isinstance(error, LocalProtocolError):
        return f"the request was refused before it was sent ({error})"
    if isinstance(error, ClientTimeout):
        return "it timed out, and the server may be acting on it"
    if isinstance(error, RemoteProtocolError):
        return "the server's answer was malformed"
    if not isinstance(error, ServerDisconnected):
        if isinstance(error, OSError):
            return "the connection failed, and whether an answer had begun is unknown"
        return f"the failure was local ({type(error).__name__})"
    if sends >= max_sends:
        return f"it was already sent {_times(sends)} (RFC 9110 §9.2.2)"
    if isinstance(error, NothingWritten):
        return None if replayable else NOT_REPLAYABLE
    if not isinstance(error, ClosedBeforeResponse):
        return "part of the answer had arrived"
    if not reused:
        return "the connection was new, so this is no keep-alive race (RFC 9112 §9.3.1)"
    if not replayable:
        return NOT_REPLAYABLE
    if not is_idempotent_request(method, headers):
        name = method.decode("latin-1") if isinstance(method, bytes) else method
        return (f"{name} is not idempotent (RFC 9110 §9.2.2) and no Idempotency-Key "
                "marks it safe to resend (RFC 9112 §9.3.1)")
    return None


def _times(sends: int) -> str:
    return {1: "once", 2: "twice"}.get(sends, f"{sends} times")


def describe(exc: BaseException) -> str:
    """A failure in words, for ``close_reason``, error messages and trace lines."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, ConnectionResetError):
        return f"connection reset by the server ({text})"
    if isinstance(exc, BrokenPipeError):
        return f"broken pipe ({text})"
    return text


class Attempt:
    """One request on its way to an answer: how many sends so far, on which connection.

    The sender calls :meth:`begin` with each connection it sends on (at the
    latest when that send fails: the client opens the books only then), and
    :meth:`failed` with whatever a send raised; ``failed`` aborts the
    connection and applies :func:`should_resend`. No method awaits, so the proxy's
    event-loop callbacks use it as a task does. Owned by one sender; no lock.
    """

    __slots__ = ("conn", "error", "headers", "intact", "max_sends", "method", "replayable",
                 "reused", "sends")

    def __init__(self, request: Request, *, replayable: bool, max_sends: int) -> None:
        self.method = request.method
        self.headers = request.headers
        self.replayable = replayable
        self.max_sends = max_sends
        #: Sends begun so far.
        self.sends = 0
        #: The connection of the current (or last) send, and whether it was reused.
        self.conn: HTTPConnection | None = None
        self.reused = False
        #: The last failure, typed (a socket's OSError becomes a ServerDisconnected kind).
        self.error: BaseException | None = None
        #: The last failure left the connection as it was: the core refused the request
        #: before a byte was written, so the connection was not aborted and the sender
        #: gives it back (:meth:`Pool.give_back`, or its pipeline lane goes on).
        self.intact = False

    @property
    def fresh(self) -> bool:
        """Whether the next send must go on a new connection (it is a resend)."""
        return self.sends > 0

    def begin(self, conn: HTTPConnection, reused: bool) -> None:
        """A send starts on *conn* (*reused*: it carried an earlier exchange)."""
        self.sends += 1
        self.conn = conn
        self.reused = reused
        self.error = None
        self.intact = False

    def failed(self, exc: BaseException, *, cause: str | None = None) -> str | None:
        """The current send raised *exc*: end its connection; return None to resend on a
        fresh one, else the reason not to (:func:`should_resend`).

        The connection is aborted with *cause* (default: *exc* in words) as its
        ``close_reason``, except when the core refused the request's head: then
        nothing was written and the connection is as clean as before
        (``intact``), so one bad request does not cost a good connection.
        """
        conn = self.conn
        error = exc
        if isinstance(exc, OSError) and conn is not None:
            error = conn.lost_error(exc)
        self.error = error
        if conn is not None:
            if (isinstance(exc, LocalProtocolError) and conn.core.our_state is State.IDLE
                    and not conn.at_eof):
                self.intact = True  # (a refused head leaves the core's state unchanged)
            else:
                conn.abort(cause or describe(exc))
        return should_resend(
            error,
            method=self.method,
            headers=self.headers,
            reused=self.reused,
            replayable=self.replayable,
            sends=self.sends,
            max_sends=self.max_sends,
        )
