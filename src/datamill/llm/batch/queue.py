"""Batch mode: calls gathered into provider batches, submitted, polled, and answered to their callers.

A caller asks for one reply (`BatchQueue.reply`) and waits, as it would for an online call. Requests for a
route gather until none has arrived for ``flush_after_s`` (or ``max_wait_s`` passed since the first, or
``max_requests`` are waiting); they are then written to the journal, submitted as one batch, and the batch is
polled every ``route.batch_poll_s`` seconds until it ends. Each answer goes through the provider's own parser;
a request the batch did not answer (an error status, an expired or failed batch) raises `BatchItemError`,
which the gateway retries online.

A request is known by its response-cache key. Before queueing it, the journal (`BatchJournal`) is asked: a
request already in a submitted batch waits for that batch (polled again after a restart), one in an ended
batch gets its stored answer, so no request is submitted twice. A batch recorded as ``submitting`` (the
process died before the create call answered) is looked up by its name where the API allows it
(`BatchAPI.find`), and is submitted again only when it is not found.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datamill.core.errors import ConfigError, ModelError, PermanentModelError, TransientError
from datamill.llm.batch.journal import ENDED, SUBMITTED, SUBMITTING, BatchJournal
from datamill.llm.batch.wire import BATCH_APIS, BatchAPI, BatchState, ItemResult
from datamill.llm.cache import cache_key
from datamill.llm.http.interface import Transport
from datamill.llm.types import ChatRequest, ProviderReply, Route

log = logging.getLogger(__name__)

#: Attempts at a batch API call that fails transiently (a 5xx, a 429, a dropped connection).
CALL_ATTEMPTS = 5


class BatchItemError(TransientError):
    """A request its batch did not answer with a reply: the gateway sends it online."""


@dataclass
class _Pending:
    route: Route
    items: list[tuple[str, ChatRequest]] = field(default_factory=list)
    first: float = 0.0
    last: float = 0.0
    flusher: asyncio.Task[None] | None = None


class BatchQueue:
    """Gathers, submits and polls batches for the routes a gateway sends in batch mode.

    Args:
        transport: the HTTP transport of the batch API calls (the gateway's, made on first use).
        journal: where batches are recorded (in memory until `attach` names a file).
        flush_after_s: a route's waiting requests are submitted once none has arrived for this long.
        max_wait_s: ... or once the first has waited this long.
        max_requests: the most requests in one batch.
    """

    def __init__(
        self,
        transport: Callable[[], Transport],
        *,
        journal: BatchJournal | None = None,
        flush_after_s: float = 1.0,
        max_wait_s: float = 10.0,
        max_requests: int = 2000,
    ) -> None:
        self._transport = transport
        self._journal = journal
        self._journal_path: Path | None = None
        self.flush_after_s = flush_after_s
        self.max_wait_s = max_wait_s
        self.max_requests = max_requests
        self._apis: dict[str, BatchAPI] = {}
        self._futures: dict[str, asyncio.Future[ItemResult | None]] = {}
        self._pending: dict[str, _Pending] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._watched: set[str] = set()

    @property
    def journal(self) -> BatchJournal:
        """The journal, opened on first use (in ``attach``'s file, else in memory)."""
        if self._journal is None:
            self._journal = BatchJournal(self._journal_path)
        return self._journal

    def attach(self, path: Path) -> None:
        """Keep the journal in ``path`` from now on (a run's checkpoint folder); an existing one resumes."""
        if self._journal is not None:
            if self._journal.path == path:
                return
            self._journal.close()
            self._journal = None
        self._journal_path = path

    async def reply(self, route: Route, request: ChatRequest) -> ProviderReply:
        """The reply to ``request`` from a provider batch.

        Raises:
            BatchItemError: the batch did not answer this request (send it online).
            ConfigError: the provider's batch API refused the batch itself (the run must stop).
            TransientError: the reply could not be parsed (the provider's parser's errors).
        """
        api = self._api(route)
        key = cache_key(route, request)
        while True:
            result = await self._result(route, key, request)
            if result is not None:
                break
        if result.status != 200:
            shown = result.body[:300].decode("utf-8", "replace")
            raise BatchItemError(
                f"{route.name}: the batch did not answer this request ({result.status}): {shown}"
            )
        return api.parse(route, request, result.body)

    async def aclose(self) -> None:
        """Stop polling (the journal keeps the batches for a later run) and close the journal."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for future in self._futures.values():
            if not future.done():
                future.cancel()
        self._futures.clear()
        self._pending.clear()
        self._watched.clear()
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    # ---- one request ---------------------------------------------------------------------------------------

    async def _result(self, route: Route, key: str, request: ChatRequest) -> ItemResult | None:
        future = self._futures.get(key)
        if future is None:
            item = self.journal.item(key)
            if item is not None and item.status is not None:
                return ItemResult(item.status, item.body or b"")
            if item is not None and item.batch not in self._watched:
                self._resume(route, item.batch)
            future = self._futures.get(key)
            if future is None:
                future = self._futures[key] = asyncio.get_running_loop().create_future()
                self._enqueue(route, key, request)
        return await asyncio.shield(future)

    def _enqueue(self, route: Route, key: str, request: ChatRequest) -> None:
        loop = asyncio.get_running_loop()
        pending = self._pending.get(route.name)
        if pending is None:
            pending = self._pending[route.name] = _Pending(route, first=loop.time())
        pending.items.append((key, request))
        pending.last = loop.time()
        if len(pending.items) >= self.max_requests:
            self._flush(route.name)
        elif pending.flusher is None:
            pending.flusher = self._spawn(self._wait_and_flush(route.name))

    async def _wait_and_flush(self, name: str) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.flush_after_s)
            pending = self._pending.get(name)
            if pending is None:
                return
            now = loop.time()
            if now - pending.last >= self.flush_after_s * 0.99 or now - pending.first >= self.max_wait_s:
                pending.flusher = None
                self._flush(name)
                return

    def _flush(self, name: str) -> None:
        pending = self._pending.pop(name, None)
        if pending is None or not pending.items:
            return
        if pending.flusher is not None and pending.flusher is not asyncio.current_task():
            pending.flusher.cancel()
        self._spawn(self._submit(pending.route, pending.items))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ---- one batch -----------------------------------------------------------------------------------------

    async def _submit(self, route: Route, items: list[tuple[str, ChatRequest]]) -> None:
        name = "datamill-" + uuid.uuid4().hex[:20]
        custom = [(key, "dm-" + key[:48]) for key, _ in items]
        keys = [key for key, _ in items]
        try:
            self.journal.open_batch(name, route.name, custom)
            self._watched.add(name)
            api = self._api(route)
            requests = [(cid, request) for (_, cid), (_, request) in zip(custom, items, strict=True)]
            remote = await self._create(api, route, requests, name)
            self.journal.submitted(name, remote)
            await self._poll(api, route, name, remote, wait_first=True)
        except BaseException as exc:
            if not isinstance(exc, asyncio.CancelledError):
                self.journal.ended(name, {}, f"the batch was not submitted: {exc}")
            self._fail(keys, exc)
            raise

    async def _create(
        self, api: BatchAPI, route: Route, requests: list[tuple[str, ChatRequest]], name: str
    ) -> str:
        for attempt in range(1, CALL_ATTEMPTS + 1):
            try:
                return await api.submit(route, requests, name)
            except PermanentModelError as exc:
                if exc.status in (400, 401, 403, 404, 405, 413, 422):
                    raise ConfigError(
                        f"model {route.name!r}: the provider's batch API refused the batch ({exc}); check "
                        "the route, or run without batch mode (no --batch, or `batch: false` on the route)"
                    ) from exc
                raise
            except TransientError:
                if attempt == CALL_ATTEMPTS:
                    raise
                found = await self._find(api, route, name)
                if found is not None:
                    return found
                await asyncio.sleep(min(30.0, 2.0**attempt))
            except ModelError:
                if attempt == CALL_ATTEMPTS:
                    raise
                await asyncio.sleep(min(30.0, 2.0**attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _find(self, api: BatchAPI, route: Route, name: str) -> str | None:
        try:
            return await api.find(route, name)
        except ModelError as exc:
            log.warning("%s: could not look up batch %s: %s", route.name, name, exc)
            return None

    async def _poll(self, api: BatchAPI, route: Route, name: str, remote: str, *, wait_first: bool) -> None:
        failures = 0
        if wait_first:
            await asyncio.sleep(route.batch_poll_s)
        while True:
            try:
                state = await api.state(route, remote)
            except PermanentModelError as exc:
                state = BatchState(True, f"the batch could not be read: {exc}")
            except ModelError as exc:
                failures += 1
                log.warning("%s: polling batch %s failed (%s); polling on", route.name, remote, exc)
                await asyncio.sleep(route.batch_poll_s * min(failures, 10))
                continue
            if state.ended:
                break
            await asyncio.sleep(route.batch_poll_s)
        results: dict[str, ItemResult] = {}
        if state.failed is None:
            results = await self._results(api, route, remote, state)
        self.journal.ended(name, {cid: (r.status, r.body) for cid, r in results.items()}, state.failed)
        self._settle(name)

    async def _results(
        self, api: BatchAPI, route: Route, remote: str, state: BatchState
    ) -> dict[str, ItemResult]:
        for attempt in range(1, CALL_ATTEMPTS + 1):
            try:
                return await api.results(route, remote, state)
            except (TransientError, ModelError):
                if attempt == CALL_ATTEMPTS:
                    raise
                await asyncio.sleep(min(30.0, 2.0**attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def _settle(self, name: str) -> None:
        """Hand each waiting caller of batch ``name`` its stored answer."""
        for item in self.journal.items_of(name):
            future = self._futures.pop(item.key, None)
            if future is not None and not future.done():
                future.set_result(ItemResult(item.status or 0, item.body or b""))
        self._watched.discard(name)

    def _fail(self, keys: list[str], exc: BaseException) -> None:
        for key in keys:
            future = self._futures.pop(key, None)
            if future is not None and not future.done():
                if isinstance(exc, asyncio.CancelledError):
                    future.cancel()
                else:
                    future.set_exception(exc)

    def _resume(self, route: Route, name: str) -> None:
        """Watch a batch an earlier process recorded: poll it, or find it if its create went unanswered."""
        batch = self.journal.batch(name)
        if batch is None or batch.state == ENDED:
            return
        self._watched.add(name)
        loop = asyncio.get_running_loop()
        keys = []
        for item in self.journal.items_of(name):
            if item.status is None and item.key not in self._futures:
                self._futures[item.key] = loop.create_future()
                keys.append(item.key)
        self._spawn(self._resumed(route, name, batch.state, batch.remote_id, keys))

    async def _resumed(
        self, route: Route, name: str, state: str, remote: str | None, keys: list[str]
    ) -> None:
        api = self._api(route)
        try:
            if state == SUBMITTING:
                remote = await self._find(api, route, name)
                if remote is None:  # never created: its requests are queued again by their callers
                    self._watched.discard(name)
                    for key in keys:
                        future = self._futures.pop(key, None)
                        if future is not None and not future.done():
                            future.set_result(None)
                    self.journal.forget(name)
                    return
                self.journal.submitted(name, remote)
            if state in (SUBMITTING, SUBMITTED) and remote is not None:
                await self._poll(api, route, name, remote, wait_first=False)
        except BaseException as exc:
            self._fail(keys, exc)
            raise

    def _api(self, route: Route) -> BatchAPI:
        api = self._apis.get(route.provider)
        if api is None:
            kind = BATCH_APIS.get(route.provider)
            if kind is None:
                raise ConfigError(f"model {route.name!r}: provider kind {route.provider!r} has no batch API")
            api = self._apis[route.provider] = kind(self._transport())
        return api


def serves(route: Route, all_routes: bool) -> bool:
    """Whether calls on ``route`` go through batches: its ``batch`` setting, else the run's."""
    if route.provider not in BATCH_APIS:
        return False
    return route.batch if route.batch is not None else all_routes


__all__ = ["BatchItemError", "BatchQueue", "serves"]
