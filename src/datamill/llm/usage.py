"""Usage ledger: calls, cache hits, failures, tokens, cost and latency, summed per tag and per model.

A *tag* is the name a caller passes with each call (a pipeline step: ``rephrase``, ``judge``, ...). The three
counters are disjoint: ``calls`` are requests a provider answered (paid); ``cache_hits`` were answered from
the response cache (free: their tokens and cost are **not** added to ``usage``/``cost_usd``, and the cost they
would have had goes to ``saved_usd``); ``failures`` raised an error, cancellations included (tokens already
paid for, e.g. by a failed repair, still count in ``usage`` and ``cost_usd``). ``requests`` is their sum.
``latency_s`` sums the wall time of paid calls, retries and waits included.

``usage`` and ``cost_usd`` are what the providers bill: prompt-cache reads and writes at their own prices
(`Route.cost`), and the attempts the provider billed but whose reply never arrived whole (a connection reset
mid-body, a timeout after the request was sent); ``unread`` counts those attempts (`datamill.llm.billing`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from datamill.llm.types import Usage


@dataclass(slots=True)
class UsageTotals:
    """Running sums for one tag, one model, or everything."""

    calls: int = 0
    cache_hits: int = 0
    failures: int = 0
    unread: int = 0
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    saved_usd: float = 0.0
    latency_s: float = 0.0

    @property
    def requests(self) -> int:
        return self.calls + self.cache_hits + self.failures

    @property
    def mean_latency_s(self) -> float:
        return self.latency_s / self.calls if self.calls else 0.0

    def add_call(self, usage: Usage, cost: float, latency_s: float) -> None:
        self.calls += 1
        self.usage.add(usage)
        self.cost_usd += cost
        self.latency_s += latency_s

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "calls": self.calls,
            "cache_hits": self.cache_hits,
            "failures": self.failures,
            "unread": self.unread,
            "input_tokens": self.usage.input_tokens,
            "cached_input_tokens": self.usage.cached_input_tokens,
            "cache_write_tokens": self.usage.cache_write_tokens,
            "output_tokens": self.usage.output_tokens,
            "thinking_tokens": self.usage.thinking_tokens,
            "cost_usd": self.cost_usd,
            "saved_usd": self.saved_usd,
            "latency_s": self.latency_s,
            "mean_latency_s": self.mean_latency_s,
        }


class UsageLedger:
    """Sums per tag and per model, plus a grand total."""

    __slots__ = ("by_model", "by_tag", "total")

    def __init__(self) -> None:
        self.total = UsageTotals()
        self.by_tag: dict[str, UsageTotals] = {}
        self.by_model: dict[str, UsageTotals] = {}

    def record_call(self, tag: str, model: str, usage: Usage, cost: float, latency_s: float) -> None:
        """A request the provider answered."""
        for totals in self._rows(tag, model):
            totals.add_call(usage, cost, latency_s)

    def record_cache_hit(self, tag: str, model: str, saved_usd: float) -> None:
        """A request answered from the cache; ``saved_usd`` is what it cost when it was first made."""
        for totals in self._rows(tag, model):
            totals.cache_hits += 1
            totals.saved_usd += saved_usd

    def record_failure(self, tag: str, model: str, usage: Usage | None = None, cost: float = 0.0) -> None:
        """A request that raised; ``usage``/``cost`` count tokens already paid for (e.g. a failed repair)."""
        for totals in self._rows(tag, model):
            totals.failures += 1
            if usage is not None:
                totals.usage = totals.usage + usage
            totals.cost_usd += cost

    def record_unread(self, tag: str, model: str, count: int) -> None:
        """``count`` attempts of one call were billed but their replies never read.

        Their usage and cost go in with the call's, through `record_call` or `record_failure`.
        """
        for totals in self._rows(tag, model):
            totals.unread += count

    def snapshot(self) -> dict[str, Any]:
        """Plain dicts: ``{"total": {...}, "by_tag": {tag: {...}}, "by_model": {model: {...}}}``."""
        return {
            "total": self.total.to_dict(),
            "by_tag": {k: v.to_dict() for k, v in self.by_tag.items()},
            "by_model": {k: v.to_dict() for k, v in self.by_model.items()},
        }

    def _rows(self, tag: str, model: str) -> tuple[UsageTotals, UsageTotals, UsageTotals]:
        by_tag = self.by_tag.get(tag)
        if by_tag is None:
            by_tag = self.by_tag[tag] = UsageTotals()
        by_model = self.by_model.get(model)
        if by_model is None:
            by_model = self.by_model[model] = UsageTotals()
        return self.total, by_tag, by_model
