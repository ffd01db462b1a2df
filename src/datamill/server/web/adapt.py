"""The adapt page: map columns to roles, choose recipes, brand controls and expansion, see the estimate.

The page's script builds the run/adapt body from the form on every change and posts it to
``/datasets/{id}/adapt/check``, which validates it with `parse_adapt_request` (the same rules and messages
as the wire API) and against the dataset's columns, then quotes it; the answer is either the API's 400
error body (each issue names its field, which the page shows beside the control) or the estimate: credits,
cost, minutes, output rows. The model select lists the models the server's routing file serves (the
server's default model first and selected); a choice other than the default is sent as the body's
``model``, so the estimate prices it and the run uses it. Launch posts the same body to
``/datasets/{id}/adapt/launch``, which calls the run service exactly as
``POST /api/v1/datasets/{id}/adapt`` does.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import HTMLResponse

from datamill.core.adapt_request import parse_adapt_request
from datamill.core.brand import Length, SafetyCategory
from datamill.core.recipes import RECIPE_NAMES, Recipes, TrainingType
from datamill.server.web.deps import PostSession, SessionDep, WebDep
from datamill.services.adaptation.launch import check_runnable
from datamill.services.adaptation.plans import ADAPT

router = APIRouter()


@router.get("/datasets/{dataset_id}/adapt", response_class=HTMLResponse)
def adapt_page(request: Request, dataset_id: str, web: WebDep, session: SessionDep) -> HTMLResponse:
    view = web.context.datasets.get(session.tenant.id, dataset_id)
    defaults = Recipes()
    default_model, models = web.quoter.models()
    return web.page(
        request,
        "adapt.html",
        session,
        dataset=view,
        columns=view.columns or [],
        recipes=[(name, getattr(defaults, name)) for name in RECIPE_NAMES],
        lengths=[length.value for length in Length],
        safety=[category.value for category in SafetyCategory],
        training_types=[kind.value for kind in TrainingType],
        default_model=default_model,
        models=models,
    )


@router.post("/datasets/{dataset_id}/adapt/check")
def check(
    dataset_id: str, web: WebDep, session: PostSession, body: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    """Validate and quote `body` (a run/adapt body); 400 with the issues when it is not valid."""
    request = parse_adapt_request(body | {"estimate": True})
    row = web.context.runs.launcher.dataset(session.tenant.id, dataset_id)
    check_runnable(row)
    quote = web.quoter.quote(ADAPT, row.id, request)
    estimate = quote.estimate
    return {
        "model": quote.model,
        "credits": estimate.credits,
        "cost_usd": round(estimate.cost_usd, 6),
        "minutes": round(estimate.minutes, 2),
        "rows_in": estimate.rows_selected or estimate.rows_in,
        "rows_out": estimate.rows_out,
        "calls": estimate.calls,
        "tokens": estimate.input_tokens + estimate.output_tokens + estimate.thinking_tokens,
        "balance": session.tenant.credits,
    }


@router.post("/datasets/{dataset_id}/adapt/launch")
def launch(
    dataset_id: str, web: WebDep, session: PostSession, body: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    """Start the run (the run service's checks, credits and idempotency apply); where to watch it."""
    request = parse_adapt_request(body | {"estimate": False})
    launched = web.context.runs.launcher.adapt(session.tenant.id, dataset_id, request)
    return {"run_id": launched.run_id, "url": f"/datasets/{dataset_id}/run"}
