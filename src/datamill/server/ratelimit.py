"""Rate limits per API key: a token bucket for each key, in this process, on the ``/api/`` routes.

Each key may make `burst` requests at once and then `per_minute` a minute (the bucket refills steadily).
The bucket is found by the key's id, looked up from the bearer key like authentication does (and
remembered for a minute, so a busy key costs no extra query); a request with no key, or an unknown or
revoked one, is not counted here and gets its 401 from the route. Over the limit the answer is 429 in
the error shape of the API the path belongs to, with ``Retry-After`` (whole seconds, at most 60) and
``retry-after-ms`` saying when the next request will be let through, and ``x-should-retry: true``: the
official SDKs wait that long and retry by themselves.

The counts live in memory: with several API processes, each enforces the limit on its own.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from datamill.server.context import ServerContext
from datamill.server.errors import dataframer_error, error_response, is_dataframer_path

API_PREFIX = "/api/"
MAX_RETRY_AFTER_S = 60
_KEY_CACHE_S = 60.0


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets by key id: `per_minute` requests a minute each, `burst` at once.

    At most `max_keys` buckets are kept; the least recently used is dropped first (a dropped key starts
    again with a full bucket, which only ever lets a request through sooner).
    """

    def __init__(
        self,
        per_minute: int,
        burst: int | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self._rate = per_minute / 60.0
        self._capacity = float(max(1, burst or per_minute))
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def acquire(self, key_id: str) -> float:
        """Take one request from `key_id`'s bucket: 0.0 if allowed, else the seconds until one would be."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.pop(key_id, None) or _Bucket(self._capacity, now)
            self._buckets[key_id] = bucket
            while len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
            bucket.tokens = min(self._capacity, bucket.tokens + (now - bucket.updated) * self._rate)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self._rate


class KeyIds:
    """Key id of a bearer key, through `lookup` (the database), remembered for a minute when found."""

    def __init__(self, lookup: Callable[[str], str | None], *, max_keys: int = 10_000) -> None:
        self._lookup = lookup
        self._max_keys = max_keys
        self._known: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    async def of(self, key: str) -> str | None:
        """The key's id, or None when it is unknown or revoked (such keys are never remembered)."""
        now = time.monotonic()
        with self._lock:
            known = self._known.get(key)
        if known is not None and now - known[1] < _KEY_CACHE_S:
            return known[0]
        key_id = await run_in_threadpool(self._lookup, key)
        if key_id is not None:
            with self._lock:
                self._known[key] = (key_id, now)
                self._known.move_to_end(key)
                while len(self._known) > self._max_keys:
                    self._known.popitem(last=False)
        return key_id


def _bearer(scope: Scope) -> str | None:
    scheme, _, credentials = Headers(scope=scope).get("authorization", "").partition(" ")
    return credentials.strip() or None if scheme.lower() == "bearer" else None


class RateLimitMiddleware:
    """ASGI middleware answering 429 for a key over its limit on the ``/api/`` paths."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter, key_ids: KeyIds) -> None:
        self.app = app
        self._limiter = limiter
        self._key_ids = key_ids

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        key = _bearer(scope) if path.startswith(API_PREFIX) else None
        key_id = None if key is None else await self._key_ids.of(key)
        wait_s = 0.0 if key_id is None else self._limiter.acquire(key_id)
        if wait_s <= 0:
            await self.app(scope, receive, send)
            return
        await too_many_requests(path, wait_s)(scope, receive, send)


def too_many_requests(path: str, wait_s: float) -> ASGIApp:
    """The 429 answer for `path`, telling the client to come back in `wait_s` seconds."""
    seconds = min(MAX_RETRY_AFTER_S, max(1, math.ceil(wait_s)))
    headers = {
        "Retry-After": str(seconds),
        "retry-after-ms": str(min(MAX_RETRY_AFTER_S * 1000, max(1, math.ceil(wait_s * 1000)))),
        "x-should-retry": "true",
    }
    message = f"too many requests for this API key; retry in {seconds} s"
    if is_dataframer_path(path):
        return dataframer_error(429, message, "rate_limited", headers=headers)
    return error_response(429, message, headers=headers)


def install_rate_limit(app: FastAPI, context: ServerContext) -> None:
    """Add the limiter the settings ask for to `app` (nothing when the limit is 0)."""
    settings = context.settings
    if settings.rate_limit_per_minute > 0:
        limiter = RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)
        app.add_middleware(RateLimitMiddleware, limiter=limiter, key_ids=KeyIds(context.tenants.key_id))
