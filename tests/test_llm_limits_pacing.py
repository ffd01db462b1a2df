"""Pacing to per-minute budgets, slow start, and 429s that slow only what they must."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from datamill.core.errors import ConfigError
from datamill.llm.fake_server import FakeOpenAIServer
from datamill.llm.gateway import Gateway
from datamill.llm.limits.buckets import TokenBucket
from datamill.llm.limits.concurrency import INITIAL_WINDOW, AdaptiveLimiter
from datamill.llm.limits.estimate import TokenEstimator
from datamill.llm.limits.pacing import Pacer, Ticket
from datamill.llm.retry import RetryPolicy
from datamill.llm.routing import Routing
from datamill.llm.simulator import ProviderSimulator
from datamill.llm.types import BudgetReading, ChatRequest, Message, RateLimits, Usage

RETRY = RetryPolicy(base_delay=0.001, max_delay=0.01, max_rate_limit_retries=1000)


def _rows(n: int, words: int = 40, cap: int = 50) -> list[ChatRequest]:
    return [ChatRequest((Message("user", f"row {i} " + "word " * words),), max_tokens=cap) for i in range(n)]


# ---- against the provider simulator ------------------------------------------------------------------------


@pytest.mark.parametrize("declared", [True, False])
async def test_declared_budgets_keep_every_call_inside_them(declared: bool) -> None:
    # The simulator's window is 3 seconds (a scaled minute): 20,000 tokens and 250 requests. 260 calls of
    # ~100 tokens each (prompt + cap) need about 1.3 windows; sent at once they overflow the first. Gemini
    # sends no rate-limit headers: the declared budgets are all the gateway knows.
    fields: dict[str, Any] = {"max_concurrency": 256}
    if declared:
        fields |= {"tokens_per_minute": 400_000, "requests_per_minute": 5_000}  # the same, per real minute
    async with ProviderSimulator(tokens_per_minute=20_000, requests_per_minute=250, window_s=3.0) as sim:
        async with Gateway(Routing.from_dict(sim.routes(**fields)), retry=RETRY) as gateway:
            results = await asyncio.gather(*(gateway.chat("sim-gemini/m", r) for r in _rows(260)))
        refused = sum(1 for e in sim.log if e.behaviour == "budget")

    assert len(results) == 260
    if declared:
        assert refused <= 260 // 100  # at most 1% (none on a quiet machine)
    else:
        assert refused > 260 // 10  # the control: without the declared budgets the same calls overflow


async def test_a_budget_reported_by_the_headers_paces_the_calls_after_it() -> None:
    async with ProviderSimulator(requests_per_minute=60, tokens_per_minute=100_000) as sim:
        gateway = Gateway(Routing.from_dict(sim.routes()), retry=RETRY)
        async with gateway:
            await gateway.chat("sim-openai/m", _rows(1)[0])  # its headers report 60 requests a minute
            pacer = gateway.limiter("sim-openai/m").pacer
            second = asyncio.create_task(gateway.chat("sim-openai/m", _rows(2)[1]))
            await asyncio.sleep(0.3)
            assert not second.done()  # one request a second: the next waits for its share
            await asyncio.wait_for(second, timeout=5)

    assert pacer is not None
    assert pacer.requests is not None
    assert pacer.requests.per_minute == 60
    assert [e.behaviour for e in sim.log] == [None, None]


async def test_one_429_with_a_long_retry_after_slows_only_its_own_call() -> None:
    async with ProviderSimulator(latency_s=0.01, retry_after_s=5.0) as sim:
        sim.set("rate_limit", 1.0, when=lambda r: r.mentions("row 3 ") and r.api == "openai")
        routing = Routing.from_dict(sim.routes(max_concurrency=4))
        async with Gateway(routing, retry=RetryPolicy(max_rate_limit_retries=1)) as gateway:
            calls = [asyncio.create_task(gateway.chat("sim-openai/m", r)) for r in _rows(40)]
            done, _ = await asyncio.wait(calls[:3] + calls[4:], timeout=4.0)
            assert len(done) == 39  # the others all finished long before row 3's Retry-After ran out
            sim.set("rate_limit", 0.0)
            await asyncio.wait_for(calls[3], timeout=20)
            assert gateway.limiter("sim-openai/m").pauses == 0


async def test_429s_that_report_a_spent_budget_lower_the_buckets_not_the_concurrency() -> None:
    async with ProviderSimulator(tokens_per_minute=4_000, window_s=1.0) as sim:
        # The route declares twice the real budget: the simulator refuses calls, and its headers correct us.
        routing = Routing.from_dict(sim.routes(max_concurrency=64, tokens_per_minute=480_000))
        async with Gateway(routing, retry=RETRY) as gateway:
            results = await asyncio.gather(*(gateway.chat("sim-openai/m", r) for r in _rows(80)))
            limiter = gateway.limiter("sim-openai/m")

    assert len(results) == 80
    assert limiter.rate_limited > 0
    assert limiter.decreases == 0


# ---- slow start against a loopback server -----------------------------------------------------------------


async def test_the_first_round_trip_sends_at_most_the_initial_window_then_the_limit_opens() -> None:
    arrived_at_first_answer: list[int] = []

    def reply(body: dict[str, Any]) -> str:
        if not arrived_at_first_answer:
            arrived_at_first_answer.append(srv.count)
        return "ok"

    async with FakeOpenAIServer(latency_s=0.5, reply=reply) as srv:
        routes = {"t/*": {"provider": "openai", "base_url": srv.base_url, "max_concurrency": 256}}
        async with Gateway(Routing.from_dict({"routes": routes}), retry=RETRY) as gateway:
            await asyncio.gather(*(gateway.chat("t/m", r) for r in _rows(200)))
            limit = gateway.limiter("t/m").limit

    assert arrived_at_first_answer[0] <= INITIAL_WINDOW
    assert srv.max_in_flight > 4 * INITIAL_WINDOW  # no budget in sight: the limit opened to the ceiling
    assert limit == 256


async def test_a_route_that_declares_a_budget_or_an_initial_window_skips_slow_start() -> None:
    # A declared budget paces from the first call (its buckets start empty), so the first round trip may fill
    # the ceiling; initial_concurrency says so outright. Otherwise the first round trip holds back.
    async with FakeOpenAIServer(latency_s=0.01) as srv:
        base = {"provider": "openai", "base_url": srv.base_url, "max_concurrency": 256}
        routes = {
            "plain": base,
            "budget": {**base, "requests_per_minute": 600_000},
            "told": {**base, "initial_concurrency": 200},
            "toomuch": {**base, "initial_concurrency": 1000, "max_concurrency": 100},
        }
        async with Gateway(Routing.from_dict({"routes": routes}), retry=RETRY) as gateway:
            limits = {name: gateway.limiter(name).limit for name in routes}

    assert limits == {"plain": INITIAL_WINDOW, "budget": 256, "told": 200, "toomuch": 100}


async def test_an_initial_window_sends_the_whole_first_round_trip_at_once() -> None:
    arrived_at_first_answer: list[int] = []

    def reply(body: dict[str, Any]) -> str:
        if not arrived_at_first_answer:
            arrived_at_first_answer.append(srv.count)
        return "ok"

    async with FakeOpenAIServer(latency_s=0.5, reply=reply) as srv:
        route = {"provider": "openai", "base_url": srv.base_url, "max_concurrency": 256}
        routes = {"t/*": {**route, "initial_concurrency": 256}}
        async with Gateway(Routing.from_dict({"routes": routes}), retry=RETRY) as gateway:
            await asyncio.gather(*(gateway.chat("t/m", r) for r in _rows(200)))

    assert arrived_at_first_answer[0] == 200  # every call was sent before the first answer came back


async def test_a_start_too_high_for_the_provider_halves_once_and_every_call_succeeds() -> None:
    # The server answers 429 above 40 requests in flight; the route starts at 160.
    async with FakeOpenAIServer(latency_s=0.5, max_concurrent=40, retry_after_s=0.5) as srv:
        route = {"provider": "openai", "base_url": srv.base_url, "max_concurrency": 160}
        routes = {"t/*": {**route, "initial_concurrency": 160}}
        async with Gateway(Routing.from_dict({"routes": routes}), retry=RETRY) as gateway:
            first_burst = [asyncio.create_task(gateway.chat("t/m", r)) for r in _rows(160)]
            limiter = gateway.limiter("t/m")

            async def refused(n: int) -> None:
                while limiter.rate_limited < n:
                    await asyncio.sleep(0.005)

            await asyncio.wait_for(refused(120), timeout=10)  # the 120 calls above the server's 40
            after_burst = (limiter.limit, limiter.decreases)
            results = await asyncio.gather(*first_burst)

    assert after_burst == (80, 1)  # a burst of 120 429s halved the limit once
    assert len(results) == 160
    assert limiter.rate_limited == srv.statuses[429]
    assert limiter.in_flight == 0
    assert limiter.limit >= 20  # it settled near what the server holds, not at the floor


# ---- the parts ---------------------------------------------------------------------------------------------


def test_a_bucket_starts_empty_refills_and_lets_a_large_call_run_into_debt() -> None:
    bucket = TokenBucket(60 / 0.98, burst_s=2.0, now=0.0)  # one unit a second, two at most

    assert bucket.delay(1, 0.0) == pytest.approx(1.0)
    assert bucket.delay(1, 1.0) == 0
    assert bucket.delay(5, 10.0) == 0  # full (2): a call of 5 may go
    bucket.take(5)
    assert bucket.delay(1, 10.0) == pytest.approx(4.0)  # 3 in debt, then 1 more


def test_headers_lower_a_bucket_but_never_raise_it() -> None:
    bucket = TokenBucket(6000 / 0.98, burst_s=1.0, now=0.0)
    bucket.delay(0, 5.0)  # full: 100
    bucket.lower_to(remaining=30, since_s=0.0, taken_since=10, now=5.0)
    assert bucket.level == pytest.approx(20)
    bucket.lower_to(remaining=1_000_000, since_s=0.0, taken_since=0, now=5.0)
    assert bucket.level == pytest.approx(20)


def test_the_cap_counts_where_the_provider_counts_it() -> None:
    request = ChatRequest((Message("user", "x" * 400),), max_tokens=300)
    usage = Usage(input_tokens=100, output_tokens=20)
    for cap_counts, charged in ((True, 400), (False, 120)):
        pacer = Pacer(tokens_per_minute=600_000 / 0.98, cap_counts=cap_counts, now=0.0)
        assert pacer.tokens is not None
        pacer.tokens.delay(0, 1.0)  # full
        before = pacer.tokens.level
        ticket = Ticket()
        pacer.estimate(ticket, request)
        pacer.take(ticket, 1.0)
        pacer.settle(ticket, usage)
        assert before - pacer.tokens.level == pytest.approx(charged)


def test_the_estimator_learns_tokens_per_character_and_output_length() -> None:
    estimator = TokenEstimator(cap_counts=False)
    request = ChatRequest((Message("user", "y" * 1000),))
    for _ in range(60):
        estimator.observe(1000, 0, Usage(input_tokens=500, output_tokens=80))

    prompt, output, capped = estimator.expect(request, 1000, 0)
    assert prompt == pytest.approx(500, rel=0.02)
    assert output == pytest.approx(80, rel=0.02)
    assert not capped


async def test_a_reply_that_reports_a_budget_makes_the_limiter_pace() -> None:
    limiter = AdaptiveLimiter(8)
    ticket = await limiter.acquire(_rows(1)[0])
    spent = RateLimits(requests=BudgetReading(remaining=0, limit=60, reset_s=60.0))
    limiter.release_ok(ticket, Usage(10, 5), spent)

    blocked = asyncio.create_task(limiter.acquire(_rows(1)[0]))
    await asyncio.sleep(0.2)
    assert not blocked.done()
    await asyncio.wait_for(blocked, timeout=5)


def test_routes_take_budgets_and_refuse_bad_ones() -> None:
    route = {"provider": "openai", "base_url": "http://127.0.0.1:9/v1"}
    routing = Routing.from_dict(
        {"routes": {"t/*": {**route, "tokens_per_minute": 200_000, "requests_per_minute": 600}}}
    )
    resolved = routing.resolve("t/m")
    assert (resolved.tokens_per_minute, resolved.requests_per_minute) == (200_000, 600)

    for bad in (0, -5, 1.5, "many"):
        with pytest.raises(ConfigError, match=r"tokens_per_minute.*positive integer"):
            Routing.from_dict({"routes": {"t/*": {**route, "tokens_per_minute": bad}}})
        with pytest.raises(ConfigError, match=r"initial_concurrency.*positive integer"):
            Routing.from_dict({"routes": {"t/*": {**route, "initial_concurrency": bad}}})
