"""The pool's queue, limits and hand-off, counted directly on the Pool.

STYLE: "Test the pool's limits directly; counting mistakes hide there." Each test
drives ``Pool`` itself (no Client) against a real listening socket and checks
``total``, ``count``, ``idle_count`` and ``waiting`` after every step; the cost
test counts the pool's own steps, not the wall clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from onehop.client import ClientClosed, ConnectError, PoolTimeout
from onehop.client.connection import ConnState, HTTPConnection, Origin
from onehop.client.errors import ClientError
from onehop.client.pool import Loan, LoanState, Pool

from .servers import Action, ScriptedServer, Seen, ok

pytestmark = pytest.mark.timeout(20)


def keep(seen: Seen) -> Action:
    return ok(seen.path.encode()), "keep"


@asynccontextmanager
async def origins(n: int = 1) -> AsyncIterator[list[Origin]]:
    """*n* listening servers; their origins."""
    servers = [ScriptedServer(keep) for _ in range(n)]
    for s in servers:
        await s.__aenter__()
    try:
        yield [("http", "127.0.0.1", s.port) for s in servers]
    finally:
        for s in servers:
            await s.__aexit__()


class Calls:
    """What a loan's callbacks received, in order."""

    def __init__(self) -> None:
        self.got: list[tuple[str, Any]] = []
        self.event = asyncio.Event()

    def lent(self, conn: HTTPConnection, reused: bool) -> None:
        self.got.append(("lent", (conn, reused)))
        self.event.set()

    def failed(self, exc: ClientError) -> None:
        self.got.append(("failed", exc))
        self.event.set()

    async def wait(self) -> None:
        async with asyncio.timeout(5):
            await self.event.wait()
        self.event.clear()


def lend(pool: Pool, origin: Origin, calls: Calls, **kw: Any) -> Loan:
    got = pool.lend(origin, calls.lent, calls.failed, **kw)
    assert isinstance(got, Loan)
    return got


async def ticks(n: int = 3) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


def count_steps(pool: Pool, names: tuple[str, ...] = ("_take_idle", "_reserve", "_evict")
                ) -> dict[str, int]:
    """Wrap the pool's decision steps so each call is counted.

    A compiled ``Pool`` (mypyc) has fixed methods that cannot be wrapped: the test is
    skipped there and runs in the pure build, where the algorithm is the same source.
    """
    if hasattr(Pool, "__mypyc_attrs__"):
        pytest.skip("counts calls by wrapping methods, which a compiled class does not allow")
    counts = dict.fromkeys(names, 0)
    for name in names:
        real: Callable[..., Any] = getattr(pool, name)

        def counted(*a: Any, _real: Callable[..., Any] = real, _n: str = name,
                    **kw: Any) -> Any:
            counts[_n] += 1
            return _real(*a, **kw)

        setattr(pool, name, counted)
    return counts


# --- limits and order ------------------------------------------------------------------------


async def test_per_origin_limit_counts_lent_idle_and_queued_connections() -> None:
    async with origins() as (a,):
        pool = Pool(max_per_origin=2)
        try:
            c1, r1 = await pool.acquire(a)
            c2, r2 = await pool.acquire(a)
            assert (r1, r2) == (False, False)
            assert (pool.total, pool.count(a), pool.idle_count(), pool.waiting) == (2, 2, 0, 0)
            third = asyncio.create_task(pool.acquire(a))
            await ticks()
            assert (pool.total, pool.waiting, pool.queued(a)) == (2, 1, True)
            pool.give_back(c1)  # unused: idle again, and handed to the waiter at once
            conn, reused = await third
            assert conn is c1 and reused
            assert (pool.total, pool.count(a), pool.idle_count(), pool.waiting) == (2, 2, 0, 0)
            assert not pool.queued(a)
            c2.close("done")
            assert (pool.total, pool.count(a)) == (1, 1)
        finally:
            await pool.aclose()
        assert pool.connections_opened == 2


async def test_waiters_of_one_origin_are_served_in_arrival_order() -> None:
    async with origins() as (a,):
        pool = Pool(max_per_origin=1)
        try:
            held, _ = await pool.acquire(a)
            order: list[int] = []

            async def wait(i: int) -> None:
                conn, _ = await pool.acquire(a)
                order.append(i)
                pool.give_back(conn)

            tasks = [asyncio.create_task(wait(i)) for i in range(6)]
            await ticks()
            assert pool.waiting == 6
            pool.give_back(held)
            await asyncio.gather(*tasks)
            assert order == list(range(6))
            assert (pool.total, pool.idle_count(), pool.waiting) == (1, 1, 0)
        finally:
            await pool.aclose()


async def test_a_free_slot_under_the_total_limit_goes_to_the_oldest_waiter_of_any_origin() -> None:
    async with origins(3) as (a, b, c):
        pool = Pool(max_connections=1, max_per_origin=5)
        try:
            held, _ = await pool.acquire(a)
            calls_b, calls_c = Calls(), Calls()
            loan_b = lend(pool, b, calls_b)
            loan_c = lend(pool, c, calls_c)
            assert (loan_b.state, loan_c.state, pool.waiting) == (
                LoanState.QUEUED, LoanState.QUEUED, 2)
            pool.give_back(held)  # idle for a; b, older, evicts it for a slot of its own
            assert held.state is ConnState.CLOSED and held.close_reason == "evicted to make room"
            assert (loan_b.state, loan_c.state) == (LoanState.OPENING, LoanState.QUEUED)
            assert (pool.total, pool.count(b), pool.count(a), pool.waiting) == (1, 1, 0, 1)
            await calls_b.wait()
            (kind, (conn_b, reused)), = calls_b.got
            assert kind == "lent" and not reused and conn_b.origin == b
            conn_b.close("done")  # the slot frees: c's turn
            assert loan_c.state is LoanState.OPENING
            await calls_c.wait()
            assert calls_c.got[0][0] == "lent" and pool.total == 1
        finally:
            await pool.aclose()


async def test_a_newcomer_takes_a_free_slot_when_only_other_origins_wait_on_their_own_limit() -> None:  # noqa: E501
    async with origins(2) as (a, b):
        pool = Pool(max_connections=10, max_per_origin=1)
        try:
            await pool.acquire(a)
            waiter = asyncio.create_task(pool.acquire(a))
            await ticks()
            assert pool.waiting == 1
            conn, reused = await pool.acquire(b, pool_timeout=1)  # not stuck behind a's queue
            assert conn.origin == b and not reused
            assert (pool.total, pool.waiting) == (2, 1)
            waiter.cancel()
        finally:
            await pool.aclose()


async def test_a_newcomer_queues_behind_waiters_on_the_total_limit() -> None:
    async with origins(3) as (a, b, c):
        pool = Pool(max_connections=2, max_per_origin=5)
        try:
            a1, _ = await pool.acquire(a)
            a2, _ = await pool.acquire(a)
            calls_b, calls_c = Calls(), Calls()
            loan_b = lend(pool, b, calls_b)
            pool.give_back(a1)  # b evicts it
            pool.give_back(a2)
            assert a1.state is ConnState.CLOSED and pool.idle_count(a) == 1
            # total is at its limit again (a2 idle, b opening), and nobody waits: c may
            # evict a2, as the only one asking.
            loan_c = lend(pool, c, calls_c)
            assert loan_c.state is LoanState.OPENING and a2.state is ConnState.CLOSED
            await calls_b.wait()
            await calls_c.wait()
            assert loan_b.state is LoanState.LENT and loan_c.state is LoanState.LENT
            # Now a waiter on the total limit exists: a newcomer queues behind it.
            calls_a, calls_d = Calls(), Calls()
            loan_a = lend(pool, a, calls_a)
            loan_d = lend(pool, a, calls_d)
            assert (loan_a.state, loan_d.state, pool.waiting) == (
                LoanState.QUEUED, LoanState.QUEUED, 2)
            assert pool.acquire_idle(a) is None
        finally:
            await pool.aclose()
        assert calls_a.got and isinstance(calls_a.got[0][1], ClientClosed)


async def test_acquire_idle_goes_first_only_when_its_own_origin_has_no_queue() -> None:
    async with origins(2) as (a, b):
        pool = Pool(max_per_origin=1)
        try:
            await pool.acquire(a)
            conn_b, _ = await pool.acquire(b)
            pool.give_back(conn_b)
            queued = lend(pool, a, Calls())
            assert pool.queued(a) and not pool.queued(b)
            assert pool.acquire_idle(b) is conn_b  # a's queue is no reason to wait
            assert pool.acquire_idle(a) is None
            queued.cancel()
        finally:
            await pool.aclose()


async def test_pool_timeout_withdraws_the_waiter_and_keeps_counts() -> None:
    async with origins() as (a,):
        pool = Pool(max_per_origin=1)
        try:
            held, _ = await pool.acquire(a)
            with pytest.raises(PoolTimeout):
                await pool.acquire(a, pool_timeout=0.05)
            assert (pool.waiting, pool.queued(a), pool.total) == (0, False, 1)
            pool.give_back(held)
            assert pool.idle_count(a) == 1
            conn, reused = await pool.acquire(a, pool_timeout=1)
            assert conn is held and reused
        finally:
            await pool.aclose()


# --- the cost of a hand-off ------------------------------------------------------------------


async def test_serving_one_waiter_with_a_thousand_queued_costs_a_constant_number_of_steps() -> None:
    async with origins() as (a,):
        pool = Pool(max_per_origin=1)
        try:
            held, _ = await pool.acquire(a)
            calls = [Calls() for _ in range(1000)]
            loans = [lend(pool, a, c) for c in calls]
            assert pool.waiting == 1000
            steps = count_steps(pool)
            pool.give_back(held)  # one release: the head takes it, the next head stops the pass
            assert loans[0].state is LoanState.LENDING
            assert pool.waiting == 999
            assert steps == {"_take_idle": 2, "_reserve": 1, "_evict": 1}
            await calls[0].wait()
            conn = calls[0].got[0][1][0]
            assert conn is held

            # Withdrawing from the middle and joining the tail cost no step either.
            steps.update(dict.fromkeys(steps, 0))
            assert loans[500].cancel() and loans[500].state is LoanState.CANCELLED
            lend(pool, a, Calls())
            assert steps == {"_take_idle": 0, "_reserve": 0, "_evict": 0}
            assert pool.waiting == 999

            # A second release costs the same as the first.
            pool.give_back(conn)
            assert steps == {"_take_idle": 2, "_reserve": 1, "_evict": 1}
            assert loans[1].state is LoanState.LENDING
        finally:
            await pool.aclose()


async def test_withdrawn_waiters_are_skipped_and_never_called() -> None:
    async with origins() as (a,):
        pool = Pool(max_per_origin=1)
        try:
            held, _ = await pool.acquire(a)
            calls = [Calls() for _ in range(5)]
            loans = [lend(pool, a, c) for c in calls]
            for i in (0, 1, 3):
                assert loans[i].cancel()
            assert not loans[0].cancel()  # once only
            assert pool.waiting == 2
            pool.give_back(held)
            await calls[2].wait()
            conn = calls[2].got[0][1][0]
            pool.give_back(conn)
            await calls[4].wait()
            assert [len(c.got) for c in calls] == [0, 0, 1, 0, 1]
            assert (pool.waiting, pool.queued(a), pool.total) == (0, False, 1)
        finally:
            await pool.aclose()


async def test_cancelled_task_waiter_is_skipped_without_leaking_a_slot() -> None:
    async with origins() as (a,):
        pool = Pool(max_per_origin=1)
        try:
            held, _ = await pool.acquire(a)
            first = asyncio.create_task(pool.acquire(a))
            second = asyncio.create_task(pool.acquire(a))
            await ticks()
            first.cancel()
            pool.give_back(held)  # before the cancelled task ran: its future is done
            conn, reused = await second
            assert conn is held and reused
            with pytest.raises(asyncio.CancelledError):
                await first
            assert (pool.waiting, pool.total) == (0, 1)
        finally:
            await pool.aclose()


# --- lend and cancel, phase by phase ---------------------------------------------------------


async def test_lend_returns_a_reusable_idle_connection_at_once() -> None:
    async with origins() as (a,):
        pool = Pool()
        try:
            conn, _ = await pool.acquire(a)
            pool.give_back(conn)
            calls = Calls()
            got = pool.lend(a, calls.lent, calls.failed)
            assert got is conn and conn.state is ConnState.ACTIVE
            await ticks()
            assert calls.got == []
        finally:
            await pool.aclose()


async def test_lend_with_a_free_slot_opens_the_connection_itself() -> None:
    async with origins() as (a,):
        pool = Pool()
        try:
            calls = Calls()
            loan = lend(pool, a, calls)
            assert loan.state is LoanState.OPENING and pool.total == 1
            await calls.wait()
            ((kind, (conn, reused)),) = calls.got
            assert (kind, reused, loan.state, loan.conn) == ("lent", False, LoanState.LENT, conn)
            assert conn.state is ConnState.ACTIVE and pool.count(a) == 1
            assert not loan.cancel()  # lent: the caller owns it now
            assert conn.state is ConnState.ACTIVE
        finally:
            await pool.aclose()


async def test_loan_cancelled_while_queued_is_never_called() -> None:
    async with origins() as (a,):
        pool = Pool(max_per_origin=1)
        try:
            held, _ = await pool.acquire(a)
            calls = Calls()
            loan = lend(pool, a, calls)
            assert loan.cancel()
            assert (loan.state, pool.waiting, pool.queued(a)) == (LoanState.CANCELLED, 0, False)
            pool.give_back(held)
            await ticks()
            assert calls.got == [] and pool.idle_count(a) == 1
        finally:
            await pool.aclose()


async def test_loan_cancelled_after_the_hand_off_gives_the_connection_back() -> None:
    async with origins() as (a,):
        pool = Pool(max_per_origin=1)
        try:
            held, _ = await pool.acquire(a)
            calls = Calls()
            loan = lend(pool, a, calls)
            pool.give_back(held)
            assert loan.state is LoanState.LENDING  # on_lent is on its way
            assert loan.cancel()
            await ticks()
            assert calls.got == []
            assert (held.state, pool.idle_count(a), pool.total) == (ConnState.IDLE, 1, 1)
        finally:
            await pool.aclose()


async def test_loan_cancelled_while_connecting_leaves_the_connection_idle() -> None:
    async with origins() as (a,):
        pool = Pool()
        try:
            calls = Calls()
            loan = lend(pool, a, calls)
            assert loan.state is LoanState.OPENING
            assert loan.cancel()
            for _ in range(100):
                if pool.idle_count(a):
                    break
                await asyncio.sleep(0.01)
            assert calls.got == []
            assert (pool.idle_count(a), pool.total, pool.connections_opened) == (1, 1, 1)
            # ...and the next caller reuses it.
            assert isinstance(pool.lend(a, calls.lent, calls.failed), HTTPConnection)
        finally:
            await pool.aclose()


async def test_loan_whose_connect_fails_is_told_and_the_slot_comes_back() -> None:
    async with origins() as (a,):
        closed_port: Origin = ("http", "127.0.0.1", a[2])
    pool = Pool(max_per_origin=1)
    try:
        calls = Calls()
        lend(pool, closed_port, calls)
        assert pool.total == 1
        await calls.wait()
        ((kind, exc),) = calls.got
        assert kind == "failed" and isinstance(exc, ConnectError)
        assert (pool.total, pool.count(closed_port)) == (0, 0)
        # Cancelled while connecting, then the connect fails: only the slot comes back.
        quiet = Calls()
        lend(pool, closed_port, quiet).cancel()
        for _ in range(100):
            if not pool.total:
                break
            await asyncio.sleep(0.01)
        assert (pool.total, quiet.got) == (0, [])
    finally:
        await pool.aclose()


async def test_loans_fail_with_client_closed_when_the_pool_closes() -> None:
    async with origins() as (a,):
        pool = Pool(max_per_origin=1)
        opening, queued = Calls(), Calls()
        lend(pool, a, opening)
        lend(pool, a, queued)
        await pool.aclose()
        await opening.wait()
        await queued.wait()
        assert isinstance(opening.got[0][1], ClientClosed)
        assert isinstance(queued.got[0][1], ClientClosed)
        assert (pool.total, pool.waiting) == (0, 0)
        with pytest.raises(ClientClosed):
            pool.lend(a, opening.lent, opening.failed)


async def test_loans_and_tasks_share_one_queue_in_arrival_order() -> None:
    async with origins() as (a,):
        pool = Pool(max_per_origin=1)
        try:
            held, _ = await pool.acquire(a)
            order: list[str] = []
            first = Calls()
            lend(pool, a, first)

            async def task() -> None:
                conn, _ = await pool.acquire(a)
                order.append("task")
                pool.give_back(conn)

            t = asyncio.create_task(task())
            await ticks()
            third = Calls()
            lend(pool, a, third)
            pool.give_back(held)
            await first.wait()
            order.append("loan 1")
            pool.give_back(first.got[0][1][0])
            await t
            await third.wait()
            order.append("loan 2")
            assert order == ["loan 1", "task", "loan 2"]
        finally:
            await pool.aclose()


async def test_a_release_serves_its_origin_even_when_an_older_waiter_of_another_origin_is_stuck() -> None:  # noqa: E501
    async with origins(2) as (a, b):
        pool = Pool(max_connections=10, max_per_origin=1)
        try:
            await pool.acquire(a)
            held_b, _ = await pool.acquire(b)
            calls_a, calls_b = Calls(), Calls()
            loans_a = [lend(pool, a, calls_a) for _ in range(300)]  # older, and stuck
            loan_b = lend(pool, b, calls_b)
            steps = count_steps(pool)
            pool.give_back(held_b)
            assert loan_b.state is LoanState.LENDING
            assert all(loan.state is LoanState.QUEUED for loan in loans_a)
            # a's head is tried once (no idle, no slot) and the pass stops there for a.
            assert steps == {"_take_idle": 2, "_reserve": 1, "_evict": 1}
            await calls_b.wait()
            assert calls_b.got[0][1] == (held_b, True)
            assert pool.waiting == 300
        finally:
            await pool.aclose()


async def test_fresh_loan_skips_idle_connections_and_opens_a_new_one() -> None:
    async with origins() as (a,):
        pool = Pool(max_per_origin=1)
        try:
            conn, _ = await pool.acquire(a)
            pool.give_back(conn)
            calls = Calls()
            loan = lend(pool, a, calls, fresh=True)  # per-origin limit: evicts its own idle
            assert loan.state is LoanState.OPENING and conn.state is ConnState.CLOSED
            await calls.wait()
            new, reused = calls.got[0][1]
            assert new is not conn and not reused and pool.total == 1
        finally:
            await pool.aclose()
