"""One resend rule (RFC 9112 §9.3.1, RFC 9110 §9.2.2), read from the error's type.

First the decision table of ``should_resend``, without I/O; then each branch met
on real sockets: where the connection raises which typed error, and what the
client and the pipeline do with it. Every real-socket test counts what the
server read, so a request sent twice cannot hide.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from onehop.client import (
    Client,
    ClosedBeforeResponse,
    NothingWritten,
    ReadTimeout,
    ServerClosedIdle,
    ServerDisconnected,
    Timeout,
    WriteTimeout,
)
from onehop.client.exchange import CLIENT_MAX_SENDS, Attempt, should_resend
from onehop.client.pipeline import MAX_SENDS
from onehop.client.pool import Pool
from onehop.core import Request
from onehop.errors import IncompleteMessage, InvalidHeaderToSend, LocalProtocolError

from .servers import Action, ScriptedServer, Seen, ok

pytestmark = pytest.mark.timeout(20)


def decide(
    error: BaseException,
    method: str = "GET",
    *,
    headers: list[tuple[str, str]] | None = None,
    reused: bool = True,
    replayable: bool = True,
    sends: int = 1,
    max_sends: int = CLIENT_MAX_SENDS,
) -> str | None:
    return should_resend(error, method=method, headers=headers or [], reused=reused,
                         replayable=replayable, sends=sends, max_sends=max_sends)


# --- the decision table ------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"])
def test_idempotent_request_closed_before_any_answer_on_reused_connection_is_resent_rfc9112_9_3_1(
    method: str,
) -> None:
    assert decide(ClosedBeforeResponse("closed"), method) is None


@pytest.mark.parametrize("method", ["POST", "PATCH", "CONNECT", "get"])
def test_non_idempotent_request_closed_before_any_answer_is_not_resent_rfc9110_9_2_2(
    method: str,
) -> None:
    why = decide(ClosedBeforeResponse("closed"), method)
    assert why is not None and f"{method} is not idempotent" in why


def test_idempotency_key_lets_a_post_be_resent_after_the_keep_alive_race_rfc9110_9_2_2() -> None:
    assert decide(ClosedBeforeResponse("closed"), "POST",
                  headers=[("Idempotency-Key", "k1")]) is None


def test_close_before_answer_on_a_new_connection_is_no_keep_alive_race_rfc9112_9_3_1() -> None:
    why = decide(ClosedBeforeResponse("closed"), reused=False)
    assert why is not None and "new" in why


def test_streamed_body_is_never_resent_rfc9112_9_3_1() -> None:
    assert decide(ClosedBeforeResponse("closed"), replayable=False) == (
        "its body is a stream that cannot be replayed")
    assert decide(NothingWritten("gone"), "POST", replayable=False) == (
        "its body is a stream that cannot be replayed")


@pytest.mark.parametrize("method", ["GET", "POST", "PATCH"])
@pytest.mark.parametrize("reused", [True, False])
def test_request_never_written_is_resent_whatever_the_method_rfc9110_9_2_2(
    method: str, reused: bool
) -> None:
    # "some means to detect that the original request was never applied"
    assert decide(NothingWritten("gone"), method, reused=reused) is None


def test_no_resend_once_part_of_the_answer_arrived_rfc9112_9_3_1() -> None:
    why = decide(ServerDisconnected("closed after a 1xx"))
    assert why == "part of the answer had arrived"


@pytest.mark.parametrize("error", [ReadTimeout("t"), WriteTimeout("t")])
def test_timeouts_are_never_resent_rfc9110_9_2_2(error: Exception) -> None:
    assert decide(error) == "it timed out, and the server may be acting on it"


def test_malformed_answer_is_never_resent() -> None:
    assert decide(IncompleteMessage("cut short")) == "the server's answer was malformed"


def test_our_own_request_refused_by_the_core_is_never_resent() -> None:
    why = decide(InvalidHeaderToSend("invalid value for field 'X'"))
    assert why is not None and why.startswith("the request was refused before it was sent")


@pytest.mark.parametrize(
    "error", [ValueError("body generator failed"), asyncio.CancelledError(), OSError("?")]
)
def test_local_faults_and_untyped_socket_errors_are_never_resent(error: BaseException) -> None:
    assert decide(error) is not None
    assert decide(error, "GET", reused=True) is not None


def test_a_failed_resend_is_not_resent_again_rfc9110_9_2_2() -> None:
    # "A client SHOULD NOT automatically retry a failed automatic retry."
    assert decide(ClosedBeforeResponse("closed"), sends=2) == (
        "it was already sent twice (RFC 9110 §9.2.2)")
    assert decide(NothingWritten("gone"), sends=2) is not None
    # The pipeline's own limit: three sends.
    assert decide(ClosedBeforeResponse("closed"), sends=2, max_sends=MAX_SENDS) is None
    assert decide(ClosedBeforeResponse("closed"), sends=3, max_sends=MAX_SENDS) is not None


def test_method_bytes_and_header_bytes_are_read_alike_rfc9110_9_1() -> None:
    assert should_resend(ClosedBeforeResponse("c"), method=b"POST",
                         headers=[(b"idempotency-key", b"1")], reused=True, replayable=True,
                         sends=1, max_sends=2) is None


# --- the connection raises what happened -------------------------------------------------------


def keep(seen: Seen) -> Action:
    return ok(seen.path.encode()), "keep"


def request(method: bytes = b"GET", path: bytes = b"/") -> Request:
    return Request(method, path, [(b"Host", b"127.0.0.1")])


async def test_connection_gone_before_the_write_raises_nothing_written() -> None:
    read: list[bytes] = []

    async def close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()
        read.append(await reader.read())

    server = await asyncio.start_server(close_at_once, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = Pool()
    try:
        conn, reused = await pool.acquire(("http", "127.0.0.1", port))
        assert not reused
        for _ in range(100):
            if conn.at_eof:
                break
            await asyncio.sleep(0.01)
        with pytest.raises(NothingWritten):
            conn.send_request_nowait(request(b"POST"))
        assert conn.requests_sent == 0
    finally:
        await pool.aclose()
        server.close()
        await server.wait_closed()
    assert read == [b""]  # not one byte reached the server


@pytest.mark.parametrize("after", ["close", "reset"])
async def test_close_or_reset_after_the_request_raises_closed_before_response_rfc9112_9_3_1(
    after: str,
) -> None:
    async with ScriptedServer(lambda s: (b"", after)) as server:
        pool = Pool()
        try:
            conn, _ = await pool.acquire(("http", "127.0.0.1", server.port))
            conn.send_request_nowait(request())
            with pytest.raises(ClosedBeforeResponse) as info:
                await conn.read_response_head(5)
        finally:
            await pool.aclose()
    if after == "reset":
        assert "reset" in str(info.value)
    assert len(server.seen) == 1


async def test_close_after_an_interim_response_is_not_closed_before_response_rfc9110_15_2() -> None:
    early_hints = b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n"
    async with ScriptedServer(lambda s: (early_hints, "close")) as server:
        pool = Pool()
        try:
            conn, _ = await pool.acquire(("http", "127.0.0.1", server.port))
            conn.send_request_nowait(request())
            with pytest.raises(ServerDisconnected) as info:
                await conn.read_response_head(5)
        finally:
            await pool.aclose()
    assert not isinstance(info.value, ClosedBeforeResponse)
    assert "1xx" in str(info.value)


# --- the client on real sockets ----------------------------------------------------------------


def second_on_first_connection(action: Action) -> object:
    """Answer everything, except the second request on connection 1: *action*."""
    def script(seen: Seen) -> Action:
        if seen.conn == 1 and seen.index == 1:
            return action
        return ok(seen.path.encode()), "keep"

    return script


async def test_post_whose_reused_connection_died_before_the_write_is_resent_once_rfc9110_9_2_2() -> None:  # noqa: E501
    lines: list[str] = []
    async with ScriptedServer(keep) as server, Client(max_per_origin=1,
                                                      trace=lines.append) as client:
        async with client.stream("GET", server.url("/a")) as first:
            post = asyncio.create_task(client.post(server.url("/b"), content=b"pay"))
            await asyncio.sleep(0.05)
            assert client.pool.waiting == 1
            await first.aread()  # hands the connection to the queued POST...
        # ...which dies before the POST's task runs (as a server's RST would land).
        (conn,) = [c for c in client.pool._all if c.id == first.connection_id]
        conn.abort("test: reset between hand-off and write")
        r = await post
    assert r.content == b"/b" and not r.reused
    assert [(s.conn, s.method, s.path, s.body) for s in server.seen] == [
        (1, "GET", "/a", b""), (2, "POST", "/b", b"pay")]
    assert any("retrying POST on a new connection" in line for line in lines)


async def test_idempotent_request_reset_on_reused_connection_is_resent_rfc9112_9_3_1() -> None:
    async with ScriptedServer(second_on_first_connection((b"", "reset"))) as server, \
            Client() as client:
        await client.get(server.url("/a"))
        r = await client.get(server.url("/b"))
    assert r.content == b"/b" and not r.reused
    assert [(s.conn, s.path) for s in server.seen] == [(1, "/a"), (1, "/b"), (2, "/b")]


async def test_post_reset_on_reused_connection_fails_naming_the_race_rfc9112_9_3_1() -> None:
    async with ScriptedServer(second_on_first_connection((b"", "reset"))) as server, \
            Client() as client:
        await client.get(server.url("/a"))
        with pytest.raises(ServerClosedIdle) as info:
            await client.post(server.url("/b"), content=b"pay")
    text = str(info.value)
    assert "reused connection #" in text and "reset" in text
    assert "POST is not idempotent (RFC 9110 §9.2.2)" in text
    assert [s.method for s in server.seen] == ["GET", "POST"]


async def test_new_connection_closed_before_any_answer_is_not_resent_rfc9112_9_3_1() -> None:
    async with ScriptedServer(lambda s: (b"", "close")) as server, Client() as client:
        with pytest.raises(ClosedBeforeResponse) as info:
            await client.get(server.url("/a"))
    assert not isinstance(info.value, ServerClosedIdle)
    assert len(server.seen) == 1 and server.connections == 1


async def test_interim_response_then_close_on_reused_connection_is_not_resent_rfc9110_15_2() -> None:  # noqa: E501
    hints = b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n"
    async with ScriptedServer(second_on_first_connection((hints, "close"))) as server, \
            Client() as client:
        await client.get(server.url("/a"))
        with pytest.raises(ServerDisconnected) as info:
            await client.get(server.url("/b"))
    assert not isinstance(info.value, ServerClosedIdle | ClosedBeforeResponse)
    assert [s.path for s in server.seen] == ["/a", "/b"]


async def test_partial_answer_then_close_on_reused_connection_is_not_resent_rfc9112_8() -> None:
    partial = b"HTTP/1.1 200 OK\r\nContent-Le"
    async with ScriptedServer(second_on_first_connection((partial, "close"))) as server, \
            Client() as client:
        await client.get(server.url("/a"))
        with pytest.raises(IncompleteMessage):
            await client.get(server.url("/b"))
    assert [s.path for s in server.seen] == ["/a", "/b"]


async def test_timeout_on_reused_connection_is_not_resent() -> None:
    async with ScriptedServer(second_on_first_connection((b"", "keep"))) as server, \
            Client(timeout=Timeout(read=0.2)) as client:
        await client.get(server.url("/a"))
        with pytest.raises(ReadTimeout, match=r"GET http://.*/b: no response within"):
            await client.get(server.url("/b"))
    assert [s.path for s in server.seen] == ["/a", "/b"]


async def test_request_the_core_refuses_is_not_sent_and_keeps_the_connection() -> None:
    async with ScriptedServer(keep) as server, Client() as client:
        await client.get(server.url("/a"))
        with pytest.raises(LocalProtocolError):
            await client.get(server.url("/b"), headers={"X-Bad": "a\r\nInjected: 1"})
        r = await client.get(server.url("/c"))
    assert r.reused  # the refused request cost no connection
    assert [s.path for s in server.seen] == ["/a", "/c"]
    assert server.connections == 1


async def test_body_longer_than_its_content_length_fails_and_is_not_resent_rfc9112_6_2() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"four"

    async with ScriptedServer(keep) as server, Client() as client:
        await client.get(server.url("/a"))
        with pytest.raises(LocalProtocolError):
            await client.put(server.url("/b"), content=body(),
                             headers={"Content-Length": "2"})
        r = await client.get(server.url("/c"))
    assert not r.reused  # the head had gone out: that connection could not be kept
    assert [s.path for s in server.seen] == ["/a", "/c"]


async def test_request_closed_unanswered_on_the_fresh_connection_too_is_sent_twice_only_rfc9110_9_2_2() -> None:  # noqa: E501
    def script(seen: Seen) -> Action:
        if (seen.conn, seen.index) == (1, 0):
            return ok(b"/a"), "keep"
        return b"", "close"

    async with ScriptedServer(script) as server, Client() as client:
        await client.get(server.url("/a"))
        with pytest.raises(ClosedBeforeResponse):
            await client.get(server.url("/b"))
    assert [(s.conn, s.path) for s in server.seen] == [(1, "/a"), (1, "/b"), (2, "/b")]


async def test_pipelined_request_unanswered_twice_is_sent_a_third_time_rfc9112_9_3_2() -> None:
    def script(seen: Seen) -> Action:
        if seen.conn < 3 and seen.index == 0:
            return ok(seen.path.encode(), "Connection: close\r\n"), "close"
        return ok(seen.path.encode()), "keep"

    async with ScriptedServer(script) as server, Client(pipeline=8) as client:
        rs = await asyncio.gather(*(client.get(server.url(f"/{i}")) for i in range(3)))
    assert [r.content for r in rs] == [b"/0", b"/1", b"/2"]
    assert server.connections == 3
    assert sorted(server.answered()) == ["/0", "/1", "/2"]


# --- Attempt: the bookkeeping shared by every sender -----------------------------------------


async def test_attempt_aborts_the_connection_and_counts_sends() -> None:
    async with ScriptedServer(keep) as server:
        pool = Pool()
        try:
            conn, reused = await pool.acquire(("http", "127.0.0.1", server.port))
            attempt = Attempt(request(), replayable=True, max_sends=2)
            assert not attempt.fresh
            attempt.begin(conn, reused)
            why = attempt.failed(ClosedBeforeResponse("closed"))
            assert why is not None and "new" in why  # a new connection: no race
            assert conn.close_reason == "closed" and attempt.fresh and attempt.sends == 1
            conn2, _ = await pool.acquire(("http", "127.0.0.1", server.port))
            attempt.begin(conn2, True)
            assert attempt.failed(ConnectionResetError(104, "reset")) is not None  # sends == 2
            assert isinstance(attempt.error, ClosedBeforeResponse)
            assert conn2.close_reason is not None and "reset" in conn2.close_reason
        finally:
            await pool.aclose()
