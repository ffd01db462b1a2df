"""Credits of the paid jobs other than adaptation runs, and what each reserves.

Those jobs are spec analyses, generation runs, their evaluations and custom evaluations
(`datamill.services.datasets.custom_evals`).

Every paid job reserves and settles credits the way adaptation runs do (`datamill.core.credits`): the
request that queues it takes an estimate from the tenant's balance in the same transaction (402
``insufficient_credits`` when the balance does not cover it, and nothing is queued); when the job ends, the
worker charges what it actually cost, ``PriceTable.credits(output rows, model spend)``, and gives the rest
back (`datamill.services.jobs.executor`); a cancelled job gets its whole reservation back.

What each job reserves:

=====================  ================================================================================
job                    reserved
=====================  ================================================================================
spec analysis          ``minimum_credits``
generation run         ``PriceTable.credits(number_of_samples, 0)``: the row fee of every asked sample
generation evaluation  ``minimum_credits``
custom evaluation      ``minimum_credits`` (settled by the evaluation itself, not a worker: no output rows)
=====================  ================================================================================
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from datamill.core.credits import PriceTable
from datamill.services.generation.common import CodedError
from datamill.store.models import Tenant
from datamill.store.runs import reserve_credits


class InsufficientCreditsError(CodedError):
    """The tenant's balance does not cover a job's reservation (402, code ``insufficient_credits``)."""

    status = 402


def reserve(session: Session, tenant_id: str, amount: float, what: str) -> float:
    """Take `amount` from the tenant's balance for `what`; returns it.

    Raises:
        InsufficientCreditsError: the balance does not cover `amount` (nothing is taken).
    """
    if amount > 0 and not reserve_credits(session, tenant_id, amount):
        tenant = session.get(Tenant, tenant_id)
        balance = float(tenant.credits) if tenant is not None else 0.0
        raise InsufficientCreditsError(
            f"insufficient credits: {what} needs {amount:g} credits and the balance is {balance:g}; "
            "ask the operator for more (datamill tenants credit)",
            "insufficient_credits",
        )
    return amount


def run_reservation(prices: PriceTable, number_of_samples: int) -> float:
    """What a generation run of `number_of_samples` reserves."""
    return prices.credits(number_of_samples, 0.0)
