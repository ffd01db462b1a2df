"""A concurrency budget shared by many processes: a provider's limit held by a whole fleet of workers.

Each worker's gateway limits its own calls per (provider, model, endpoint) with an `AdaptiveLimiter`; with a
`ConcurrencyBudget` it also holds *slots* of a limit that all the budget's users share. The budget itself
lives below this layer's callers (``datamill.store.budget`` keeps it in the metadata database; the
`InMemoryConcurrencyBudget` here serves one process and the tests), and is reached only through the small
synchronous protocol below, run off the event loop.

`SharedSlots` is one gateway's side of one key: it asks the budget for slots in blocks (``block`` at a time,
so the database is not hit per call), hands them to calls, and gives back what it does not use: at once when
it holds more than its fair share (the limit divided among the holders that want slots), else when it has had
no waiting call for ``idle_s``. A holder that dies gives nothing back; its slots expire with its lease.
`BudgetedLimiter` is an `AdaptiveLimiter` whose calls first take a shared slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import secrets
import threading
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from datamill.llm.limits.concurrency import AdaptiveLimiter, LimiterKey, LimiterPool
from datamill.llm.limits.pacing import Pacer, Ticket
from datamill.llm.types import ChatRequest, RateLimits, Usage


@dataclass(frozen=True)
class Grant:
    """What one request to the budget gave: ``slots`` more, and the holder's fair ``share`` now."""

    slots: int
    share: int


class ConcurrencyBudget(Protocol):
    """Slots of per-key limits shared by many holders (synchronous; callers run it off the event loop)."""

    def acquire(self, key: str, holder: str, limit: int, want: int) -> Grant:
        """Up to `want` more slots of `key` for `holder`, never letting all holders pass `limit`."""
        ...

    def release(self, key: str, holder: str, count: int) -> None:
        """Give `count` of `holder`'s slots of `key` back."""
        ...


def budget_key(key: LimiterKey) -> str:
    """The budget's name for a limiter key (provider, model, endpoint)."""
    provider, model, base_url = key
    return f"{provider}|{model}|{base_url or ''}"


class InMemoryConcurrencyBudget:
    """A budget shared by the gateways of one process (thread-safe); holders never expire."""

    def __init__(self) -> None:
        self._held: dict[str, dict[str, int]] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str, holder: str, limit: int, want: int) -> Grant:
        with self._lock:
            holders = self._held.setdefault(key, {})
            mine = holders.setdefault(holder, 0)
            share = math.ceil(limit / len(holders))
            grant = max(0, min(want, limit - sum(holders.values()), share - mine))
            holders[holder] = mine + grant
            return Grant(grant, share)

    def release(self, key: str, holder: str, count: int) -> None:
        with self._lock:
            holders = self._held.get(key, {})
            left = holders.get(holder, 0) - count
            if left > 0:
                holders[holder] = left
            else:
                holders.pop(holder, None)

    def held(self, key: str) -> int:
        """Slots of `key` held by all holders together."""
        with self._lock:
            return sum(self._held.get(key, {}).values())


class SharedSlots:
    """One holder's slots of one budget key; see the module docstring."""

    def __init__(
        self,
        budget: ConcurrencyBudget,
        key: str,
        limit: int,
        *,
        block: int = 16,
        idle_s: float = 0.5,
        retry_s: float = 0.1,
    ) -> None:
        self.budget, self.key, self.limit = budget, key, max(1, limit)
        self.holder = secrets.token_hex(8)
        self.block, self.idle_s, self.retry_s = max(1, block), idle_s, retry_s
        self.held = 0
        self.used = 0
        self.share = self.limit
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._fetching: asyncio.Task[None] | None = None
        self._idle: asyncio.TimerHandle | None = None
        self._returns: set[asyncio.Task[None]] = set()
        self._closed = False

    async def acquire(self) -> None:
        """Wait for a slot of the shared limit."""
        if self.used < self.held and not self._waiters:
            self.used += 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        if self._fetching is None:
            self._fetching = asyncio.ensure_future(self._fetch())
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # handed a slot just as the caller was cancelled
            raise

    def release(self) -> None:
        """A call is done with its slot: hand it to a waiting call, or give it back."""
        self.used -= 1
        if self.held > self.share:
            self._give_back(1)  # above the fair share: others are waiting for it
        elif self._waiters:
            self._wake()
        elif self.held > self.used and self._idle is None:
            self._idle = asyncio.get_running_loop().call_later(self.idle_s, self._on_idle)

    def close(self) -> None:
        """Give every held slot back (synchronously; the gateway is closing).

        A request to the budget still under way gives back what it gets when it returns.
        """
        self._closed = True
        if self.held:
            with contextlib.suppress(Exception):  # unreachable budget: the slots expire on their own
                self.budget.release(self.key, self.holder, self.held)
            self.held = 0

    async def _fetch(self) -> None:
        try:
            while self._live_waiters():
                want = min(self.block, self._live_waiters() - (self.held - self.used))
                grant = await asyncio.to_thread(
                    self.budget.acquire, self.key, self.holder, self.limit, max(1, want)
                )
                if self._closed:
                    if grant.slots:
                        await asyncio.to_thread(self.budget.release, self.key, self.holder, grant.slots)
                    return
                self.held += grant.slots
                self.share = grant.share
                self._wake()
                if not grant.slots:
                    await asyncio.sleep(self.retry_s * (0.5 + random.random()))
        finally:
            self._fetching = None

    def _live_waiters(self) -> int:
        while self._waiters and self._waiters[0].done():
            self._waiters.popleft()
        if self._closed:
            return 0
        return sum(not f.done() for f in self._waiters)

    def _wake(self) -> None:
        while self._waiters and self.used < self.held:
            fut = self._waiters.popleft()
            if not fut.done():
                self.used += 1
                fut.set_result(None)

    def _on_idle(self) -> None:
        self._idle = None
        spare = self.held - self.used
        if spare > 0 and not self._live_waiters():
            self._give_back(spare)

    def _give_back(self, count: int) -> None:
        self.held -= count
        task = asyncio.ensure_future(asyncio.to_thread(self.budget.release, self.key, self.holder, count))
        self._returns.add(task)
        task.add_done_callback(self._returns.discard)


class BudgetedLimiter(AdaptiveLimiter):
    """An `AdaptiveLimiter` whose calls first take a slot of a shared budget (and give it back after)."""

    __slots__ = ("shared",)

    def __init__(
        self, ceiling: int, shared: SharedSlots, *, start: int | None = None, pacer: Pacer | None = None
    ) -> None:
        super().__init__(ceiling, start=start, pacer=pacer)
        self.shared = shared

    async def acquire(self, request: ChatRequest | None = None) -> Ticket:
        await self.shared.acquire()
        try:
            return await super().acquire(request)
        except BaseException:
            self.shared.release()
            raise

    def release(self, ticket: Ticket | None = None) -> None:
        super().release(ticket)
        self.shared.release()

    def release_ok(
        self, ticket: Ticket | None = None, usage: Usage | None = None, limits: RateLimits | None = None
    ) -> None:
        super().release_ok(ticket, usage, limits)
        self.shared.release()

    def release_rate_limited(
        self, ticket: Ticket, retry_after: float | None, limits: RateLimits | None = None
    ) -> None:
        super().release_rate_limited(ticket, retry_after, limits)
        self.shared.release()


def limiter_pool(budget: ConcurrencyBudget | None, *, block: int = 16) -> LimiterPool:
    """The gateway's limiters: plain ones, or (with a budget) each holding slots of the shared limit."""
    if budget is None:
        return LimiterPool()

    def make(key: LimiterKey, ceiling: int, start: int | None, pacer: Pacer | None) -> AdaptiveLimiter:
        slots = SharedSlots(budget, budget_key(key), ceiling, block=block)
        return BudgetedLimiter(ceiling, slots, start=start, pacer=pacer)

    return LimiterPool(make)


def close_pool(pool: LimiterPool) -> None:
    """Give back the shared slots a pool's limiters hold."""
    for _key, limiter in pool.items():
        if isinstance(limiter, BudgetedLimiter):
            limiter.shared.close()
