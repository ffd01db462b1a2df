"""Watching a run: the page, and the small JSON its script polls for live progress.

Progress comes from what the worker's heartbeat records on the run (rows processed of the total, model
spend); the rate is rows per second since the run started, and tokens are the estimate's, scaled by the
share of rows done (the worker records spend, not token counts, while a run is going). Cancel posts to
``/datasets/{id}/run/cancel``, which calls `datamill.services.adaptation.cancel.RunCanceller`: the run stops,
the
dataset fails with ``E0304`` and the rows already produced stay downloadable.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from datamill.server.context import ServerContext
from datamill.server.web.deps import PostSession, SessionDep, WebDep
from datamill.server.web.downloads import publish_form
from datamill.services.datasets.evaluations import evaluation_status
from datamill.services.errors import NotFoundError
from datamill.store import runs as runs_repo

router = APIRouter()


def _seconds(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    if start is None:
        return None
    start = start if start.tzinfo else start.replace(tzinfo=dt.UTC)
    stop = end or dt.datetime.now(dt.UTC)
    stop = stop if stop.tzinfo else stop.replace(tzinfo=dt.UTC)
    return max(0.0, (stop - start).total_seconds())


def run_summary(context: ServerContext, tenant_id: str, run_id: str) -> dict[str, Any] | None:
    """The figures a watcher sees of one of the tenant's runs, or None when there is no such run."""
    with context.store.session() as session:
        run = runs_repo.get_run(session, tenant_id, run_id)
        if run is None:
            return None
        done, total = run.processed_rows or 0, run.total_rows
        elapsed = _seconds(run.started_at, run.finished_at)
        estimate = run.estimate or {}
        est_tokens = int(estimate.get("input_tokens", 0)) + int(estimate.get("output_tokens", 0))
        share = min(1.0, done / total) if total else (1.0 if run.status == "succeeded" else 0.0)
        return {
            "run_id": run.id,
            "status": run.status,
            "active": run.status in runs_repo.ACTIVE,
            "processed_rows": done,
            "total_rows": total,
            "percent": int(share * 100),
            "rows_per_s": round(done / elapsed, 2) if elapsed else None,
            "elapsed_s": round(elapsed, 1) if elapsed is not None else None,
            "tokens_estimated": int(est_tokens * share),
            "cost_usd": round(float(run.cost_usd or 0.0), 6),
            "credits_reserved": float(run.credits_reserved or 0.0),
            "credits_used": None if run.credits_used is None else float(run.credits_used),
            "rows_out": run.rows_out,
            "rows_rejected": run.rows_rejected,
            "model": run.model,
            "evaluation_status": evaluation_status(run),
            "error": (run.error_data or {}).get("message"),
        }


@router.get("/datasets/{dataset_id}/run", response_class=HTMLResponse)
def watch_page(request: Request, dataset_id: str, web: WebDep, session: SessionDep) -> HTMLResponse:
    view = web.context.datasets.get(session.tenant.id, dataset_id)
    run = run_summary(web.context, session.tenant.id, view.run_id) if view.run_id else None
    return web.page(request, "run.html", session, dataset=view, run=run, publish=publish_form(web))


@router.get("/datasets/{dataset_id}/run/progress.json")
def progress(dataset_id: str, web: WebDep, session: SessionDep) -> dict[str, Any]:
    view = web.context.datasets.get(session.tenant.id, dataset_id)
    run = run_summary(web.context, session.tenant.id, view.run_id) if view.run_id else None
    return {
        "dataset_id": view.id,
        "dataset_status": view.status,
        "run": run,
        "balance": session.tenant.credits,
    }


@router.post("/datasets/{dataset_id}/run/cancel")
def cancel(dataset_id: str, web: WebDep, session: PostSession) -> dict[str, Any]:
    """Cancel the dataset's run while it is queued or running (409 once it ended)."""
    view = web.context.datasets.get(session.tenant.id, dataset_id)
    if view.run_id is None:
        raise NotFoundError("run of dataset", dataset_id)
    web.canceller.cancel(session.tenant.id, view.run_id)
    return {"dataset_id": view.id, "run": run_summary(web.context, session.tenant.id, view.run_id)}
