"""Real peers for the probe (see ``peers``): fixtures and skip markers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.probe.peers import (
    HERE,
    NGINX,
    NODE,
    free_port,
    http_server_cmd,
    naive_proxy_cmd,
    nginx_cmd,
    nginx_conf,
    nginx_origin_body,
    nginx_proxy_body,
    node_cmd,
    running,
    uvicorn_cmd,
    wait_port,
)

__all__ = [
    "HERE",
    "NGINX",
    "NODE",
    "free_port",
    "http_server_cmd",
    "naive_proxy_cmd",
    "nginx_cmd",
    "nginx_conf",
    "nginx_origin_body",
    "nginx_proxy_body",
    "node_cmd",
    "running",
    "uvicorn_cmd",
    "wait_port",
]


@pytest.fixture(scope="module")
def www(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("www")
    (root / "index.html").write_text("hello from the probe tests\n")
    return root


needs_nginx = pytest.mark.skipif(not shutil.which(NGINX), reason="nginx not installed")
needs_node = pytest.mark.skipif(not shutil.which(NODE), reason="node not installed")
