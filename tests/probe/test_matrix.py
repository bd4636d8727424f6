"""``onehop probe matrix CONFIG``: several targets, one Markdown table, a column each."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from onehop.probe.cli import main
from tests.probe.conftest import free_port, http_server_cmd, naive_proxy_cmd, running

pytestmark = pytest.mark.timeout(60)


def test_matrix_writes_one_table_with_a_column_per_target(www: Path, tmp_path: Path) -> None:
    s10, s11, proxy, origin = free_port(), free_port(), free_port(), free_port()
    config = tmp_path / "targets.toml"
    config.write_text(
        f"""
timeout = 2.0
idle-limit = 1.0

[[target]]
label = "http.server 1.1"
kind = "server"
url = "http://127.0.0.1:{s11}/index.html"

[[target]]
label = "http.server 1.0"
kind = "server"
url = "http://127.0.0.1:{s10}/index.html"

[[target]]
label = "naive proxy"
kind = "proxy"
address = "127.0.0.1:{proxy}"
origin-port = {origin}

[[target]]
label = "urllib"
kind = "client"
command = [
    "{sys.executable}", "-c",
    "import sys,urllib.request as u; u.urlopen(sys.argv[1])", "{{url}}/a",
]
"""
    )
    out = tmp_path / "status.md"
    with (
        running(http_server_cmd(s11, www, "HTTP/1.1"), s11),
        running(http_server_cmd(s10, www, "HTTP/1.0"), s10),
        running(naive_proxy_cmd(proxy, origin), proxy),
    ):
        status = main(["probe", "matrix", str(config), "--markdown", str(out)])
    assert status == 1
    text = out.read_text()
    header = text.splitlines()[0]
    assert header == "| check | RFC | http.server 1.1 | http.server 1.0 | naive proxy | urllib |"
    row = next(line for line in text.splitlines() if line.startswith("| `server: close-in-list`"))
    assert row.endswith("| **FAIL** | pass | n/a | n/a |")
    row = next(line for line in text.splitlines() if line.startswith("| `proxy: req-strip-named`"))
    assert row.endswith("| n/a | n/a | **FAIL** | n/a |")
    assert "| `client: client-reuse` |" in text
    assert "**naive proxy** (proxy)" in text


def test_matrix_rejects_a_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[[target]]\nkind = "proxy"\naddress = "127.0.0.1:1"\n')
    assert main(["probe", "matrix", str(config)]) == 2
    assert "origin-port" in capsys.readouterr().err
