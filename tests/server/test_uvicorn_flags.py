"""uvicorn's flags that ``onehop serve`` gained in issue 13 (items 4 and 6): ``--interface``
(ASGI 2 classes, WSGI), ``--header``, ``--env-file``, ``--limit-max-requests-jitter``,
``--version``, ``--help`` with defaults, ``--reload``; uvicorn is the reference where it
decides something (which interface an app has)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from onehop._aio.envfile import EnvFileError, parse
from onehop._aio.reload import FileFilter
from onehop._version import __version__
from onehop.server import Config, Server
from onehop.server.interfaces import detect
from tests.helpers import free_port, wait_for
from tests.server.helpers import connect, read_responses, running
from tests.server.test_cli import ROOT, get, serve

pytestmark = pytest.mark.timeout(60)

GET = b"GET /p?q=1 HTTP/1.1\r\nHost: x\r\n\r\n"


class ClassStyleApp:
    """An ASGI 2 app: the class is called with the scope, the instance with receive/send."""

    def __init__(self, scope: Any) -> None:
        self.scope = scope

    async def __call__(self, receive: Any, send: Any) -> None:
        body = f"asgi {self.scope['asgi']['version']} {self.scope['path']}".encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})


async def asgi3(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"2"), (b"x-app", b"1")]})
    await send({"type": "http.response.body", "body": b"ok"})


class Asgi3Object:
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await asgi3(scope, receive, send)


def asgi2_function(scope: Any) -> Any:
    return ClassStyleApp(scope)


def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = f"wsgi {environ['PATH_INFO']} {environ['QUERY_STRING']}".encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


def test_class_style_asgi2_app_is_served_not_answered_500() -> None:
    with running(ClassStyleApp) as server, connect(server) as sock:
        sock.sendall(GET)
        data = read_responses(sock, 1)
    assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"asgi 2.0 /p")


@pytest.mark.parametrize("app", [ClassStyleApp, asgi3, Asgi3Object(), asgi2_function])
def test_interface_auto_decides_as_uvicorn_does(app: Any) -> None:
    from uvicorn.config import Config as UvicornConfig

    theirs = UvicornConfig(app=app, interface="auto")
    theirs.load()
    assert detect(app) == theirs.interface


def test_interface_asgi2_can_be_forced_for_a_plain_function() -> None:
    with running(asgi2_function, interface="asgi2") as server, connect(server) as sock:
        sock.sendall(GET)
        assert read_responses(sock, 1).endswith(b"asgi 2.0 /p")


def test_interface_wsgi_runs_the_app_in_a_thread_pool() -> None:
    pytest.importorskip("a2wsgi")
    with running(wsgi_app, interface="wsgi") as server, connect(server) as sock:
        sock.sendall(GET + GET)
        data = read_responses(sock, 2)
    assert data.count(b"wsgi /p q=1") == 2


def test_header_flag_adds_fields_and_a_server_field_replaces_ours() -> None:
    with running(asgi3, headers=[("X-Extra", "yes"), ("Server", "custom")]) as server, \
            connect(server) as sock:
        sock.sendall(GET)
        head = read_responses(sock, 1).split(b"\r\n\r\n")[0].lower() + b"\r\n"
    assert b"\r\nx-extra: yes\r\n" in head and b"\r\nx-app: 1\r\n" in head
    assert head.count(b"\r\nserver: ") == 1 and b"\r\nserver: custom\r\n" in head


def test_header_flag_needs_name_colon_value() -> None:
    done = subprocess.run([sys.executable, "-m", "onehop", "serve", "tests.server.apps:app",
                           "--header", "novalue"], cwd=ROOT, capture_output=True, text=True,
                          timeout=20)
    assert done.returncode == 2 and "expected NAME:VALUE" in done.stderr


def test_limit_max_requests_jitter_is_drawn_per_process_within_range() -> None:
    drawn = {Server(Config(app=asgi3, limit_max_requests=10,
                           limit_max_requests_jitter=5)).max_requests for _ in range(200)}
    assert drawn <= set(range(10, 16)) and len(drawn) > 1
    assert Server(Config(app=asgi3, limit_max_requests=10)).max_requests == 10


def test_env_file_syntax_as_python_dotenv_reads_it() -> None:
    text = (
        "# comment\n\nexport A=1\nB = two words  # trailing comment\nC='lit ${A} \\n'\n"
        'D="x\\ty ${A}"\nE=${B}-${MISSING:-dflt}\nF="multi\nline"\nG=\n'
    )
    assert parse(text, {}) == {
        "A": "1", "B": "two words", "C": "lit ${A} \\n", "D": "x\ty 1",
        "E": "two words-dflt", "F": "multi\nline", "G": "",
    }
    with pytest.raises(EnvFileError, match="line 1"):
        parse("not a pair\n", {})


def test_env_file_is_loaded_before_the_app_and_does_not_override(tmp_path: Path) -> None:
    (tmp_path / "envapp.py").write_text(
        "import os\nBODY = (os.environ['ONEHOP_T1'] + ',' + os.environ['ONEHOP_T2']).encode()\n"
        "async def app(scope, receive, send):\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        "    await send({'type': 'http.response.body', 'body': BODY})\n")
    (tmp_path / "app.env").write_text("ONEHOP_T1=from-file\nONEHOP_T2=from-file\n")
    port = free_port()
    env = {**os.environ, "ONEHOP_T2": "from-env"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "onehop", "serve", "envapp:app", "--app-dir", str(tmp_path),
         "--env-file", str(tmp_path / "app.env"), "--port", str(port), "--lifespan", "off"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert get(port) == (200, b"from-file,from-env")
    finally:
        proc.kill()
        proc.wait(10)


def test_missing_env_file_is_one_line_and_exit_2() -> None:
    done = subprocess.run([sys.executable, "-m", "onehop", "serve", "tests.server.apps:app",
                           "--env-file", "/nonexistent.env"], cwd=ROOT, capture_output=True,
                          text=True, timeout=20)
    assert done.returncode == 2 and "cannot read env file" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("command", ["serve", "proxy"])
def test_version_flag_names_onehop_python_and_os(command: str) -> None:
    done = subprocess.run([sys.executable, "-m", "onehop", command, "--version"], cwd=ROOT,
                          capture_output=True, text=True, timeout=20)
    assert done.returncode == 0
    assert done.stdout.startswith(f"Running onehop {__version__} with ")


def test_help_shows_defaults() -> None:
    done = subprocess.run([sys.executable, "-m", "onehop", "serve", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=20)
    text = " ".join(done.stdout.split())
    for expected in ("--port PORT TCP port (0: any free one) (default: 8000)",
                     "(default: 0.25)", "--proxy-headers, --no-proxy-headers",
                     "(default: 127.0.0.1,::1)", "(default: 17)", "--ssl-certfile FILE",
                     "--reload-dir DIR", "--log-config FILE"):
        assert expected in text, expected
    assert "(default: None)" not in text
    proxy = subprocess.run([sys.executable, "-m", "onehop", "proxy", "--help"], cwd=ROOT,
                           capture_output=True, text=True, timeout=20).stdout
    assert "--upstream-ca FILE" in proxy and "--connect-port PORT" in proxy
    assert "(default: 1)" in proxy


# --- --reload --------------------------------------------------------------------------------


def test_reload_filter_follows_uvicorns_include_and_exclude_rules(tmp_path: Path) -> None:
    default = FileFilter()
    assert default("/a/app.py") and not default("/a/notes.txt")
    assert not default("/a/.hidden.py") and not default("/a/__pycache__/app.py")
    assert not default("/a/.git/hooks/x.py")
    templates = FileFilter(includes=["*.html"], excludes=["skip_*.py"])
    assert templates("/a/page.html") and templates("/a/app.py")
    assert not templates("/a/skip_me.py")
    (tmp_path / "vendor").mkdir()
    by_dir = FileFilter(excludes=[str(tmp_path / "vendor")])
    assert not by_dir(tmp_path / "vendor" / "lib.py") and by_dir(tmp_path / "app.py")
    dotfiles = FileFilter(includes=[".*"])  # an include removes it from the default excludes
    assert dotfiles("/a/.env")


def _write_app(path: Path, version: str) -> None:
    path.write_text(
        "import os\n"
        "async def app(scope, receive, send):\n"
        f"    body = b'{version} pid=%d' % os.getpid()\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        "    await send({'type': 'http.response.body', 'body': body})\n")


def test_reload_restarts_on_a_py_change_but_not_on_excluded_files(tmp_path: Path) -> None:
    pytest.importorskip("watchfiles")
    src = tmp_path / "src"
    src.mkdir()
    _write_app(src / "reloadme.py", "v1")
    port = free_port()
    with serve("--port", str(port), "--lifespan", "off", "--app-dir", str(src), "--reload",
               "--reload-dir", str(src), "--reload-delay", "0.1", "--reload-exclude",
               "skip_*.py", app="reloadme:app") as proc:
        status, first = get(port)
        assert status == 200 and first.startswith(b"v1 ")
        time.sleep(0.5)  # (the watcher is running once the worker answers; be safe)
        (src / "notes.txt").write_text("not watched")
        (src / "skip_me.py").write_text("x = 1\n")
        time.sleep(1.0)
        assert get(port)[1] == first, "an excluded change restarted the server"
        _write_app(src / "reloadme.py", "v2")
        assert wait_for(lambda: get(port)[1].startswith(b"v2 "), 15), "no reload"
        assert get(port)[1] != first.replace(b"v1", b"v2")  # a new process
        proc.terminate()
        assert proc.wait(15) == 0
        assert proc.stdout is not None
        out = proc.stdout.read().decode()
    assert "Started reloader process" in out
    assert "WatchFiles detected changes in 'reloadme.py'. Reloading..." in out
    assert "skip_me.py" not in out and "notes.txt" not in out


def test_reload_without_watchfiles_names_the_extra_and_exits_2() -> None:
    code = ("import sys; sys.modules['watchfiles'] = None\n"
            "from onehop.cli import main\n"
            "raise SystemExit(main(['serve', 'tests.server.apps:app', '--reload']))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=20)
    assert done.returncode == 2
    assert done.stderr.strip() == ("onehop serve: --reload needs watchfiles: "
                                   "pip install 'onehop[reload]'")
