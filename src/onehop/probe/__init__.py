"""The probe: judge any HTTP/1.x server or proxy against the Connection rules.

It reads the raw bytes on the wire with its own small socket code (``wire``), so a bug
in ``onehop.core`` cannot hide itself. ``checks`` says what a check is (one per RFC
sentence); ``server_checks`` lists the origin-server checks (``server_connection``,
``server_framing``), ``proxy_checks`` the intermediary checks, with ``origin`` the
recording origin behind a proxy under test, ``client`` the client checks and the scripted
server for them, ``matrix`` several targets in one table, ``report`` the output.
"""

from __future__ import annotations

from onehop.probe import client as _client  # registers CLIENT_CHECKS
from onehop.probe import proxy_checks as _proxy_checks  # registers PROXY_CHECKS
from onehop.probe import server_checks as _server_checks  # registers SERVER_CHECKS
from onehop.probe.checks import (
    CLIENT_CHECKS,
    PROXY_CHECKS,
    SERVER_CHECKS,
    Check,
    Result,
    Verdict,
)

del _client, _proxy_checks, _server_checks

__all__ = ["CLIENT_CHECKS", "PROXY_CHECKS", "SERVER_CHECKS", "Check", "Result", "Verdict"]
