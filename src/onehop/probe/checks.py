"""One check per RFC sentence: what a check is, the three catalogues and how a check runs.

Every check is a small function registered with its id, the RFC section and the
sentence it derives from; it returns a verdict (pass/fail/info) and one line of
evidence taken from the raw bytes on the wire (``onehop.probe.wire``). The checks
themselves fill the catalogues: ``server_checks`` (from ``server_connection`` and
``server_framing``), ``proxy_checks`` and ``client``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from onehop.probe.wire import WireError


class Verdict(Enum):
    """The outcome of one check."""

    PASS = "pass"
    FAIL = "fail"
    INFO = "info"


Outcome = tuple[Verdict, str]


@dataclass(frozen=True)
class Check:
    """A check: id, the RFC section and sentence it derives from, and its function."""

    id: str
    section: str
    sentence: str
    run: Callable[[Any], Outcome]


@dataclass
class Result:
    """A check's verdict with one line of evidence and how long it took."""

    id: str
    section: str
    sentence: str
    verdict: Verdict
    evidence: str
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready mapping."""
        return {
            "id": self.id,
            "section": self.section,
            "sentence": self.sentence,
            "verdict": self.verdict.value,
            "evidence": self.evidence,
            "seconds": round(self.seconds, 3),
        }


SERVER_CHECKS: list[Check] = []
PROXY_CHECKS: list[Check] = []
CLIENT_CHECKS: list[Check] = []


def _register(
    registry: list[Check], check_id: str, section: str, sentence: str
) -> Callable[[Callable[[Any], Outcome]], Callable[[Any], Outcome]]:
    def deco(func: Callable[[Any], Outcome]) -> Callable[[Any], Outcome]:
        registry.append(Check(check_id, section, sentence, func))
        return func

    return deco


def as_check(
    check_id: str, section: str, sentence: str
) -> Callable[[Callable[[Any], Outcome]], Check]:
    """Make the function a :class:`Check`, registered nowhere: ``server_checks`` lists
    the server checks itself, in an order that interleaves their modules."""

    def deco(func: Callable[[Any], Outcome]) -> Check:
        return Check(check_id, section, sentence, func)

    return deco


def run_check(check: Check, target: Any) -> Result:
    """Run *check* against *target*; an unexpected exception is a fail with its text."""
    start = time.monotonic()
    try:
        verdict, evidence = check.run(target)
    except WireError as exc:
        verdict, evidence = Verdict.FAIL, f"wire: {exc}"
    except OSError as exc:
        verdict, evidence = Verdict.FAIL, f"socket: {type(exc).__name__}: {exc}"
    return Result(
        check.id, check.section, check.sentence, verdict, evidence, time.monotonic() - start
    )
