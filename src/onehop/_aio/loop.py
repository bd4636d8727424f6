"""Event-loop choice: uvloop when installed (``auto``), else the standard loop."""

from __future__ import annotations

import asyncio
import importlib

#: Values accepted by ``--loop``.
LOOP_CHOICES = ("auto", "asyncio", "uvloop")


def new_event_loop(choice: str = "auto") -> asyncio.AbstractEventLoop:
    """Return a new event loop of the kind *choice* names.

    Raises:
        ValueError: unknown *choice*.
        ImportError: ``uvloop`` asked for but not installed.
    """
    if choice not in LOOP_CHOICES:
        raise ValueError(f"unknown loop {choice!r}; choose from {', '.join(LOOP_CHOICES)}")
    if choice != "asyncio":
        try:
            uvloop = importlib.import_module("uvloop")
        except ImportError:
            if choice == "uvloop":
                raise
        else:
            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
            return loop
    return asyncio.new_event_loop()
