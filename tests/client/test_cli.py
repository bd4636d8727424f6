"""``onehop get``: bodies on stdout, heads and connection reuse on stderr with -v; one
line per failure with curl's exit status (test_cli_curl.py compares with curl itself)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from onehop.client import cli

from .servers import Action, Script, Seen, ok, scripted_in_thread

pytestmark = pytest.mark.timeout(20)


def _serve(script: Script, delay: float = 0.0) -> Iterator[int]:
    with scripted_in_thread(script, delay=delay) as server:
        yield server.port


@pytest.fixture
def port() -> Iterator[int]:
    def script(seen: Seen) -> Action:
        if seen.path == "/close":
            return ok(b"bye\n", "Connection: close\r\n"), "close"
        return ok(f"{seen.method} {seen.path} {seen.body.decode()}\n".encode()), "keep"

    yield from _serve(script)


def test_get_prints_bodies_and_reuses_one_connection_verbose_rfc9112_9_3(
    port: int, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    base = f"http://127.0.0.1:{port}"
    assert cli.main(["-v", f"{base}/a", f"{base}/close", f"{base}/b"]) == 0
    out, err = capfdbinary.readouterr()
    assert out == b"GET /a \nbye\nGET /b \n"
    text = err.decode()
    assert "connection #" in text and " new for GET" in text and " reused for GET" in text
    assert "closed: server sent Connection: close" in text
    assert "< HTTP/1.1 200 OK" in text and "> GET /a HTTP/1.1" in text


def test_get_with_data_posts_and_headers_are_sent(
    port: int, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    url = f"http://127.0.0.1:{port}/p"
    assert cli.main(["-d", "hi", "-H", "X-A: 1", url]) == 0
    assert capfdbinary.readouterr().out == b"POST /p hi\n"


def test_get_failure_exits_non_zero_with_cause_on_stderr(
    capfdbinary: pytest.CaptureFixture[bytes],
) -> None:
    from .servers import free_port

    assert cli.main([f"http://127.0.0.1:{free_port()}/"]) == 7  # curl's "couldn't connect"
    assert b"ConnectError" in capfdbinary.readouterr().err


def test_register_adds_the_get_subcommand() -> None:
    parser = argparse.ArgumentParser(prog="onehop")
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["get", "-X", "PUT", "-0", "--no-keepalive", "--wait", "0.5",
                              "http://x/", "http://y/"])
    assert (args.method, args.http10, args.no_keepalive, args.wait, args.urls) == (
        "PUT", True, True, 0.5, ["http://x/", "http://y/"])
    assert args.func is cli.run


# --- error paths: one line on stderr naming the cause, curl's exit status, no traceback -----


def test_get_unreachable_host_prints_connect_error_and_exits_7(
    capfdbinary: pytest.CaptureFixture[bytes],
) -> None:
    from .servers import free_port

    url = f"http://127.0.0.1:{free_port()}/"
    assert cli.main([url]) == 7
    err = capfdbinary.readouterr().err.decode()
    assert err.startswith(f"onehop get: GET {url}: ConnectError: cannot connect to ")
    assert "Traceback" not in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("url", "kind", "code", "cause"),
    [
        ("ftp://example.invalid/", "UnsupportedScheme", 1, "unsupported URL scheme"),
        ("example.invalid/path", "UnsupportedScheme", 1, "unsupported URL scheme"),
        ("http:///path", "InvalidURL", 3, "no host in"),
        ("http://127.0.0.1:99999/", "InvalidURL", 3, "Port out of range"),
        ("http://127.0.0.1:eighty/", "InvalidURL", 3, "Port could not be cast"),
        ("http://[::1/", "InvalidURL", 3, "Invalid IPv6 URL"),
    ],
)
def test_get_invalid_url_prints_the_reason_and_exits_as_curl_rfc3986(
    url: str, kind: str, code: int, cause: str, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    assert cli.main([url]) == code  # curl: 1 unsupported protocol, 3 malformed URL
    err = capfdbinary.readouterr().err.decode()
    assert err.startswith(f"onehop get: GET {url}: {kind}: ") and cause in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_get_invalid_url_from_the_onehop_command_has_no_traceback() -> None:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "onehop", "get", "http://[::1/"],
                          capture_output=True, timeout=30)
    assert proc.returncode == 3
    assert proc.stdout == b""
    assert proc.stderr.startswith(b"onehop get: GET http://[::1/: InvalidURL: invalid URL")
    assert b"Traceback" not in proc.stderr


def test_get_non_ascii_url_is_sent_percent_encoded_rfc3986_2_1(
    port: int, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    assert cli.main([f"http://127.0.0.1:{port}/caf\u00e9 au lait"]) == 0
    assert capfdbinary.readouterr().out == b"GET /caf%C3%A9%20au%20lait \n"


def _cut_short(seen: Seen) -> Action:
    if seen.path == "/chunked":
        return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", "close"
    return b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part", "close"


@pytest.mark.parametrize(("path", "part"), [("/length", b"only part"), ("/chunked", b"hello")])
def test_get_server_closing_mid_body_reports_an_incomplete_message_and_exits_18_rfc9112_8(
    path: str, part: bytes, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    # RFC 9112 §8: a message whose connection closes before the Content-Length octets
    # (or the last chunk) arrived is incomplete; it must not pass as a whole response.
    # The body streams out as it arrives (as curl's does), so what came is written; the
    # exit status (curl's 18, "partial file") and the message say it is not all.
    for p in _serve(_cut_short):
        url = f"http://127.0.0.1:{p}{path}"
        assert cli.main([url]) == 18
    out, err = capfdbinary.readouterr()
    assert out == part
    text = err.decode()
    assert text.startswith(f"onehop get: GET {url}: IncompleteMessage: ")
    assert "Traceback" not in text and text.count("\n") == 1


def test_get_failure_does_not_stop_the_next_urls(
    port: int, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    # Every URL is tried; the status is the last failure's (curl: the last URL's).
    assert cli.main(["http://[::1/", f"http://127.0.0.1:{port}/after"]) == 3
    out, err = capfdbinary.readouterr()
    assert out == b"GET /after \n"
    assert b"invalid URL" in err


def test_get_read_timeout_names_the_limit_once_and_exits_28(
    capfdbinary: pytest.CaptureFixture[bytes],
) -> None:
    for p in _serve(lambda seen: (ok(), "keep"), delay=2.0):
        url = f"http://127.0.0.1:{p}/slow"
        assert cli.main(["--timeout", "0.2", url]) == 28
    err = capfdbinary.readouterr().err.decode()
    assert err == (f"onehop get: GET {url}: ReadTimeout: no response within the read "
                   "timeout (0.2 s)\n")


# --- HTTP/1.0 and keep-alive flags ------------------------------------------------------------


def _http10_keep_alive(seen: Seen) -> Action:
    """An HTTP/1.0 server that keeps a connection only when asked (RFC 9112 §9.3)."""
    asked = b"connection: keep-alive" in seen.head.lower()
    extra = "Connection: keep-alive\r\n" if asked else ""
    head = f"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n{extra}\r\n".encode()
    return head + b"10\n", "keep" if asked else "close"


def test_http10_flag_sends_http10_and_keeps_the_connection_when_the_server_agrees_rfc9112_9_3(
    capfdbinary: pytest.CaptureFixture[bytes],
) -> None:
    with scripted_in_thread(_http10_keep_alive) as server:
        assert cli.main(["-0", "-v", server.url("/a"), server.url("/b")]) == 0
    assert [s.head.split(b"\r\n")[0] for s in server.seen] == [
        b"GET /a HTTP/1.0", b"GET /b HTTP/1.0"]
    assert server.connections == 1
    err = capfdbinary.readouterr().err.decode()
    assert "> Connection: keep-alive" in err and " reused for GET" in err


def test_no_keepalive_sends_close_and_opens_a_connection_per_request_rfc9112_9_6(
    capfdbinary: pytest.CaptureFixture[bytes],
) -> None:
    with scripted_in_thread(lambda seen: (ok(), "keep")) as server:
        assert cli.main(["--no-keepalive", "-v", server.url("/a"), server.url("/b")]) == 0
    assert server.connections == 2
    assert all(b"\r\nConnection: close\r\n" in s.head for s in server.seen)
    assert "> Connection: close" in capfdbinary.readouterr().err.decode()


def test_head_flag_prints_the_head_and_reads_no_body_rfc9110_9_3_2(
    capfdbinary: pytest.CaptureFixture[bytes],
) -> None:
    def head(seen: Seen) -> Action:
        return b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\n", "keep"

    with scripted_in_thread(head) as server:
        assert cli.main(["-I", server.url("/"), server.url("/")]) == 0
    assert [s.method for s in server.seen] == ["HEAD", "HEAD"]
    assert server.connections == 1  # no body was expected, so the connection stayed clean
    assert capfdbinary.readouterr().out == (
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\n" * 2)


def test_bad_flags_are_usage_errors_with_status_2(
    capfdbinary: pytest.CaptureFixture[bytes],
) -> None:
    assert cli.main(["-I", "-d", "x", "http://127.0.0.1:1/"]) == 2
    assert cli.main(["-H", "no colon", "http://127.0.0.1:1/"]) == 2
    assert cli.main(["-u", "nopassword", "http://127.0.0.1:1/"]) == 2
    lines = capfdbinary.readouterr().err.decode().splitlines()
    assert lines == [
        "onehop get: -I (HEAD) sends no body: drop -d/--json or -I",
        "onehop get: bad header 'no colon': expected 'Name: value'",
        "onehop get: -u needs USER:PASSWORD (onehop does not prompt)",
    ]


def test_missing_ca_file_exits_77(capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    assert cli.main(["--cacert", "/no/such/ca.pem", "https://127.0.0.1:1/"]) == 77
    err = capfdbinary.readouterr().err.decode()
    assert err.startswith("onehop get: cannot use CA file '/no/such/ca.pem': ")
    assert err.count("\n") == 1


def test_write_out_unknown_variable_warns_and_prints_nothing_for_it(
    port: int, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    assert cli.main(["-o", "/dev/null", "-w", "[%{nope}%{http_code}]",
                     f"http://127.0.0.1:{port}/"]) == 0
    out, err = capfdbinary.readouterr()
    assert out == b"[200]"
    assert err == b"onehop get: unknown --write-out variable: 'nope'\n"
