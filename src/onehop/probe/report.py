"""Probe output: progress on stderr, a terminal table, ``--json`` and ``--markdown``."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

from onehop.probe.checks import Check, Result, Verdict, run_check

_COLUMNS = ("id", "section", "verdict", "evidence")


def run_all(
    checks: Sequence[Check], target: Any, progress: TextIO | None = sys.stderr
) -> list[Result]:
    """Run *checks* in order against *target*, printing one progress line per check."""
    results: list[Result] = []
    for n, check in enumerate(checks, 1):
        if progress is not None:
            print(f"[{n}/{len(checks)}] {check.id} ...", end="", file=progress, flush=True)
        result = run_check(check, target)
        if progress is not None:
            print(f" {result.verdict.value} ({result.seconds:.2f}s)", file=progress, flush=True)
        results.append(result)
    return results


def _rows(results: Iterable[Result]) -> list[tuple[str, str, str, str]]:
    return [(r.id, r.section, r.verdict.value.upper(), r.evidence) for r in results]


def table(results: Sequence[Result], width: int = 160) -> str:
    """Return a plain-text table, one row per check, evidence cut to fit *width*."""
    rows = _rows(results)
    widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(_COLUMNS[:3])]
    room = max(20, width - sum(widths) - 6)
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(_COLUMNS[:3], widths, strict=True)) + "  evidence"
    ]
    lines.append("-" * min(width, sum(widths) + 6 + room))
    for row in rows:
        ev = row[3] if len(row[3]) <= room else row[3][: room - 1] + "…"
        cells = [cell.ljust(w) for cell, w in zip(row[:3], widths, strict=True)]
        lines.append("  ".join(cells) + "  " + ev)
    lines.append(summary(results))
    return "\n".join(lines)


def summary(results: Sequence[Result]) -> str:
    """Return ``N pass, N fail, N info``."""
    counts = {v: sum(1 for r in results if r.verdict is v) for v in Verdict}
    return ", ".join(f"{counts[v]} {v.value}" for v in Verdict)


def markdown(results: Sequence[Result], title: str = "") -> str:
    """Return a Markdown implementation-status table."""
    out = [f"### {title}", ""] if title else []
    out += ["| id | RFC | verdict | evidence |", "|---|---|---|---|"]
    for row in _rows(results):
        cells = [c.replace("|", "\\|") for c in row]
        out.append(f"| `{cells[0]}` | {cells[1]} | {cells[2]} | {cells[3]} |")
    return "\n".join(out)


def write_json(results: Sequence[Result], path: Path, target: str, kind: str) -> None:
    """Write the results as JSON to *path*."""
    doc = {
        "target": target,
        "kind": kind,
        "summary": summary(results),
        "results": [r.as_dict() for r in results],
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")


def exit_status(results: Sequence[Result]) -> int:
    """Return 1 when any check failed, else 0."""
    return 1 if any(r.verdict is Verdict.FAIL for r in results) else 0
