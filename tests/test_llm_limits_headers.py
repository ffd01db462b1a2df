"""Rate-limit headers and bodies: what the providers say about their budgets reaches the limiter."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from datamill.core.errors import RateLimitedError
from datamill.llm.http.transport import HttpTransport
from datamill.llm.limits.headers import duration_seconds, read_rate_limits, retry_info_seconds
from datamill.llm.providers.anthropic import AnthropicProvider
from datamill.llm.providers.gemini import GeminiProvider
from datamill.llm.providers.openai import OpenAIProvider
from datamill.llm.routing import Routing
from datamill.llm.simulator import ProviderSimulator
from datamill.llm.types import BudgetReading, ChatRequest, Message, RateLimits

REQUEST = ChatRequest((Message("user", "hello there"),), max_tokens=50)


@pytest.fixture
async def transport() -> AsyncIterator[HttpTransport]:
    transport = HttpTransport()
    yield transport
    await transport.aclose()


async def test_openai_replies_carry_both_budgets(transport: HttpTransport) -> None:
    async with ProviderSimulator(requests_per_minute=100, tokens_per_minute=10_000) as sim:
        route = Routing.from_dict(sim.routes()).resolve("sim-openai/m")
        reply = await OpenAIProvider(transport).complete(route, REQUEST)

    assert reply.rate_limits is not None
    requests = reply.rate_limits.requests
    assert requests is not None
    assert (requests.remaining, requests.limit) == (99, 100)
    assert requests.reset_s == pytest.approx(60, abs=1)
    tokens = reply.rate_limits.tokens
    assert tokens is not None
    assert tokens.limit == 10_000
    assert tokens.remaining == 10_000 - reply.usage.input_tokens - 50  # the prompt and the cap count


async def test_anthropic_replies_carry_both_budgets(transport: HttpTransport) -> None:
    async with ProviderSimulator(requests_per_minute=100, tokens_per_minute=10_000) as sim:
        route = Routing.from_dict(sim.routes()).resolve("sim-anthropic/m")
        reply = await AnthropicProvider(transport).complete(route, REQUEST)

    assert reply.rate_limits is not None
    requests, tokens = reply.rate_limits.requests, reply.rate_limits.tokens
    assert requests is not None
    assert tokens is not None
    assert (requests.limit, requests.remaining) == (100, 99)
    assert requests.reset_s is not None
    assert 58 <= requests.reset_s <= 61
    assert tokens.limit == 10_000


async def test_a_reply_without_rate_limit_headers_reports_none(transport: HttpTransport) -> None:
    async with ProviderSimulator() as sim:
        route = Routing.from_dict(sim.routes()).resolve("sim-openai/m")
        reply = await OpenAIProvider(transport).complete(route, REQUEST)

    assert reply.rate_limits is None


async def test_a_429_carries_its_headers_and_retry_after(transport: HttpTransport) -> None:
    async with ProviderSimulator(rates={"rate_limit": 1.0}, retry_after_s=7) as sim:
        route = Routing.from_dict(sim.routes()).resolve("sim-openai/m")
        with pytest.raises(RateLimitedError) as caught:
            await OpenAIProvider(transport).complete(route, REQUEST)

    assert caught.value.retry_after == 7
    limits = getattr(caught.value, "limits", None)
    assert isinstance(limits, RateLimits)
    assert limits.requests is not None
    assert limits.requests.remaining == 0


async def test_geminis_retry_info_in_the_body_gives_the_wait(transport: HttpTransport) -> None:
    async with ProviderSimulator(rates={"rate_limit": 1.0}, retry_after_s=20) as sim:
        route = Routing.from_dict(sim.routes()).resolve("sim-gemini/m")
        with pytest.raises(RateLimitedError) as caught:
            await GeminiProvider(transport).complete(route, REQUEST)

    assert caught.value.retry_after == 20


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("1h2m3.5s", 3723.5),
        ("20ms", 0.02),
        ("0.5", 0.5),
        ("2m", 120.0),
        ("-3", 0.0),
    ],
)
def test_reset_durations(text: str, seconds: float) -> None:
    assert duration_seconds(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "5x", "1s2", "s"])
def test_unreadable_durations_are_none(text: str) -> None:
    assert duration_seconds(text) is None


def test_malformed_values_are_ignored_not_raised() -> None:
    limits = read_rate_limits(
        {
            "x-ratelimit-remaining-requests": "lots",
            "x-ratelimit-remaining-tokens": "900",
            "x-ratelimit-limit-tokens": "n/a",
            "x-ratelimit-reset-tokens": "whenever",
        }
    )

    assert limits == RateLimits(None, BudgetReading(900, None, None))


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b'{"error": {"details": "RetryInfo"}}', b'{"error": {"details": [{"@type": 1}]}}'],
)
def test_a_429_body_without_a_readable_retry_info_gives_no_wait(body: bytes) -> None:
    assert retry_info_seconds(body) is None


def test_retry_info_as_a_seconds_and_nanos_object() -> None:
    body = b'{"error": {"details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", '
    body += b'"retryDelay": {"seconds": 3, "nanos": 500000000}}]}}'

    assert retry_info_seconds(body) == 3.5
