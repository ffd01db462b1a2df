"""`JobExecutor`: the one executor a worker is built with, handing each claimed job to its kind's executor.

Adaptation, translate and localize runs go to `datamill.services.jobs.adaptation.RunExecutor`; the generation
jobs
(`datamill.store.generation_models.JOB_KINDS`) to the executors `generation_executors` builds.
"""

from __future__ import annotations

from collections.abc import Mapping

from datamill.runners.execution import LiveRun, RunExecutor, RunTicket
from datamill.store.runs import RunOutcome


class JobExecutor:
    """Routes a job to the executor registered for its kind, else to `default`."""

    def __init__(self, default: RunExecutor, by_kind: Mapping[str, RunExecutor]) -> None:
        self._default, self._by_kind = default, dict(by_kind)

    async def __call__(self, ticket: RunTicket, live: LiveRun) -> RunOutcome:
        return await self._by_kind.get(ticket.kind, self._default)(ticket, live)
