"""The provider interface and the HTTP status mapping all HTTP providers share."""

from __future__ import annotations

import re
from typing import Protocol

from datamill.core.errors import (
    ConfigError,
    ConnectionConfigError,
    PermanentModelError,
    QuotaExhaustedError,
    TransientError,
)
from datamill.llm.http.interface import HttpReply
from datamill.llm.limits.headers import (
    ProviderRateLimitedError,
    read_rate_limits,
    retry_after_seconds,
    retry_info_seconds,
)
from datamill.llm.types import ChatRequest, ProviderReply, Route


class Provider(Protocol):
    """Sends one request to one kind of backend. Knows its API shape; knows nothing of retries or caching.

    Implementations raise RateLimitedError, TransientError or PermanentModelError; the gateway decides
    what to retry.
    """

    async def complete(self, route: Route, request: ChatRequest) -> ProviderReply: ...

    async def aclose(self) -> None: ...


def api_key(route: Route) -> str | None:
    """The key of a route (read from the variable the route names when the route was resolved)."""
    if route.api_key_env is None:
        return None
    key = route.api_key
    if not key:
        raise ConfigError(
            f"model {route.name!r} needs an API key: set the {route.api_key_env} environment variable"
        )
    return key


#: What a 400 or 429 says when the account, not the request, is the problem (OpenAI ``insufficient_quota``,
#: Anthropic "Your credit balance is too low", billing errors): waiting or retrying never clears it.
_NO_FUNDS = re.compile(
    r"insufficient_quota|credit balance is too low|billing_error|insufficient (?:funds|credits?|balance)|"
    r"payment required|check your plan and billing details",
    re.IGNORECASE,
)


def raise_for_status(reply: HttpReply, route: Route) -> None:
    """Map a non-2xx reply to the gateway's error classes.

    A 402, or a 400/429 whose body says the quota or the credit is spent, is a `QuotaExhaustedError`. Any
    other 429 raises `ProviderRateLimitedError` with the wait the provider asked for (``Retry-After``, else
    the ``RetryInfo`` of the body) and the budgets its rate-limit headers report.
    """
    if 200 <= reply.status < 300:
        return
    detail = reply.body[:500].decode("utf-8", "replace")
    message = f"{route.name}: HTTP {reply.status}: {detail}"
    if 300 <= reply.status < 400:
        where = reply.headers.get("location", "")
        raise ConnectionConfigError(
            f"{route.name}: HTTP {reply.status}: the endpoint redirects"
            + (f" to {where[:200]}" if where else "")
            + "; set the route's base_url to the API's own address (redirects are not followed)",
            "redirect",
            status=reply.status,
        )
    if reply.status == 402 or (reply.status in (400, 429) and _NO_FUNDS.search(detail)):
        raise QuotaExhaustedError(
            f"{message} (the account behind {route.api_key_env or 'this route'} has no quota or credit "
            "left: add credit or raise the limit, then run again)",
            status=reply.status,
        )
    if reply.status == 429:
        retry_after = retry_after_seconds(reply.headers)
        if retry_after is None:
            retry_after = retry_info_seconds(reply.body)
        raise ProviderRateLimitedError(message, retry_after, read_rate_limits(reply.headers))
    if reply.status >= 500 or reply.status in (408, 409):
        raise TransientError(message)
    raise PermanentModelError(message, status=reply.status)
