"""Real peers against a real server: httpx, http.client, curl (1.1, -0, keepalive), Starlette."""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route

from tests.server.helpers import hello, running, streaming

pytestmark = pytest.mark.timeout(30)

CURL = shutil.which("curl") or "/usr/bin/curl"


async def _json(request: Request) -> JSONResponse:
    return JSONResponse({"hello": "world", "path": request.url.path})


async def _echo(request: Request) -> PlainTextResponse:
    return PlainTextResponse((await request.body()).decode())


async def _stream(request: Request) -> StreamingResponse:
    async def gen() -> Any:
        for i in range(3):
            yield f"chunk{i};"

    return StreamingResponse(gen(), media_type="text/plain")


STARLETTE = Starlette(routes=[
    Route("/json", _json),
    Route("/echo", _echo, methods=["POST"]),
    Route("/stream", _stream),
])


def test_httpx_reuses_one_connection_rfc9112_9_3() -> None:
    ports: set[int] = set()
    with running(hello) as server, httpx.Client(base_url=f"http://127.0.0.1:{server.port}") as c:
        for i in range(5):
            response = c.get(f"/{i}", extensions={})
            assert response.status_code == 200
            assert response.text == f"GET /{i}"
            stream = response.extensions["network_stream"]
            ports.add(stream.get_extra_info("client_addr")[1])
    assert len(ports) == 1


def test_http_client_keep_alive_and_streamed_body_rfc9112_7_1() -> None:
    with running(streaming) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        try:
            for _ in range(3):
                conn.request("GET", "/")
                response = conn.getresponse()
                assert response.getheader("Transfer-Encoding") == "chunked"
                assert response.read() == b"part1-part2"
                assert not response.will_close
        finally:
            conn.close()


def _curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CURL, "-sS", "-v", "--max-time", "10", *args],
                          capture_output=True, text=True, timeout=15, check=True)


def test_curl_http11_reuses_connection_rfc9112_9_3() -> None:
    with running(hello) as server:
        url = f"http://127.0.0.1:{server.port}"
        result = _curl(f"{url}/a", f"{url}/b")
    assert result.stdout == "GET /aGET /b"
    assert "Re-using existing connection" in result.stderr


def test_curl_http10_closes_without_keep_alive_rfc9112_9_3() -> None:
    with running(hello) as server:
        url = f"http://127.0.0.1:{server.port}"
        result = _curl("-0", f"{url}/a", f"{url}/b")
    assert result.stdout == "GET /aGET /b"
    assert "Re-using existing connection" not in result.stderr


def test_curl_http10_keep_alive_reuses_connection_rfc7230_a_1_2() -> None:
    with running(hello) as server:
        url = f"http://127.0.0.1:{server.port}"
        result = _curl("-0", "-H", "Connection: keep-alive", "--keepalive", f"{url}/a", f"{url}/b")
    assert result.stdout == "GET /aGET /b"
    assert "Re-using existing connection" in result.stderr
    assert "< Keep-Alive: timeout=5, max=" in result.stderr


def test_starlette_app_json_body_and_stream() -> None:
    with running(STARLETTE, lifespan="auto") as server:
        base = f"http://127.0.0.1:{server.port}"
        with httpx.Client(base_url=base) as client:
            assert client.get("/json").json() == {"hello": "world", "path": "/json"}
            assert client.post("/echo", content=b"ping").text == "ping"
            assert client.get("/stream").text == "chunk0;chunk1;chunk2;"
            assert client.get("/missing").status_code == 404
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        try:
            conn.request("GET", "/json")
            assert json.loads(conn.getresponse().read())["hello"] == "world"
        finally:
            conn.close()
