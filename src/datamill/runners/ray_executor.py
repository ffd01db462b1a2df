"""The Ray executor: the batches of one run fanned out over Ray actors, each with its own model gateway.

The worker that claimed the run still reads the input and runs the batch steps (column mapping, sampling,
dedup) in file order, since they carry state from batch to batch; each batch's rows then go to one of
``actors`` Ray actors, which runs the plan's row steps (the model calls) over them on its own event loop and
gateway, and saves the batch to the run's checkpoint itself (on object storage for a cluster of several
machines, or a directory every node sees). So the checkpoint and resume semantics are the local executor's:
a batch is saved whole or not at all, and a resumed run skips the saved ones. Up to `run_adaptation`'s
``batches_in_flight`` batches are out at once (a worker asks for two per actor).

An actor builds its plan once, from a picklable ``make_plan`` the caller provides (it gets the actor's own
gateway, with the response cache, and with the shared concurrency budget when one is configured, and reads
the run's input where the actor's node has it, so nothing of the worker's disk is needed), and opens the
checkpoint with ``make_checkpoint``. An error that stops the run comes back as itself, not wrapped.

`connect` joins the cluster at ``address`` (``DATAMILL_RAY_ADDRESS``; ``auto`` for the one this machine is
part of) or, with none, starts a local Ray instance; it does nothing when Ray is already initialised in the
process. Nothing outside this module imports Ray.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import ray

from datamill.pipelines.adapt import BatchRunner, RowRunner, RunCounters
from datamill.pipelines.checkpoint import BatchCheckpoint
from datamill.pipelines.plan import AdaptPlan
from datamill.steps.base import Row, StepContext


@dataclass(frozen=True)
class ActorPlan:
    """An actor's plan, the model spend of its gateway so far, and how to close what it opened."""

    plan: AdaptPlan
    cost_usd: Callable[[], float]
    close: Callable[[], Awaitable[None]]


#: Builds an actor's plan, on the actor.
PlanFactory = Callable[[], Awaitable[ActorPlan]]


def connect(address: str | None) -> None:
    """Join the Ray cluster at `address`, or start a local instance; a no-op when already connected."""
    if not ray.is_initialized():
        ray.init(address=address or None, include_dashboard=False, log_to_driver=False)


@dataclass(frozen=True)
class BatchTally:
    """What an actor did with one batch, for the run's counters."""

    rows_done: int
    rows_out: int
    rows_rejected: int
    cost_usd: float


class BatchActor:
    """Runs the row steps of the batches it is given and saves them (a Ray actor; see the module doc)."""

    def __init__(self, make_plan: PlanFactory, make_checkpoint: Callable[[], BatchCheckpoint]) -> None:
        self._make_plan, self._checkpoint = make_plan, make_checkpoint()
        self._plan: ActorPlan | None = None
        self._lock = asyncio.Lock()

    async def run(self, index: int, rows: list[Row], ctx: StepContext) -> BatchTally:
        plan = await self._ready()
        counters = RunCounters()
        before = plan.cost_usd()
        await RowRunner(plan.plan, counters, None).run(index, rows, ctx, self._checkpoint)
        spent = plan.cost_usd() - before
        return BatchTally(counters.rows_done, counters.rows_out, counters.rows_rejected, spent)

    async def close(self) -> None:
        if self._plan is not None:
            await self._plan.close()

    async def _ready(self) -> ActorPlan:
        async with self._lock:  # the first batches arrive together; build the plan once
            if self._plan is None:
                self._plan = await self._make_plan()
            return self._plan


class RayBatchRunners:
    """A `BatchRunnerFactory` for `run_adaptation` that sends batches to Ray actors; `close` when done.

    Args:
        make_plan: builds an actor's plan (picklable).
        make_checkpoint: opens the run's checkpoint on an actor (picklable).
        actors: how many actors share the run's batches.
    """

    def __init__(
        self,
        make_plan: PlanFactory,
        make_checkpoint: Callable[[], BatchCheckpoint],
        *,
        actors: int = 2,
    ) -> None:
        remote: Any = ray.remote(num_cpus=0)(BatchActor)
        # Actor handles are untyped: their methods are called through ``.remote``.
        self._actors: list[Any] = [remote.remote(make_plan, make_checkpoint) for _ in range(max(1, actors))]
        self._next = 0
        self.cost_usd = 0.0
        self.batches = 0

    def __call__(
        self, plan: AdaptPlan, counters: RunCounters, on_progress: Callable[[RunCounters], None] | None
    ) -> BatchRunner:
        return _RayBatchRunner(self, counters, on_progress)

    async def submit(self, index: int, rows: list[Row], ctx: StepContext) -> BatchTally:
        actor = self._actors[self._next % len(self._actors)]
        self._next += 1
        try:
            tally: BatchTally = await actor.run.remote(index, rows, ctx)
        except ray.exceptions.RayTaskError as exc:
            cause = exc.cause
            raise (cause if isinstance(cause, Exception) else exc) from None
        self.cost_usd += tally.cost_usd
        self.batches += 1
        return tally

    async def aclose(self) -> None:
        """Close the actors' gateways, then end the actors."""
        closing: list[Any] = [actor.close.remote() for actor in self._actors]
        try:
            await asyncio.gather(*closing, return_exceptions=True)
        finally:
            for actor in self._actors:
                ray.kill(actor)
            self._actors = []


class _RayBatchRunner:
    def __init__(
        self,
        runners: RayBatchRunners,
        counters: RunCounters,
        on_progress: Callable[[RunCounters], None] | None,
    ) -> None:
        self._runners, self._counters, self._on_progress = runners, counters, on_progress

    async def run(self, index: int, rows: list[Row], ctx: StepContext, checkpoint: BatchCheckpoint) -> None:
        tally = await self._runners.submit(index, rows, ctx)
        counters = self._counters
        counters.rows_done += tally.rows_done
        counters.rows_out += tally.rows_out
        counters.rows_rejected += tally.rows_rejected
        counters.batches_done += 1
        if self._on_progress is not None:
            self._on_progress(counters)
