"""The ``ANONYMIZATION_JOB`` and ``ANONYMIZATION_ZIP_JOB`` executors.

An anonymization job reads the run's options and its dataset's files, builds the run's detectors
(``pii_m1``: `datamill.text.pii.rules.rule_detector`; ``llm``: the run's ``llm_model_name`` through the
gateway, like every model call; ``all``: both), anonymizes each file in the dataset's order
(`datamill.pipelines.anonymize`) and uploads it under ``anonymized/<tenant>/<run>/files/``. The job's
``processed_rows`` counts the files done; ``rows_out`` is the samples processed, what the run is charged
for with the model spend. The files, the results (``samples_processed``, ``entity_summary`` per type,
``entities_found``, at most `MAX_ENTITIES_KEPT` of them, and how many entities the model named that were
not in the text) and the completion time are recorded with the job's success.

The job fails with a clear message, writing no file, when the dataset was deleted, a file cannot be read,
the detector cannot be loaded (Presidio or its spaCy model missing) or the model cannot be used or cannot
answer for some text.

The ZIP job writes every anonymized file under its path and ``anonymization_summary.json`` (the options
and the results without the entity list) into ``anonymized/<tenant>/<run>/_zip/<job>.zip``; a file that
cannot be read from storage fails it with a message naming the file.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from datamill.core.error_codes import ErrorCode, error_data
from datamill.core.errors import DatamillError, ValidationError
from datamill.pipelines.anonymize import AnonymizedFile, AnonymizeOptions, Anonymizer
from datamill.pipelines.anonymize_llm import LlmCounters, LlmDetector
from datamill.runners.execution import LiveRun, RunTicket
from datamill.services.adaptation.adapt import make_gateway
from datamill.services.jobs.failures import job_failure
from datamill.services.jobs.zip_archive import StoredFileUnreadable, copy_blob, zip_failure, zip_into_blob
from datamill.services.settings.runs import RunSettings
from datamill.store import BlobStore, Store
from datamill.store.anonymization_models import AnonymizationRun
from datamill.store.anonymization_models import AnonymizedFile as AnonymizedFileRow
from datamill.store.anonymization_runs import (
    anonymized_blob_key,
    anonymized_zip_key,
    files_of_anonymization,
    get_anonymization_run_any_tenant,
)
from datamill.store.ids import new_id
from datamill.store.models import utcnow
from datamill.store.runs import RunOutcome
from datamill.store.seed_datasets import files_of
from datamill.text.pii.rules import rule_detector

log = logging.getLogger(__name__)
#: The most entities a run's results list (their counts in ``entity_summary`` are always complete).
MAX_ENTITIES_KEPT = 50_000


@dataclass(frozen=True)
class _Loaded:
    method: str
    model: str | None
    options: AnonymizeOptions
    files: list[tuple[str, str]]


class AnonymizationJobExecutor:
    """Executes anonymization jobs for a worker; see the module docstring."""

    def __init__(self, store: Store, blobs: BlobStore, settings: RunSettings, data_dir: Path) -> None:
        self._store, self._blobs, self._settings, self._data_dir = store, blobs, settings, data_dir

    async def __call__(self, ticket: RunTicket, live: LiveRun) -> RunOutcome:
        run_id = ticket.source_dataset_id
        gateway = make_gateway(self._settings.llm_settings(self._data_dir))
        base_cost = ticket.cost_usd
        live.cost_usd = lambda: base_cost + gateway.usage.total.cost_usd
        counters = LlmCounters()
        try:
            loaded = self._load(run_id)
            live.total_rows = len(loaded.files)
            llm = None
            if loaded.method in ("llm", "all"):
                assert loaded.model is not None
                model = gateway.model(loaded.model)
                llm = LlmDetector(model, loaded.options.labels, counters=counters)
            # The analyzer loads its spaCy model once per process, a few seconds: off the event loop.
            rules = await asyncio.to_thread(rule_detector) if loaded.method in ("pii_m1", "all") else None
            anonymizer = Anonymizer(loaded.options, rules=rules, llm=llm)
            written: list[tuple[AnonymizedFile, str, int, str]] = []
            for position, (path, key) in enumerate(loaded.files):
                done = await anonymizer.file(path, self._read(path, key))
                blob_key = anonymized_blob_key(ticket.tenant_id, run_id, f"{position:05d}-{_name(done.path)}")
                size, digest = self._upload(blob_key, done.data)
                written.append((done, blob_key, size, digest))
                live.counters.rows_done += 1
        except DatamillError as exc:
            log.warning("anonymization run %s failed: %s", run_id, exc)
            failure = job_failure(exc, input_name="the dataset's files", model_name="the detection model")
            return RunOutcome(
                "failed",
                cost_usd=live.cost_usd(),
                error_data=failure,
                settle=lambda session: _record(session, run_id, {"error": failure["message"]}, []),
            )
        finally:
            await gateway.aclose()
        results = _results([w[0] for w in written], counters)
        rows = [
            AnonymizedFileRow(
                id=new_id("anonfile"),
                run_id=run_id,
                position=position,
                path=done.path,
                content_type=done.content_type,
                blob_key=blob_key,
                size_bytes=size,
                sha256=digest,
            )
            for position, (done, blob_key, size, digest) in enumerate(written)
        ]
        return RunOutcome(
            "succeeded",
            rows_out=results["samples_processed"],
            cost_usd=live.cost_usd(),
            settle=lambda session: _record(session, run_id, results, rows),
        )

    def _load(self, run_id: str) -> _Loaded:
        with self._store.session() as session:
            run = get_anonymization_run_any_tenant(session, run_id)
            if run is None or run.deleted_at is not None:
                raise ValidationError.of("run_id", "the anonymization run was deleted")
            files = [(f.path, f.blob_key) for f in files_of(session, run.dataset_id)]
            if not files:
                raise ValidationError.of("dataset_id", f"the dataset {run.dataset_name!r} was deleted")
            request = dict(run.request)
            options = AnonymizeOptions(
                labels=tuple(request.get("pii_types") or ()),
                mask_config=dict(request.get("mask_config") or {}),
                threshold=run.threshold,
            )
            return _Loaded(run.detection_method, run.llm_model_name, options, files)

    def _read(self, path: str, key: str) -> bytes:
        try:
            with self._blobs.open_read(key) as handle:
                return handle.read()
        except OSError as exc:  # the message names the dataset's file, never the storage's own paths
            raise ValidationError.of("dataset_id", f"the dataset's file {path} cannot be read") from exc

    def _upload(self, key: str, data: bytes) -> tuple[int, str]:
        writer = self._blobs.open_writer(key)
        try:
            writer.write(data)
            info = writer.commit()
        except BaseException:
            writer.abort()
            raise
        return info.size, info.sha256


def _name(path: str) -> str:
    return Path(path).name or "file"


def _results(files: list[AnonymizedFile], counters: LlmCounters) -> dict[str, Any]:
    entities = [entity for f in files for entity in f.entities]
    summary = Counter(str(entity["label"]) for entity in entities)
    results: dict[str, Any] = {
        "samples_processed": sum(f.samples for f in files),
        "entity_summary": dict(sorted(summary.items())),
        "entities_found": entities[:MAX_ENTITIES_KEPT],
    }
    if len(entities) > MAX_ENTITIES_KEPT:
        results["entities_truncated"] = True
    if counters.named:
        results["llm_entities_dropped"] = counters.dropped
    return results


def _record(session: Session, run_id: str, results: dict[str, Any], rows: list[AnonymizedFileRow]) -> None:
    run = session.get(AnonymizationRun, run_id)
    if run is None or run.deleted_at is not None:  # deleted while it ran
        return
    session.add_all(rows)
    run.results = results
    run.completed_at = utcnow()


class AnonymizationZipExecutor:
    """Executes the ZIP jobs of anonymization runs; see the module docstring."""

    def __init__(self, store: Store, blobs: BlobStore, settings: RunSettings, data_dir: Path) -> None:
        self._store, self._blobs = store, blobs

    async def __call__(self, ticket: RunTicket, live: LiveRun) -> RunOutcome:
        run_id = ticket.source_dataset_id
        with self._store.session() as session:
            run = session.get(AnonymizationRun, run_id)
            if run is None or run.deleted_at is not None:
                return RunOutcome(
                    "failed", error_data=error_data(ErrorCode.REQUEST_UNFIT, "the run was deleted")
                )
            files = [(f.path, f.blob_key) for f in files_of_anonymization(session, run_id)]
            summary = _summary(run)
        live.total_rows = len(files)
        key = anonymized_zip_key(ticket.tenant_id, run_id, ticket.id)
        try:
            with zip_into_blob(self._blobs, key) as archive:
                for path, blob_key in files:
                    copy_blob(self._blobs, blob_key, archive, path)
                    live.counters.rows_done += 1
                text = json.dumps(summary, ensure_ascii=False, indent=2)
                archive.writestr("anonymization_summary.json", text)
        except (StoredFileUnreadable, OSError) as exc:
            return zip_failure(ticket.id, exc)
        return RunOutcome("succeeded", rows_out=len(files))


def _summary(run: AnonymizationRun) -> dict[str, Any]:
    results = {k: v for k, v in (run.results or {}).items() if k != "entities_found"}
    return {
        "id": run.id,
        "dataset_id": run.dataset_id,
        "dataset_name": run.dataset_name,
        "detection_method": run.detection_method,
        "llm_model_name": run.llm_model_name,
        "threshold": run.threshold,
        **dict(run.request),
        "results": results,
    }
