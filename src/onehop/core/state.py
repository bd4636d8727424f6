"""The state of one direction of a connection: an Enum and one transition table.

Role-blind on purpose (the hyper ``Reading``/``Writing`` split): the same table
drives what we write and what we read, for client and server alike. Role rules
(a server pauses its reader until the response is done; a client may pipeline)
live in :mod:`onehop.core.connection`, which fires the triggers: every change of
either direction is a look-up in this table, so a change the table lacks fails
at once (KeyError) instead of leaving the connection in a state no rule expects.
"""

from __future__ import annotations

import enum
from typing import Final


class State(enum.Enum):
    """Where one direction of a connection is."""

    IDLE = "IDLE"  #: between messages: the next thing is a head
    BODY = "BODY"  #: a head is done; content until EndOfMessage
    PAUSED = "PAUSED"  #: a message is done; waiting for the other direction
    DONE = "DONE"  #: the last message on this connection is done (close)
    SWITCHED = "SWITCHED"  #: the connection became a tunnel (101 or CONNECT 2xx)
    CLOSED = "CLOSED"  #: end of stream
    ERROR = "ERROR"  #: a protocol error; nothing more is valid

    # Members are singletons: identity hashing keeps table lookups in C (Enum's
    # default hashes the name in Python, a measurable cost on the hot path).
    __hash__ = object.__hash__


class Trigger(enum.Enum):
    """What happened to the direction."""

    HEAD = "head"  #: a message head (a final response, or a request)
    END = "end"  #: the message ended and the connection persists
    END_LAST = "end-last"  #: the message ended and it was the last one
    PAUSE = "pause"  #: the message ended; wait for the other direction
    RESUME = "resume"  #: the other direction is done; carry on
    SWITCH = "switch"  #: switch to a tunnel
    CLOSE = "close"  #: end of stream
    FAIL = "fail"  #: protocol error

    __hash__ = object.__hash__


S, T = State, Trigger

TRANSITIONS: Final[dict[tuple[State, Trigger], State]] = {
    (S.IDLE, T.HEAD): S.BODY,
    (S.IDLE, T.SWITCH): S.SWITCHED,
    # The peer ended persistence while this direction was between messages.
    (S.IDLE, T.END_LAST): S.DONE,
    (S.BODY, T.END): S.IDLE,
    (S.BODY, T.END_LAST): S.DONE,
    (S.BODY, T.PAUSE): S.PAUSED,
    (S.BODY, T.SWITCH): S.SWITCHED,
    (S.PAUSED, T.RESUME): S.IDLE,
    (S.PAUSED, T.END_LAST): S.DONE,
    (S.PAUSED, T.SWITCH): S.SWITCHED,
    # A tunnel (CONNECT 2xx) opens even when the HTTP exchange would not persist.
    (S.DONE, T.SWITCH): S.SWITCHED,
    # Closing is allowed from anywhere but ERROR; what it means (clean or
    # truncated) is decided by the reader, not by the table.
    **{(s, T.CLOSE): S.CLOSED for s in State if s is not S.ERROR},
    **{(s, T.FAIL): S.ERROR for s in State},
}


#: The same table by trigger: ``NEXT[trigger][state]`` is the next state, and a
#: state with no entry raises KeyError. The connection looks up every change here
#: (one identity-hashed dict lookup; see ``State.__hash__``).
NEXT: Final[dict[Trigger, dict[State, State]]] = {
    trigger: {s: n for (s, t), n in TRANSITIONS.items() if t is trigger} for trigger in Trigger
}

#: Every (state, next state) pair the table allows, whatever the trigger.
ALLOWED: Final[frozenset[tuple[State, State]]] = frozenset(
    (s, n) for (s, _), n in TRANSITIONS.items()
)


def transition(state: State, trigger: Trigger) -> State:
    """Return the next state, or raise KeyError for a transition not in the table."""
    return TRANSITIONS[(state, trigger)]
