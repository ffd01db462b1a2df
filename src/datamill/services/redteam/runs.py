"""Red-team runs: write adversarial prompts against a red-team spec, as a job (create, read, cancel, delete).

Create takes ``red_team_spec_id``, ``model_name`` (one of `RED_TEAM_MODELS`, routed like every model name),
``number_of_behaviors`` and ``number_of_prompts_per_behavior`` (their product, the prompts written, is
below `MAX_PROMPTS`), and, for a ``databricks/`` model, the run's own Databricks credentials
(``databricks_client_id``, ``databricks_client_secret``, ``databricks_api_base``), kept in the job's request
only (erased when it ends) and never echoed; the API base goes through the outbound-URL policy
(`datamill.services.generation.databricks`). The request reserves credits for every prompt (402
``insufficient_credits`` when the balance does not cover them) and queues a `RED_TEAM_JOB`
(`datamill.services.jobs.red_team`); the run reads PENDING, PROCESSING, then SUCCEEDED with
``results_json.behavior_to_enhanced_queries``, FAILED with ``error_message``, or CANCELED.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from datamill.core.credits import PriceTable
from datamill.core.dataframer_models import DATABRICKS_PREFIX, RED_TEAM_MODELS
from datamill.core.errors import ValidationError
from datamill.core.fields import Issues, read_int, read_object, read_str
from datamill.services.errors import NotFoundError
from datamill.services.generation.common import CodedError, creator_email, iso
from datamill.services.generation.credits import reserve
from datamill.services.generation.databricks import literal_refusal
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
SECRET_FIELDS = ("databricks_client_id", "databricks_client_secret", "databricks_api_base")
FIELDS = ("red_team_spec_id", "model_name", "number_of_behaviors", "number_of_prompts_per_behavior")


def parse_run_create(body: object) -> tuple[dict[str, Any], dict[str, str]]:
    """The validated create body, and the Databricks credentials it carries (empty when none)."""
    issues = Issues()
    values: Mapping[str, object] = read_object(body, "", FIELDS + SECRET_FIELDS, issues) or {}
    out: dict[str, Any] = {}
    for key in FIELDS:
        if values.get(key) is None and isinstance(body, Mapping):
            issues.add(key, "is required")
    out["red_team_spec_id"] = read_str(values.get("red_team_spec_id"), "red_team_spec_id", issues)
    model = read_str(values.get("model_name"), "model_name", issues)
    if model is not None and model not in RED_TEAM_MODELS:
        issues.add("model_name", f"must be one of {', '.join(RED_TEAM_MODELS)}; got {model!r}")
    out["model_name"] = model
    for key in ("number_of_behaviors", "number_of_prompts_per_behavior"):
        out[key] = read_int(values.get(key), key, issues, minimum=1, maximum=MAX_PROMPTS)
    behaviors, per = out["number_of_behaviors"], out["number_of_prompts_per_behavior"]
    if behaviors is not None and per is not None and behaviors * per > MAX_PROMPTS:
        issues.add(
            "number_of_prompts_per_behavior",
            f"number_of_behaviors × number_of_prompts_per_behavior must be at most {MAX_PROMPTS}; "
            f"got {behaviors} × {per} = {behaviors * per}",
        )
    credentials = {k: v for k in SECRET_FIELDS if (v := read_str(values.get(k), k, issues)) is not None}
    if isinstance(model, str) and model.startswith(DATABRICKS_PREFIX):
        for key in SECRET_FIELDS:
            if key not in credentials:
                issues.add(key, f"is required when model_name is a databricks/ model ({model})")
        base = credentials.get("databricks_api_base", "https://")
        if not base.startswith(("https://", "http://")):
            issues.add("databricks_api_base", f"must be an http(s) URL, got {base!r}")
    issues.raise_if_any()
    return out, credentials


def _status(job: Run | None) -> str:
    return public_status(job.status if job else None, RUN_STATUS)


def _error(job: Run | None) -> str | None:
    if job is None:
        return "the run's job is gone"
    if job.status != "failed":
        return None
    return str((job.error_data or {}).get("message") or "the run failed")


def run_list_item(session: Session, run: RedTeamRun) -> dict[str, Any]:
    """The run without its results (the list's items)."""
    job = get_job(session, run.tenant_id, run.job_id)
    spec = session.get(RedTeamSpec, run.spec_id)
    finished = job.finished_at if job is not None and job.status not in ("queued", "running") else None
    return {
        "id": run.id,
        "status": _status(job),
        "red_team_spec_id": run.spec_id,
        "spec_name": spec.name if spec else None,
        "model_name": run.model_name,
        "number_of_behaviors": run.number_of_behaviors,
        "number_of_prompts_per_behavior": run.number_of_prompts_per_behavior,
        "created_at": iso(run.created_at),
        "completed_at": iso(run.completed_at or finished),
        "created_by_email": run.created_by_email,
    }


def run_wire(session: Session, run: RedTeamRun) -> dict[str, Any]:
    """The full run object of create, retrieve and status."""
    item = run_list_item(session, run)
    if item["status"] in ("SUCCEEDED", "FAILED", "CANCELED"):
        session.refresh(run)  # the job ended after the run was read: show what its end wrote
    job = get_job(session, run.tenant_id, run.job_id)
    return item | {
        "created_by": None,
        "error_message": _error(job),
        "task_id": run.job_id,
        "results_json": run.results if item["status"] == "SUCCEEDED" else None,
        "prompts_completed": (job.processed_rows or 0) if job else 0,
        "total_prompts": run.number_of_behaviors * run.number_of_prompts_per_behavior,
        "total_cost": round(float(job.cost_usd or 0.0), 8) if job else 0.0,
        "summary": run.summary,
    }


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

    def create(self, tenant: TenantView, body: object) -> dict[str, Any]:
        fields, credentials = parse_run_create(body)
        base = credentials.get("databricks_api_base")
        refused = literal_refusal(base, self._policy) if base else None
        if refused is not None:
            raise ValidationError.of("databricks_api_base", refused)
        total = fields["number_of_behaviors"] * fields["number_of_prompts_per_behavior"]
        with self._store.session() as session:
            spec = tenant_spec(session, tenant.id, fields["red_team_spec_id"])
            run = RedTeamRun(
                id=new_id("rtrun"),
                tenant_id=tenant.id,
                spec_id=spec.id,
                model_name=fields["model_name"],
                number_of_behaviors=fields["number_of_behaviors"],
                number_of_prompts_per_behavior=fields["number_of_prompts_per_behavior"],
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
            return run_wire(session, run)

    def list(self, tenant_id: str, spec_id: str | None = None) -> list[dict[str, Any]]:
        with self._store.session() as session:
            return [run_list_item(session, run) for run in list_red_team_runs(session, tenant_id, spec_id)]

    def get(self, tenant_id: str, run_id: str) -> dict[str, Any]:
        with self._store.session() as session:
            return run_wire(session, tenant_run(session, tenant_id, run_id))

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
