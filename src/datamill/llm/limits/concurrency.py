"""Adaptive concurrency per (provider, model), one FIFO queue for it and the model's per-minute budgets.

- Slow start: without budgets to pace to, the first round trip sends at most `INITIAL_WINDOW` calls (or the
  route's ``max_concurrency`` when that is lower). The first reply either reports the provider's budgets
  (then the `Pacer` paces to them) or shows the model answers without a limit in sight; either way the limit
  then opens to the ceiling. Starting at the ceiling sent a whole burst before any reply could tell what the
  provider allows. Two cases need no slow start, so the first round trip may fill the ceiling: a route that
  declares a budget (``tokens_per_minute`` / ``requests_per_minute``) is paced from the first call, its
  buckets starting empty, so there is no blind burst to hold back; and a route may give
  ``initial_concurrency``, the operator's word for what the first round trip may send (a self-hosted server
  with no per-minute budget: its ``max_concurrency``). A start too high for the provider costs one burst of
  429s, which halves the limit once (below).
- Multiplicative decrease: a 429 halves the limit (floor 1), at most once per *window*. A window is the set
  of requests sent under one limit: 429s that answer requests sent before the last decrease belong to the
  burst that caused it and do not halve again. So a burst of 429s halves once. When the model is paced to
  known budgets and the 429 is about one of them (its headers show the budget spent, or it has none), the
  buckets are lowered instead: the budget, not the number of calls in flight, is what ran out.
- A 429 slows only what it must: the call that got it waits its ``Retry-After`` before it is retried (the
  gateway's retry policy), the budgets it reports lower the buckets, and the other calls go on. Only when
  most answers are 429s (a moving average over about the last 16 answers passes `PAUSE_AT_REFUSED`: 11 in a
  row from none) is the whole key paused for the last ``Retry-After``: the provider is refusing everything,
  more calls would only be refused too, and where refusals count against the budget they would dig the hole
  deeper. A count of 429s in a row would not do: a provider answers a 429 at once and a success after the
  model's latency, so a few chance 429s of one burst of calls come back in a row (1% of 429s with a 20 s
  ``Retry-After`` paused a 5,000-call run three times, ``bench/token_limits.py``).
- Fast recovery to the last level that held: a 429 means the provider held at least the requests the client
  still has in flight, so after a decrease the limiter remembers the fewest requests left in flight when a
  429 of that burst came back (``recover_to``) and regrows to it at +1 per success (slow start, one round
  trip from a halved limit). Plain additive increase from a halved limit took dozens of round trips, and a
  provider capped at 200 concurrent requests got only ~0.68 of its allowed rate
  (``bench/gateway_throughput.py``).
- Additive increase above that level, i.e. probing: +1 per ``limit * rounds`` successes, about +1 per
  ``rounds`` round trips (TCP's congestion avoidance). A probe that fails (a 429 while above the last level
  that held, or a first burst in which the provider held more than half the limit) multiplies ``rounds`` by
  8 (1, 8, 64); a probe that holds resets it. Adding a whole +1 per success above the level would hit the
  rate limit again straight away.
- Pacing: with a `Pacer` (budgets declared on the route, or reported by the provider's headers) a call also
  waits until its request and its expected tokens fit the budgets. The head of the queue waits for both a
  slot and the budgets, so a large call is not overtaken by small ones.

Cost: O(1) per acquire and release. The fast path is a counter (and, when pacing, two bucket checks); a
caller that has to wait parks on one future in a FIFO; one timer wakes the queue when the budgets or a
pause will let its head go.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from datamill.llm.limits.pacing import Pacer, Ticket, exhausted
from datamill.llm.types import ChatRequest, RateLimits, Usage

#: Provider kinds that count the output produced against the token budget, not the request's cap.
OUTPUT_COUNTED = frozenset({"anthropic"})
#: Calls the first round trip may send.
INITIAL_WINDOW = 32
#: The moving average of 429s among answers at which the whole key pauses.
PAUSE_AT_REFUSED = 0.5
#: Weight of the newest answer in that average.
_REFUSED_ALPHA = 1 / 16
#: The pause when the provider gave no ``Retry-After``.
DEFAULT_PAUSE_S = 1.0


class AdaptiveLimiter:
    """A semaphore whose size adapts to rate limiting, paced to per-minute budgets when it has a `Pacer`.

    Usage::

        ticket = await limiter.acquire(request)
        try:
            reply = await call()
        except RateLimitedError as exc:
            limiter.release_rate_limited(ticket, exc.retry_after, limits)
            raise
        except BaseException:
            limiter.release(ticket)
            raise
        limiter.release_ok(ticket, reply.usage, reply.rate_limits)

    Args:
        ceiling: the most calls in flight (the route's ``max_concurrency``).
        start: the limit of the first round trip, at most the ceiling (default: the ceiling with a
            ``pacer``, which paces from the first call; else `INITIAL_WINDOW`).
        pacer: budgets to pace to from the start (declared on the route); without one, a pacer is made
            when a reply first reports a budget.
        cap_counts: the provider counts a request's ``max_tokens`` against its token budget (see `Pacer`).
    """

    __slots__ = (
        "_credit",
        "_failed_at",
        "_failed_probes",
        "_paused_until",
        "_recover_to",
        "_refused",
        "_slow_start",
        "_timer",
        "_timer_at",
        "_waiters",
        "_window",
        "cap_counts",
        "ceiling",
        "decreases",
        "in_flight",
        "limit",
        "pacer",
        "pauses",
        "rate_limited",
    )

    def __init__(
        self, ceiling: int, *, start: int | None = None, pacer: Pacer | None = None, cap_counts: bool = True
    ) -> None:
        self.ceiling = max(1, ceiling)
        self.cap_counts = cap_counts
        if start is None:
            start = self.ceiling if pacer is not None else INITIAL_WINDOW
        self.limit = max(1, min(self.ceiling, start))
        self.pacer = pacer
        self.in_flight = 0
        self.rate_limited = 0
        self.decreases = 0
        #: Times a streak of 429s paused the whole key.
        self.pauses = 0
        self._slow_start = self.limit < self.ceiling
        self._credit = 0
        self._recover_to = self.limit
        self._failed_probes = 0
        self._failed_at = 0
        self._window = 0
        self._refused = 0.0
        self._paused_until = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._waiters: deque[tuple[Ticket, asyncio.Future[None]]] = deque()

    @property
    def paused(self) -> bool:
        """True while a streak of 429s holds back new requests."""
        return self._paused_until > asyncio.get_running_loop().time()

    async def acquire(self, request: ChatRequest | None = None) -> Ticket:
        """Wait for a slot (and, when pacing, room in the budgets for ``request``): the call's ticket."""
        ticket = Ticket()
        pacer = self.pacer
        if pacer is None:
            if self.in_flight < self.limit and self._timer is None and not self._waiters:
                self.in_flight += 1
                ticket.window = self._window
                return ticket
        else:
            if request is not None:
                pacer.estimate(ticket, request)
            if self.in_flight < self.limit and self._timer is None and not self._waiters:
                now = asyncio.get_running_loop().time()
                if pacer.delay(ticket.tokens, now) <= 0:
                    self._admit(ticket, now)
                    return ticket
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((ticket, fut))
        self._wake()
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self._unsend(ticket)  # the slot was handed over just as the caller was cancelled
            raise
        return ticket

    def release(self, ticket: Ticket | None = None) -> None:
        """Give a slot back without a verdict (an error other than a rate limit, a cancellation)."""
        self.in_flight -= 1
        if self._waiters:
            self._wake()

    def release_ok(
        self, ticket: Ticket | None = None, usage: Usage | None = None, limits: RateLimits | None = None
    ) -> None:
        """Give a slot back after a success: settle the budgets at ``usage``, read ``limits``, grow."""
        self.in_flight -= 1
        self._refused -= self._refused * _REFUSED_ALPHA
        if self._slow_start:
            self._slow_start = False
            self.limit = self._recover_to = self.ceiling
        elif self.limit < self.ceiling:
            self._grow()
        if ticket is not None and (self.pacer is not None or limits is not None):
            self._read(ticket, usage, limits)
        if self._waiters:
            self._wake()

    def release_rate_limited(
        self, ticket: Ticket, retry_after: float | None, limits: RateLimits | None = None
    ) -> None:
        """Give a slot back after a 429: halve once per window when it is about a budget, read ``limits``."""
        self.in_flight -= 1
        self.rate_limited += 1
        self._refused += (1.0 - self._refused) * _REFUSED_ALPHA
        self._slow_start = False
        pacer = self.pacer
        if pacer is not None and pacer.paces and exhausted(limits, ticket):
            # A budget ran out: the buckets slow the calls down; fewer calls in flight would not help.
            now = asyncio.get_running_loop().time()
            pacer.refund(ticket, request=False)
            if limits is not None:
                pacer.lower(limits, ticket, now)
            else:
                pacer.empty(now)
        else:
            self._decrease(ticket.window)
        if self._refused >= PAUSE_AT_REFUSED:
            self._pause(retry_after if retry_after else DEFAULT_PAUSE_S)
            self._refused = PAUSE_AT_REFUSED / 2  # after the pause, a few more refusals pause again
        if self._waiters:
            self._wake()

    def _decrease(self, window: int) -> None:
        if window == self._window:
            halved = max(1, self.limit // 2)
            # A failed probe above the last level that held, or a burst that shows the provider held more
            # than half: either way the provider's level is known, so probe past it slowly.
            if self.limit > self._recover_to or self.in_flight > halved:
                self._failed_probes += 1
                self._failed_at = self.limit
            self.limit = halved
            self._window += 1
            self._credit = 0
            self.decreases += 1
            self._recover_to = self.in_flight
        else:
            # A 429 of the same burst: the provider still held at least what is left in flight.
            self._recover_to = min(self._recover_to, self.in_flight)

    def _grow(self) -> None:
        if self.limit < self._recover_to:
            self.limit += 1  # slow start back to a level the provider held
            return
        self._credit += 1  # successes since the last change; an int, so no float drift
        if self._credit >= self.limit * 8 ** min(2, self._failed_probes):
            self._credit = 0
            self._recover_to = self.limit  # it held for a whole probing period
            if self.limit >= self._failed_at:
                self._failed_probes = 0  # the level that failed last holds now: the provider grew
            self.limit += 1

    def _read(self, ticket: Ticket, usage: Usage | None, limits: RateLimits | None) -> None:
        now = asyncio.get_running_loop().time()
        pacer = self._pacer(now)
        if usage is not None:
            pacer.settle(ticket, usage)
        if limits is not None:
            pacer.sync(limits, ticket, now)

    def _pacer(self, now: float) -> Pacer:
        if self.pacer is None:
            self.pacer = Pacer(cap_counts=self.cap_counts, now=now)
        return self.pacer

    def _admit(self, ticket: Ticket, now: float) -> None:
        self.in_flight += 1
        ticket.window = self._window
        if self.pacer is not None:
            self.pacer.take(ticket, now)

    def _unsend(self, ticket: Ticket) -> None:
        """A call admitted but never sent: its slot, request and tokens go back."""
        if self.pacer is not None and ticket.sent_at:
            self.pacer.refund(ticket, request=True)
        self.release(ticket)

    def _pause(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        until = loop.time() + seconds
        if until > self._paused_until:
            self.pauses += 1
            self._paused_until = until
            self._arm(until)

    def _arm(self, at: float) -> None:
        """Wake the queue at ``at`` (a wake-up already due sooner stays: it re-arms for what is left)."""
        if self._timer is not None:
            if self._timer_at <= at:
                return
            self._timer.cancel()
        self._timer_at = at
        self._timer = asyncio.get_running_loop().call_at(at, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._wake()

    def _wake(self) -> None:
        """Admit waiters in FIFO order while slots, pause and budgets allow; skip cancelled ones."""
        waiters = self._waiters
        pacer = self.pacer
        while waiters:
            ticket, fut = waiters[0]
            if fut.done():
                waiters.popleft()
                continue
            if self.in_flight >= self.limit:
                return
            now = asyncio.get_running_loop().time()
            wait = self._paused_until - now
            if pacer is not None:
                wait = max(wait, pacer.delay(ticket.tokens, now))
            if wait > 0:
                self._arm(now + wait)
                return
            waiters.popleft()
            self._admit(ticket, now)
            fut.set_result(None)


LimiterKey = tuple[str, str, str | None]


class LimiterPool:
    """One `AdaptiveLimiter` per key, created on first use with the route's ceiling and declared budgets.

    Args:
        make: builds the limiter of a key (default: a plain `AdaptiveLimiter`; `datamill.llm.limits.shared`
            makes ones that share a concurrency budget with other processes).
    """

    __slots__ = ("_limiters", "_make")

    def __init__(
        self, make: Callable[[LimiterKey, int, int | None, Pacer | None], AdaptiveLimiter] | None = None
    ) -> None:
        self._limiters: dict[LimiterKey, AdaptiveLimiter] = {}
        self._make = make

    def get(
        self,
        key: LimiterKey,
        ceiling: int,
        *,
        start: int | None = None,
        tokens_per_minute: int | None = None,
        requests_per_minute: int | None = None,
    ) -> AdaptiveLimiter:
        """The key's limiter; the first route to ask for a key sets its ceiling, first window and budgets.

        ``start`` is the route's ``initial_concurrency`` (see `AdaptiveLimiter`).
        """
        limiter = self._limiters.get(key)
        if limiter is None:
            pacer = None
            cap_counts = key[0] not in OUTPUT_COUNTED
            if tokens_per_minute or requests_per_minute:
                pacer = Pacer(
                    tokens_per_minute=tokens_per_minute,
                    requests_per_minute=requests_per_minute,
                    cap_counts=cap_counts,
                    now=_now(),
                )
            if self._make is not None:
                limiter = self._make(key, ceiling, start, pacer)
            else:
                limiter = AdaptiveLimiter(ceiling, start=start, pacer=pacer)
            limiter.cap_counts = cap_counts
            self._limiters[key] = limiter
        return limiter

    def items(self) -> list[tuple[LimiterKey, AdaptiveLimiter]]:
        return list(self._limiters.items())


def _now() -> float:
    """The running loop's clock (`time.monotonic` outside a loop, the clock asyncio's loops use)."""
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return time.monotonic()
