"""``onehop get -w FORMAT``: curl's ``--write-out`` for the variables that matter here.

A curl user writes ``-w '%{http_code} %{time_total}\\n'`` and expects the same
text. The variables are curl's names with curl's formatting (times in seconds
with six decimals, ``http_code`` as three digits, ``000`` when no response
came), plus onehop's own about the connection, which is what ``onehop get``
is for. ``%%`` is a percent sign; ``\\n``, ``\\r``, ``\\t`` and ``\\\\`` are
escapes, as in curl.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

#: Every variable ``-w`` knows, with what it means (``onehop get --help`` and docs).
VARIABLES: Final = {
    "http_code": "status code of the last response, 000 if none (curl)",
    "response_code": "same as http_code (curl)",
    "http_version": "HTTP version of the last response: 1.0 or 1.1, 0 if none (curl)",
    "method": "method of the last request, after redirects (curl)",
    "url_effective": "URL of the last request, after redirects (curl)",
    "num_connects": "new connections opened for this URL, redirects and resends included (curl)",
    "num_redirects": "redirects followed (curl)",
    "size_download": "body bytes of the last response (curl)",
    "content_type": "Content-Type of the last response (curl)",
    "time_total": "seconds from the first request to the end of the last body (curl)",
    "exitcode": "the exit status for this URL (curl)",
    "errormsg": "the error for this URL, empty if none (curl)",
    "reused": "1 if the last request went over a reused connection, else 0 (onehop)",
    "connection_id": "onehop's number of the connection that carried the last request (onehop)",
    "close_reason": "why that connection closed after the response; empty if kept (onehop)",
}

_TOKEN_RE: Final = re.compile(r"%\{([A-Za-z_]+)\}|%%|\\[nrt\\]")
_ESCAPES: Final = {"\\n": "\n", "\\r": "\r", "\\t": "\t", "\\\\": "\\", "%%": "%"}


@dataclass
class Transfer:
    """What one URL's transfer gave, for :func:`render`."""

    url: str
    method: str
    status: int = 0
    http_version: str = "0"
    content_type: str = ""
    num_connects: int = 0
    num_redirects: int = 0
    size_download: int = 0
    seconds: float = 0.0
    exitcode: int = 0
    errormsg: str = ""
    reused: bool = False
    connection_id: int | None = None
    close_reason: str = ""

    def value(self, name: str) -> str | None:
        """The text of variable *name*, or None if there is no such variable."""
        if name in ("http_code", "response_code"):
            return f"{self.status:03d}"
        if name == "time_total":
            return f"{self.seconds:.6f}"
        if name == "url_effective":
            return self.url
        if name == "reused":
            return "1" if self.reused else "0"
        if name == "connection_id":
            return "" if self.connection_id is None else str(self.connection_id)
        if name in ("http_version", "method", "content_type", "errormsg", "close_reason"):
            text: str = getattr(self, name)
            return text
        if name in ("num_connects", "num_redirects", "size_download", "exitcode"):
            return str(getattr(self, name))
        return None


def render(fmt: str, transfer: Transfer) -> tuple[str, list[str]]:
    """*fmt* with its variables and escapes replaced; and the unknown variable names
    (each replaced by nothing, as curl does, and reported once by the caller)."""
    unknown: list[str] = []

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return _ESCAPES[match.group(0)]
        text = transfer.value(name)
        if text is None:
            unknown.append(name)
            return ""
        return text

    return _TOKEN_RE.sub(sub, fmt), unknown
