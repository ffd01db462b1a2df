"""Generate: evaluate a run and read the result.

Requested vs expected (drawn) vs observed distributions per property as charts, the conformance score, the
conformant and non-conformant areas, and each sample's classifications. The page polls ``status.json``
while the evaluation is pending and reloads when it ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from datamill.pipelines.report_charts import AFTER_COLOR, BEFORE_COLOR, SINGLE_COLOR, Series, bar_svg
from datamill.server.compat.dataframer_gen_wire import parse_evaluation_create
from datamill.server.web import gen_services as services
from datamill.server.web.deps import PostSession, SessionDep, WebDep

router = APIRouter()

#: The three distributions of a property, in the order drawn, with their legend names and colours.
DISTRIBUTIONS = (
    ("requested_distributions", "requested", BEFORE_COLOR),
    ("expected_distributions", "expected (drawn)", SINGLE_COLOR),
    ("evaluated_distributions", "observed", AFTER_COLOR),
)


def distribution_chart(entry: Mapping[str, Any]) -> Markup:
    """One property's requested, expected and observed shares (%) per value as a grouped bar chart."""
    values = list(dict.fromkeys(v for key, _, _ in DISTRIBUTIONS for v in (entry.get(key) or {})))
    series = [
        Series(label, [float((entry.get(key) or {}).get(v, 0.0)) for v in values], color)
        for key, label, color in DISTRIBUTIONS
    ]
    # report_charts escapes every label it draws, so its SVG is safe to insert as markup.
    return Markup(bar_svg(f"{entry.get('property_name', '')} (% of samples)", values, series))


@router.post("/generate/runs/{run_id}/evaluations", status_code=201)
def create(
    run_id: str, web: WebDep, session: PostSession, body: Annotated[Any, Body()] = None
) -> dict[str, Any]:
    """Start an evaluation of the run (``evaluation_model`` optional); where to read it."""
    fields = dict(body) if isinstance(body, Mapping) else {}
    _, model = parse_evaluation_create(fields | {"run_id": run_id})
    created = services.evaluations(web).create(session.tenant, run_id, model)
    return {"id": created.id, "url": f"/generate/evaluations/{created.id}"}


@router.get("/generate/evaluations/{evaluation_id}", response_class=HTMLResponse)
def evaluation_page(request: Request, evaluation_id: str, web: WebDep, session: SessionDep) -> HTMLResponse:
    evaluation = services.evaluations(web).get(session.tenant.id, evaluation_id)
    analysis = [e for e in evaluation.distribution_analysis or () if isinstance(e, Mapping)]
    return web.page(
        request,
        "gen_eval.html",
        session,
        evaluation=evaluation,
        charts=[distribution_chart(entry) for entry in analysis],
        classifications=evaluation.sample_classifications[:100],
    )


@router.get("/generate/evaluations/{evaluation_id}/status.json")
def status(evaluation_id: str, web: WebDep, session: SessionDep) -> dict[str, Any]:
    evaluation = services.evaluations(web).get(session.tenant.id, evaluation_id)
    return {
        "id": evaluation.id,
        "status": evaluation.status,
        "error_message": evaluation.error_message,
        "samples_classified": evaluation.samples_classified,
        "total_samples": evaluation.total_samples,
    }
