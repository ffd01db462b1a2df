"""Rate limits: requests per API key, and failed authentications per client address.

Both are counted by `limits` (a well-kept rate-limiting library) with its fixed-window strategy, in the
storage ``DATAMILL_RATE_LIMIT_STORAGE`` names: ``auto`` (the default: the metadata database when it is
PostgreSQL, so every API process counts together, `datamill.store.ratelimit_storage`; memory on SQLite,
where one API process serves), ``database``, ``memory`` (each process on its own), or any storage URI
`limits` knows (``redis://host:6379``, ``memcached://...``, with its client package installed).

- **Per key**, on the ``/api/`` routes: each key may make `burst` requests in a window of
  ``burst × 60 / per_minute`` seconds (so `per_minute` a minute on average; by default the burst is a
  minute's worth and the window a minute). The key's id is looked up from the bearer key as authentication
  does, and remembered for a minute, so a busy key costs no extra query.
- **Per address**, on the ``/api/`` routes and the web sign-in: each answer 401 (no key, an unknown or
  revoked one, a wrong key typed at sign-in) counts against the client's address, `anon_per_minute` a
  minute; an address over that is answered 429 before its key is looked up, so guessing keys or flooding
  with bad ones costs the database nothing more. Requests with a valid key never count here. The address
  is the one uvicorn reports (behind a proxy, set ``--forwarded-allow-ips`` so it is the client's).

Over a limit the answer is 429 in the error shape of the API the path belongs to, with ``Retry-After``
(whole seconds, at most 60) and ``retry-after-ms`` saying when the window ends, and ``x-should-retry:
true``: the official SDKs wait that long and retry by themselves.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from fastapi import FastAPI
from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from datamill.core.errors import ConfigError
from datamill.server.context import ServerContext
from datamill.server.errors import dataframer_error, error_response, is_dataframer_path
from datamill.store.ratelimit_storage import DatabaseStorage

API_PREFIX = "/api/"
SIGN_IN_PATH = "/login"
MAX_RETRY_AFTER_S = 60
_KEY_CACHE_S = 60.0


class RateLimiter:
    """`burst` requests per window of ``burst × 60 / per_minute`` seconds for each identity.

    Args:
        per_minute: the average rate allowed.
        burst: the most requests in one window (default: `per_minute`, a one-minute window).
        storage: where the counts live (a new in-memory one when None).
        name: tells this limit's counters from another's in a shared storage.
    """

    def __init__(
        self, per_minute: int, burst: int | None = None, *, storage: Storage | None = None, name: str = "key"
    ) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        capacity = max(1, burst or per_minute)
        self.window_s = max(1, math.ceil(capacity * 60 / per_minute))
        self._item = RateLimitItemPerSecond(capacity, self.window_s, namespace=f"datamill-{name}")
        self._strategy = FixedWindowRateLimiter(storage if storage is not None else MemoryStorage())

    def acquire(self, identity: str) -> float:
        """Count one request of `identity`: 0.0 if allowed, else the seconds until its window ends."""
        if self._strategy.hit(self._item, identity):
            return 0.0
        return self.wait(identity)

    def allows(self, identity: str) -> float:
        """Without counting: 0.0 when `identity` has requests left in its window, else the seconds to wait."""
        return 0.0 if self._strategy.test(self._item, identity) else self.wait(identity)

    def count(self, identity: str) -> None:
        """Count one request of `identity` (already answered)."""
        self._strategy.hit(self._item, identity)

    def wait(self, identity: str) -> float:
        reset = self._strategy.get_window_stats(self._item, identity).reset_time
        return max(0.001, reset - time.time())


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


def _address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class RateLimitMiddleware:
    """ASGI middleware answering 429 for a key, or an address, over its limit (module docstring)."""

    def __init__(
        self, app: ASGIApp, keys: RateLimiter | None, addresses: RateLimiter | None, key_ids: KeyIds
    ) -> None:
        self.app = app
        self._keys, self._addresses, self._key_ids = keys, addresses, key_ids

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        api = path.startswith(API_PREFIX)
        if not (api or (path == SIGN_IN_PATH and scope.get("method") == "POST")):
            await self.app(scope, receive, send)
            return
        address = _address(scope)
        if self._addresses is not None:
            wait_s = await run_in_threadpool(self._addresses.allows, address)
            if wait_s > 0:
                await too_many_requests(path, wait_s, "from this address")(scope, receive, send)
                return
        key = _bearer(scope) if api else None
        if key is not None and self._keys is not None:
            key_id = await self._key_ids.of(key)
            wait_s = 0.0 if key_id is None else await run_in_threadpool(self._keys.acquire, key_id)
            if wait_s > 0:
                await too_many_requests(path, wait_s, "for this API key")(scope, receive, send)
                return
        addresses = self._addresses
        if addresses is None:
            await self.app(scope, receive, send)
            return

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                # Counted before the client can read its 401, so its next request sees the count.
                await run_in_threadpool(addresses.count, address)
            await send(message)

        await self.app(scope, receive, watch)


def too_many_requests(path: str, wait_s: float, who: str = "for this API key") -> ASGIApp:
    """The 429 answer for `path`, telling the client to come back in `wait_s` seconds."""
    seconds = min(MAX_RETRY_AFTER_S, max(1, math.ceil(wait_s)))
    headers = {
        "Retry-After": str(seconds),
        "retry-after-ms": str(min(MAX_RETRY_AFTER_S * 1000, max(1, math.ceil(wait_s * 1000)))),
        "x-should-retry": "true",
    }
    message = f"too many requests {who}; retry in {seconds} s"
    if is_dataframer_path(path):
        return dataframer_error(429, message, "rate_limited", headers=headers)
    return error_response(429, message, headers=headers)


def limit_storage(setting: str, context: ServerContext) -> Storage:
    """The storage ``DATAMILL_RATE_LIMIT_STORAGE`` names: ``auto``, ``database``, ``memory`` or a URI.

    Raises:
        ConfigError: a URI `limits` does not know, or whose client package is not installed.
    """
    if setting == "auto":
        setting = "database" if context.store.engine.dialect.name == "postgresql" else "memory"
    if setting == "database":
        return DatabaseStorage(context.store)
    if setting == "memory":
        return MemoryStorage()
    try:
        made = storage_from_string(setting)
    except Exception as exc:  # limits raises ConfigurationError, or an import error for a missing client
        raise ConfigError(
            f"DATAMILL_RATE_LIMIT_STORAGE: cannot use {setting!r} ({exc}); use database, memory or a "
            "storage URI of the limits library such as redis://host:6379 (with its client installed)"
        ) from exc
    if not isinstance(made, Storage):
        raise ConfigError(f"DATAMILL_RATE_LIMIT_STORAGE: {setting!r} names an asyncio storage; drop async+")
    return made


def install_rate_limit(app: FastAPI, context: ServerContext) -> None:
    """Add the limits the settings ask for to `app` (nothing when both are 0)."""
    settings = context.settings
    if settings.rate_limit_per_minute <= 0 and settings.rate_limit_anon_per_minute <= 0:
        return
    storage = limit_storage(settings.rate_limit_storage, context)
    keys = addresses = None
    if settings.rate_limit_per_minute > 0:
        keys = RateLimiter(
            settings.rate_limit_per_minute, settings.rate_limit_burst, storage=storage, name="key"
        )
    if settings.rate_limit_anon_per_minute > 0:
        addresses = RateLimiter(settings.rate_limit_anon_per_minute, storage=storage, name="address")
    key_ids = KeyIds(context.tenants.key_id)
    app.add_middleware(RateLimitMiddleware, keys=keys, addresses=addresses, key_ids=key_ids)
