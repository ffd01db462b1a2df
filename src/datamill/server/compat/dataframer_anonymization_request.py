"""The body of ``POST /api/dataframer/anonymization-runs/``, checked field by field.

========================  =========================================================================
field                     rule
========================  =========================================================================
``dataset_id``            required; a seed dataset of the tenant (else 404)
``detection_method``      required; ``pii_m1``, ``llm`` or ``all``
``pii_types``             required; a non-empty array of the lowercase names of `PII_TYPES`
``llm_model_name``        required with ``llm`` and ``all``, refused with ``pii_m1``; a model the
                          server routes (checked when the run is created)
``mask_config``           optional; an object from some of the ``pii_types`` to their placeholder text
                          (at most `MAX_PLACEHOLDER` characters; ``{n}`` numbers the entities)
``threshold``             optional; a number from 0 to 1, `DEFAULT_THRESHOLD` when absent
========================  =========================================================================
"""

from __future__ import annotations

from datamill.core.fields import Issues, listing, read_number, read_object, read_str, read_str_list
from datamill.pipelines.anonymize import METHODS
from datamill.services.anonymization.request import AnonymizationRequest
from datamill.text.pii.types import DEFAULT_THRESHOLD, PII_TYPES

CREATE_FIELDS = ("dataset_id", "detection_method", "pii_types", "llm_model_name", "mask_config", "threshold")
MAX_PLACEHOLDER = 200
MAX_MODEL_NAME = 200


def parse_anonymization_create(body: object) -> AnonymizationRequest:
    """The run to start; raises `ValidationError` naming every field that breaks a rule."""
    issues = Issues()
    fields = read_object(body, "", CREATE_FIELDS, issues)
    if fields is None:
        issues.raise_if_any()
        fields = {}
    dataset_id = read_str(fields.get("dataset_id"), "dataset_id", issues, max_length=200)
    if fields.get("dataset_id") is None:
        issues.add("dataset_id", "is required: the id of a seed dataset")
    method = _method(fields.get("detection_method"), issues)
    pii_types = _pii_types(fields.get("pii_types"), issues)
    model = read_str(fields.get("llm_model_name"), "llm_model_name", issues, max_length=MAX_MODEL_NAME)
    if method in ("llm", "all") and fields.get("llm_model_name") is None:
        issues.add("llm_model_name", f"is required with detection_method {method!r}: the model that detects")
    if method == "pii_m1" and fields.get("llm_model_name") is not None:
        issues.add("llm_model_name", "is only used with detection_method 'llm' or 'all'; leave it out")
    mask_config = _mask_config(fields.get("mask_config"), pii_types, issues)
    threshold = read_number(fields.get("threshold"), "threshold", issues, minimum=0.0, maximum=1.0)
    issues.raise_if_any()
    assert dataset_id is not None
    assert method is not None
    assert pii_types is not None
    return AnonymizationRequest(
        dataset_id,
        method,
        pii_types,
        model,
        mask_config,
        DEFAULT_THRESHOLD if threshold is None else threshold,
    )


def _method(value: object, issues: Issues) -> str | None:
    if value is None:
        issues.add("detection_method", f"is required: one of {', '.join(METHODS)}")
        return None
    if not isinstance(value, str) or value not in METHODS:
        issues.add("detection_method", f"must be one of {', '.join(METHODS)}; got {value!r:.80}")
        return None
    return value


def _pii_types(value: object, issues: Issues) -> tuple[str, ...] | None:
    if value is None:
        issues.add("pii_types", f"is required: an array of types among {listing(PII_TYPES)}")
        return None
    names = read_str_list(value, "pii_types", issues)
    if names is None:
        return None
    if not names:
        issues.add("pii_types", f"must name at least one type among {listing(PII_TYPES)}")
        return None
    ok = True
    for i, name in enumerate(names):
        if name != name.lower():
            issues.add(f"pii_types[{i}]", f"must be lowercase; got {name!r:.80}")
            ok = False
        elif name not in PII_TYPES:
            issues.add(
                f"pii_types[{i}]", f"{name!r:.80} is not a known type; known types: {listing(PII_TYPES)}"
            )
            ok = False
    return tuple(dict.fromkeys(names)) if ok else None


def _mask_config(value: object, pii_types: tuple[str, ...] | None, issues: Issues) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        issues.add("mask_config", "must be an object from PII types to their replacement text")
        return {}
    config: dict[str, str] = {}
    for key, text in value.items():
        where = f"mask_config.{key}"
        if pii_types is not None and key not in pii_types:
            issues.add(where, f"{key!r:.80} is not one of the pii_types of this request")
        elif not isinstance(text, str):
            issues.add(where, "must be a string: the text that replaces each entity of the type")
        elif len(text) > MAX_PLACEHOLDER:
            issues.add(where, f"is {len(text)} characters long; the maximum is {MAX_PLACEHOLDER}")
        else:
            config[str(key)] = text
    return config
