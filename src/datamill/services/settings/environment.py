"""Every environment variable datamill reads, declared in one place and read once (pydantic-settings).

`EnvironmentValues` lists each documented variable as a field named after it. `read_environment` is the only
code in datamill that reads the process environment; the entry points (the CLI commands, the server's app
factory, the worker) call it through `datamill.services.settings.load_settings` and pass the resulting
settings tree down. Values stay strings here: each section of the tree (`Settings`, `ServerSettings`,
`RunSettings`, `PublishSettings`) parses its own and says which variable is wrong when one cannot be read.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _var(name: str) -> str | None:
    return Field(default=None, validation_alias=name)


class EnvironmentValues(BaseSettings):
    """The raw values of datamill's variables; unset ones are None."""

    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", frozen=True)

    # The entry points and the model gateway (settings.entry).
    DATAMILL_HOME: str | None = _var("DATAMILL_HOME")
    XDG_DATA_HOME: str | None = _var("XDG_DATA_HOME")
    DATAMILL_ROUTES: str | None = _var("DATAMILL_ROUTES")
    DATAMILL_MODEL: str | None = _var("DATAMILL_MODEL")
    DATAMILL_TEMPLATES: str | None = _var("DATAMILL_TEMPLATES")
    DATAMILL_EVENT_LOOP: str | None = _var("DATAMILL_EVENT_LOOP")
    DATAMILL_BLOCK_REMOTE_MODELS: str | None = _var("DATAMILL_BLOCK_REMOTE_MODELS")
    DATAMILL_FETCH_ALLOW: str | None = _var("DATAMILL_FETCH_ALLOW")
    ARROW_DEFAULT_MEMORY_POOL: str | None = _var("ARROW_DEFAULT_MEMORY_POOL")
    # The server (settings.server).
    DATAMILL_DATABASE_URL: str | None = _var("DATAMILL_DATABASE_URL")
    DATAMILL_BLOB_URL: str | None = _var("DATAMILL_BLOB_URL")
    DATAMILL_PUBLIC_URL: str | None = _var("DATAMILL_PUBLIC_URL")
    DATAMILL_MAX_UPLOAD_BYTES: str | None = _var("DATAMILL_MAX_UPLOAD_BYTES")
    DATAMILL_UPLOAD_URL_TTL: str | None = _var("DATAMILL_UPLOAD_URL_TTL")
    DATAMILL_SIGNING_SECRET: str | None = _var("DATAMILL_SIGNING_SECRET")
    DATAMILL_DEFAULT_CREDITS: str | None = _var("DATAMILL_DEFAULT_CREDITS")
    DATAMILL_RATE_LIMIT_PER_MINUTE: str | None = _var("DATAMILL_RATE_LIMIT_PER_MINUTE")
    DATAMILL_RATE_LIMIT_BURST: str | None = _var("DATAMILL_RATE_LIMIT_BURST")
    DATAMILL_GOOGLE_SHEETS_URL: str | None = _var("DATAMILL_GOOGLE_SHEETS_URL")
    DATAMILL_RATE_LIMIT_ANON_PER_MINUTE: str | None = _var("DATAMILL_RATE_LIMIT_ANON_PER_MINUTE")
    DATAMILL_RATE_LIMIT_STORAGE: str | None = _var("DATAMILL_RATE_LIMIT_STORAGE")
    DATAMILL_HEADER_TIMEOUT_S: str | None = _var("DATAMILL_HEADER_TIMEOUT_S")
    DATAMILL_INGEST_MAX_COLUMNS: str | None = _var("DATAMILL_INGEST_MAX_COLUMNS")
    DATAMILL_INGEST_TIMEOUT_S: str | None = _var("DATAMILL_INGEST_TIMEOUT_S")
    DATAMILL_INGEST_MAX_MEMORY_MB: str | None = _var("DATAMILL_INGEST_MAX_MEMORY_MB")
    DATAMILL_INGEST_WORKERS: str | None = _var("DATAMILL_INGEST_WORKERS")
    DATAMILL_INGEST_TENANT_WORKERS: str | None = _var("DATAMILL_INGEST_TENANT_WORKERS")
    DATAMILL_BODY_TIMEOUT_S: str | None = _var("DATAMILL_BODY_TIMEOUT_S")
    # Runs and the worker (settings.runs).
    DATAMILL_WORKER: str | None = _var("DATAMILL_WORKER")
    DATAMILL_RUN_BATCH_SIZE: str | None = _var("DATAMILL_RUN_BATCH_SIZE")
    DATAMILL_RUN_LEASE_S: str | None = _var("DATAMILL_RUN_LEASE_S")
    DATAMILL_WORKER_POLL_S: str | None = _var("DATAMILL_WORKER_POLL_S")
    DATAMILL_RUN_MAX_ATTEMPTS: str | None = _var("DATAMILL_RUN_MAX_ATTEMPTS")
    DATAMILL_RUN_EVALUATE: str | None = _var("DATAMILL_RUN_EVALUATE")
    DATAMILL_EVAL_SAMPLE_SIZE: str | None = _var("DATAMILL_EVAL_SAMPLE_SIZE")
    DATAMILL_CACHE_COMMIT_EVERY: str | None = _var("DATAMILL_CACHE_COMMIT_EVERY")
    DATAMILL_SHARED_CONCURRENCY: str | None = _var("DATAMILL_SHARED_CONCURRENCY")
    DATAMILL_RUN_DATA_URL: str | None = _var("DATAMILL_RUN_DATA_URL")
    DATAMILL_EXECUTOR: str | None = _var("DATAMILL_EXECUTOR")
    DATAMILL_RAY_ADDRESS: str | None = _var("DATAMILL_RAY_ADDRESS")
    DATAMILL_RAY_ACTORS: str | None = _var("DATAMILL_RAY_ACTORS")
    DATAMILL_GROUNDING_DOCS: str | None = _var("DATAMILL_GROUNDING_DOCS")
    DATAMILL_GROUNDING_SEARCH_URL: str | None = _var("DATAMILL_GROUNDING_SEARCH_URL")
    DATAMILL_GROUNDING_SEARCH_KEY: str | None = _var("DATAMILL_GROUNDING_SEARCH_KEY")
    # AutoScientist training (settings.training).
    DATAMILL_TRAIN_MODELS: str | None = _var("DATAMILL_TRAIN_MODELS")
    DATAMILL_TRAIN_DEVICE: str | None = _var("DATAMILL_TRAIN_DEVICE")
    DATAMILL_TRAIN_CACHE: str | None = _var("DATAMILL_TRAIN_CACHE")
    DATAMILL_TRAIN_MAX_NEW_TOKENS: str | None = _var("DATAMILL_TRAIN_MAX_NEW_TOKENS")
    DATAMILL_TRAIN_THREADS: str | None = _var("DATAMILL_TRAIN_THREADS")
    DATAMILL_TRAIN_PROCS_PER_NODE: str | None = _var("DATAMILL_TRAIN_PROCS_PER_NODE")
    DATAMILL_TRAIN_NNODES: str | None = _var("DATAMILL_TRAIN_NNODES")
    DATAMILL_TRAIN_RDZV_ENDPOINT: str | None = _var("DATAMILL_TRAIN_RDZV_ENDPOINT")
    DATAMILL_TRAIN_RDZV_ID: str | None = _var("DATAMILL_TRAIN_RDZV_ID")
    # Publishing (settings.publish).
    DATAMILL_PUBLISH_ROOTS: str | None = _var("DATAMILL_PUBLISH_ROOTS")
    DATAMILL_HF_ENDPOINT: str | None = _var("DATAMILL_HF_ENDPOINT")
    DATAMILL_HF_TOKEN: str | None = _var("DATAMILL_HF_TOKEN")

    def as_mapping(self) -> dict[str, str]:
        """The variables that are set (to a non-empty value), by name."""
        return {name: value for name, value in self.model_dump().items() if value}


def read_environment(env: Mapping[str, str] | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """The declared variables, and the whole environment (routes name the variables holding their keys).

    Args:
        env: the variables to read instead of the process environment (tests, embedding applications).
    """
    if env is None:
        return EnvironmentValues().as_mapping(), dict(os.environ)
    return EnvironmentValues.model_validate(dict(env)).as_mapping(), dict(env)
