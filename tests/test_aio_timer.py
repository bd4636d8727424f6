"""LazyTimer: one handle per connection; each deadline fires at its own time, never early."""

from __future__ import annotations

import asyncio

from onehop._aio import LazyTimer


def test_a_later_deadline_fires_at_its_own_time_not_the_first_handles() -> None:
    async def main() -> tuple[float, list[float]]:
        loop = asyncio.get_running_loop()
        fired: list[float] = []
        timer = LazyTimer(loop, lambda: fired.append(loop.time()))
        start = loop.time()
        timer.arm(0.05)
        await asyncio.sleep(0.02)
        timer.arm(0.1)  # now about start+0.12: the 0.05 handle must re-arm, not fire
        await asyncio.sleep(0.2)
        assert timer.deadline == 0.0
        return start, fired

    start, fired = asyncio.run(main())
    assert len(fired) == 1 and fired[0] - start >= 0.12


def test_an_earlier_deadline_replaces_the_pending_handle() -> None:
    async def main() -> tuple[float, list[float]]:
        loop = asyncio.get_running_loop()
        fired: list[float] = []
        timer = LazyTimer(loop, lambda: fired.append(loop.time()))
        start = loop.time()
        timer.arm(10.0)
        timer.arm(0.03)
        await asyncio.sleep(0.1)
        return start, fired

    start, fired = asyncio.run(main())
    assert len(fired) == 1 and fired[0] - start < 1.0


def test_disarm_and_cancel_mean_no_callback() -> None:
    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        fired: list[float] = []
        timer = LazyTimer(loop, lambda: fired.append(loop.time()))
        timer.arm(0.02)
        timer.disarm()
        await asyncio.sleep(0.05)
        timer.arm(0.02)
        timer.cancel()
        assert not timer.pending
        await asyncio.sleep(0.05)
        return fired

    assert asyncio.run(main()) == []
