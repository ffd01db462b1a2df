"""An AutoScientist run as the wire shows it (the Adaption ``AutoscientistRun``, plus datamill's extras).

Besides the Adaption fields, a run shows ``iterations`` (every finished iteration: its hyperparameters, win
rate with its 95% interval, wins, losses and ties, training steps and loss, and a few judged samples),
``best_iteration``, ``best_win_rate_interval``, ``data_format`` and ``ended_because`` (``target_reached``,
``max_iterations`` or ``search_exhausted`` once it succeeded).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from datamill.services.errors import NotFoundError
from datamill.store.autoscientist import get_autoscientist_run
from datamill.store.autoscientist_models import TERMINAL, AutoscientistRun, public_status
from datamill.store.jobs import get_job

#: The ``best_hyperparams`` fields of the Adaption API.
PUBLIC_HYPERPARAMS = (
    "training_type",
    "n_epochs",
    "learning_rate",
    "batch_size",
    "lora_r",
    "lora_alpha",
    "lora_dropout",
    "lora_trainable_modules",
    "lr_scheduler_type",
    "warmup_ratio",
    "max_grad_norm",
    "weight_decay",
    "train_on_inputs",
    "dpo_beta",
    "dpo_normalize_logratios_by_length",
    "rpo_alpha",
)


def tenant_run(session: Session, tenant_id: str, run_id: str) -> AutoscientistRun:
    """The tenant's run; NotFoundError for an unknown (or another tenant's) id."""
    run = get_autoscientist_run(session, tenant_id, run_id)
    if run is None:
        raise NotFoundError("AutoScientist run", run_id)
    return run


def run_status(session: Session, run: AutoscientistRun) -> str:
    job = get_job(session, run.tenant_id, run.job_id)
    return public_status(job.status if job else None)


def run_wire(session: Session, run: AutoscientistRun) -> dict[str, Any]:
    """The run object of create, get, list and cancel."""
    job = get_job(session, run.tenant_id, run.job_id)
    status = public_status(job.status if job else None)
    if status in TERMINAL:  # the job's end and the run's record commit together: read the run again
        session.refresh(run)
    best = run.best_hyperparams
    interval = None
    if run.best_iteration is not None:
        record = next((r for r in run.iterations if r.get("iteration") == run.best_iteration), None)
        interval = [record["low"], record["high"]] if record else None
    completed = run.completed_at or (job.finished_at if job is not None and status in TERMINAL else None)
    error = run.error
    if status == "failed" and error is None:
        error = ((job.error_data or {}).get("message") if job else None) or "the run's job is gone"
    return {
        "id": run.id,
        "dataset_id": run.dataset_id,
        "model": run.model,
        "status": status,
        "created_at": run.created_at,
        "completed_at": completed if status in TERMINAL else None,
        "iterations_completed": len(run.iterations),
        "max_iterations": run.max_iterations,
        "target_win_rate": run.target_win_rate,
        "best_win_rate": run.best_win_rate,
        "training_method": run.training_method,
        "best_hyperparams": {k: best[k] for k in PUBLIC_HYPERPARAMS if k in best} if best else None,
        "column_mapping": run.column_mapping,
        "download_available": run.artifact_key is not None,
        "error": error if status == "failed" else None,
        "data_format": run.data_format,
        "best_iteration": run.best_iteration,
        "best_win_rate_interval": interval,
        "ended_because": run.hyperparams.get("ended") if status == "succeeded" else None,
        "iterations": list(run.iterations),
    }
