"""The contract between a worker and what executes a run: the claimed run, its live state, the outcome.

A worker hands the executor a `RunTicket` (a plain snapshot of the claimed run) and a `LiveRun`, which the
executor keeps up to date while it works (rows done, total rows, model spend so far, the evaluation's
status); the worker's heartbeat copies it to the database. The executor returns a `RunOutcome`
(`datamill.store.runs`) for success and for the failures it understands; anything it raises instead is
recorded as an internal error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from datamill.pipelines.adapt import RunCounters
from datamill.store import Run
from datamill.store.runs import RunOutcome


@dataclass(frozen=True)
class RunTicket:
    """A claimed run, detached from the database session.

    Attributes:
        cost_usd: model spend recorded by earlier attempts (the response cache makes repeated calls free,
            so the spend of every attempt adds up to what the run cost).
        attempts: this attempt's number, from 1.
        estimate: the estimate made at launch (with the request, model and options: the run's stored plan).
        worker_id: the worker that claimed the run for this attempt, which holds it while its lease lasts.
    """

    id: str
    tenant_id: str
    dataset_id: str | None
    source_dataset_id: str
    kind: str
    request: dict[str, Any]
    options: dict[str, Any]
    model: str
    cost_usd: float
    attempts: int
    total_rows: int | None
    estimate: dict[str, Any] = field(default_factory=dict)
    worker_id: str = ""

    @classmethod
    def of(cls, run: Run) -> RunTicket:
        return cls(
            id=run.id,
            tenant_id=run.tenant_id,
            dataset_id=run.dataset_id,
            source_dataset_id=run.source_dataset_id,
            kind=run.kind,
            request=dict(run.request),
            options=dict(run.options),
            model=run.model,
            cost_usd=float(run.cost_usd or 0.0),
            attempts=run.attempts,
            total_rows=run.total_rows,
            estimate=dict(run.estimate or {}),
            worker_id=run.worker_id or "",
        )


def _no_cost() -> float:
    return 0.0


@dataclass
class LiveRun:
    """What an executing run has done so far; written by the executor, read by the heartbeat thread."""

    counters: RunCounters = field(default_factory=RunCounters)
    total_rows: int | None = None
    cost_usd: Callable[[], float] = _no_cost
    evaluation_status: str | None = None

    def values(self) -> dict[str, Any]:
        """The run's columns this state sets (processed rows never pass the total)."""
        done = self.counters.rows_done
        if self.total_rows is not None:
            done = min(done, self.total_rows)
        values: dict[str, Any] = {
            "processed_rows": done,
            "rows_rejected": self.counters.rows_rejected,
            "cost_usd": self.cost_usd(),
        }
        if self.total_rows is not None:
            values["total_rows"] = self.total_rows
        if self.evaluation_status is not None:
            values["evaluation_status"] = self.evaluation_status
        return values


class RunExecutor(Protocol):
    """Executes one claimed run to its end; cancellation means the run is given back (or its lease lost)."""

    async def __call__(self, ticket: RunTicket, live: LiveRun) -> RunOutcome: ...
