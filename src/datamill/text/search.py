"""Search: where grounding finds supporting passages, behind one small interface.

The grounding step holds a `Search` and never knows which backend answers. Backends:

- `LocalFullTextIndex` (``datamill.text.fulltext``): the embedded default, SQLite FTS5 over documents the
  user supplies;
- `HttpSearch`: a search API the operator configures, reached through the safe URL fetcher
  (``datamill.text.fetch``): an endpoint on an internal address must be on the ``DATAMILL_FETCH_ALLOW`` list;
- `FakeSearch`: scripted passages, shipped for tests and demos.

A `Passage` carries the backend's own relevance score (BM25 for the local index, whatever the API returns
for `HttpSearch`): higher is more relevant, and scores compare only within one backend.

`HttpSearch` wire shape (an operator fronts any search service with it, or a few lines of proxy):
``POST <url>`` with ``{"query": str, "k": int}`` answered by
``{"results": [{"source": str, "text": str, "score": number (optional), "relevance": 0–1 (optional)}, ...]}``,
best first. A result without a score gets `UNSCORED`; ``relevance`` is how much of the query the passage
covers (a semantic search returns its similarity there), and grounding measures it itself when it is absent.
Statuses map as for model providers: 429 and 5xx/408/409 are retried with the gateway's `RetryPolicy`, and
so are connection failures and timeouts; 401/403/404 raise `PermanentModelError`, which stops an adaptation
run (every row would fail the same way); a reply of the wrong shape, or an endpoint the fetcher refuses,
raises `ConfigError` (the endpoint is misconfigured).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from datamill.core.errors import ConfigError, PermanentModelError, RateLimitedError, TransientError
from datamill.llm.limits.headers import retry_after_seconds
from datamill.llm.retry import RetryPolicy
from datamill.text.fetch import FetchFailed, FetchRefused, FetchResult, SafeFetcher
from datamill.text.fetch_policy import FetchPolicy

#: Score given to an `HttpSearch` result that carries none: the API vouched for it by returning it.
UNSCORED = 1.0


@dataclass(frozen=True, slots=True)
class Passage:
    """A piece of a document that a search found.

    Attributes:
        source: where it comes from (a file path, ``file#record``, a URL), shown to the user as a citation.
        text: the passage itself.
        score: the backend's relevance score; higher is more relevant.
        relevance: how much of the query the passage covers, from 0 to 1, comparable across queries and
            corpora; None when the backend does not say (then only ``score`` is known).
    """

    source: str
    text: str
    score: float
    relevance: float | None = None


class Search(Protocol):
    """Finds the passages most relevant to a query."""

    async def search(self, query: str, k: int) -> list[Passage]:
        """Up to ``k`` passages for ``query``, best first (an empty list when nothing matches)."""
        ...


SearchResponder = Callable[[str, int], Sequence[Passage]]


class FakeSearch:
    """Answers from scripted passages and records each query in ``queries``.

    Without a ``responder`` every query gets the scripted ``passages``, best score first, cut to ``k``;
    a ``responder(query, k)`` scripts the answer per query instead.
    """

    def __init__(self, passages: Sequence[Passage] = (), *, responder: SearchResponder | None = None) -> None:
        self._passages = sorted(passages, key=lambda p: p.score, reverse=True)
        self._responder = responder
        self.queries: list[str] = []

    async def search(self, query: str, k: int) -> list[Passage]:
        self.queries.append(query)
        found = self._responder(query, k) if self._responder else self._passages
        return list(found)[: max(0, k)]


class HttpSearch:
    """A search API the operator configures (wire shape in the module docstring).

    Args:
        url: the endpoint to POST queries to.
        fetcher: the safe URL fetcher (one with `policy` is created, and closed by `aclose`, when None).
        policy: what the fetcher this object creates may reach (no internal address when None).
        api_key: a key sent as ``Authorization: Bearer <key>`` (the caller reads it from its settings).
        headers: extra headers sent with every request.
        timeout_s: per-request timeout.
        retry: retry policy for 429s and transient failures.
    """

    def __init__(
        self,
        url: str,
        *,
        fetcher: SafeFetcher | None = None,
        policy: FetchPolicy | None = None,
        api_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_s: float = 30.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.url = url
        self._fetcher = fetcher or SafeFetcher(policy)
        self._owns_fetcher = fetcher is None
        self._api_key = api_key
        self._headers = dict(headers or {})
        self._timeout_s = timeout_s
        self._retry = retry or RetryPolicy()

    async def search(self, query: str, k: int) -> list[Passage]:
        """Ask the API; retries 429s and transient failures per the retry policy."""
        if k <= 0:
            return []
        state = None
        while True:
            try:
                return await self._once(query, k)
            except (RateLimitedError, TransientError) as exc:
                state = state or self._retry.start()
                await asyncio.sleep(state.next_delay(exc))

    async def aclose(self) -> None:
        """Close the fetcher if this object created it."""
        if self._owns_fetcher:
            await self._fetcher.aclose()

    async def _once(self, query: str, k: int) -> list[Passage]:
        headers = self._request_headers()
        try:
            async with asyncio.timeout(self._timeout_s):
                reply = await self._fetcher.fetch(
                    self.url, method="POST", json={"query": query, "k": k}, headers=headers
                )
        except FetchRefused as exc:
            raise ConfigError(f"search API {self.url} cannot be reached: {exc.reason}") from exc
        except FetchFailed as exc:
            raise TransientError(f"search API {self.url}: {exc.reason}") from exc
        except TimeoutError:
            raise TransientError(f"search API {self.url}: no answer within {self._timeout_s:g} s") from None
        self._raise_for_status(reply)
        try:
            body = reply.json()
        except ValueError as exc:
            raise ConfigError(f"search API {self.url} answered with invalid JSON: {exc}") from exc
        return parse_results(body, self.url)[:k]

    def _request_headers(self) -> dict[str, str]:
        headers = dict(self._headers)
        if self._api_key is not None:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def _raise_for_status(self, reply: FetchResult) -> None:
        if 200 <= reply.status < 300:
            return
        message = f"search API {self.url}: HTTP {reply.status}: {reply.body[:300].decode('utf-8', 'replace')}"
        if reply.status == 429:
            raise RateLimitedError(message, retry_after=retry_after_seconds(dict(reply.headers)))
        if reply.status >= 500 or reply.status in (408, 409):
            raise TransientError(message)
        raise PermanentModelError(message, status=reply.status)


def parse_results(body: Any, url: str) -> list[Passage]:
    """The passages of an `HttpSearch` reply body.

    Raises:
        ConfigError: the body is not ``{"results": [{"source": str, "text": str, "score"?: number}]}``.
    """
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list):
        raise ConfigError(f'search API {url} answered without a "results" list')
    passages = []
    for i, item in enumerate(results):
        source = item.get("source") if isinstance(item, dict) else None
        text = item.get("text") if isinstance(item, dict) else None
        score = item.get("score", UNSCORED) if isinstance(item, dict) else None
        relevance = item.get("relevance") if isinstance(item, dict) else None
        if not isinstance(source, str) or not isinstance(text, str):
            raise ConfigError(f"search API {url}: results[{i}] needs string fields source and text")
        if isinstance(score, bool) or not isinstance(score, int | float):
            raise ConfigError(f"search API {url}: results[{i}].score must be a number")
        if relevance is not None and (
            isinstance(relevance, bool) or not isinstance(relevance, int | float) or not 0 <= relevance <= 1
        ):
            raise ConfigError(f"search API {url}: results[{i}].relevance must be a number from 0 to 1")
        passages.append(
            Passage(source, text, float(score), float(relevance) if relevance is not None else None)
        )
    return passages
