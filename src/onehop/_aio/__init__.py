"""Where asyncio meets the sans-I/O core: write flow control and event-loop choice."""

from onehop._aio.flow import FlowControl
from onehop._aio.loop import LOOP_CHOICES, new_event_loop

__all__ = ["LOOP_CHOICES", "FlowControl", "new_event_loop"]
