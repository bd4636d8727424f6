"""``onehop probe matrix CONFIG``: run several targets and write one table, a column each.

CONFIG is TOML with one ``[[target]]`` table per target::

    [[target]]
    label = "nginx"                 # column heading
    kind = "server"                 # server | proxy | client | http2
    url = "http://127.0.0.1:8080/"  # server: URL; proxy: address = "HOST:PORT"
    no-content-path = "/204"        # server, optional: a path answering 204
    # proxy: address = "127.0.0.1:8081" and origin-port = 9000
    # client: command = ["curl", "-s", "{url}/a", "{url}/b"]
    # http2: url = "https://127.0.0.1:8443/" (ALPN h2; http:// by prior knowledge) and,
    # optional, paths = ["/a", "/b"]: the HTTP/2 checks (onehop probe server --http2)

Optional top-level keys: ``timeout`` and ``idle-limit`` (seconds).
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from onehop.probe.checks import (
    CLIENT_CHECKS,
    PROXY_CHECKS,
    SERVER_CHECKS,
    Check,
    Result,
    Verdict,
)

_KINDS = {"server": SERVER_CHECKS, "proxy": PROXY_CHECKS, "client": CLIENT_CHECKS,
          "http2": []}


def _checks(kind: str) -> list[Check]:
    """The checks of *kind*; the HTTP/2 ones are imported only when a target needs them
    (they need the h2 package)."""
    if kind == "http2":
        from onehop.probe.h2checks import H2_CHECKS

        return H2_CHECKS
    return _KINDS[kind]


@dataclass
class Target:
    """One column of the matrix, as read from the config."""

    label: str
    kind: str
    spec: dict[str, Any]


def load(path: Path) -> tuple[list[Target], dict[str, Any]]:
    """Read CONFIG; raise ``ValueError`` naming the first bad target."""
    doc = tomllib.loads(path.read_text())
    targets: list[Target] = []
    for n, spec in enumerate(doc.get("target", []), 1):
        kind = spec.get("kind")
        if kind not in _KINDS:
            raise ValueError(f"target {n}: kind must be server, proxy, client or http2, "
                             f"got {kind!r}")
        need = {"server": "url", "proxy": "address", "client": "command", "http2": "url"}[kind]
        if need not in spec:
            raise ValueError(f"target {n} ({kind}): missing {need!r}")
        if kind == "proxy" and "origin-port" not in spec:
            raise ValueError(f"target {n} (proxy): missing 'origin-port'")
        targets.append(Target(str(spec.get("label", spec[need])), kind, spec))
    if not targets:
        raise ValueError(f"{path}: no [[target]] tables")
    options = {k: v for k, v in doc.items() if k != "target"}
    return targets, options


Runner = Callable[[Target], list[Result]]


def run(targets: Sequence[Target], runner: Runner) -> dict[str, list[Result]]:
    """Run every target with *runner*; keyed by label, in config order."""
    return {t.label: runner(t) for t in targets}


_CELL = {Verdict.PASS: "pass", Verdict.FAIL: "**FAIL**", Verdict.INFO: "info"}


def _esc(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(targets: Sequence[Target], results: dict[str, list[Result]]) -> str:
    """One table: a row per check of every kind present, a column per target.

    Cells read pass, **FAIL**, info, or n/a where the check does not apply to the target's
    kind; a per-target list of FAIL and info evidence follows the table.
    """
    labels = [t.label for t in targets]
    out = ["| check | RFC | " + " | ".join(_esc(x) for x in labels) + " |"]
    out.append("|---|---|" + "---|" * len(labels))
    for kind in _KINDS:
        if not any(t.kind == kind for t in targets):
            continue
        for check in _checks(kind):
            cells = []
            for t in targets:
                found = [r for r in results[t.label] if r.id == check.id] if t.kind == kind else []
                cells.append(_CELL[found[0].verdict] if found else "n/a")
            out.append(f"| `{kind}: {check.id}` | {check.section} | " + " | ".join(cells) + " |")
    out.append("")
    out.append("| target | pass | fail | info |")
    out.append("|---|---|---|---|")
    for t in targets:
        rs = results[t.label]
        counts = [sum(1 for r in rs if r.verdict is v) for v in Verdict]
        out.append(f"| {_esc(t.label)} ({t.kind}) | " + " | ".join(map(str, counts)) + " |")
    out.append("")
    out.append("### Evidence for FAIL and info cells")
    for t in targets:
        out.append("")
        out.append(f"**{_esc(t.label)}** ({t.kind})")
        out.append("")
        for r in results[t.label]:
            if r.verdict is not Verdict.PASS:
                out.append(f"- `{r.id}` {r.verdict.value.upper()}: {_esc(r.evidence)}")
    return "\n".join(out) + "\n"
