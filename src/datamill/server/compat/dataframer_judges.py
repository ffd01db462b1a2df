"""Dataframer-compatible judge routes: ``/api/dataframer/judges/`` and their evaluations.

The SDK's calls: ``judges.list`` (``{count, results}``, ``limit``/``offset``/``project_id``),
``judges.retrieve``, ``judges.evaluations.create`` (synchronous grading), ``judges.evaluations.list`` and
``judges.evaluations.retrieve`` (with ``rendered_text``). datamill adds ``POST /judges/`` (define a judge),
``PATCH`` and ``DELETE /judges/{judge_id}/`` (the SDK reaches them with ``client.post``/``patch``/``delete``).
Handlers only translate between the wire and `datamill.services.judges`; a grading's model calls run on the
event loop, its database work on threads of its own.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from datamill.core.errors import ConfigError, ModelError
from datamill.llm.gateway import Gateway
from datamill.server.auth import Context, CurrentTenant, JsonBody
from datamill.server.compat.dataframer_judges_models import (
    JudgeEvaluationDetailPublic,
    JudgeEvaluationListPublic,
    JudgeEvaluationPublic,
    JudgeListPublic,
    JudgePublic,
)
from datamill.server.compat.dataframer_judges_wire import (
    ModelCheck,
    evaluation_detail_public,
    evaluation_public,
    judge_public,
    parse_evaluation,
    parse_judge_changes,
    parse_judge_create,
)
from datamill.services.adaptation.adapt import make_gateway
from datamill.services.judges.evaluations import JudgeEvaluationService
from datamill.services.judges.judges import JudgeService

router = APIRouter(prefix="/api/dataframer", tags=["dataframer: judges"])


def _default_model(context: Context) -> str | None:
    return context.runs.settings.model or context.models.routing().default_model


def _check_model(context: Context) -> ModelCheck:
    def check(name: str) -> str | None:
        try:
            context.models.routing().resolve(name)
        except (ModelError, ConfigError) as exc:
            return f"is not a model this server can use: {exc}"
        return None

    return check


def _judges(context: Context) -> JudgeService:
    return JudgeService(context.store, _default_model(context))


def _evaluations(context: Context) -> JudgeEvaluationService:
    def gateway() -> Gateway:
        return make_gateway(context.runs.settings.llm_settings(context.settings.data_dir))

    settings = context.runs.settings
    return JudgeEvaluationService(
        context.store,
        context.blobs,
        gateway,
        _default_model(context),
        settings.price_table,
    )


@router.post("/judges/", status_code=201, response_model=JudgePublic)
def create_judge(tenant: CurrentTenant, context: Context, body: JsonBody = None) -> JudgePublic:
    """Define a judge: ``name``, ``rubric``, optional ``description``, ``model`` and ``dimensions``."""
    return judge_public(_judges(context).create(tenant, parse_judge_create(body, _check_model(context))))


@router.get("/judges/", response_model=JudgeListPublic)
def list_judges(
    tenant: CurrentTenant,
    context: Context,
    limit: int | None = None,
    offset: int | None = None,
    project_id: str | None = None,
) -> JudgeListPublic:
    """The tenant's judges, newest first: ``{count, results}``."""
    found = _judges(context).list(tenant.id, limit, offset, project_id)
    return JudgeListPublic(count=found.count, results=[judge_public(judge) for judge in found.items])


@router.get("/judges/{judge_id}/", response_model=JudgePublic)
def retrieve_judge(judge_id: str, tenant: CurrentTenant, context: Context) -> JudgePublic:
    """One judge with its latest version."""
    return judge_public(_judges(context).get(tenant.id, judge_id))


@router.patch("/judges/{judge_id}/", response_model=JudgePublic)
def update_judge(
    judge_id: str, tenant: CurrentTenant, context: Context, body: JsonBody = None
) -> JudgePublic:
    """Change a judge; a new rubric, model or dimensions make its next version."""
    changes = parse_judge_changes(body, _check_model(context))
    return judge_public(_judges(context).update(tenant.id, judge_id, changes))


@router.delete("/judges/{judge_id}/", status_code=204)
def delete_judge(judge_id: str, tenant: CurrentTenant, context: Context) -> Response:
    """Delete a judge and its evaluations."""
    _judges(context).delete(tenant.id, judge_id)
    return Response(status_code=204)


@router.post("/judges/{judge_id}/evaluations/", status_code=201, response_model=JudgeEvaluationPublic)
async def create_judge_evaluation(
    judge_id: str, tenant: CurrentTenant, context: Context, body: JsonBody = None
) -> JudgeEvaluationPublic:
    """Grade an interaction, a run's samples or a seed dataset's now; the evaluation, succeeded or failed."""
    request = parse_evaluation(body, _check_model(context))
    return evaluation_public(await _evaluations(context).evaluate(tenant.id, judge_id, request))


@router.get("/judges/{judge_id}/evaluations/", response_model=JudgeEvaluationListPublic)
def list_judge_evaluations(
    judge_id: str,
    tenant: CurrentTenant,
    context: Context,
    limit: int | None = None,
    offset: int | None = None,
) -> JudgeEvaluationListPublic:
    """The judge's evaluations, newest first: ``{count, results}``."""
    found = _evaluations(context).list(tenant.id, judge_id, limit, offset)
    return JudgeEvaluationListPublic(count=found.count, results=[evaluation_public(e) for e in found.items])


@router.get("/judges/{judge_id}/evaluations/{evaluation_id}/", response_model=JudgeEvaluationDetailPublic)
def retrieve_judge_evaluation(
    judge_id: str, evaluation_id: str, tenant: CurrentTenant, context: Context
) -> JudgeEvaluationDetailPublic:
    """One evaluation, with the text that was graded."""
    return evaluation_detail_public(_evaluations(context).get(tenant.id, judge_id, evaluation_id))
