"""Adaption API catalogue routes: models, tools, trainable models, recommended hyperparameters.

``GET /api/v1/models`` lists the models the server's routing can serve now (`services.inference.models`);
``GET /api/v1/tools`` the tools its responses endpoint runs (`services.inference.tools`).
``GET /api/v1/autoscientist/models`` (and its old alias ``/training-models``) lists the base models
AutoScientist runs can fine-tune (`services.autoscientist.catalog`), and
``POST /api/v1/autoscientist/recommend-hyperparams`` answers the hyperparameters a run would start with
(`services.training.hyperparams`). The AutoScientist runs themselves are in `adaption_autoscientist`; the
static ``/autoscientist/models`` and ``/autoscientist/recommend-hyperparams`` paths are registered before its
``/autoscientist/{experiment_id}`` paths, so they are never read as a run id.
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
from datamill.services.autoscientist.catalog import model_entry, models
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


class TrainingModelPublic(BaseModel):
    id: str
    display_name: str
    model_size: str | None = None
    context_length: int | None = None
    methods: list[str]
    training_types: list[str]
    train_with_reasoning: bool


class TrainingModelListPublic(BaseModel):
    models: list[TrainingModelPublic] = Field(
        description="The base models AutoScientist runs can fine-tune (none without the train extra)."
    )


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
def list_training_models(_tenant: CurrentTenant, context: Context) -> TrainingModelListPublic:
    """Old alias of ``/autoscientist/models``."""
    return list_autoscientist_models(_tenant, context)


@router.get("/autoscientist/models", response_model=TrainingModelListPublic, tags=["training"])
def list_autoscientist_models(_tenant: CurrentTenant, context: Context) -> TrainingModelListPublic:
    """The base models AutoScientist runs can fine-tune: the bundled model and the configured ones."""
    training = context.runs.settings.training
    return TrainingModelListPublic(models=[TrainingModelPublic(**model_entry(m)) for m in models(training)])


@router.post("/autoscientist/recommend-hyperparams", response_model=HyperparamsPublic, tags=["training"])
def recommend_hyperparams(
    tenant: CurrentTenant, context: Context, body: JsonBody = None
) -> HyperparamsPublic:
    """Rule-of-thumb fine-tuning hyperparameters for a dataset, from its size and kind; nothing starts."""
    done = context.hyperparams.recommend(tenant.id, body)
    return HyperparamsPublic(model=done.model, hyperparams=done.hyperparams)
