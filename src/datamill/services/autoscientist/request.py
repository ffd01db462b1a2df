"""The body of ``POST /api/v1/autoscientist``, checked: every bad field named, nothing half-accepted.

Hyperparameter overrides follow the Adaption ``hyperparams`` fields; those datamill cannot honour are
refused rather than ignored: ``training_type: full`` (datamill trains LoRA adapters only), ``simpo_gamma``
above 0 (use ``rpo_alpha`` or plain DPO), ``min_lr_ratio`` and ``scheduler_num_cycles`` (the schedulers
decay to zero over half a cosine cycle), and augmentation rows (augment the dataset first with
``datasets.augment``, then train on the new dataset). ``estimate: true`` (a datamill extension, sent with
the SDK's ``extra_body``) answers the credits a run would reserve and starts nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from datamill.core.fields import Issues

METHODS = ("instruction", "alignment")
DATA_FORMATS = ("chat", "instruction")
MAPPING_ROLES = ("prompt", "completion", "reasoning_trace", "chosen", "rejected")
DEFAULT_MAX_ITERATIONS = 3
MAX_ITERATIONS = 20
#: The target of a model of at most this many parameters is `SMALL_TARGET`, else `LARGE_TARGET`.
SMALL_TARGET, LARGE_TARGET = 0.7, 0.8
_KNOWN = {
    "dataset_id",
    "model",
    "training_method",
    "data_format",
    "column_mapping",
    "hyperparams",
    "augmentation_domain_rows",
    "augmentation_general_rows",
    "idempotency_key",
    "voucher",
    "max_iterations",
    "target_win_rate",
    "estimate",
}
#: Overrides the search may adjust, and the others it passes through; with their kind.
_NUMBERS = {
    "n_epochs": (0.01, 100.0),
    "learning_rate": (1e-8, 1.0),
    "lora_r": (1, 1024),
    "lora_alpha": (1, 4096),
    "lora_dropout": (0.0, 0.9),
    "warmup_ratio": (0.0, 1.0),
    "max_grad_norm": (0.0, 1e6),
    "weight_decay": (0.0, 10.0),
    "dpo_beta": (1e-6, 100.0),
    "rpo_alpha": (0.0, 100.0),
}
_WHOLE = ("lora_r", "lora_alpha")
_BOOLS = ("train_on_inputs", "dpo_normalize_logratios_by_length")
_REFUSED = {
    "min_lr_ratio": "is not supported: the schedulers decay the learning rate to zero",
    "scheduler_num_cycles": "is not supported: the cosine schedule decays over half a cycle",
}


@dataclass(frozen=True)
class CreateRequest:
    """A checked create body; `hyperparams` holds only the overrides the caller gave."""

    dataset_id: str
    model: str | None = None
    training_method: str | None = None
    data_format: str = "chat"
    column_mapping: dict[str, str] | None = None
    hyperparams: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None
    max_iterations: int = DEFAULT_MAX_ITERATIONS
    target_win_rate: float | None = None
    estimate: bool = False


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _text(body: Mapping[str, Any], name: str, issues: Issues, *, limit: int = 500) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        issues.add(name, f"must be a non-empty string of at most {limit} characters")
        return None
    return value.strip()


def _choice(body: Mapping[str, Any], name: str, allowed: tuple[str, ...], issues: Issues) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if value not in allowed:
        issues.add(name, f"must be one of {', '.join(allowed)}, got {value!r}")
        return None
    return str(value)


def _mapping(value: Any, issues: Issues) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        issues.add("column_mapping", "must be an object naming columns: prompt, completion, chosen, rejected")
        return None
    found: dict[str, str] = {}
    for role, column in value.items():
        if role not in MAPPING_ROLES:
            issues.add(f"column_mapping.{role}", f"is not a role; the roles are {', '.join(MAPPING_ROLES)}")
        elif column is not None and (not isinstance(column, str) or not column.strip()):
            issues.add(f"column_mapping.{role}", "must be a column name")
        elif column is not None:
            found[role] = column
    if "reasoning_trace" in found:
        issues.add("column_mapping.reasoning_trace", "no trainable model here trains with reasoning traces")
    return found or None


def _batch_size(value: Any, issues: Issues) -> Any:
    if value == "max":
        return "max"
    number = _number(value)
    if number is None or number != int(number) or not 1 <= number <= 4096:
        issues.add("hyperparams.batch_size", f"must be 'max' or a whole number from 1 to 4096, got {value!r}")
        return None
    return int(number)


def _hyperparams(value: Any, issues: Issues) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        issues.add("hyperparams", "must be an object of hyperparameter overrides")
        return {}
    found: dict[str, Any] = {}
    for name, item in value.items():
        where = f"hyperparams.{name}"
        if item is None:
            continue
        if name in _REFUSED:
            issues.add(where, _REFUSED[name])
        elif name == "training_type":
            if item != "lora":
                issues.add(where, f"must be 'lora': datamill trains LoRA adapters only, got {item!r}")
            else:
                found[name] = item
        elif name == "batch_size":
            found[name] = _batch_size(item, issues)
        elif name == "lora_trainable_modules":
            if not isinstance(item, str) or not item.strip():
                issues.add(where, "must be 'all-linear' or a comma-separated list of module names")
            else:
                found[name] = item.strip()
        elif name == "lr_scheduler_type":
            if item not in ("linear", "cosine"):
                issues.add(where, f"must be linear or cosine, got {item!r}")
            else:
                found[name] = item
        elif name in _BOOLS:
            if not isinstance(item, bool):
                issues.add(where, "must be true or false")
            else:
                found[name] = item
        elif name == "simpo_gamma":
            if _number(item) is None or float(item) < 0:
                issues.add(where, "must be a number of at least 0")
            elif float(item) > 0:
                issues.add(where, "SimPO is not supported: use rpo_alpha, or plain DPO with dpo_beta")
        elif name in _NUMBERS:
            low, high = _NUMBERS[name]
            number = _number(item)
            if number is None or not low <= number <= high or (name in _WHOLE and number != int(number)):
                kind = "a whole number" if name in _WHOLE else "a number"
                issues.add(where, f"must be {kind} from {low:g} to {high:g}, got {item!r}")
            else:
                found[name] = int(number) if name in _WHOLE else number
        else:
            issues.add(where, "is not a hyperparameter datamill knows")
    rank, alpha = found.get("lora_r"), found.get("lora_alpha")
    if rank is not None and alpha is not None and alpha not in (rank, 2 * rank):
        issues.add("hyperparams.lora_alpha", f"must be 1x or 2x lora_r ({rank} or {2 * rank}), got {alpha}")
    return found


def parse_create(body: Any) -> CreateRequest:
    """The checked body (module docstring).

    Raises:
        ValidationError: every bad or unknown field, named.
    """
    issues = Issues()
    if not isinstance(body, Mapping):
        issues.add("body", "must be a JSON object with dataset_id")
        issues.raise_if_any()
        raise AssertionError  # unreachable: raise_if_any raised
    for name in body:
        if name not in _KNOWN:
            issues.add(str(name), "is not a field of an AutoScientist run")
    dataset_id = _text(body, "dataset_id", issues, limit=40)
    if dataset_id is None and "dataset_id" not in body:
        issues.add("dataset_id", "is required: the id of the dataset to train on")
    model = _text(body, "model", issues)
    method = _choice(body, "training_method", METHODS, issues)
    data_format = _choice(body, "data_format", DATA_FORMATS, issues) or "chat"
    mapping = _mapping(body.get("column_mapping"), issues)
    params = _hyperparams(body.get("hyperparams"), issues)
    for name in ("augmentation_domain_rows", "augmentation_general_rows"):
        rows = body.get(name)
        if rows is not None and (_number(rows) is None or rows < 0):
            issues.add(name, "must be a whole number of rows, at least 0")
        elif rows:
            issues.add(
                name, "is not supported: augment the dataset first (datasets.augment), then train on it"
            )
    key = _text(body, "idempotency_key", issues, limit=255)
    _text(body, "voucher", issues, limit=255)
    iterations = body.get("max_iterations", DEFAULT_MAX_ITERATIONS)
    number = _number(iterations)
    if number is None or number != int(number) or not 1 <= number <= MAX_ITERATIONS:
        issues.add("max_iterations", f"must be a whole number from 1 to {MAX_ITERATIONS}, got {iterations!r}")
        number = DEFAULT_MAX_ITERATIONS
    target = body.get("target_win_rate")
    if target is not None and (_number(target) is None or not 0.5 <= target <= 1):
        issues.add("target_win_rate", f"must be a number from 0.5 to 1, got {target!r}")
        target = None
    estimate = body.get("estimate", False)
    if not isinstance(estimate, bool):
        issues.add("estimate", "must be true or false")
    issues.raise_if_any()
    assert dataset_id is not None
    return CreateRequest(
        dataset_id=dataset_id,
        model=model,
        training_method=method,
        data_format=data_format,
        column_mapping=mapping,
        hyperparams=params,
        idempotency_key=key,
        max_iterations=int(number),
        target_win_rate=None if target is None else float(target),
        estimate=bool(estimate),
    )
