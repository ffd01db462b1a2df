"""The wire side of specs, generation runs and their evaluations in the Dataframer-compatible API.

Request bodies are read here into the generation services' inputs (`SpecDraft`, `RunLaunch`, a run id and
model), each bad field named in one `ValidationError`; the services' results (`SpecDetail`,
`GenerationRunDetail`, `EvaluationDetail`...) are turned into the response models of `dataframer_schemas`,
with times as ISO-8601 in UTC. The web pages post the same bodies and use the same readers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from datamill.core.dataframer_models import EVALUATION_MODELS, RUN_MODELS, SPEC_MODELS
from datamill.core.errors import Issue, ValidationError
from datamill.core.fields import Issues, read_bool, read_object, read_str
from datamill.core.generation_request import parse_generation_request
from datamill.server.compat.dataframer_schemas import (
    DistributionAnalysisPublic,
    EvaluationItemPublic,
    EvaluationPublic,
    GeneratedFilePublic,
    RunItemPublic,
    RunPublic,
    RuntimeParamsPublic,
    SampleClassificationPublic,
    SpecItemPublic,
    SpecPublic,
    SpecVersionPublic,
)
from datamill.services.generation.common import iso
from datamill.services.generation.evaluations import EvaluationDetail, EvaluationSummary
from datamill.services.generation.run_view import GenerationRunDetail, GenerationRunSummary
from datamill.services.generation.runs import RunLaunch
from datamill.services.generation.specs import SpecDetail, SpecDraft, SpecSummary

_SPEC_FLAGS = (
    "extrapolate_values",
    "extrapolate_axes",
    "generate_distributions",
    "generate_conditional_distributions",
)
SPEC_CREATE_FIELDS = (
    "name",
    "dataset_id",
    "generation_objectives",
    "description",
    *_SPEC_FLAGS,
    "spec_generation_model_name",
)
EVALUATION_CREATE_FIELDS = ("run_id", "evaluation_model")


# --- requests ---


def parse_spec_create(body: object) -> SpecDraft:
    """The spec create body: name, dataset_id or objectives, description, flags, model."""
    issues = Issues()
    values = read_object(body, "", SPEC_CREATE_FIELDS, issues) or {}
    name = read_str(values.get("name"), "name", issues, max_length=512)
    if values.get("name") is None:
        issues.add("name", "is required")
    texts = {key: read_str(values.get(key), key, issues) for key in SPEC_CREATE_FIELDS[1:4]}
    flags = {key: read_bool(values.get(key), key, issues) for key in _SPEC_FLAGS}
    distributions = flags["generate_distributions"] is not False  # default on
    if flags["generate_conditional_distributions"] and not distributions:
        issues.add("generate_conditional_distributions", "requires generate_distributions to be true")
    if values.get("dataset_id") is None and values.get("generation_objectives") is None:
        issues.add("generation_objectives", "is required for a seedless spec (one without dataset_id)")
    model = read_str(values.get("spec_generation_model_name"), "spec_generation_model_name", issues)
    if model is not None and model not in SPEC_MODELS:
        issues.add("spec_generation_model_name", f"must be one of {', '.join(SPEC_MODELS)}; got {model!r}")
    issues.raise_if_any()
    assert name is not None
    return SpecDraft(
        name=name,
        dataset_id=texts["dataset_id"],
        generation_objectives=texts["generation_objectives"],
        description=texts["description"],
        extrapolate_values=bool(flags["extrapolate_values"]),
        extrapolate_axes=bool(flags["extrapolate_axes"]),
        generate_distributions=distributions,
        generate_conditional_distributions=bool(flags["generate_conditional_distributions"]),
        analysis_model=model,
    )


def read_content_yaml(body: object) -> str:
    """The ``content_yaml`` of a spec update body; `ValidationError` naming the field if missing or bad."""
    issues = Issues()
    values = read_object(body, "", ("content_yaml",), issues) or {}
    text = read_str(values.get("content_yaml"), "content_yaml", issues)
    if values.get("content_yaml") is None:
        issues.add("content_yaml", "is required: the full spec YAML")
    issues.raise_if_any()
    assert text is not None
    return text


def parse_run_create(body: object) -> RunLaunch:
    """The run create body; `spec_id` is required here (the library's callers pass a spec file instead)."""
    issues: list[Issue] = []
    if isinstance(body, Mapping) and body.get("spec_id") is None:
        issues.append(Issue("spec_id", "is required: the id of a SUCCEEDED spec"))
    try:
        request = parse_generation_request(
            body, allowed_models=RUN_MODELS, require_databricks_credentials=True
        )
    except ValidationError as exc:
        raise ValidationError(issues + list(exc.issues)) from None
    if issues:
        raise ValidationError(issues)
    assert isinstance(body, Mapping)
    return RunLaunch(request, {str(key): value for key, value in body.items()})


def parse_evaluation_create(body: object) -> tuple[str, str | None]:
    """``(run_id, evaluation_model)`` from the create body; raises `ValidationError` naming each field."""
    issues = Issues()
    fields = read_object(body, "", EVALUATION_CREATE_FIELDS, issues)
    if fields is None:
        issues.raise_if_any()
        fields = {}
    run_id = read_str(fields.get("run_id"), "run_id", issues)
    if fields.get("run_id") is None:
        issues.add("run_id", "is required: the id of a SUCCEEDED run")
    model = read_str(fields.get("evaluation_model"), "evaluation_model", issues)
    if model is not None and model not in EVALUATION_MODELS:
        issues.add("evaluation_model", f"{model!r} is not one of: {', '.join(EVALUATION_MODELS)}")
    issues.raise_if_any()
    assert run_id is not None
    return run_id, model


# --- answers ---


def spec_item_public(spec: SpecSummary) -> SpecItemPublic:
    return SpecItemPublic(**_spec_item_fields(spec))


def _spec_item_fields(spec: SpecSummary) -> dict[str, Any]:
    return {
        "id": spec.id,
        "name": spec.name,
        "description": spec.description,
        "status": spec.status,
        "dataset_id": spec.dataset_id,
        "dataset_name": spec.dataset_name,
        "dataset_type": spec.dataset_type,
        "created_at": iso(spec.created_at),
    }


def spec_public(spec: SpecDetail) -> SpecPublic:
    """The spec object; ``versions`` only when they were read (the routes leave unset fields out)."""
    extra: dict[str, Any] = {}
    if spec.versions is not None:
        extra["versions"] = [
            SpecVersionPublic(content_yaml=v.content_yaml, created_at=iso(v.created_at), version=v.version)
            for v in spec.versions
        ]
    return SpecPublic(
        **_spec_item_fields(spec),
        error=spec.error,
        content_yaml=spec.content_yaml,
        runtime_params=dict(spec.runtime_params),
        updated_at=iso(spec.updated_at),
        created_by_email=spec.created_by_email,
        **extra,
    )


def _run_item_fields(run: GenerationRunSummary) -> dict[str, Any]:
    return {
        "id": run.id,
        "status": run.status,
        "spec_id": run.spec_id,
        "spec_name": run.spec_name,
        "spec_version": run.spec_version,
        "dataset_id": run.dataset_id,
        "dataset_name": run.dataset_name,
        "dataset_type": run.dataset_type,
        "samples_completed": run.samples_completed,
        "samples_failed": run.samples_failed,
        "total_cost": run.total_cost,
        "created_at": iso(run.created_at),
        "completed_at": iso(run.completed_at),
        "created_by_email": run.created_by_email,
        "error": run.error,
    }


def run_item_public(run: GenerationRunSummary) -> RunItemPublic:
    return RunItemPublic(**_run_item_fields(run))


def run_public(run: GenerationRunDetail) -> RunPublic:
    return RunPublic(
        **_run_item_fields(run),
        generated_files=[
            GeneratedFilePublic(id=f.id, path=f.path, file_type=f.file_type, size_bytes=f.size_bytes)
            for f in run.generated_files
        ],
        runtime_params=RuntimeParamsPublic.model_validate(dict(run.runtime_params)),
        summary=dict(run.summary) if run.summary is not None else None,
    )


def _evaluation_item_fields(evaluation: EvaluationSummary) -> dict[str, Any]:
    return {
        "id": evaluation.id,
        "run_id": evaluation.run_id,
        "status": evaluation.status,
        "created_at": iso(evaluation.created_at),
        "completed_at": iso(evaluation.completed_at),
        "created_by_email": evaluation.created_by_email,
    }


def evaluation_item_public(evaluation: EvaluationSummary) -> EvaluationItemPublic:
    return EvaluationItemPublic(**_evaluation_item_fields(evaluation))


def evaluation_public(evaluation: EvaluationDetail) -> EvaluationPublic:
    """The evaluation object; ``samples_classified`` only while it runs (unset fields are left out)."""
    extra: dict[str, Any] = {}
    if evaluation.samples_classified is not None:
        extra["samples_classified"] = evaluation.samples_classified
    analysis = evaluation.distribution_analysis
    return EvaluationPublic(
        **_evaluation_item_fields(evaluation),
        error_message=evaluation.error_message,
        evaluation_model=evaluation.evaluation_model,
        distribution_analysis=(
            None if analysis is None else [DistributionAnalysisPublic.model_validate(a) for a in analysis]
        ),
        sample_classifications=[
            SampleClassificationPublic.model_validate(c) for c in evaluation.sample_classifications
        ],
        conformance_score=evaluation.conformance_score,
        total_samples=evaluation.total_samples,
        samples_analyzed=evaluation.samples_analyzed,
        conformant_areas=list(evaluation.conformant_areas),
        non_conformant_areas=list(evaluation.non_conformant_areas),
        **extra,
    )
