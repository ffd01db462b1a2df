"""The adaptation run: stream batches from a reader through the planned steps into a writer.

Batch steps run in file order, one batch at a time; row steps run concurrently across the rows of up to
``batches_in_flight`` batches, so the gateway's concurrency limiter, not the batch boundary, sets the pace.
Output batches are written in input order. A row that a step rejects, or whose model call fails for good,
goes to the rejected list with its reason; an error that would fail every row (no API key, unknown model,
401/403) stops the run, and the writer is aborted so no half-written output is left.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from datamill.core.errors import ConfigError, ModelError, PermanentModelError, UnknownModelError
from datamill.pipelines.plan import AdaptPlan
from datamill.steps.base import Rejection, Row, RowRejected, StepContext

#: Permanent errors that mean every row would fail the same way.
_FATAL_STATUSES = frozenset({401, 403, 404})


class BatchSink:
    """Where finished rows go (a DatasetWriter satisfies it)."""

    def write_batch(self, batch: pa.RecordBatch | pa.Table) -> None: ...


@dataclass
class RunCounters:
    """Live counters a progress display reads."""

    rows_total: int = 0
    rows_done: int = 0
    rows_out: int = 0
    rows_rejected: int = 0


@dataclass
class AdaptResult:
    rows_in: int
    rows_selected: int
    rows_out: int
    rejections: list[Rejection]
    elapsed_s: float
    rejections_by_step: dict[str, int] = field(default_factory=dict)


async def run_adaptation(
    batches: Iterable[pa.RecordBatch],
    plan: AdaptPlan,
    sink: BatchSink,
    *,
    counters: RunCounters | None = None,
    on_progress: Callable[[RunCounters], None] | None = None,
    batches_in_flight: int = 4,
) -> AdaptResult:
    """Run ``plan`` over ``batches``, writing surviving rows to ``sink``."""
    started = time.perf_counter()
    counters = counters or RunCounters()
    counters.rows_total = plan.rows_selected
    ctx = StepContext()
    runner = _RowRunner(plan, ctx, counters, on_progress)
    pending: deque[asyncio.Task[list[Row]]] = deque()
    next_row = 1
    try:
        for batch in batches:
            rows = batch.to_pylist()
            for row in rows:
                row["_row"] = next_row
                next_row += 1
            rows = _run_batch_steps(plan, rows, ctx, counters)
            pending.append(asyncio.create_task(runner.run(rows)))
            while len(pending) >= batches_in_flight:
                _write(sink, await pending.popleft(), counters)
        while pending:
            _write(sink, await pending.popleft(), counters)
    except BaseException:
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        raise
    by_step = Counter(r.step for r in ctx.rejected)
    return AdaptResult(
        rows_in=next_row - 1,
        rows_selected=plan.rows_selected,
        rows_out=counters.rows_out,
        rejections=ctx.rejected,
        elapsed_s=time.perf_counter() - started,
        rejections_by_step=dict(by_step),
    )


def _run_batch_steps(plan: AdaptPlan, rows: list[Row], ctx: StepContext, counters: RunCounters) -> list[Row]:
    before = len(ctx.rejected)
    for step in plan.batch_steps:
        rows = step.process_batch(rows, ctx)
    dropped = len(ctx.rejected) - before
    counters.rows_rejected += dropped
    counters.rows_done += dropped
    return rows


class _RowRunner:
    """Runs the row steps of one batch concurrently and reports each finished row."""

    def __init__(
        self,
        plan: AdaptPlan,
        ctx: StepContext,
        counters: RunCounters,
        on_progress: Callable[[RunCounters], None] | None,
    ) -> None:
        self.steps = plan.row_steps
        self.ctx = ctx
        self.counters = counters
        self.on_progress = on_progress

    async def run(self, rows: list[Row]) -> list[Row]:
        done = await asyncio.gather(*(self._one(row) for row in rows))
        return [row for row in done if row is not None]

    async def _one(self, row: Row) -> Row | None:
        step_name = ""
        try:
            for step in self.steps:
                step_name = step.name
                await step.process_row(row, self.ctx)
            result: Row | None = row
        except RowRejected as exc:
            self.ctx.reject(row, step_name, str(exc))
            result = None
        except (ConfigError, UnknownModelError):
            raise
        except PermanentModelError as exc:
            if exc.status in _FATAL_STATUSES:
                raise
            self.ctx.reject(row, step_name, f"model error: {exc}")
            result = None
        except ModelError as exc:
            self.ctx.reject(row, step_name, f"model error: {exc}")
            result = None
        self.counters.rows_done += 1
        if result is None:
            self.counters.rows_rejected += 1
        if self.on_progress is not None:
            self.on_progress(self.counters)
        return result


def public_row(row: Row) -> dict[str, Any]:
    """A row without datamill's internal (underscore) columns."""
    return {k: v for k, v in row.items() if not k.startswith("_")}


def _write(sink: BatchSink, rows: list[Row], counters: RunCounters) -> None:
    if not rows:
        return
    sink.write_batch(pa.Table.from_pylist([public_row(r) for r in rows]))
    counters.rows_out += len(rows)
