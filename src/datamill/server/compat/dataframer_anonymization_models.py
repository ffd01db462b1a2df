"""Response schemas of the anonymization routes of the Dataframer-compatible API, as pydantic models.

They describe what `datamill.services.anonymization.runs` answers (the SDK's ``AnonymizationRun*``
types, plus datamill's extra fields) for the OpenAPI description and the response validation.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Status = Literal["PENDING", "PROCESSING", "SUCCEEDED", "FAILED"]


class AnonymizedFileOut(BaseModel):
    id: str
    path: str = Field(description="The file's path in the dataset (a PDF's text is `<name>.pdf.txt`).")
    content_type: str
    size_in_bytes: int


class EntityFound(BaseModel):
    start: int = Field(description="Offset of the entity's first character in the text it was found in.")
    end: int = Field(description="Offset just past its last character.")
    label: str = Field(description="Its PII type.")
    score: float = Field(description="The detector's confidence, 0 to 1.")
    file: str | None = Field(None, description="The path of the file it was found in.")
    sample: int | None = Field(None, description="The sample (row, line, item) it was found in, from 0.")
    field: str | None = Field(None, description="The column or JSON path of the text it was found in.")


class Results(BaseModel):
    samples_processed: int
    entity_summary: dict[str, int] = Field(description="Entities masked, by type.")
    entities_found: list[EntityFound]
    error: str | None = Field(None, description="Why the run failed.")
    entities_truncated: bool | None = Field(None, description="True when entities_found was cut short.")
    llm_entities_dropped: int | None = Field(
        None, description="Entities the model named that are not in the text (dropped)."
    )


class AnonymizationRunItem(BaseModel):
    id: str
    status: Status
    dataset_id: str
    dataset_name: str
    detection_method: str
    llm_model_name: str | None
    pii_types: list[str]
    created_at: str
    completed_at: str | None
    created_by_email: str


class AnonymizationRunOut(AnonymizationRunItem):
    mask_config: dict[str, str]
    threshold: float
    duration_seconds: int | None
    results: Results | None = Field(description="Null until the run ended.")
    anonymized_files: list[AnonymizedFileOut] = Field(description="Filled once the run SUCCEEDED.")


class FileDownload(BaseModel):
    download_url: str = Field(description="A signed link, valid for an hour; no API key needed.")
    file_name: str
    content_type: str


class ZipDownload(BaseModel):
    download_url: str | None = Field(description="Null while the ZIP is being built (answered 202).")
    status: Literal["ready", "generating"]
