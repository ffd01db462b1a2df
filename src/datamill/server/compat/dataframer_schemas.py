"""Response models of the Dataframer-compatible routes: seed datasets, specs, runs, evaluations, downloads.

The shapes are the ones the official ``pydataframer`` SDK reads (field for field), plus the fields datamill
adds beside them (a run's ``error`` and ``summary``, an evaluation's conformance figures). The routes declare
them as their ``response_model``, so ``/openapi.json`` documents every answer, FastAPI checks each answer
against its model before it leaves the server, and the schema fuzzer checks every body it gets back.

Times are ISO-8601 strings in UTC ending in ``Z``; they are declared as strings (with the ``date-time``
format) so that the wire text is exactly what the services wrote.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

DatasetType = Literal["SINGLE_FILE", "MULTI_FILE", "MULTI_FOLDER"]
SpecStatus = Literal["PROCESSING", "SUCCEEDED", "FAILED"]
RunStatus = Literal["PENDING", "PROCESSING", "SUCCEEDED", "FAILED", "CANCELED"]
EvaluationStatus = Literal["PENDING", "PROCESSING", "SUCCEEDED", "FAILED"]


def _time(description: str) -> Any:
    return Field(description=description, json_schema_extra={"format": "date-time"})


class _Wire(BaseModel):
    """Every answer lists exactly its declared fields: an undeclared one is a bug, caught before it leaves."""

    model_config = ConfigDict(extra="forbid")


# --- seed datasets ---


class SeedFilePublic(_Wire):
    id: str
    path: str = Field(description="The file's name; ``folder/file.ext`` in a MULTI_FOLDER dataset.")
    file_type: str = Field(description="The file's MIME type.")
    size_bytes: int
    sha256: str


class SeedDatasetItemPublic(_Wire):
    id: str
    name: str
    description: str | None
    dataset_type: DatasetType
    file_count: int
    folder_count: int
    created_at: str = _time("When the dataset was created.")
    created_by_email: str


class SeedDatasetPublic(SeedDatasetItemPublic):
    sample_count: int | None = Field(description="SINGLE_FILE only: the rows of its file.")
    files: list[SeedFilePublic]


# --- downloads ---


class FileDownloadPublic(_Wire):
    download_url: str = Field(description="A signed link, valid for an hour.")
    filename: str
    content_type: str


class ZipDownloadPublic(_Wire):
    download_url: str | None = Field(description="Null (with status 202) while the ZIP is being built.")
    size_bytes: int | None
    status: Literal["generating", "ready"]


# --- specs ---


class SpecItemPublic(_Wire):
    id: str
    name: str
    description: str | None
    status: SpecStatus
    dataset_id: str | None = Field(description="Null for a seedless spec.")
    dataset_name: str | None
    dataset_type: DatasetType
    created_at: str = _time("When the spec was created.")


class SpecVersionPublic(_Wire):
    content_yaml: str | None
    created_at: str = _time("When the version was stored.")
    version: int = Field(description="1 for the analysis' spec, one more for each update.")


class SpecPublic(SpecItemPublic):
    error: str | None = Field(description="Why the analysis failed (FAILED only).")
    content_yaml: str | None = Field(description="The latest version's YAML; null until SUCCEEDED.")
    runtime_params: dict[str, Any] | None
    updated_at: str = _time("When the spec last changed.")
    created_by_email: str
    versions: list[SpecVersionPublic] | None = Field(
        default=None, description="Only with ``include_versions=true``: every version, oldest first."
    )


# --- runs ---


class GeneratedFilePublic(_Wire):
    id: str
    path: str
    file_type: str
    size_bytes: int


class RuntimeParamsPublic(_Wire):
    number_of_samples: int
    generation_model: str | None
    outline_model: str | None
    revision_model: str | None
    generation_thinking_budget: int | None
    outline_thinking_budget: int | None
    revision_thinking_budget: int | None
    revision_types: list[str]
    filtering_types: list[str]
    max_revision_cycles: int | None
    seed_shuffling_level: str
    max_examples_in_prompt: int | None
    unified_multifield: bool
    skip_outline: bool
    tools: list[str]


class RunItemPublic(_Wire):
    id: str
    status: RunStatus
    spec_id: str
    spec_name: str | None
    spec_version: int
    dataset_id: str | None
    dataset_name: str | None
    dataset_type: DatasetType
    samples_completed: int
    samples_failed: int
    total_cost: float = Field(description="What the run's model calls cost, in USD.")
    created_at: str = _time("When the run was created.")
    completed_at: str | None = _time("When the run ended; null until then.")
    created_by_email: str
    error: str | None = Field(description="Why the run failed (FAILED only).")


class RunPublic(RunItemPublic):
    generated_files: list[GeneratedFilePublic] = Field(description="Filled once the run SUCCEEDED.")
    runtime_params: RuntimeParamsPublic
    summary: dict[str, Any] | None = Field(
        description="Once the run ended: candidates, pass rate, rejections per gate, usage."
    )


# --- evaluations ---


class EvaluationItemPublic(_Wire):
    id: str
    run_id: str
    status: EvaluationStatus
    created_at: str = _time("When the evaluation was created.")
    completed_at: str | None = _time("When the evaluation ended; null until then.")
    created_by_email: str


class DistributionAnalysisPublic(BaseModel):
    model_config = ConfigDict(extra="allow")

    property_name: str
    requested_distributions: dict[str, float]
    expected_distributions: dict[str, float]
    evaluated_distributions: dict[str, float]
    total_samples: int
    total_samples_analyzed: int


class SampleClassificationPublic(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    evaluation_id: str
    sample_identifier: str
    classifications: dict[str, Any]
    created_at: str = _time("When the sample was classified.")


class EvaluationPublic(EvaluationItemPublic):
    error_message: str | None
    evaluation_model: str | None
    distribution_analysis: list[DistributionAnalysisPublic] | None = Field(
        description="One entry per spec property; null until SUCCEEDED."
    )
    sample_classifications: list[SampleClassificationPublic]
    conformance_score: float | None
    total_samples: int | None
    samples_analyzed: int | None
    conformant_areas: list[Any]
    non_conformant_areas: list[Any]
    samples_classified: int | None = Field(default=None, description="While PROCESSING: samples done so far.")
