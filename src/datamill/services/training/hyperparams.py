"""Recommended fine-tuning hyperparameters for a dataset, computed from its size and kind; nothing is trained.

datamill trains no models yet, so this is a rule of thumb, not a search: the widely used LoRA defaults
(rank 16, alpha 32, dropout 0.05, a cosine schedule with 3% warm-up), a learning rate of 2e-4 for supervised
fine-tuning and 5e-6 for preference tuning (DPO with beta 0.1), and fewer epochs and larger batches as the
dataset grows:

| training rows (dataset + augmentation) | n_epochs | batch_size |
|----------------------------------------|----------|------------|
| under 1,000                            | 3        | 8          |
| 1,000 to 9,999                         | 2        | 16         |
| 10,000 and more                        | 1        | 32         |

The dataset is a preference dataset (DPO) when its column mapping names ``chosen`` and ``rejected``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from datamill.core.errors import Issue, ValidationError
from datamill.services.datasets.catalog import DatasetService
from datamill.services.errors import NotReadyError

#: (rows below, n_epochs, batch_size), first match wins.
_SIZE_STEPS = ((1_000, 3, 8), (10_000, 2, 16), (None, 1, 32))
_MAX_ROWS = 10**9


@dataclass(frozen=True)
class Recommendation:
    """What the endpoint answers: the model asked about (or None) and the hyperparameters."""

    model: str | None
    hyperparams: dict[str, Any]


def _count(body: Mapping[str, Any], field: str) -> int:
    value = body.get(field)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise ValidationError.of(field, f"must be a whole number of rows, got {value!r}")
    if not 0 <= value <= _MAX_ROWS:
        raise ValidationError.of(field, f"must be between 0 and {_MAX_ROWS}, got {value!r}")
    return int(value)


def parse_request(body: Any) -> tuple[str, str | None, int]:
    """``(dataset_id, model, augmentation rows)`` of a request body.

    Raises:
        ValidationError: a missing ``dataset_id``, or a bad ``model`` or row count; every bad field named.
    """
    if not isinstance(body, Mapping):
        raise ValidationError.of("body", "must be a JSON object with dataset_id")
    issues: list[Issue] = []
    dataset_id = body.get("dataset_id")
    if not isinstance(dataset_id, str) or not dataset_id.strip():
        issues.append(Issue("dataset_id", "is required: the id of the dataset to train on"))
    model = body.get("model")
    if model is not None and (not isinstance(model, str) or not model.strip()):
        issues.append(Issue("model", "must be a model name"))
    rows = 0
    for field in ("augmentation_domain_rows", "augmentation_general_rows"):
        try:
            rows += _count(body, field)
        except ValidationError as exc:
            issues.extend(exc.issues)
    if issues:
        raise ValidationError(issues)
    return str(dataset_id), model, rows


class HyperparamAdvisor:
    """Recommends hyperparameters for a tenant's dataset; see the module docstring."""

    def __init__(self, datasets: DatasetService) -> None:
        self._datasets = datasets

    def recommend(self, tenant_id: str, body: Any) -> Recommendation:
        """The recommendation for the request `body`.

        Raises:
            ValidationError: a bad body (400).
            NotFoundError: no such dataset for this tenant (404).
            NotReadyError: the dataset's rows have not been counted yet (422).
        """
        dataset_id, model, extra_rows = parse_request(body)
        view = self._datasets.get(tenant_id, dataset_id)
        if view.row_count is None:
            raise NotReadyError(
                f"dataset {dataset_id!r} is {view.status} and its rows are not counted yet: wait until "
                "it has a row_count (datasets.get_status)"
            )
        mapping = view.configured_column_mapping or {}
        preference = bool(mapping.get("chosen") and mapping.get("rejected"))
        return Recommendation(model, recommend(view.row_count + extra_rows, preference=preference))


def recommend(rows: int, *, preference: bool) -> dict[str, Any]:
    """The hyperparameters for `rows` training rows (module docstring's table)."""
    n_epochs, batch_size = next((e, b) for below, e, b in _SIZE_STEPS if below is None or rows < below)
    params: dict[str, Any] = {
        "training_type": "lora",
        "training_method": "alignment" if preference else "instruction",
        "n_epochs": n_epochs,
        "batch_size": batch_size,
        "learning_rate": 5e-6 if preference else 2e-4,
        "lora_r": 16,
        "lora_alpha": 32,
        "lora_dropout": 0.05,
        "lr_scheduler_type": "cosine",
        "warmup_ratio": 0.03,
        "training_rows": rows,
    }
    if preference:
        params["dpo_beta"] = 0.1
    return params
