"""Where asyncio meets the sans-I/O core: write flow control, lazy timers, event-loop choice."""

from onehop._aio.flow import FlowControl
from onehop._aio.loop import LOOP_CHOICES, new_event_loop
from onehop._aio.timer import LazyTimer

__all__ = ["LOOP_CHOICES", "FlowControl", "LazyTimer", "new_event_loop"]
