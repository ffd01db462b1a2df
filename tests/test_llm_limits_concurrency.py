import asyncio

import pytest

from datamill.llm.fake_server import FakeOpenAIServer
from datamill.llm.gateway import Gateway
from datamill.llm.limits.concurrency import AdaptiveLimiter
from datamill.llm.retry import RetryPolicy
from datamill.llm.routing import Routing
from datamill.llm.types import ChatRequest, Message

#: 429s in a row, from none, that pause the key (a moving average of 1/16 passing one half).
REFUSALS_TO_PAUSE = 11


async def _spin() -> None:
    """Let every ready callback run."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_caps_in_flight_and_hands_slots_over_in_fifo_order() -> None:
    limiter = AdaptiveLimiter(2)
    await limiter.acquire()
    await limiter.acquire()
    order: list[str] = []

    async def waiter(name: str) -> None:
        await limiter.acquire()
        order.append(name)

    tasks = [asyncio.create_task(waiter(n)) for n in "abc"]
    await _spin()
    assert order == []
    assert limiter.in_flight == 2

    limiter.release_ok(None)
    await _spin()
    assert order == ["a"]
    limiter.release_ok(None)
    limiter.release()
    await _spin()
    assert order == ["a", "b", "c"]
    assert limiter.in_flight == 2
    await asyncio.gather(*tasks)


async def test_a_burst_of_429s_halves_once_per_window() -> None:
    limiter = AdaptiveLimiter(16)
    windows = [await limiter.acquire() for _ in range(10)]

    for window in windows[:6]:
        limiter.release_rate_limited(window, None)

    assert limiter.limit == 8
    assert limiter.decreases == 1
    assert limiter.rate_limited == 6
    fresh = await limiter.acquire()  # sent under the new limit: a 429 for it halves again
    limiter.release_rate_limited(fresh, None)
    assert limiter.limit == 4


async def test_limit_never_drops_below_one() -> None:
    limiter = AdaptiveLimiter(2)
    for _ in range(4):
        limiter.release_rate_limited(await limiter.acquire(), None)

    assert limiter.limit == 1


async def test_additive_increase_regrows_to_the_ceiling_and_no_further() -> None:
    limiter = AdaptiveLimiter(8)
    limiter.release_rate_limited(await limiter.acquire(), None)
    assert limiter.limit == 4
    seen = []

    for _ in range(40):
        await limiter.acquire()
        limiter.release_ok(None)
        seen.append(limiter.limit)

    assert seen[0] < 8  # one success does not undo a halving
    assert seen == sorted(seen)
    assert seen[-1] == 8 == limiter.ceiling


async def test_after_a_burst_the_limit_regrows_fast_to_what_the_provider_held() -> None:
    limiter = AdaptiveLimiter(16)
    windows = [await limiter.acquire() for _ in range(16)]
    for window in windows[:4]:  # the provider held the other 12
        limiter.release_rate_limited(window, None)
    assert limiter.limit == 8

    seen = []
    for _ in range(12):
        limiter.release_ok(None)
        seen.append(limiter.limit)

    # +1 per success back to 12 (one round trip), then additive probing: far slower above it.
    assert seen == [9, 10, 11, 12] + [12] * 8


async def _successes_until_growth(limiter: AdaptiveLimiter) -> int:
    start, count = limiter.limit, 0
    while limiter.limit == start:
        await limiter.acquire()
        limiter.release_ok(None)
        count += 1
    return count


async def test_a_failed_probe_slows_the_next_probes_and_a_probe_that_holds_resets() -> None:
    limiter = AdaptiveLimiter(8)
    limiter.release_rate_limited(await limiter.acquire(), None)  # nothing else in flight: 4, probe from 4
    assert limiter.limit == 4
    assert await _successes_until_growth(limiter) == 4  # +1 per round trip (limit successes)
    assert limiter.limit == 5

    limiter.release_rate_limited(await limiter.acquire(), None)  # the probe to 5 failed
    assert limiter.limit == 2
    assert await _successes_until_growth(limiter) == 8 * 2  # +1 per 8 round trips now
    assert await _successes_until_growth(limiter) == 8 * 3
    assert await _successes_until_growth(limiter) == 8 * 4
    assert limiter.limit == 5  # 4 held; now 5, where the probe failed, is probed again
    assert await _successes_until_growth(limiter) == 8 * 5
    assert limiter.limit == 6  # 5 held: the provider grew, so probing is fast again
    assert await _successes_until_growth(limiter) == 6


async def test_a_burst_the_provider_mostly_held_makes_the_first_probe_slow() -> None:
    limiter = AdaptiveLimiter(16)
    windows = [await limiter.acquire() for _ in range(16)]
    for window in windows[:4]:
        limiter.release_rate_limited(window, None)
    for _ in range(12):
        limiter.release_ok(None)
    assert limiter.limit == 12  # back at what the provider held

    # +1 per 8 round trips (the 8 releases past 12 already earned 8 of the 96 successes needed).
    assert 8 * 12 - 8 <= await _successes_until_growth(limiter) <= 8 * 12


async def test_one_429_with_retry_after_holds_back_no_other_call() -> None:
    limiter = AdaptiveLimiter(4)
    limiter.release_rate_limited(await limiter.acquire(), 30.0)

    assert not limiter.paused
    await asyncio.wait_for(limiter.acquire(), timeout=1)
    assert limiter.in_flight == 1


async def test_429s_in_a_row_pause_the_key_then_it_resumes() -> None:
    limiter = AdaptiveLimiter(4)
    for _ in range(REFUSALS_TO_PAUSE - 1):
        limiter.release_rate_limited(await limiter.acquire(), 0.05)
    assert not limiter.paused

    limiter.release_rate_limited(await limiter.acquire(), 0.05)
    assert limiter.paused
    assert limiter.pauses == 1
    blocked = asyncio.create_task(limiter.acquire())
    await _spin()
    assert not blocked.done()

    await asyncio.wait_for(blocked, timeout=5)
    assert not limiter.paused
    assert limiter.in_flight == 1


async def test_chance_429s_among_successes_never_pause_the_key() -> None:
    limiter = AdaptiveLimiter(8)
    for _ in range(50):
        limiter.release_rate_limited(await limiter.acquire(), 30.0)
        for _ in range(3):
            limiter.release_ok(await limiter.acquire())

    assert not limiter.paused
    assert limiter.pauses == 0


async def test_refusals_that_go_on_after_a_pause_extend_it() -> None:
    limiter = AdaptiveLimiter(65536, start=65536)  # room for the held calls after every halving
    held = [await limiter.acquire() for _ in range(8)]
    for _ in range(REFUSALS_TO_PAUSE):
        limiter.release_rate_limited(await limiter.acquire(), 0.01)
    assert limiter.pauses == 1
    for ticket in held:  # the calls in flight are refused too, with a longer Retry-After
        limiter.release_rate_limited(ticket, 30.0)
    blocked = asyncio.create_task(limiter.acquire())

    await asyncio.sleep(0.1)  # the first pause is long over; the second still holds

    assert limiter.pauses == 2
    assert not blocked.done()
    assert limiter.paused
    blocked.cancel()


async def test_a_cancelled_waiter_leaks_no_slot() -> None:
    limiter = AdaptiveLimiter(1)
    await limiter.acquire()
    doomed = asyncio.create_task(limiter.acquire())
    survivor = asyncio.create_task(limiter.acquire())
    await _spin()

    doomed.cancel()
    await _spin()
    limiter.release_ok(None)
    await asyncio.wait_for(survivor, timeout=5)

    assert doomed.cancelled()
    assert limiter.in_flight == 1
    limiter.release_ok(None)
    assert limiter.in_flight == 0


async def test_429_with_retry_after_shrinks_the_gateway_limiter_and_calls_succeed() -> None:
    async with FakeOpenAIServer(latency_s=0.05, max_concurrent=3, retry_after_s=0.02) as srv:
        routing = Routing.from_dict(
            {"routes": {"t/*": {"provider": "openai", "base_url": srv.base_url, "max_concurrency": 12}}}
        )
        retry = RetryPolicy(base_delay=0.001, max_delay=0.01, max_rate_limit_retries=50)
        async with Gateway(routing, retry=retry) as gateway:
            request = ChatRequest((Message("user", "hi"),))
            results = await asyncio.gather(*(gateway.chat("t/m", request) for _ in range(30)))
            limiter = gateway.limiter("t/m")

            assert [r.text for r in results] == ["fake reply"] * 30
            assert srv.statuses[429] > 0
            assert limiter.decreases >= 1
            assert limiter.limit < 12
            assert limiter.rate_limited == srv.statuses[429]
            assert limiter.in_flight == 0


@pytest.mark.parametrize("ceiling", [0, -3])
def test_ceiling_is_at_least_one(ceiling: int) -> None:
    assert AdaptiveLimiter(ceiling).limit == 1
