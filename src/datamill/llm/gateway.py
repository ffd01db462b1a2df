"""The model gateway: a `chat` call goes route → cache → limiter → provider with retries → schema → ledger.

Steps ask for a *role* (``gateway.role("judge")``) or a model name and get a `ModelHandle`; they never see a
provider. What one call does:

1. Resolve the public model name to a `Route` (unknown names raise `UnknownModelError` listing what is
   configured). On a thinking route a request without ``thinking_budget`` gets the route's default; on other
   routes the budget is cleared (so it cannot split cache entries).
2. Cache lookup by `cache_key`. A hit returns ``cached=True`` with the usage and cost the call had when it
   was first made (and ``latency_s`` 0); the ledger counts it under ``cache_hits`` and ``saved_usd`` and adds
   no cost.
3. Acquire a slot from the (provider, model, endpoint) `AdaptiveLimiter` (paced to the route's or the
   provider's per-minute budgets, `datamill.llm.limits`), call the provider, retry per `RetryPolicy` (a
   429 waits its own ``Retry-After`` and shrinks the limiter; its headers lower the budgets). A route
   whose calls fail systemically (unreachable endpoint, a 400 on every request) is stopped by its
   `RouteHealth` with `RouteFailingError`.
   Each reply goes through `usable_reply` (`datamill.llm.replies`): reasoning is split off the answer, and
   a refusal, a cut, an empty or a filtered reply is asked again within ``max_reply_attempts``, then raised
   as the `UnusableReplyError` that names it. A result is always a whole answer.
4. With a ``json_schema``: parse and validate the reply; on failure, up to ``repair_attempts`` repair calls
   that show the model its bad output and the error; then `OutputValidationError`.
5. Cost via ``route.cost(usage)`` (repair calls included), recorded in `usage` under the call's tag; only a
   successful, validated result is cached.

In batch mode (``Gateway(batch=True)``, or a route with ``batch: true``) the first attempt of a call on a
route whose provider has a batch API goes into a provider batch (`datamill.llm.batch`) instead of step 3: the
call waits until its batch is answered, and the reply is parsed, validated, cached and accounted as above, at
the route's ``batch_discount``. A request the batch did not answer goes through step 3 online.

The hot path does no logging, no task creation and no schema work when there is no schema: the gateway's own
CPU per call is tens of microseconds (see ``bench/gateway_throughput.py``).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from time import perf_counter
from typing import Any

from datamill.core.errors import (
    ConfigError,
    ConnectionConfigError,
    ModelError,
    OutputValidationError,
    PermanentModelError,
    RateLimitedError,
    TransientError,
    TruncatedReplyError,
    UnreadReplyError,
    UnusableReplyError,
)
from datamill.llm.batch.queue import BatchItemError, BatchQueue, serves
from datamill.llm.billing import Billed
from datamill.llm.cache import ResponseCache, cache_key
from datamill.llm.health import DEFAULT_STOP_AFTER, RouteHealth
from datamill.llm.http.interface import Transport
from datamill.llm.http.transport import HttpTransport
from datamill.llm.limits.concurrency import AdaptiveLimiter
from datamill.llm.limits.shared import ConcurrencyBudget, close_pool, limiter_pool
from datamill.llm.providers import PROVIDER_CLASSES, provider_class
from datamill.llm.providers.base import Provider
from datamill.llm.replies import usable_reply
from datamill.llm.retry import RetryPolicy
from datamill.llm.routing import Routing
from datamill.llm.structured import repair_request, validate_output
from datamill.llm.types import AddressCheck, ChatRequest, ChatResult, ProviderReply, Route, Usage
from datamill.llm.usage import UsageLedger

#: Added to a request's seed when a reply that is not an answer is asked again (the same seed may repeat it).
_RETRY_SEED_STEP = 7919


@dataclasses.dataclass(frozen=True, slots=True)
class ModelHandle:
    """A resolved model: what a pipeline step holds instead of a provider."""

    gateway: Gateway
    name: str
    route: Route

    async def chat(self, request: ChatRequest, *, tag: str = "default") -> ChatResult:
        """Send one request to this model (see `Gateway.chat`)."""
        return await self.gateway.chat_route(self.route, request, tag=tag)


class Gateway:
    """Routes, caches, limits, retries, validates and accounts for model calls.

    Args:
        routing: public names to routes.
        cache: response cache; `aclose` flushes and closes it.
        transport: shared HTTP transport (one is created, and closed by `aclose`, when None).
        retry: retry policy (defaults: `RetryPolicy()`).
        providers: provider instances by kind, overriding the registry (tests inject fakes here).
        roles: role name → model name; unknown roles fall back to ``default_model``.
        default_model: the model of every role not in ``roles`` (the ``DATAMILL_MODEL`` setting); None:
            the routing file's ``default_model``.
        repair_attempts: repair calls allowed after a reply that fails its JSON schema.
        budget: a concurrency budget shared with other processes; each route's ``max_concurrency`` is then
            the limit of all its users together (`datamill.llm.limits.shared`).
        stop_after_failures: systemic failures of a route in a row (unreachable endpoint, a 400 before any
            success) after which its calls raise `RouteFailingError` (`datamill.llm.health`).
        batch: send the calls of every route whose provider has a batch API through batches (a route's own
            ``batch`` setting overrides it).
    """

    def __init__(
        self,
        routing: Routing,
        *,
        cache: ResponseCache | None = None,
        transport: Transport | None = None,
        retry: RetryPolicy | None = None,
        providers: Mapping[str, Provider] | None = None,
        roles: Mapping[str, str] | None = None,
        default_model: str | None = None,
        repair_attempts: int = 1,
        budget: ConcurrencyBudget | None = None,
        stop_after_failures: int = DEFAULT_STOP_AFTER,
        batch: bool = False,
    ) -> None:
        self.routing = routing
        #: The model used when a caller names none: ``default_model``, else the routing file's default.
        self.default_model = default_model or routing.default_model
        self.usage = UsageLedger()
        self._cache = cache
        self._transport = transport
        self._owns_transport = transport is None
        self._retry = retry or RetryPolicy()
        self._injected: dict[str, Provider] = dict(providers or {})
        self._providers: dict[str, Provider] = dict(self._injected)
        self._created: list[Provider] = []
        self._roles = dict(roles or {})
        self._repair_attempts = max(0, repair_attempts)
        self._limiters = limiter_pool(budget)
        self._lanes: dict[str, tuple[Provider, AdaptiveLimiter]] = {}
        self._guarded: dict[tuple[str, AddressCheck], tuple[Provider, AdaptiveLimiter]] = {}
        self._guarded_transports: list[HttpTransport] = []
        self._stop_after = stop_after_failures
        self._health: dict[str, RouteHealth] = {}
        self._batch_all = batch
        self._batches: BatchQueue | None = None

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy of every call (how many replies one call may be billed for, among others)."""
        return self._retry

    @property
    def batch(self) -> bool:
        """Whether calls go through provider batches on routes that do not say otherwise."""
        return self._batch_all

    def use_batches(self, *, enabled: bool | None = None, journal: Path | None = None) -> None:
        """Turn batch mode on or off for routes that do not set it, and keep the batch journal in ``journal``.

        A run names its journal (beside its checkpoint) before its first call, so a restarted run finds the
        batches it had submitted and polls them instead of submitting them again.
        """
        if enabled is not None:
            self._batch_all = enabled
        if journal is not None:
            self._batch_queue().attach(journal)

    def model(self, name: str) -> ModelHandle:
        """A handle on a public model name, resolved now (unknown → `UnknownModelError`)."""
        return ModelHandle(self, name, self.routing.resolve(name))

    def role(self, role: str) -> ModelHandle:
        """The model configured for a role (``generation``, ``judge``, ...), else `default_model`."""
        return self.model(self._roles.get(role) or self.default_model)

    def has_role(self, role: str) -> bool:
        """Whether a model is configured for ``role`` (else `role` gives the default model)."""
        return bool(self._roles.get(role))

    def limiter(self, name: str) -> AdaptiveLimiter:
        """The concurrency limiter a model name's calls go through."""
        return self._lane(self.routing.resolve(name))[1]

    async def chat(self, model: str, request: ChatRequest, *, tag: str = "default") -> ChatResult:
        """Send one request to a public model name.

        Args:
            model: public model name (or one matching a routing pattern).
            request: the conversation and parameters.
            tag: the bucket the ledger sums this call under (usually the pipeline step's name).

        Raises:
            UnknownModelError: no route for ``model``.
            OutputValidationError: the reply failed its JSON schema after the repair attempts.
            RateLimitedError, TransientError: retries exhausted; the message counts the attempts.
            RefusalError, TruncatedReplyError, EmptyReplyError, ContentFilteredError: the replies were not
                answers, within ``max_reply_attempts``.
            RouteFailingError: the route is down (`datamill.llm.health`); the run must stop.
            PermanentModelError, ConfigError: not retried.
        """
        return await self.chat_route(self.routing.resolve(model), request, tag=tag)

    async def chat_route(self, route: Route, request: ChatRequest, *, tag: str = "default") -> ChatResult:
        """`chat` for an already resolved route."""
        request = _normalise(route, request)
        key = None
        if self._cache is not None:
            key = cache_key(route, request)
            hit = self._cache.get(key)
            if hit is not None and _usable_hit(hit, route):
                return self._from_cache(route, hit, tag)
        started = perf_counter()
        billed = Billed()
        try:
            reply, data = await self._complete(route, request, billed)
        except BaseException:
            paid = billed.usage
            self._record_unread(tag, route, billed)
            self.usage.record_failure(tag, route.name, paid, billed.cost(route))
            raise
        latency = perf_counter() - started
        paid = billed.usage
        cost = billed.cost(route)
        self._record_unread(tag, route, billed)
        self.usage.record_call(tag, route.name, paid, cost, latency)
        if key is not None and self._cache is not None:
            self._cache.put(key, _cache_value(reply, paid, cost, data))
        return ChatResult(
            reply.text, paid, route.name, latency, cost, False, data, reply.finish_reason, reply.reasoning
        )

    async def aclose(self) -> None:
        """Close the providers and transport this gateway created, and flush and close the cache.

        Batches in flight are left to the provider; the journal remembers them for the next run.
        """
        if self._batches is not None:
            await self._batches.aclose()
            self._batches = None
        for provider in self._created:
            await provider.aclose()
        self._created.clear()
        close_pool(self._limiters)
        self._providers = dict(self._injected)
        self._lanes.clear()
        self._guarded.clear()
        for guarded in self._guarded_transports:
            await guarded.aclose()
        self._guarded_transports.clear()
        if self._owns_transport and self._transport is not None:
            await self._transport.aclose()
            self._transport = None
        if self._cache is not None:
            self._cache.close()

    async def __aenter__(self) -> Gateway:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _from_cache(self, route: Route, hit: dict[str, Any], tag: str) -> ChatResult:
        usage = Usage(*hit["usage"])
        cost = float(hit["cost_usd"])
        self.usage.record_cache_hit(tag, route.name, cost)
        return ChatResult(
            hit["text"],
            usage,
            route.name,
            0.0,
            cost,
            True,
            hit.get("data"),
            hit.get("finish_reason"),
            hit.get("reasoning"),
        )

    def _record_unread(self, tag: str, route: Route, billed: Billed) -> None:
        if billed.unread:
            self.usage.record_unread(tag, route.name, billed.unread)

    async def _complete(self, route: Route, request: ChatRequest, paid: Billed) -> tuple[ProviderReply, Any]:
        """The provider's reply (validated and repaired when a schema is set) and its parsed data."""
        reply = await self._first_reply(route, request, paid)
        schema = request.json_schema
        if schema is None:
            return reply, None
        for repair in range(self._repair_attempts + 1):
            try:
                return reply, validate_output(reply.text, schema)
            except OutputValidationError as exc:
                if repair == self._repair_attempts:
                    raise OutputValidationError(
                        f"{route.name}: {exc} (after {repair} repair attempt{'s' if repair != 1 else ''})"
                    ) from exc
                request = repair_request(request, reply.text, exc)
            reply = await self._send(route, request, paid)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _first_reply(self, route: Route, request: ChatRequest, paid: Billed) -> ProviderReply:
        """The first reply to a call: from a provider batch in batch mode, else (or unanswered) online."""
        if route.address_check is None and serves(route, self._batch_all):
            _check_images(route, request)
            try:
                reply = await self._batch_queue().reply(route, request)
            except (BatchItemError, TransientError):
                pass  # not answered, or not readable: ask online
            else:
                paid.answered_in_batch(reply.usage)
                try:
                    return usable_reply(reply, route)
                except UnusableReplyError as exc:  # a refusal, a cut, an empty answer: ask again online
                    request = _retry_request(request, exc)
        return await self._send(route, request, paid)

    def _batch_queue(self) -> BatchQueue:
        if self._batches is None:
            self._batches = BatchQueue(self._shared_transport)
        return self._batches

    def _shared_transport(self) -> Transport:
        if self._transport is None:
            self._transport = HttpTransport(environ=self.routing.environ)
        return self._transport

    async def _send(self, route: Route, request: ChatRequest, paid: Billed) -> ProviderReply:
        """One provider reply through the limiter, with retries; adds what was billed to ``paid``.

        An attempt the provider billed but whose reply was never read whole (`UnreadReplyError`) is retried
        and counted with the answer's usage (`datamill.llm.billing`).
        """
        _check_images(route, request)
        if route.address_check is None:
            provider, limiter = self._lanes.get(route.name) or self._lane(route)
        else:
            provider, limiter = self._guarded_lane(route, route.address_check)
        health = self._health.get(route.name) or self._route_health(route)
        state = None
        while True:
            health.check()
            ticket = await limiter.acquire(request)
            if health.down is not None:  # stopped while this call waited for a slot
                limiter.release(ticket)
                health.check()
            try:
                reply = await provider.complete(route, request)
            except RateLimitedError as exc:
                limiter.release_rate_limited(ticket, exc.retry_after, getattr(exc, "limits", None))
                error: ModelError = exc
            except UnreadReplyError as exc:
                limiter.release(ticket)
                paid.pending_unread += 1
                error = exc
            except (TransientError, UnusableReplyError) as exc:
                limiter.release(ticket)
                error = exc
            except ConnectionConfigError as exc:  # not retried: the route's health decides when to stop
                limiter.release(ticket)
                health.failed(exc)
                raise
            except (TimeoutError, ConnectionError) as exc:
                limiter.release(ticket)
                error = TransientError(f"{route.name}: {exc!r}")
            except PermanentModelError as exc:
                limiter.release(ticket)
                health.failed(exc)
                raise
            except BaseException:
                limiter.release(ticket)
                raise
            else:
                limiter.release_ok(ticket, reply.usage, reply.rate_limits)
                health.succeeded()
                paid.answered(reply.usage)
                try:
                    return usable_reply(reply, route)
                except UnusableReplyError as exc:
                    error = exc
            if state is None:
                state = self._retry.start()
            try:
                delay = state.next_delay(error)
            except BaseException:
                paid.gave_up(request)
                raise
            request = _retry_request(request, error)
            if delay > 0:
                await asyncio.sleep(delay)

    def _route_health(self, route: Route) -> RouteHealth:
        health = self._health[route.name] = RouteHealth(route.name, self._stop_after)
        return health

    def _lane(self, route: Route) -> tuple[Provider, AdaptiveLimiter]:
        lane = self._lanes.get(route.name)
        if lane is None:
            limiter = self._limiters.get(
                (route.provider, route.model, route.base_url),
                route.max_concurrency,
                start=route.initial_concurrency,
                tokens_per_minute=route.tokens_per_minute,
                requests_per_minute=route.requests_per_minute,
            )
            lane = self._lanes[route.name] = (self._provider(route), limiter)
        return lane

    def _guarded_lane(self, route: Route, check: AddressCheck) -> tuple[Provider, AdaptiveLimiter]:
        """The lane of a route whose endpoint a tenant named.

        Its own transport dials only what ``check`` passes; it never shares the lane an operator's route of
        the same name uses.
        """
        lane = self._guarded.get((route.name, check))
        if lane is None:
            limiter = self._limiters.get(
                (route.provider, route.model, route.base_url),
                route.max_concurrency,
                start=route.initial_concurrency,
                tokens_per_minute=route.tokens_per_minute,
                requests_per_minute=route.requests_per_minute,
            )
            provider = self._injected.get(route.provider)
            if provider is None:
                if route.provider not in PROVIDER_CLASSES:
                    raise ConfigError(f"model {route.name!r}: unknown provider kind {route.provider!r}")
                transport = HttpTransport(environ=self.routing.environ, address_check=check)
                self._guarded_transports.append(transport)
                provider = provider_class(route.provider)(transport)
                self._created.append(provider)
            lane = self._guarded[(route.name, check)] = (provider, limiter)
        return lane

    def _provider(self, route: Route) -> Provider:
        kind = route.provider
        provider = self._providers.get(kind)
        if provider is None:
            if kind not in PROVIDER_CLASSES:
                known = ", ".join(sorted(PROVIDER_CLASSES))
                raise ConfigError(f"model {route.name!r}: unknown provider kind {kind!r} (known: {known})")
            if self._transport is None:
                self._transport = HttpTransport(environ=self.routing.environ)
            provider = self._providers[kind] = provider_class(kind)(self._transport)
            self._created.append(provider)
        return provider


def _normalise(route: Route, request: ChatRequest) -> ChatRequest:
    """Fill the route's default thinking budget, or clear a budget a non-thinking route would ignore."""
    if route.thinking:
        if request.thinking_budget is None:
            return dataclasses.replace(request, thinking_budget=route.default_thinking_budget)
    elif request.thinking_budget is not None:
        return dataclasses.replace(request, thinking_budget=None)
    return request


def _check_images(route: Route, request: ChatRequest) -> None:
    if route.vision:
        return
    for message in request.messages:  # a plain loop: any() over a generator costs more on every call
        if message.images:
            raise PermanentModelError(
                f"model {route.name!r} does not accept images (its route has no `vision: true`); "
                "choose a vision-capable model",
                status=400,
            )


def _usable_hit(hit: dict[str, Any], route: Route) -> bool:
    """Whether a cached reply is an answer (a cache written before replies were checked may hold others)."""
    reply = ProviderReply(str(hit.get("text") or ""), Usage(), hit.get("finish_reason"))
    try:
        checked = usable_reply(reply, route)
    except UnusableReplyError:
        return False
    return checked.text == reply.text


def _retry_request(request: ChatRequest, error: ModelError) -> ChatRequest:
    """The request to send after ``error``.

    A cut reply gets twice the output cap, a refusal, an empty or a filtered reply another seed (when the
    request has one); anything else is sent again as it was.
    """
    if isinstance(error, TruncatedReplyError) and request.max_tokens is not None:
        return dataclasses.replace(request, max_tokens=request.max_tokens * 2)
    if isinstance(error, UnusableReplyError) and request.seed is not None:
        return dataclasses.replace(request, seed=request.seed + _RETRY_SEED_STEP)
    return request


def _cache_value(reply: ProviderReply, usage: Usage, cost: float, data: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "text": reply.text,
        "usage": usage.to_list(),
        "cost_usd": cost,
        "finish_reason": reply.finish_reason,
    }
    if data is not None:
        value["data"] = data
    if reply.reasoning is not None:
        value["reasoning"] = reply.reasoning
    return value
