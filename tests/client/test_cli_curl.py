"""``onehop get`` against curl, flag by flag, byte by byte (issue 15).

curl and ``onehop get`` run with the same flags against one recording server
(:class:`ScriptedServer`: raw sockets, no onehop code judges the bytes), which
keeps each request head as it arrived. The heads must be identical except for
the differences ``docs/client.md`` documents, each written here as the
transformation of curl's bytes that gives onehop's:

- ``User-Agent``: ``onehop/<version>`` instead of ``curl/<version>``.
- ``-0``: onehop says ``Connection: keep-alive`` (curl says nothing, so the
  server closes: RFC 9112 §9.3); ``--no-keepalive`` makes it ``close``.
- ``-H 'Name;'`` (an empty field): the core writes ``Name: `` with the optional
  space RFC 9112 §5 allows, curl ``Name:``.

Outputs (``-i``, ``-I``, ``-o``, ``-w``), exit statuses and ``-s`` are compared
the same way.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from onehop._version import __version__

from .servers import Action, ScriptedServer, Seen, free_port, scripted_in_thread

CURL = shutil.which("curl")
pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(CURL is None, reason="needs curl"),
]

Transform = Callable[[bytes], bytes]


def respond(seen: Seen) -> Action:
    """The recording server's answers, by path."""
    path = seen.path.split("?")[0]
    if path.startswith("/redirect/"):
        left = int(path.rsplit("/", 1)[1])
        if left:
            return _answer(302, f"Location: /redirect/{left - 1}\r\n"), "keep"
    to_end = {"/see-other": 303, "/found": 302, "/temporary": 307, "/permanent": 308}
    if path in to_end:
        return _answer(to_end[path], "Location: /end\r\n"), "keep"
    if path == "/cross":
        host = seen.head.split(b"Host: ")[1].split(b"\r\n")[0].decode()
        port = host.rsplit(":", 1)[1]
        return _answer(302, f"Location: http://localhost:{port}/end\r\n"), "keep"
    if path == "/loop":
        return _answer(302, "Location: /loop\r\n"), "keep"
    if path == "/missing":
        return _answer(404, "Content-Type: text/plain\r\n", b"no such thing\n"), "keep"
    body = f"{seen.method} {seen.path} {len(seen.body)}\n".encode()
    return _answer(200, "Content-Type: text/plain; charset=utf-8\r\n", body), "keep"


def _answer(status: int, fields: str, body: bytes = b"") -> bytes:
    reason = {200: "OK", 302: "Found", 303: "See Other", 307: "Temporary Redirect",
              308: "Permanent Redirect", 404: "Not Found"}[status]
    return (f"HTTP/1.1 {status} {reason}\r\n{fields}Content-Length: {len(body)}\r\n\r\n"
            .encode() + body)


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    with scripted_in_thread(respond) as s:
        yield s


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    (root / "form.txt").write_bytes(b"a=1\r\nb=2\n")
    (root / "doc.json").write_bytes(b'{"k": [1, 2]}\n')
    return root


def curl_version() -> tuple[int, ...]:
    assert CURL is not None
    out = subprocess.run([CURL, "--version"], capture_output=True, text=True, timeout=10).stdout
    return tuple(int(n) for n in out.split()[1].split("-")[0].split(".")[:3])


def curl(args: list[str], stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    """Run curl; skip the test when this curl is too old for a flag (``--json`` is 7.82)."""
    assert CURL is not None
    done = subprocess.run([CURL, *args], input=stdin, capture_output=True, timeout=30)
    if done.returncode == 2 and b"is unknown" in done.stderr:
        pytest.skip(f"curl {curl_version()} lacks a flag: {done.stderr.decode().strip()}")
    return done


def onehop(args: list[str], stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "onehop", "get", *args], input=stdin,
                          capture_output=True, timeout=30, env=os.environ.copy())


def record(server: ScriptedServer, run: Callable[[], object]) -> list[bytes]:
    """The request heads (and bodies) *run* made the server see, in order."""
    before = len(server.seen)
    run()
    return [s.head + s.body for s in server.seen[before:]]


def as_onehop(curl_bytes: bytes) -> bytes:
    """The one difference every head has: the product in ``User-Agent``."""
    return re.sub(rb"User-Agent: curl/[^\r]*", b"User-Agent: onehop/" + __version__.encode(),
                  curl_bytes)


def add_connection(value: bytes) -> Transform:
    """onehop names the persistence it wants as the last field of an HTTP/1.0 head."""
    return lambda head: head.replace(b"\r\n\r\n", b"\r\nConnection: " + value + b"\r\n\r\n", 1)


def _same(head: bytes) -> bytes:
    return head


# (id, curl flags, onehop flags or None for the same, path, stdin, transform of curl's head)
CASES: list[tuple[str, list[str], list[str] | None, str, bytes, Transform]] = [
    ("plain GET", [], None, "/a?q=1", b"", _same),
    ("-0 is an HTTP/1.0 request", ["-0"], None, "/", b"", add_connection(b"keep-alive")),
    ("-0 --no-keepalive", ["-0"], ["-0", "--no-keepalive"], "/", b"", add_connection(b"close")),
    ("--no-keepalive is curl's -H 'Connection: close'", ["-H", "Connection: close"],
     ["--no-keepalive"], "/", b"", _same),
    ("-d with -H", ["-d", "hi", "-H", "X-A: 1"], None, "/p", b"", _same),
    ("-d @file drops CR and LF", ["-d", "@{files}/form.txt"], None, "/p", b"", _same),
    ("--data-binary @file is exact", ["--data-binary", "@{files}/form.txt"], None, "/p", b"",
     _same),
    ("-d @- reads stdin", ["-d", "@-"], None, "/p", b"from stdin\n", _same),
    ("-d twice joins with &", ["-d", "a=1", "-d", "b=2"], None, "/p", b"", _same),
    ("--data-raw keeps the @", ["--data-raw", "@not-a-file"], None, "/p", b"", _same),
    ("-d '' is an empty POST", ["-d", ""], None, "/p", b"", _same),
    ("-X PUT -d", ["-X", "PUT", "-d", "x"], None, "/p", b"", _same),
    ("-0 -d", ["-0", "-d", "x"], None, "/p", b"", add_connection(b"keep-alive")),
    ("-d with its own Content-Type", ["-H", "Content-Type: text/plain", "-d", "x"], None, "/p",
     b"", _same),
    ("--json", ["--json", '{"a":1}'], None, "/j", b"", _same),
    ("--json @file twice", ["--json", "@{files}/doc.json", "--json", "[]"], None, "/j", b"",
     _same),
    ("--json with Accept and a field", ["--json", "1", "-H", "Accept: text/x", "-H", "X-A: 1"],
     None, "/j", b"", _same),
    ("--json with Content-Type", ["-H", "Content-Type: text/plain", "--json", "1"], None, "/j",
     b"", _same),
    ("-I is HEAD", ["-I"], None, "/h", b"", _same),
    ("-H replaces and drops defaults", ["-H", "X-C: 1", "-H", "User-Agent: me", "-H", "Accept:",
                                        "-H", "x-c: 2"], None, "/", b"", _same),
    ("-H 'Name;' sends it empty", ["-H", "X-E;"], None, "/", b"",
     lambda head: head.replace(b"X-E:\r\n", b"X-E: \r\n")),
    ("-H Host goes first", ["-H", "X-B: 2", "-H", "Host: other.example"], None, "/", b"",
     _same),
    ("-A", ["-A", "agent/1"], None, "/", b"", _same),
    ("-u", ["-u", "ann:s3cret"], None, "/", b"", _same),
    ("-L follows a chain", ["-L"], None, "/redirect/2", b"", _same),
    ("-L: 303 turns a POST into a GET without its body", ["-L", "-d", "x"], None, "/see-other",
     b"", _same),
    ("-L: 302 turns a POST into a GET", ["-L", "-d", "x"], None, "/found", b"", _same),
    ("-L: 307 sends the POST and its body again", ["-L", "-d", "x"], None, "/temporary", b"",
     _same),
    ("-L: 308 sends the POST and its body again", ["-L", "-d", "x"], None, "/permanent", b"",
     _same),
    ("-L: credentials stay on their origin", ["-L", "-u", "ann:s3cret"], None, "/cross", b"",
     _same),
]


@pytest.mark.parametrize(("curl_flags", "onehop_flags", "path", "stdin", "transform"),
                         [pytest.param(*case[1:], id=case[0]) for case in CASES])
def test_request_heads_match_curl_byte_for_byte(
    server: ScriptedServer,
    files: Path,
    curl_flags: list[str],
    onehop_flags: list[str] | None,
    path: str,
    stdin: bytes,
    transform: Transform,
) -> None:
    url = server.url(path)

    def fill(flags: list[str]) -> list[str]:
        return [f.replace("{files}", str(files)) for f in flags]

    theirs = record(server, lambda: curl(["-s", "-o", os.devnull, *fill(curl_flags), url], stdin))
    ours = record(server, lambda: onehop(
        ["-o", os.devnull, *fill(onehop_flags if onehop_flags is not None else curl_flags), url],
        stdin))
    assert theirs, "curl sent nothing"
    assert ours == [transform(as_onehop(head)) for head in theirs]


def test_verbose_shows_every_byte_of_the_head_as_sent_connection_close_included(
    server: ScriptedServer,
) -> None:
    url = server.url("/v")
    [sent] = record(server, lambda: onehop(["--no-keepalive", "-v", url]))
    err = onehop(["--no-keepalive", "-v", url]).stderr
    shown = b"".join(line[2:] + b"\r\n" for line in err.split(b"\n") if line.startswith(b"> "))
    assert shown == sent  # the Connection line the core adds included
    assert b"> Connection: close" in err


@pytest.mark.parametrize("flags", [["-i"], ["-I"], ["-i", "-L"], ["-w", "%{http_code}\\n"],
                                   ["-s", "-L", "-w", "%{http_code} %{num_redirects}\\n"]],
                         ids=["-i", "-I", "-i -L", "-w", "-w -L"])
def test_output_matches_curl(server: ScriptedServer, flags: list[str]) -> None:
    url = server.url("/redirect/1")
    assert onehop([*flags, url]).stdout == curl(["-s", *flags, url]).stdout


def test_write_out_variables_match_curl(server: ScriptedServer) -> None:
    if curl_version() < (7, 75):
        pytest.skip("curl before 7.75 lacks %{method} and %{exitcode}")
    fmt = ("%{http_code}|%{response_code}|%{http_version}|%{method}|%{url_effective}|"
           "%{num_connects}|%{num_redirects}|%{size_download}|%{content_type}|%{exitcode}|"
           "%%|\\t|\\n")
    urls = [server.url("/see-other"), server.url("/end")]  # the second reuses the connection
    flags = ["-L", "-d", "x", "-o", os.devnull, "-o", os.devnull, "-w", fmt, *urls]
    ours, theirs = onehop(flags), curl(["-s", *flags])
    assert ours.stdout == theirs.stdout
    assert ours.stdout.split(b"\n")[0].split(b"|")[5:7] == [b"1", b"1"]


def test_write_out_reports_reuse_and_time(server: ScriptedServer) -> None:
    url = server.url("/w")
    out = onehop(["-o", os.devnull, "-o", os.devnull, "-w",
                  "%{reused} %{connection_id} %{num_connects} %{time_total}\\n", url, url])
    first, second = out.stdout.decode().splitlines()
    assert first.split()[0] == "0" and second.split()[0] == "1"
    assert first.split()[1] == second.split()[1]  # one connection carried both
    assert [line.split()[2] for line in (first, second)] == ["1", "0"]
    assert all(float(line.split()[3]) > 0 for line in (first, second))


def test_output_file_holds_the_body_as_curl_writes_it(
    server: ScriptedServer, tmp_path: Path
) -> None:
    url = server.url("/file")
    curl(["-s", "-o", str(tmp_path / "curl.out"), url])
    assert onehop(["-o", str(tmp_path / "onehop.out"), url]).stdout == b""
    assert (tmp_path / "onehop.out").read_bytes() == (tmp_path / "curl.out").read_bytes()


# --- exit statuses: curl's, where curl has one ------------------------------------------------


def _refused() -> str:
    return f"http://127.0.0.1:{free_port()}/"


@pytest.mark.parametrize(
    ("flags", "url", "code"),
    [
        (["--fail"], "/missing", 22),
        (["-L", "--max-redirs", "3"], "/loop", 47),
        ([], "refused", 7),
        ([], "http://[::1/", 3),
        ([], "gopher2://127.0.0.1/", 1),
        (["--fail"], "/found", 0),  # --fail is about 4xx and 5xx only
    ],
    ids=["--fail on 404", "too many redirects", "connection refused", "malformed URL",
         "unsupported scheme", "--fail ignores 3xx"],
)
def test_exit_status_matches_curl(
    server: ScriptedServer, flags: list[str], url: str, code: int
) -> None:
    if url == "refused":
        url = _refused()
    elif url.startswith("/"):
        url = server.url(url)
    ours, theirs = onehop(["-s", *flags, url]), curl(["-s", *flags, url])
    assert (ours.returncode, theirs.returncode) == (code, code)
    assert ours.stdout == theirs.stdout  # --fail prints no body
    assert ours.stderr == b"" == theirs.stderr  # -s: no message


def test_fail_with_body_prints_the_body_and_exits_22(server: ScriptedServer) -> None:
    url = server.url("/missing")
    ours = onehop(["--fail-with-body", url])
    assert ours.returncode == 22 == curl(["-s", "--fail-with-body", url]).returncode
    assert ours.stdout == b"no such thing\n"
    assert ours.stderr.decode() == (f"onehop get: GET {url}: the server answered 404 "
                                    "Not Found\n")


def test_show_error_gives_one_line_with_silent(server: ScriptedServer) -> None:
    url = _refused()
    ours = onehop(["-sS", url])
    assert ours.returncode == 7
    assert ours.stderr.decode().startswith(f"onehop get: GET {url}: ConnectError: cannot connect")
    assert ours.stderr.count(b"\n") == 1 and curl(["-sS", url]).stderr.count(b"\n") == 1


def test_max_time_is_a_timeout_exit_28() -> None:
    def slow(seen: Seen) -> Action:
        return _answer(200, ""), "keep"

    with scripted_in_thread(slow, delay=3.0) as s:
        ours, theirs = onehop(["-m", "0.5", s.url("/")]), curl(["-s", "-m", "0.5", s.url("/")])
    assert (ours.returncode, theirs.returncode) == (28, 28)
    assert b"--max-time (0.5 s)" in ours.stderr


def test_unreadable_data_file_is_refused_before_any_request(server: ScriptedServer) -> None:
    # curl warns and sends an empty POST; onehop refuses with curl's read-error status (26),
    # because an empty POST in place of the file is a surprise (documented difference).
    before = len(server.seen)
    ours = onehop(["-d", "@/no/such/file", server.url("/p")])
    assert ours.returncode == 26
    assert ours.stderr.decode() == (
        "onehop get: cannot read '/no/such/file': No such file or directory\n")
    assert len(server.seen) == before
