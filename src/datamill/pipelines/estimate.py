"""Estimates: what an adaptation will cost before it runs (calls, tokens, output rows, credits, USD, minutes).

An estimate renders the real prompts for a sample of the input (the first `SAMPLE_ROWS` rows, mapped by the
plan's column mapping: `take_sample`), counts their tokens with a `Tokenizer`, and scales per-row averages up
to the rows each step will see:

- **Rows.** ``max_rows`` sampling is exact (the plan knows ``rows_selected``). Exact and near-duplicate
  dedup run on fresh copies over a larger sample, the first `DEDUP_SAMPLE_ROWS` rows (``filter_rows``; the
  prompts are still rendered for `SAMPLE_ROWS` of the rows they keep), and their drop rate is applied: exact
  when that sample is the whole input; on a larger file the sample holds fewer of the duplicate pairs, so the
  drops are a lower bound (the estimate errs high) and the note gives the sample's 95% interval. Dedup is
  cheap (about a second for 5,000 rows on one core), and a quote that misses a heavy dedup misses most of the
  run's cost; another batch step is measured the same way only when it sets
  ``estimate_on_sample = True``, else assumed to drop nothing (semantic dedup: it would load a model).
  Language expansion multiplies the rows of the steps after it, as the contract quotes: ``input × (1 +
  sample_rate × targets)``. Rows a model-based filter (safety review, pair judge) will reject cannot be known
  and are assumed to pass.
- **Requests.** A row step's ``requests_for(row)`` gives the exact requests it would send; the average count
  per sample row is its calls per row (so a step that skips some rows costs less). The expansion step is asked
  as if every row were sampled and scaled by ``sample_rate`` (the expected value, free of the sample's luck).
  A model step without ``requests_for`` is counted as one call per row of its input columns' text plus
  `FALLBACK_PROMPT_TOKENS`. Model-free row steps that are cheap and harmless (metadata injection, grounding on
  the local index, or any step with ``estimate_on_sample = True``) run on copies of the sample rows, so later
  steps render what they will see (the injected prompt, the passages); others (grounding through a paid search
  API, the embedding meaning check) are skipped. Columns that model steps would write are not simulated;
  later steps stand in what the row has (each step's ``requests_for`` says how).
- **Output tokens** per row: the step's ``estimate_output_tokens(row)``, else its ``expected_output_tokens``
  attribute (both per row), else each request's ``max_tokens`` (an upper bound, `FALLBACK_MAX_TOKENS` when
  unset). Thinking routes add the full thinking budget per request (an upper bound). Retries, repair calls and
  the response cache are not predicted: an estimate prices a cold run without failures.
- **Prompt cache.** A step's requests put the part every row shares first and mark where it ends
  (`Message.cache_point`); its tokens are the cacheable prefix when they reach the provider kind's minimum
  (`MIN_CACHED_PREFIX_TOKENS`). The first calls of a step, as many as run at once (the concurrency), find
  nothing cached: Anthropic bills them as cache writes, the others at the input price; every later call reads
  the prefix from the cache (the providers keep it for minutes and refresh it on each hit), billed at the
  route's ``cached_input_price``.
- **Money and time.** Cost uses the route's USD prices (`route_prices` for every step, else each step's own
  model route), with the prompt cache as above and, for a run sent through the provider's batch API
  (``batched``), the route's ``batch_discount`` off; credits follow `PriceTable` and the exact multimodal rule
  (`datamill.core.credits`). Minutes are calls over the effective rate (concurrency / latency per call,
  `BASE_LATENCY_S` plus output tokens at `HOSTED_TOKENS_PER_S` unless ``latency_s`` is given) summed over
  steps, plus `FIXED_OVERHEAD_S`; the local model runs one call at a time at `LOCAL_PREFILL_TOKENS_PER_S` /
  `LOCAL_DECODE_TOKENS_PER_S` (measured on 2 cores); the fake model takes no time.

`datamill.pipelines.estimate_compare.compare` sets an estimate beside the actual usage of the run.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from datamill.core.credits import MULTIMODAL_CREDITS_PER_BLOCK, PriceTable
from datamill.llm.types import ChatRequest, Route, Usage
from datamill.steps.base import Row, RowRejected, RowStep, StepContext
from datamill.steps.mapping import MapColumns
from datamill.text.tokenizer import LlamaVocabTokenizer, Tokenizer, default_tokenizer

if TYPE_CHECKING:
    import pyarrow as pa

    from datamill.core.adapt_request import AdaptRequest
    from datamill.pipelines.plan import AdaptPlan

#: Rows of the input an estimate renders prompts for.
SAMPLE_ROWS = 50
#: Rows of the input the dedup steps run on for the estimate (the whole input when it has no more).
DEDUP_SAMPLE_ROWS = 10_000
#: Fixed time of a run besides model calls: reading, checkpoints, writing the output, loading a local model.
FIXED_OVERHEAD_S = 20.0
#: Per-call latency of a hosted model before its first output token (network, queueing, prefill).
BASE_LATENCY_S = 1.0
#: Output speed of a hosted model per call, tokens per second.
HOSTED_TOKENS_PER_S = 60.0
#: The bundled SmolLM2 on llama.cpp, 2 cores: prompt tokens read per second, and tokens written per second.
LOCAL_PREFILL_TOKENS_PER_S = 290.0
LOCAL_DECODE_TOKENS_PER_S = 100.0
#: Instruction and chat markup assumed around a row's text for a model step without ``requests_for``.
FALLBACK_PROMPT_TOKENS = 200
#: Output tokens assumed for a request without ``max_tokens`` from a step that gives no expectation.
FALLBACK_MAX_TOKENS = 1024
#: The shortest prompt prefix each provider kind caches, in tokens: OpenAI and Gemini Flash 1,024, Gemini Pro
#: 2,048; Anthropic's minimum is 1,024 to 4,096 by model, and the estimate takes the largest (it errs high).
MIN_CACHED_PREFIX_TOKENS = {"openai": 1024, "anthropic": 4096, "gemini": 2048}


@dataclass(frozen=True)
class StepEstimate:
    """One row step's share of an estimate.

    Attributes:
        name: the step's name (also the usage-ledger tag of its calls).
        calls_per_row: average model calls per row the step sees.
        input_tokens, output_tokens, thinking_tokens: totals over the rows the step sees.
        cached_input_tokens, cache_write_tokens: the parts of ``input_tokens`` expected to be read from and
            written to the provider's prompt cache.
        calls: total model calls.
        rows: rows the step sees.
        cost_usd: model cost at the route's prices.
        seconds: model time (see the module docstring).
        model: the public model name priced, or None for a step without a model.
        basis: ``requests_for`` (rendered), ``fallback`` (no ``requests_for``) or ``none`` (no model).
    """

    name: str
    calls_per_row: float
    input_tokens: int
    output_tokens: int
    calls: int
    rows: int = 0
    thinking_tokens: int = 0
    cost_usd: float = 0.0
    seconds: float = 0.0
    model: str | None = None
    basis: str = "requests_for"
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Estimate:
    """The quote for a run (the server's wire layer writes the run/adapt response from it)."""

    steps: list[StepEstimate]
    rows_in: int
    rows_out: int
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    credits: float
    minutes: float
    multimodal_pricing_applied: bool
    credit_multiplier: float | None
    rows_selected: int = 0
    thinking_tokens: int = 0
    sample_size: int = 0
    notes: tuple[str, ...] = ()
    price_table: PriceTable = field(default_factory=PriceTable)
    cached_input_tokens: int = 0
    batched: bool = False

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.thinking_tokens

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["steps"] = [s.to_dict() for s in self.steps]
        out["notes"] = list(self.notes)
        out["price_table"] = self.price_table.to_dict()
        out["total_tokens"] = self.total_tokens
        return out


def take_sample(batches: Iterable[pa.RecordBatch], plan: AdaptPlan, *, limit: int = SAMPLE_ROWS) -> list[Row]:
    """The first ``limit`` rows of ``batches``, numbered from 1 (``_row``), mapped by the plan's mapping."""
    rows: list[Row] = []
    for batch in batches:
        rows.extend(batch.slice(0, limit - len(rows)).to_pylist())
        if len(rows) >= limit:
            break
    for number, row in enumerate(rows, 1):
        row["_row"] = number
    ctx = StepContext()
    for step in plan.batch_steps:
        if isinstance(step, MapColumns):
            rows = step.process_batch(rows, ctx)
    return rows


async def estimate_plan(
    plan: AdaptPlan,
    sample_rows: list[Row],
    *,
    request: AdaptRequest,
    route_prices: Route | None = None,
    tokenizer: Tokenizer | None = None,
    concurrency: int | None = None,
    latency_s: float | None = None,
    price_table: PriceTable | None = None,
    extra_steps: Sequence[tuple[RowStep, int]] = (),
    batched: bool = False,
    filter_rows: list[Row] | None = None,
) -> Estimate:
    """Estimate ``plan`` from mapped ``sample_rows`` (see the module docstring for every rule).

    Args:
        plan: the planned run.
        sample_rows: mapped rows of a sample of the input (`take_sample`); empty only for an empty input.
        request: the validated request (length, expansion, image column).
        route_prices: the route that prices (and times) every step; None uses each step's own model route.
        tokenizer: counts prompt tokens; `default_tokenizer()` when None (released when the estimate is done,
            so a run does not keep a vocabulary it no longer needs).
        concurrency: calls in flight per model; the route's ``max_concurrency`` when None.
        latency_s: seconds per call; derived from the output size when None.
        price_table: the operator's credit prices; the defaults when None.
        extra_steps: ``(step, rows)`` pairs of model work outside the plan's row steps (the evaluation judge
            on its sample of rows); each is estimated on the sample like a row step.
        batched: the calls go through the providers' batch APIs (priced with the route's ``batch_discount``).
        filter_rows: a larger sample (`take_sample` with ``limit=DEDUP_SAMPLE_ROWS``) that the batch filters
            measure their drop rate on; the first `SAMPLE_ROWS` rows it keeps are rendered. None: the filters
            measure on ``sample_rows``.

    Raises:
        ValueError: no sample rows for a plan that selects rows.
    """
    if not sample_rows and plan.rows_selected > 0:
        raise ValueError(f"no sample rows to estimate a run of {plan.rows_selected} rows from")
    counting = tokenizer if tokenizer is not None else default_tokenizer()
    counter = _Counter(counting, route_prices, concurrency, latency_s, batched)
    try:
        estimate = await _estimate(plan, sample_rows, request, counter, price_table, extra_steps, filter_rows)
        return dataclasses.replace(estimate, batched=batched)
    finally:
        if tokenizer is None and isinstance(counting, LlamaVocabTokenizer):
            counting.release()


async def _estimate(
    plan: AdaptPlan,
    sample_rows: list[Row],
    request: AdaptRequest,
    counter: _Counter,
    price_table: PriceTable | None,
    extra_steps: Sequence[tuple[RowStep, int]],
    filter_rows: list[Row] | None = None,
) -> Estimate:
    notes: list[str] = []
    if filter_rows is not None and len(filter_rows) > len(sample_rows):
        kept, count = _batch_filters(plan, [{"_row": i, **r} for i, r in enumerate(filter_rows, 1)], notes)
        rows = kept[:SAMPLE_ROWS]
    else:
        rows = [{"_row": i, **row} for i, row in enumerate(sample_rows, 1)]
        rows, count = _batch_filters(plan, rows, notes)
    estimates = []
    for step in plan.row_steps:
        estimates.append(counter.step(step, rows, count))
        rows, count = await _advance(step, rows, count)
    for step, extra_rows in extra_steps:
        estimates.append(counter.step(step, rows, min(extra_rows, count)))
    notes.extend(counter.notes)
    notes.extend(_request_notes(plan, request))
    return _total(estimates, plan, request, count, len(sample_rows), notes, price_table or PriceTable())


class _Counter:
    """Renders, counts, prices and times one step over the sample rows."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        route: Route | None,
        concurrency: int | None,
        latency_s: float | None,
        batched: bool = False,
    ) -> None:
        self.tokenizer = tokenizer
        self.route = route
        self.concurrency = concurrency
        self.latency_s = latency_s
        self.batched = batched
        self.notes: list[str] = []

    def step(self, step: RowStep, rows: list[Row], count: int) -> StepEstimate:
        name = step.name
        handle = step.model
        route = self.route or (handle.route if handle is not None else None)
        scale, renderer = step.estimate_requests()
        declared = type(renderer).requests_for is not RowStep.requests_for
        if not declared and handle is None:
            return StepEstimate(name, 0.0, 0, 0, 0, rows=count, basis="none")
        basis = "requests_for" if declared else "fallback"
        if not declared:
            self.notes.append(f"{name}: no requests_for; assumed one call per row of its input text")
        if not rows and count:
            self.notes.append(f"{name}: no sample row reaches this step; its calls are not estimated")
        calls = tokens_in = tokens_out = thinking = prefix = 0.0
        for row in rows:
            requests = renderer.requests_for(dict(row)) if declared else None
            c, i, o, t = self._row(step, row, requests, route)
            calls, tokens_in, tokens_out, thinking = calls + c, tokens_in + i, tokens_out + o, thinking + t
            prefix += self._cacheable(requests, route)
        per = scale * count / len(rows) if rows else 0.0
        n_calls = round(calls * per)
        usage = Usage(round(tokens_in * per), round(tokens_out * per), round(thinking * per))
        if route is not None and n_calls and prefix:
            self._cache_split(usage, round(prefix * per), n_calls, route)
        return StepEstimate(
            name=name,
            calls_per_row=calls * scale / len(rows) if rows else 0.0,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            calls=n_calls,
            rows=count,
            thinking_tokens=usage.thinking_tokens,
            cost_usd=route.cost(usage, batched=self.batched) if route is not None else 0.0,
            seconds=self._seconds(route, n_calls, usage),
            model=route.name if route is not None else None,
            basis=basis,
            cached_input_tokens=usage.cached_input_tokens,
            cache_write_tokens=usage.cache_write_tokens,
        )

    def _cacheable(self, requests: list[ChatRequest] | None, route: Route | None) -> int:
        """Tokens of ``requests``' stable prefixes that the route's provider would cache."""
        if not requests or route is None or route.provider not in MIN_CACHED_PREFIX_TOKENS:
            return 0
        minimum = MIN_CACHED_PREFIX_TOKENS[route.provider]
        total = 0
        for request in requests:
            point = max((i for i, m in enumerate(request.messages) if m.cache_point), default=None)
            if point is not None:
                tokens = self.tokenizer.count_messages(request.messages[: point + 1])
                total += tokens if tokens >= minimum else 0
        return total

    def _cache_split(self, usage: Usage, prefix: int, calls: int, route: Route) -> None:
        """Set the cache reads (and Anthropic's writes) of a step's ``prefix`` tokens over ``calls`` calls."""
        cold = min(calls, max(1, self.concurrency or route.max_concurrency))
        cached = round(prefix * (calls - cold) / calls)
        usage.cached_input_tokens = min(cached, usage.input_tokens)
        if route.provider == "anthropic":
            usage.cache_write_tokens = min(prefix - cached, usage.input_tokens - usage.cached_input_tokens)

    def _row(
        self, step: RowStep, row: Row, requests: list[ChatRequest] | None, route: Route | None
    ) -> tuple[int, int, int, int]:
        """(calls, input, output, thinking tokens) for one sample row."""
        if requests is None:  # no requests_for: one call over the step's input text
            text = "\n".join(str(row.get(c) or "") for c in step.input_columns)
            expected = step.estimate_output_tokens(row)
            out = expected if expected is not None else FALLBACK_MAX_TOKENS
            return 1, self.tokenizer.count(text) + FALLBACK_PROMPT_TOKENS, out, 0
        if not requests:
            return 0, 0, 0, 0
        tokens_in = sum(self.tokenizer.count_messages(r.messages) for r in requests)
        expected = step.estimate_output_tokens(row)
        out = expected if expected is not None else sum(r.max_tokens or FALLBACK_MAX_TOKENS for r in requests)
        thinking = 0
        if route is not None and route.thinking:
            thinking = sum(r.thinking_budget or route.default_thinking_budget for r in requests)
        return len(requests), tokens_in, out, thinking

    def _seconds(self, route: Route | None, calls: int, usage: Usage) -> float:
        if route is None or calls == 0:
            return 0.0
        written = usage.output_tokens + usage.thinking_tokens
        if self.latency_s is None and route.provider == "fake":
            return 0.0
        if self.latency_s is None and route.provider == "local":
            return usage.input_tokens / LOCAL_PREFILL_TOKENS_PER_S + written / LOCAL_DECODE_TOKENS_PER_S
        latency = self.latency_s
        if latency is None:
            latency = BASE_LATENCY_S + written / calls / HOSTED_TOKENS_PER_S
        slots = max(1, min(self.concurrency or route.max_concurrency, calls))
        return calls * latency / slots


def _batch_filters(plan: AdaptPlan, rows: list[Row], notes: list[str]) -> tuple[list[Row], int]:
    """The sample rows that pass the plan's filtering batch steps, and the estimated rows that pass."""
    count = plan.rows_selected
    whole = len(rows) >= plan.rows_total and plan.rows_selected == plan.rows_total
    for step in plan.batch_steps:
        if step.counted_by_plan:
            continue  # the sample is already mapped; max_rows is exact in rows_selected
        kept = step.estimate_sample(rows)
        if kept is None:
            notes.append(f"{step.name}: not measured on the sample; assumed to drop no rows")
            continue
        if rows and len(kept) < len(rows):
            count = len(kept) if whole else _scale(count, len(kept) / len(rows))
            dropped = len(rows) - len(kept)
            if whole:
                notes.append(f"{step.name}: drops {dropped} of {len(rows)} rows in the whole input")
            else:
                notes.append(_sampled_drop_note(step.name, dropped, len(rows)))
        rows = kept
    return rows, count


def _sampled_drop_note(name: str, dropped: int, seen: int) -> str:
    """The drop rate a batch filter showed on the first `seen` rows, with its 95% interval (Wilson)."""
    rate = dropped / seen
    z = 1.96
    centre = (rate + z * z / (2 * seen)) / (1 + z * z / seen)
    half = z * math.sqrt(rate * (1 - rate) / seen + z * z / (4 * seen * seen)) / (1 + z * z / seen)
    return (
        f"{name}: drops {dropped} of the first {seen} rows ({rate:.1%}; 95% interval "
        f"{max(0.0, centre - half):.1%}–{min(1.0, centre + half):.1%}); duplicates of rows beyond them are "
        "not seen, so more rows may be dropped than quoted"
    )


def _runs_on_sample(step: RowStep) -> bool:
    """Whether a model-free row step is cheap and harmless to run on the sample rows (it says so)."""
    return step.model is None and step.estimate_on_sample


async def _advance(step: RowStep, rows: list[Row], count: int) -> tuple[list[Row], int]:
    """Rows and row count after ``step``: fan-out grows the count; a model-free step runs on the sample."""
    fanned_out = step.estimate_rows_out(count)
    if fanned_out is not None:
        return rows, fanned_out
    if not rows or not _runs_on_sample(step):
        return rows, count
    clone = _isolated(step)
    kept = []
    for row in rows:
        copy_ = dict(row)
        try:
            produced = await clone.process_row(copy_, StepContext())
        except RowRejected:
            continue
        kept.append(produced[0] if produced else copy_)
    return kept, _scale(count, len(kept) / len(rows))


def _isolated(step: RowStep) -> RowStep:
    """A copy of ``step`` whose direct attributes are copies too, so its counters do not count the sample.

    Heavy members (a search index) are copied shallowly, so their data is shared, not duplicated.
    """
    clone = copy.copy(step)
    for key, value in vars(step).items():
        with contextlib.suppress(TypeError):  # locks and other uncopyable members stay shared
            setattr(clone, key, copy.copy(value))
    return clone


def _scale(rows: int, fraction: float) -> int:
    # Round up: an estimate reserves credits, and under-quoting is the failure a user notices.
    return math.ceil(rows * fraction - 1e-9)


def _request_notes(plan: AdaptPlan, request: AdaptRequest) -> list[str]:
    notes = ["rows rejected by model-based filters are not predicted; every row is assumed to pass"]
    expansion = request.language_expansion
    if expansion is not None:
        if not any(s.estimate_rows_out(1) is not None for s in plan.row_steps):
            notes.append("language expansion was requested but the plan has no expansion step")
        else:
            notes.append("expanded rows are counted with the source rows' token counts")
    if _multimodal(request):
        notes.append("image tokens are not counted; multimodal credits depend on output rows only")
    return notes


def _multimodal(request: AdaptRequest) -> bool:
    mapping = request.column_mapping
    return mapping is not None and mapping.image is not None and mapping.image in mapping.context


def _total(
    steps: list[StepEstimate],
    plan: AdaptPlan,
    request: AdaptRequest,
    rows_out: int,
    sample_size: int,
    notes: list[str],
    prices: PriceTable,
) -> Estimate:
    cost = sum(s.cost_usd for s in steps)
    multimodal = _multimodal(request)
    seconds = sum(s.seconds for s in steps) + FIXED_OVERHEAD_S
    return Estimate(
        steps=steps,
        rows_in=plan.rows_total,
        rows_out=rows_out,
        calls=sum(s.calls for s in steps),
        input_tokens=sum(s.input_tokens for s in steps),
        output_tokens=sum(s.output_tokens for s in steps),
        cost_usd=cost,
        credits=prices.credits(rows_out, cost, multimodal=multimodal),
        minutes=seconds / 60,
        multimodal_pricing_applied=multimodal,
        credit_multiplier=float(MULTIMODAL_CREDITS_PER_BLOCK) if multimodal else None,
        rows_selected=plan.rows_selected,
        thinking_tokens=sum(s.thinking_tokens for s in steps),
        cached_input_tokens=sum(s.cached_input_tokens for s in steps),
        sample_size=sample_size,
        notes=tuple(notes),
        price_table=prices,
    )
