"""Persistence: the metadata database (SQLAlchemy 2 + Alembic) and blob storage.

`Store.from_url(url)` opens the database (SQLite by default, PostgreSQL for scale-out) and `Store.migrate()`
brings its schema up to date; the repository modules (`tenants`, `datasets`, `uploads`, `runs`) hold the
queries, each taking the caller's session. `blob_store_from_url(url)` gives the `BlobStore` for a local
directory or any fsspec URL.
"""

from datamill.store import (
    anonymization_models,  # registers the anonymization tables on Base.metadata
    autoscientist_models,  # registers the AutoScientist runs table on Base.metadata
    budget_models,  # registers the concurrency budget tables on Base.metadata
    export_models,  # registers the dataset exports table on Base.metadata
    generation_models,  # registers the generation tables on Base.metadata
    ratelimit_models,  # registers the rate-limit counters table on Base.metadata
    red_team_models,  # registers the red-teaming and judge tables on Base.metadata
    response_models,  # registers the stored responses table on Base.metadata
    session_models,  # registers the web sessions table on Base.metadata
)
from datamill.store.blobs import BlobInfo, BlobStore, BlobTooLargeError, LocalBlobStore, blob_store_from_url
from datamill.store.db import Store
from datamill.store.models import ApiKey, Base, Dataset, DatasetFile, Run, Tenant, Upload, utcnow

__all__ = [
    "ApiKey",
    "Base",
    "BlobInfo",
    "BlobStore",
    "BlobTooLargeError",
    "Dataset",
    "DatasetFile",
    "LocalBlobStore",
    "Run",
    "Store",
    "Tenant",
    "Upload",
    "anonymization_models",
    "autoscientist_models",
    "blob_store_from_url",
    "budget_models",
    "export_models",
    "generation_models",
    "ratelimit_models",
    "red_team_models",
    "response_models",
    "session_models",
    "utcnow",
]
