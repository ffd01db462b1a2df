"""`JobExecutor`: the one executor a worker is built with, handing each claimed job to its kind's executor.

Adaptation, translate and localize runs go to `datamill.services.jobs.adaptation.RunExecutor`; the generation
jobs
(`datamill.store.generation_models.JOB_KINDS`) to the executors `generation_executors` builds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping

from datamill.core.credits import PriceTable
from datamill.runners.execution import LiveRun, RunExecutor, RunTicket
from datamill.store.runs import RunOutcome


class JobExecutor:
    """Routes a job to the executor registered for its kind, else to `default`.

    Jobs of the `paid` kinds are charged what they cost when they end, ``prices.credits(rows out, model
    spend)`` (`datamill.services.generation.credits`); the worker gives back the rest of their reservation.
    """

    def __init__(
        self,
        default: RunExecutor,
        by_kind: Mapping[str, RunExecutor],
        *,
        prices: PriceTable | None = None,
        paid: Collection[str] = (),
    ) -> None:
        self._default, self._by_kind = default, dict(by_kind)
        self._prices, self._paid = prices or PriceTable(), frozenset(paid)

    async def __call__(self, ticket: RunTicket, live: LiveRun) -> RunOutcome:
        outcome = await self._by_kind.get(ticket.kind, self._default)(ticket, live)
        if ticket.kind in self._paid:
            used = self._prices.credits(outcome.rows_out, outcome.cost_usd)
            outcome = dataclasses.replace(outcome, credits_used=used)
        return outcome
