"""Publish a dataset's finished output, with a dataset card, to the Hugging Face Hub or to a path.

| target           | server settings                                        | ``target_spec``               |
|------------------|--------------------------------------------------------|-------------------------------|
| huggingface      | DATAMILL_HF_TOKEN (required), DATAMILL_HF_ENDPOINT     | repo_id (required), private   |
| local, fsspec    | DATAMILL_PUBLISH_ROOTS: allowed dirs or fsspec URLs    | path (required)               |
| kaggle           | not supported: 501                                     |                               |

Every target also takes ``target_spec.file_format``: ``parquet`` (default), ``jsonl``, ``json`` or ``csv``.
The files are ``data/train-00000-of-00001.parquet`` (or ``data/train.<format>``) and ``README.md``
(`api.publish_card`). A target the server is not configured for raises `TargetNotConfigured` (400, saying
which setting to set), never a silent success; a dataset without finished output raises `NotReadyError`
(422) or, while a run processes it, `ConflictError` (409) (`DatasetOutputs.output_of`). Publishing is done
within the request: the answer says where the files are.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datamill.core.errors import ValidationError
from datamill.dataio import open_writer
from datamill.pipelines.checkpoint import conform
from datamill.services.datasets.catalog import DatasetService
from datamill.services.datasets.custom_evals import CustomEvalService
from datamill.services.datasets.output import DatasetOutputs, DatasetRows, unified_schema
from datamill.services.datasets.publish.card import CardInput, dataset_card
from datamill.services.datasets.publish.targets import check_repo_id, copy_to_path, push_to_hub, resolve_path
from datamill.services.errors import NotReadyError, ServiceError
from datamill.services.settings.publish import PublishSettings
from datamill.store.ids import new_id

TARGETS = ("huggingface", "kaggle", "local", "fsspec")
FILE_FORMATS = ("parquet", "jsonl", "json", "csv")


class TargetNotConfigured(ServiceError):
    """The server is not set up for this target; the message names the setting."""


class TargetNotImplemented(ServiceError):
    """A target datamill does not publish to."""


@dataclass(frozen=True)
class PublishResult:
    """The answer of a publish: where the files went."""

    publish_id: str
    status: str
    message: str
    location: str
    files: list[str]


class PublishService:
    """Publishes datasets' finished output to the configured targets."""

    def __init__(
        self,
        datasets: DatasetService,
        outputs: DatasetOutputs,
        settings: PublishSettings,
        custom_evals: CustomEvalService | None = None,
        on_published: Callable[[str, str, str, str], None] | None = None,
    ) -> None:
        self._datasets, self._outputs, self._settings = datasets, outputs, settings
        self._custom_evals = custom_evals
        self._on_published = on_published

    def publish(
        self, tenant_id: str, dataset_id: str, target: str, target_spec: Mapping[str, Any] | None
    ) -> PublishResult:
        """Publish the dataset's finished output to ``target``.

        Raises:
            ValidationError: An unknown target, or a bad ``target_spec`` (a path outside the allowed roots).
            TargetNotImplemented: ``kaggle``.
            TargetNotConfigured: The server has no token (Hub) or no roots (paths).
            NotFoundError: No such dataset for this tenant.
            NotReadyError, ConflictError: The dataset has no finished output (yet).
            PublishUpstreamError: The destination refused the files or could not be reached.
        """
        kind = self._check_target(target)
        spec = dict(target_spec or {})
        fmt = _file_format(spec.get("file_format"))
        view = self._datasets.get(tenant_id, dataset_id)
        if kind == "huggingface":
            destination = check_repo_id(spec.get("repo_id"))
        else:
            destination = resolve_path(spec.get("path"), self._settings.roots)
        rows = self._outputs.output_of(view)
        evals = self._custom_evals.list_for_dataset(tenant_id, dataset_id) if self._custom_evals else []
        with tempfile.TemporaryDirectory(prefix="datamill-publish-") as tmp:
            staged = Path(tmp)
            names = _stage(staged, rows, fmt, evals)
            if kind == "huggingface":
                location = push_to_hub(
                    staged,
                    names,
                    repo_id=destination,
                    endpoint=self._settings.hf_endpoint,
                    token=self._settings.hf_token or "",
                    private=_private(spec.get("private")),
                    message=f"Publish {view.name} ({rows.row_count} rows) from datamill",
                )
            else:
                location = copy_to_path(staged, names, destination)
        if self._on_published is not None:  # recorded for the export links (`datasets.export_links`)
            self._on_published(tenant_id, view.id, target.strip().lower(), location)
        message = f"published {rows.row_count} rows of {view.id} to {location}"
        return PublishResult(new_id("pub"), "succeeded", message, location, names)

    def configured_targets(self) -> tuple[str, ...]:
        """The targets this server is set up for, in the order a form offers them.

        ``local`` when a root is a directory, ``fsspec`` when a root is a URL, ``huggingface`` with a token;
        ``kaggle`` never (not supported).
        """
        roots = self._settings.roots
        found = []
        if any("://" not in root or root.startswith("file://") for root in roots):
            found.append("local")
        if any("://" in root and not root.startswith("file://") for root in roots):
            found.append("fsspec")
        if self._settings.hf_token:
            found.append("huggingface")
        return tuple(found)

    @property
    def roots(self) -> tuple[str, ...]:
        """The directories and URLs path targets may be under."""
        return self._settings.roots

    def _check_target(self, target: str) -> str:
        """``huggingface`` or ``path``, once the server is known to be set up for it."""
        name = target.strip().lower() if isinstance(target, str) else ""
        if name not in TARGETS:
            raise ValidationError.of("target", f"must be one of {', '.join(TARGETS)}, got {target!r}")
        if name == "kaggle":
            raise TargetNotImplemented(
                "publishing to Kaggle is not supported by datamill: publish to huggingface, or to a local "
                "or fsspec path (target 'local' with target_spec.path)"
            )
        if name == "huggingface":
            if not self._settings.hf_token:
                raise TargetNotConfigured(
                    "publishing to Hugging Face is not configured on this server: the operator must set "
                    "DATAMILL_HF_TOKEN (and DATAMILL_HF_ENDPOINT for a Hub other than huggingface.co)"
                )
            return name
        if not self._settings.roots:
            raise TargetNotConfigured(
                f"publishing to a {name} path is not configured on this server: the operator must set "
                "DATAMILL_PUBLISH_ROOTS to the directories or fsspec URLs that may be written"
            )
        return "path"


def _file_format(value: object) -> str:
    if value is None:
        return "parquet"
    if not isinstance(value, str) or value.lower() not in FILE_FORMATS:
        raise ValidationError.of("target_spec.file_format", f"must be one of {', '.join(FILE_FORMATS)}")
    return value.lower()


def _private(value: object) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise ValidationError.of("target_spec.private", "must be true or false")


def _stage(staged: Path, rows: DatasetRows, fmt: str, evals: list[Any]) -> list[str]:
    """Write the data file and the card under ``staged``; returns their relative names."""
    schema = unified_schema(rows.tables)
    if schema is None:
        raise NotReadyError(f"dataset {rows.dataset.id!r} has no rows to publish")
    data_name = "data/train-00000-of-00001.parquet" if fmt == "parquet" else f"data/train.{fmt}"
    (staged / "data").mkdir()
    with open_writer(staged / data_name, format=fmt) as writer:
        for table in rows.tables():
            writer.write_batch(conform(table, schema))
        if writer.rows_written == 0:
            writer.write_batch(schema.empty_table())
    card = dataset_card(CardInput(rows, schema, [data_name], evals))
    (staged / "README.md").write_text(card, encoding="utf-8")
    return [data_name, "README.md"]
