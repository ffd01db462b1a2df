"""Adaption API catalogue routes: models, tools, training models; AutoScientist routes needing no training.

``GET /api/v1/models`` lists the models the server's routing can serve now (`services.inference.models`);
``GET /api/v1/tools`` the tools its responses endpoint runs (`services.inference.tools`). datamill trains no
models yet, so ``GET /api/v1/training-models`` and ``GET /api/v1/autoscientist/models`` list none and
``GET /api/v1/autoscientist`` lists no runs; ``POST /api/v1/autoscientist/recommend-hyperparams`` answers
rule-of-thumb hyperparameters for a dataset (`services.training.hyperparams`). The static
``/autoscientist/models`` and ``/autoscientist/recommend-hyperparams`` paths are registered before any
``/autoscientist/{experiment_id}`` path, so they are never read as a run id.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from datamill.core.errors import ConfigError, ValidationError
from datamill.server.auth import Context, CurrentTenant, JsonBody
from datamill.server.compat.adaption_models import ErrorPublic
from datamill.server.errors import error_response
from datamill.services.datasets.listing import parse_list_query
from datamill.services.inference.tools import list_tools

_ERRORS: dict[int | str, dict[str, object]] = {code: {"model": ErrorPublic} for code in (400, 401)}
#: Values of the ``type`` filter of ``/models``: every routed model is hosted by this server.
MODEL_TYPES = ("hosted",)

router = APIRouter(responses=_ERRORS)


class ModelPublic(BaseModel):
    id: str
    created: int = Field(description="Unix time the routing file naming the model was last changed.")
    object: str = "model"
    owned_by: str = Field(description="The provider kind of the model's route.")
    display_name: str | None = None
    shutdown_date: str | None = None


class ModelListPublic(BaseModel):
    object: str = "list"
    data: list[ModelPublic]


class ToolPublic(BaseModel):
    model_config = ConfigDict(extra="allow")

    server_label: str
    type: str
    name: str
    description: str
    auth: str
    mode: str
    default_require_approval: str
    required_scope: str
    available: bool
    unavailable_reason: str | None = None


class ToolListPublic(BaseModel):
    object: str = "list"
    data: list[ToolPublic]


class TrainingModelListPublic(BaseModel):
    models: list[dict[str, Any]] = Field(
        description="Trainable base models: none, datamill trains no models."
    )


class AutoscientistRunListPublic(BaseModel):
    runs: list[dict[str, Any]]
    next_cursor: str | None


class HyperparamsPublic(BaseModel):
    model: str | None
    hyperparams: dict[str, Any]


@router.get("/models", response_model=ModelListPublic, tags=["models"])
def list_models(
    _tenant: CurrentTenant, context: Context, type: str | None = None
) -> ModelListPublic | JSONResponse:
    """The models the responses endpoint can call: those routed with their endpoint and key configured."""
    if type is not None and type not in MODEL_TYPES:
        raise ValidationError.of("type", f"must be one of {', '.join(MODEL_TYPES)}, got {type!r}")
    try:
        entries = context.models.available()
    except ConfigError as exc:
        return error_response(500, f"the server's model routing cannot be read: {exc}")
    return ModelListPublic(
        data=[
            ModelPublic(id=e.id, created=e.created, owned_by=e.owned_by, display_name=e.id) for e in entries
        ]
    )


@router.get("/tools", response_model=ToolListPublic, tags=["models"])
def list_tools_route(_tenant: CurrentTenant) -> ToolListPublic:
    """The tools the responses endpoint runs, with their availability to this caller."""
    return ToolListPublic(data=[ToolPublic(**tool.to_dict()) for tool in list_tools()])


@router.get("/training-models", response_model=TrainingModelListPublic, tags=["training"], deprecated=True)
def list_training_models(_tenant: CurrentTenant) -> TrainingModelListPublic:
    """Old alias of ``/autoscientist/models``."""
    return TrainingModelListPublic(models=[])


@router.get("/autoscientist/models", response_model=TrainingModelListPublic, tags=["training"])
def list_autoscientist_models(_tenant: CurrentTenant) -> TrainingModelListPublic:
    """Trainable base models: none, datamill trains no models yet."""
    return TrainingModelListPublic(models=[])


@router.post("/autoscientist/recommend-hyperparams", response_model=HyperparamsPublic, tags=["training"])
def recommend_hyperparams(
    tenant: CurrentTenant, context: Context, body: JsonBody = None
) -> HyperparamsPublic:
    """Rule-of-thumb fine-tuning hyperparameters for a dataset, from its size and kind; nothing starts."""
    done = context.hyperparams.recommend(tenant.id, body)
    return HyperparamsPublic(model=done.model, hyperparams=done.hyperparams)


@router.get("/autoscientist", response_model=AutoscientistRunListPublic, tags=["training"])
def list_autoscientist_runs(
    tenant: CurrentTenant,
    context: Context,
    limit: str | None = None,
    cursor: str | None = None,
    dataset_id: str | None = None,
) -> AutoscientistRunListPublic:
    """AutoScientist runs: none, datamill trains no models yet. ``limit`` and ``dataset_id`` are checked."""
    parse_list_query({"limit": limit})
    if dataset_id is not None:
        context.datasets.get(tenant.id, dataset_id)
    if cursor:
        raise ValidationError.of(
            "cursor", "is not a cursor this server made: there are no runs to page through"
        )
    return AutoscientistRunListPublic(runs=[], next_cursor=None)
