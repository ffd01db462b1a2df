"""Request and response schemas of the Adaption API (Adaption API), as pydantic models.

Names follow the FastAPI template: ``XCreate`` for a request body, ``XPublic`` for what is sent back. Field
names and casing are the wire's. Request models ignore unknown keys, because a newer SDK may send fields this
server does not know yet; the services check the values (formats, mappings) so every entry point words errors
alike. Response models list every field the SDK's models declare, nullable ones as null.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")


class SourceCreate(_Request):
    url: str | None = Field(
        None, description="Import the file at this http(s) URL (a Hugging Face dataset URL takes one file)."
    )
    files: list[str] | None = None
    sheet_names: list[str] | None = None
    sheet_name: str | None = None
    access: str | None = None
    name: str | None = Field(None, description="Dataset name; may be a file name, e.g. sales.csv.")
    file_format: str | None = Field(None, description="csv, json, jsonl, parquet, txt or xlsx.")
    processing_mode: str | None = Field(None, description="adapt (default) or raw.")
    column_mapping: dict[str, Any] | None = Field(
        None, description="Required for raw: prompt, completion, ..."
    )


class DatasetCreate(_Request):
    source: SourceCreate


class UploadInstructionsPublic(BaseModel):
    url: str
    method: str = "PUT"
    s3_key: str
    expires_at: dt.datetime


class DatasetCreatePublic(BaseModel):
    dataset_id: str
    status: str
    upload_instructions: UploadInstructionsPublic | None


class UploadInitiateCreate(_Request):
    name: str
    file_format: str


class UploadInitiatePublic(BaseModel):
    upload_url: str
    s3_key: str
    expires_at: dt.datetime


class UploadCompleteCreate(_Request):
    s3_key: str
    name: str
    file_format: str
    file_size_bytes: float


class UploadCompleteByIdCreate(_Request):
    file_size_bytes: float
    sha256: str | None = None


class UploadCompletePublic(BaseModel):
    dataset_id: str
    status: str


class BatchFileCreate(_Request):
    file_name: str
    file_format: str
    file_size_bytes: float


class UploadInitiateBatchCreate(_Request):
    name: str
    files: list[BatchFileCreate]


class BatchUploadPublic(BaseModel):
    file_name: str
    upload_url: str
    s3_key: str


class UploadInitiateBatchPublic(BaseModel):
    dataset_id: str
    uploads: list[BatchUploadPublic]


class CompletedFileCreate(BatchFileCreate):
    s3_key: str


class UploadCompleteBatchCreate(_Request):
    dataset_id: str
    files: list[CompletedFileCreate]


class ErrorDataPublic(BaseModel):
    message: str | None = None
    code: str | None = None
    level: str | None = None


class ProgressPublic(BaseModel):
    percent: int | None = None
    processed_rows: int | None = None
    total_rows: int | None = None


class DatasetPublic(BaseModel):
    dataset_id: str
    kind: str | None
    source_dataset_id: str | None
    name: str | None
    status: str
    created_at: dt.datetime
    created_by_user_id: str | None = None
    updated_at: dt.datetime
    row_count: int | None
    configured_column_mapping: dict[str, Any] | None
    evaluation_summary: dict[str, Any] | None = None
    run_id: str | None
    progress: ProgressPublic | None
    error_data: ErrorDataPublic | None
    image_column_formats: dict[str, str] | None


class DatasetListItemPublic(BaseModel):
    dataset_id: str
    name: str | None
    status: str
    updated_at: dt.datetime
    created_at: dt.datetime
    row_count: int | None
    description: str | None


class DatasetListPublic(BaseModel):
    datasets: list[DatasetListItemPublic]
    next_cursor: str | None


class DatasetStatusPublic(BaseModel):
    dataset_id: str
    status: str
    row_count: int | None
    progress: ProgressPublic | None
    error_data: ErrorDataPublic | None


class DatasetDeletePublic(BaseModel):
    message: str


class IssuePublic(BaseModel):
    field: str
    reason: str


class ErrorPublic(BaseModel):
    """The body of every error answer."""

    model_config = ConfigDict(populate_by_name=True)

    status_code: int = Field(alias="statusCode")
    error: str
    message: str
    errors: list[IssuePublic]
