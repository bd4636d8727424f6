"""Every core test checks the state machine too.

Each public call on a :class:`Connection` is observed: any change it makes to the
state of either direction must be one the transition table allows
(:data:`onehop.core.state.ALLOWED`), so every scenario of the core suite drives the
table. ``tests/core/test_state_machine.py`` adds the converse: every entry is used.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from onehop.core import Connection, State
from onehop.core.state import ALLOWED

Change = tuple[State, State]
#: Sets that record the changes seen while a test that asked for them runs.
_RECORDERS: list[set[Change]] = []
_OBSERVED = ("receive_data", "next_event", "send", "send_failed")


def _observed(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(self: Connection, *args: Any, **kwargs: Any) -> Any:
        before = (self.our_state, self.their_state)
        try:
            return method(self, *args, **kwargs)
        finally:
            for old, new in zip(before, (self.our_state, self.their_state), strict=True):
                if old is not new:
                    assert (old, new) in ALLOWED, (
                        f"{method.__name__} moved a direction {old.name} -> {new.name}, "
                        "which the transition table does not allow")
                    for seen in _RECORDERS:
                        seen.add((old, new))

    return call


@pytest.fixture(scope="package", autouse=True)
def _state_changes_follow_the_table() -> Iterator[None]:
    patch = pytest.MonkeyPatch()
    for name in _OBSERVED:
        patch.setattr(Connection, name, _observed(getattr(Connection, name)))
    yield
    patch.undo()


@pytest.fixture
def state_changes() -> Iterator[set[Change]]:
    """The (old, new) state changes of either direction seen during the test."""
    seen: set[Change] = set()
    _RECORDERS.append(seen)
    yield seen
    _RECORDERS.remove(seen)
