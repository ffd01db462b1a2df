"""Adaption API run routes: run/adapt (run/adapt), translate/localize, evaluation, download; rejected rows.

``rejected`` is datamill's own route (the rows a run removed, with their reasons): the Adaption API has none.

Handlers only translate between the wire and the services in `datamill.services.adaptation.launch`
(`run_public` writes the run/adapt response of its typed `Launch`), `expand` (`expand_public`),
`evaluations` and `downloads`. They are plain ``def`` functions (the services block on the database and on
reading input files), so FastAPI runs them on its thread pool. Errors of their own (in the server's one
table, `datamill.server.errors`): 402 when a tenant's balance does not cover a run
(`InsufficientCreditsError`), and a 500 that says what is wrong when the server's model configuration
cannot serve runs (`RunConfigError`); both are marked not to be retried.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from datamill.core.adapt_request import parse_adapt_request
from datamill.core.expand_request import parse_localize_request, parse_translate_request
from datamill.server.auth import Context, CurrentTenant
from datamill.server.compat.adaption_models import ErrorPublic
from datamill.server.compat.adaption_run_models import (
    EvaluationPublic,
    ExpandCreate,
    ExpandPublic,
    QualityPublic,
    RunCreate,
    RunPublic,
)
from datamill.services.adaptation.expand import Expansion
from datamill.services.adaptation.launch import Launch
from datamill.services.datasets.downloads import DownloadFile

_ERRORS: dict[int | str, dict[str, object]] = {code: {"model": ErrorPublic} for code in (400, 401, 404, 409)}
_LAUNCH_ERRORS: dict[int | str, dict[str, object]] = {
    402: {"model": ErrorPublic, "description": "The credit balance does not cover the estimate."},
}

router = APIRouter(tags=["datasets: runs"], responses=_ERRORS)


def _body(body: RunCreate | ExpandCreate | None) -> dict[str, Any]:
    return body.model_dump(exclude_unset=True) if body is not None else {}


def run_public(launch: Launch) -> RunPublic:
    """The wire ``DatasetAdaptResponse`` of a quote or launch (``creditMultiplier`` only when multimodal)."""
    wire: dict[str, Any] = {
        "run_id": launch.run_id,
        "estimatedMinutes": round(launch.minutes, 2),
        "estimatedCreditsConsumed": launch.credits,
        "estimate": launch.estimate,
        "multimodalPricingApplied": launch.multimodal_pricing_applied,
    }
    if launch.multimodal_pricing_applied and launch.credit_multiplier is not None:
        wire["creditMultiplier"] = launch.credit_multiplier
    return RunPublic.model_validate(wire)


def expand_public(expansion: Expansion) -> ExpandPublic:
    """The wire response of a translate or localize quote or launch."""
    return ExpandPublic(
        dataset_id=expansion.dataset_id,
        status=expansion.status,
        estimated_credits_consumed=expansion.credits,
        estimate=expansion.estimate,
        estimated_new_rows=expansion.new_rows,
    )


def _run(tenant: CurrentTenant, context: Context, dataset_id: str, body: RunCreate | None) -> RunPublic:
    request = parse_adapt_request(_body(body))
    return run_public(context.runs.launcher.adapt(tenant.id, dataset_id, request))


@router.post(
    "/datasets/{dataset_id}/adapt",
    response_model=RunPublic,
    response_model_exclude_unset=True,
    responses=_LAUNCH_ERRORS,
)
def adapt_dataset(
    dataset_id: str, tenant: CurrentTenant, context: Context, body: RunCreate | None = None
) -> RunPublic:
    """Start an adaptation of the dataset (or, with ``estimate: true``, quote one)."""
    return _run(tenant, context, dataset_id, body)


@router.post(
    "/datasets/{dataset_id}/run",
    response_model=RunPublic,
    response_model_exclude_unset=True,
    responses=_LAUNCH_ERRORS,
    deprecated=True,
)
def run_dataset(
    dataset_id: str, tenant: CurrentTenant, context: Context, body: RunCreate | None = None
) -> RunPublic:
    """Deprecated alias of ``/adapt``: the same body and response."""
    return _run(tenant, context, dataset_id, body)


@router.post("/datasets/{dataset_id}/translate", response_model=ExpandPublic, responses=_LAUNCH_ERRORS)
def translate_dataset(
    dataset_id: str, tenant: CurrentTenant, context: Context, body: ExpandCreate | None = None
) -> ExpandPublic:
    """Make a new dataset holding this one's rows plus a sample translated into ``languages``."""
    request = parse_translate_request(_body(body))
    return expand_public(context.runs.expand.expand(tenant.id, dataset_id, "translate", request))


@router.post("/datasets/{dataset_id}/localize", response_model=ExpandPublic, responses=_LAUNCH_ERRORS)
def localize_dataset(
    dataset_id: str, tenant: CurrentTenant, context: Context, body: ExpandCreate | None = None
) -> ExpandPublic:
    """Make a new dataset holding this one's rows plus a sample localized for each (country, language)."""
    request = parse_localize_request(_body(body))
    return expand_public(context.runs.expand.expand(tenant.id, dataset_id, "localize", request))


@router.get("/datasets/{dataset_id}/evaluation", response_model=EvaluationPublic)
def get_evaluation(dataset_id: str, tenant: CurrentTenant, context: Context) -> EvaluationPublic:
    """The before/after quality grade of the dataset's latest run (``status`` null before any run)."""
    view = context.runs.evaluations.get(tenant.id, dataset_id)
    quality = QualityPublic.model_validate(view.quality) if view.quality is not None else None
    return EvaluationPublic(
        dataset_id=view.dataset_id, status=view.status, quality=quality, raw_results=view.raw_results
    )


@router.get(
    "/datasets/{dataset_id}/download",
    response_class=FileResponse,
    responses={422: {"model": ErrorPublic, "description": "No run has ever started on the dataset."}},
)
def download_dataset(
    dataset_id: str,
    tenant: CurrentTenant,
    context: Context,
    file_format: Annotated[str | None, Query(alias="fileFormat")] = None,
) -> FileResponse:
    """The output of the dataset's latest run: csv (default), json, jsonl, or parquet as a tar.gz of shards.

    A failed run gives the rows finished before it failed; a run still in progress gives the rows finished so
    far (header ``x-datamill-run-status`` says which).
    """
    prepared = context.runs.downloads.prepare(tenant.id, dataset_id, file_format)
    return _file_response(prepared)


def _file_response(prepared: DownloadFile) -> FileResponse:
    """Stream a converted file, deleting it once sent; ``x-datamill-run-status`` says if the run is done."""
    return FileResponse(
        prepared.path,
        media_type=prepared.media_type,
        filename=prepared.filename,
        headers={"x-datamill-run-status": prepared.run_status},
        background=BackgroundTask(prepared.path.unlink, missing_ok=True),
    )


@router.get(
    "/datasets/{dataset_id}/rejected",
    response_class=FileResponse,
    responses={422: {"model": ErrorPublic, "description": "No run has ever started on the dataset."}},
)
def download_rejected(dataset_id: str, tenant: CurrentTenant, context: Context) -> FileResponse:
    """The rows the dataset's latest run removed, each with its step and reason (a datamill route).

    JSON lines, one ``{"row_number", "step", "reason", "row"}`` per removed row, in input order (empty when
    none was removed); while the run goes, the rows removed so far (header ``x-datamill-run-status``).
    """
    prepared = context.runs.downloads.prepare_rejected(tenant.id, dataset_id)
    return _file_response(prepared)
