"""Red-team runs: write adversarial prompts against a red-team spec, as a job (create, read, cancel, delete).

Create takes a `RedTeamRunRequest`: the spec, the model (routed like every model name), the numbers of
behaviours and of prompts per behaviour (their product, the prompts written, is at most `MAX_PROMPTS`),
and, for a ``databricks/`` model, the run's own Databricks credentials, kept in the job's request only
(erased when it ends) and never echoed; the API base goes through the outbound-URL policy
(`datamill.services.generation.databricks`). The request reserves credits for every prompt (402
``insufficient_credits`` when the balance does not cover them) and queues a `RED_TEAM_JOB`
(`datamill.services.jobs.red_team`); the run reads PENDING, PROCESSING, then SUCCEEDED with its results
(``behavior_to_enhanced_queries``), FAILED with ``error_message``, or CANCELED.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from datamill.core.credits import PriceTable
from datamill.core.errors import ValidationError
from datamill.services.errors import NotFoundError
from datamill.services.generation.common import CodedError, creator_email
from datamill.services.generation.credits import reserve
from datamill.services.generation.databricks import literal_refusal
from datamill.services.generation.run_view import ended_at, run_error
from datamill.services.redteam.specs import tenant_spec
from datamill.services.tenants import TenantView
from datamill.store import Store
from datamill.store.generation_models import RUN_STATUS, public_status
from datamill.store.ids import new_id
from datamill.store.jobs import CREDENTIALS, add_job, cancel_job, get_job
from datamill.store.models import Run, utcnow
from datamill.store.red_team import delete_red_team_runs, get_red_team_run, list_red_team_runs
from datamill.store.red_team_models import RED_TEAM_JOB, RedTeamRun, RedTeamSpec
from datamill.text.fetch_policy import FetchPolicy

#: Most prompts one run writes (``number_of_behaviors × number_of_prompts_per_behavior``).
MAX_PROMPTS = 99


@dataclass(frozen=True, kw_only=True)
class RedTeamRunRequest:
    """A run to start: against which spec, with which model, how many behaviours and prompts for each.

    `credentials` are the run's own Databricks client id, secret and API base (by their field names) for
    a ``databricks/`` model; they travel with the job only.
    """

    spec_id: str
    model_name: str
    number_of_behaviors: int
    number_of_prompts_per_behavior: int
    credentials: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class RedTeamRunSummary:
    """A run as listed."""

    id: str
    status: str
    spec_id: str
    spec_name: str | None
    model_name: str
    number_of_behaviors: int
    number_of_prompts_per_behavior: int
    created_at: dt.datetime
    completed_at: dt.datetime | None
    created_by_email: str


@dataclass(frozen=True, kw_only=True)
class RedTeamRunDetail(RedTeamRunSummary):
    """A run with its progress, cost (USD), why it failed, and its prompts once SUCCEEDED."""

    error_message: str | None
    job_id: str
    results: Mapping[str, Any] | None
    prompts_completed: int
    total_prompts: int
    total_cost: float
    summary: Mapping[str, Any] | None


def _status(job: Run | None) -> str:
    return public_status(job.status if job else None, RUN_STATUS)


def run_summary(session: Session, run: RedTeamRun) -> RedTeamRunSummary:
    """The run without its results (the list's items)."""
    job = get_job(session, run.tenant_id, run.job_id)
    spec = session.get(RedTeamSpec, run.spec_id)
    return RedTeamRunSummary(
        id=run.id,
        status=_status(job),
        spec_id=run.spec_id,
        spec_name=spec.name if spec else None,
        model_name=run.model_name,
        number_of_behaviors=run.number_of_behaviors,
        number_of_prompts_per_behavior=run.number_of_prompts_per_behavior,
        created_at=run.created_at,
        completed_at=run.completed_at or ended_at(job),
        created_by_email=run.created_by_email,
    )


def run_detail(session: Session, run: RedTeamRun) -> RedTeamRunDetail:
    """The full run of create, retrieve and status."""
    summary = run_summary(session, run)
    if summary.status in ("SUCCEEDED", "FAILED", "CANCELED"):
        session.refresh(run)  # the job ended after the run was read: show what its end wrote
    job = get_job(session, run.tenant_id, run.job_id)
    return RedTeamRunDetail(
        **vars(summary),
        error_message=run_error(job),
        job_id=run.job_id,
        results=run.results if summary.status == "SUCCEEDED" else None,
        prompts_completed=(job.processed_rows or 0) if job else 0,
        total_prompts=run.number_of_behaviors * run.number_of_prompts_per_behavior,
        total_cost=round(float(job.cost_usd or 0.0), 8) if job else 0.0,
        summary=run.summary,
    )


def tenant_run(session: Session, tenant_id: str, run_id: str) -> RedTeamRun:
    run = get_red_team_run(session, tenant_id, run_id)
    if run is None:
        raise NotFoundError("red-team run", run_id)
    return run


class RedTeamRunService:
    """The red-team run operations of one tenant's requests; see the module docstring."""

    def __init__(
        self, store: Store, prices: PriceTable | None = None, policy: FetchPolicy | None = None
    ) -> None:
        self._store = store
        self._prices = prices or PriceTable()
        self._policy = policy if policy is not None else FetchPolicy()

    def create(self, tenant: TenantView, request: RedTeamRunRequest) -> RedTeamRunDetail:
        credentials = dict(request.credentials)
        base = credentials.get("databricks_api_base")
        refused = literal_refusal(base, self._policy) if base else None
        if refused is not None:
            raise ValidationError.of("databricks_api_base", refused)
        total = request.number_of_behaviors * request.number_of_prompts_per_behavior
        with self._store.session() as session:
            spec = tenant_spec(session, tenant.id, request.spec_id)
            run = RedTeamRun(
                id=new_id("rtrun"),
                tenant_id=tenant.id,
                spec_id=spec.id,
                model_name=request.model_name,
                number_of_behaviors=request.number_of_behaviors,
                number_of_prompts_per_behavior=request.number_of_prompts_per_behavior,
                target={
                    "app_description": spec.app_description,
                    "domain_description": spec.domain_description,
                    "concerns": spec.concerns,
                },
                job_id="",
                results=None,
                summary=None,
                created_by_email=creator_email(tenant),
                created_at=utcnow(),
                completed_at=None,
            )
            session.add(run)
            session.flush()
            amount = self._prices.credits(total, 0.0)
            reserved = reserve(session, tenant.id, amount, f"a red-team run of {total} prompts")
            job_request: dict[str, Any] = {CREDENTIALS: credentials} if credentials else {}
            job = add_job(
                session,
                tenant.id,
                RED_TEAM_JOB,
                run.id,
                job_request,
                run.model_name,
                credits_reserved=reserved,
            )
            run.job_id = job.id
            return run_detail(session, run)

    def list(self, tenant_id: str, spec_id: str | None = None) -> list[RedTeamRunSummary]:
        with self._store.session() as session:
            return [run_summary(session, run) for run in list_red_team_runs(session, tenant_id, spec_id)]

    def get(self, tenant_id: str, run_id: str) -> RedTeamRunDetail:
        with self._store.session() as session:
            return run_detail(session, tenant_run(session, tenant_id, run_id))

    def cancel(self, tenant_id: str, run_id: str) -> None:
        """Cancel a PENDING or PROCESSING run; its worker stops at its next heartbeat."""
        with self._store.session() as session:
            run = tenant_run(session, tenant_id, run_id)
            if not cancel_job(session, tenant_id, run.job_id):
                status = _status(get_job(session, tenant_id, run.job_id))
                raise CodedError(
                    f"red-team run {run_id!r} is {status}; only PENDING or PROCESSING runs can be canceled",
                    "not_cancelable",
                )
            run.completed_at = utcnow()

    def delete(self, tenant_id: str, run_id: str) -> None:
        """Delete a run (one still going is cancelled first)."""
        with self._store.session() as session:
            run = tenant_run(session, tenant_id, run_id)
            cancel_job(session, tenant_id, run.job_id)
            delete_red_team_runs(session, tenant_id, [run.id])
