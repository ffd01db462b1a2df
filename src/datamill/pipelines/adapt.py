"""The adaptation run: stream batches from a reader through the planned steps into checkpointed parts.

Batch steps run in file order, one batch at a time; row steps run concurrently across the rows of up to
``batches_in_flight`` batches, so the gateway's concurrency limiter, not the batch boundary, sets the pace.
A row step may fan a row out into several (language expansion); each new row continues through the remaining
steps. Every finished batch is saved to the checkpoint in input order. On resume, batches already saved are
replayed through the batch steps only (to rebuild their state, e.g. dedup's seen hashes) and skipped.

A row that a step rejects, or whose model call fails for good, is kept with its reason; an error that would
fail every row (no API key, unknown model, 401/403/404, no quota, a route the gateway found down) stops the
run. A run that ends with every row rejected delivered nothing: its result carries a `failure` naming the
commonest cause (`all_rejected`), and the callers fail the run with it.

Where a batch's row steps run is a `BatchRunner`: by default `RowRunner`, on this event loop; a caller may
pass another (``datamill.runners.ray_executor`` runs each batch on a Ray actor), which must run the plan's row
steps over the batch, save it to the checkpoint and count it in the run's counters the same way.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import pyarrow as pa

from datamill.core.errors import ModelError, fails_every_row
from datamill.pipelines.checkpoint import BatchCheckpoint
from datamill.pipelines.plan import AdaptPlan
from datamill.steps.base import Rejection, Row, RowRejected, StepContext
from datamill.steps.citations import TALLY_COLUMN
from datamill.steps.gather import gather_or_cancel

T = TypeVar("T")

#: Internal columns a checkpoint keeps: the identity that traces an output row to its source row, and the
#: per-row tallies a run's report adds up (`datamill.pipelines.grounding_report`).
_KEPT = frozenset({"_row", "_variant", TALLY_COLUMN})
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_NUMBER = re.compile(r"\d+")


@dataclass
class RunCounters:
    """Live counters a progress display reads."""

    rows_total: int = 0
    rows_done: int = 0
    rows_out: int = 0
    rows_rejected: int = 0
    batches_done: int = 0
    batches_resumed: int = 0
    #: ``adapting`` while rows flow, then ``evaluating`` while the judge grades the before/after sample.
    phase: str = "adapting"
    #: Judge calls of the evaluation made so far, and in all (two per sampled row: before and after).
    judged: int = 0
    to_judge: int = 0


@dataclass
class AdaptResult:
    rows_in: int
    rows_selected: int
    rows_out: int
    rows_rejected: int
    batches_resumed: int
    elapsed_s: float
    rejections_by_step: dict[str, int] = field(default_factory=dict)
    #: Why the run has nothing to deliver (every row rejected), else None; see `all_rejected`.
    failure: str | None = None


class BatchRunner(Protocol):
    """Runs the row steps of one batch (after its batch steps), then saves it to the checkpoint."""

    async def run(
        self, index: int, rows: list[Row], ctx: StepContext, checkpoint: BatchCheckpoint
    ) -> None: ...


#: Builds the `BatchRunner` of a run from its plan, counters and progress callback.
BatchRunnerFactory = Callable[[AdaptPlan, RunCounters, Callable[[RunCounters], None] | None], BatchRunner]


async def run_adaptation(
    batches: Iterable[pa.RecordBatch],
    plan: AdaptPlan,
    checkpoint: BatchCheckpoint,
    *,
    counters: RunCounters | None = None,
    on_progress: Callable[[RunCounters], None] | None = None,
    batches_in_flight: int = 4,
    batch_runner: BatchRunnerFactory | None = None,
) -> AdaptResult:
    """Run ``plan`` over ``batches``, saving each finished batch to ``checkpoint``."""
    return await _run(batches, plan, checkpoint, counters, on_progress, batches_in_flight, batch_runner)


async def _run(
    batches: Iterable[pa.RecordBatch],
    plan: AdaptPlan,
    checkpoint: BatchCheckpoint,
    counters: RunCounters | None,
    on_progress: Callable[[RunCounters], None] | None,
    batches_in_flight: int,
    batch_runner: BatchRunnerFactory | None = None,
) -> AdaptResult:
    started = time.perf_counter()
    counters = counters or RunCounters()
    counters.rows_total = plan.rows_selected
    done = checkpoint.completed()
    runner = (batch_runner or RowRunner)(plan, counters, on_progress)
    pending: deque[asyncio.Task[None]] = deque()
    next_row = 1
    try:
        for index, batch in enumerate(batches):
            rows = batch.to_pylist()
            for row in rows:
                row["_row"] = next_row
                next_row += 1
            if index in done:
                _replay(plan, rows, counters)
                continue
            ctx = StepContext()
            rows = _run_batch_steps(plan, rows, ctx, counters)
            pending.append(asyncio.create_task(runner.run(index, rows, ctx, checkpoint)))
            while len(pending) >= batches_in_flight:
                await _oldest(pending)
        while pending:
            await _oldest(pending)
    except BaseException:
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        raise
    by_step: Counter[str] = Counter()
    by_reason: Counter[str] = Counter()
    examples: dict[str, dict[str, Any]] = {}
    for record in checkpoint.iter_rejections():
        by_step[str(record.get("step"))] += 1
        kind = reason_kind(record)
        by_reason[kind] += 1
        examples.setdefault(kind, record)
    rows_out = checkpoint.output_rows()
    return AdaptResult(
        rows_in=next_row - 1,
        rows_selected=plan.rows_selected,
        rows_out=rows_out,
        rows_rejected=sum(by_step.values()),
        batches_resumed=counters.batches_resumed,
        elapsed_s=time.perf_counter() - started,
        rejections_by_step=dict(by_step),
        failure=all_rejected(rows_out, by_reason, examples),
    )


def reason_kind(record: dict[str, Any]) -> str:
    """A rejection's step and reason with the row's own parts (URLs, quoted text, numbers) blanked out.

    Rejections for one cause then count together.
    """
    reason = _URL.sub("<url>", str(record.get("reason") or ""))
    reason = _QUOTED.sub("'…'", reason)
    return f"{record.get('step')}: {_NUMBER.sub('N', reason)}"


def all_rejected(rows_out: int, by_reason: Counter[str], examples: dict[str, dict[str, Any]]) -> str | None:
    """Why a run that delivered no row failed: every row was rejected; the commonest cause, with an example.

    None when some row was delivered, or when no row was rejected (an empty input is not a failure).
    """
    rejected = sum(by_reason.values())
    if rows_out or not rejected:
        return None
    kind, count = by_reason.most_common(1)[0]
    example = examples[kind]
    share = "all of them" if count == rejected else f"{count} of them"
    return (
        f"every row was rejected ({rejected} rows); {share} by {example.get('step')}, "
        f"for example row {example.get('row_number')}: {example.get('reason')}"
    )


def _run_batch_steps(plan: AdaptPlan, rows: list[Row], ctx: StepContext, counters: RunCounters) -> list[Row]:
    before = len(ctx.rejected)
    for step in plan.batch_steps:
        rows = step.process_batch(rows, ctx)
    dropped = len(ctx.rejected) - before
    counters.rows_rejected += dropped
    counters.rows_done += dropped
    return rows


def _replay(plan: AdaptPlan, rows: list[Row], counters: RunCounters) -> None:
    """Feed a finished batch through the batch steps again so their state matches an uninterrupted run."""
    ctx = StepContext()
    kept = _run_batch_steps(plan, rows, ctx, counters)
    counters.rows_done += len(kept)
    counters.batches_done += 1
    counters.batches_resumed += 1


class RowRunner:
    """Runs the row steps of one batch concurrently, then saves the batch."""

    def __init__(
        self, plan: AdaptPlan, counters: RunCounters, on_progress: Callable[[RunCounters], None] | None
    ) -> None:
        self.steps = plan.row_steps
        self.counters = counters
        self.on_progress = on_progress

    async def run(self, index: int, rows: list[Row], ctx: StepContext, checkpoint: BatchCheckpoint) -> None:
        results = await gather_or_cancel([self._one(row, ctx) for row in rows])
        out = [saved_row(row) for group in results for row in group]
        checkpoint.save(index, out, [rejection_record(r) for r in ctx.rejected])
        self.counters.rows_out += len(out)
        self.counters.batches_done += 1

    async def _one(self, row: Row, ctx: StepContext) -> list[Row]:
        result = await self._chain(row, 0, ctx)
        self.counters.rows_done += 1
        if not result:
            self.counters.rows_rejected += 1
        if self.on_progress is not None:
            self.on_progress(self.counters)
        return result

    async def _chain(self, row: Row, start: int, ctx: StepContext) -> list[Row]:
        for position in range(start, len(self.steps)):
            step = self.steps[position]
            try:
                produced = await step.process_row(row, ctx)
            except RowRejected as exc:
                ctx.reject(row, step.name, str(exc))
                return []
            except ModelError as exc:
                if fails_every_row(exc):
                    raise
                ctx.reject(row, step.name, f"model error: {exc}")
                return []
            if produced is not None:
                groups = await gather_or_cancel([self._chain(r, position + 1, ctx) for r in produced])
                return [r for group in groups for r in group]
        return [row]


async def _oldest(pending: deque[asyncio.Task[None]]) -> None:
    """Wait for the oldest batch, then drop it from ``pending``.

    The wait is shielded: a stop (the run's task cancelled) must reach the caller's handler, which cancels
    every batch in one step. Cancelling the awaited batch first would free its model slots while the other
    batches still run, and their waiting rows would take the slots and send calls nobody will read.
    """
    await asyncio.shield(pending[0])
    pending.popleft()


def public_row(row: Row) -> dict[str, Any]:
    """A row without datamill's internal (underscore) columns."""
    return {k: v for k, v in row.items() if not k.startswith("_")}


def saved_row(row: Row) -> dict[str, Any]:
    """A row as a checkpoint keeps it: public columns, its identity (``_row``, ``_variant``), its tallies."""
    return {k: v for k, v in row.items() if not k.startswith("_") or k in _KEPT}


def rejection_record(rejection: Rejection) -> dict[str, Any]:
    """A rejected row as it is saved: its row number, the step, the reason and its public columns."""
    return {
        "row_number": rejection.row.get("_row"),
        "step": rejection.step,
        "reason": rejection.reason,
        "row": public_row(rejection.row),
    }
