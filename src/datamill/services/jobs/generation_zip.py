"""The ``GENERATION_ZIP_JOB`` executor: one ZIP of a run's files, streamed from blobs into a blob.

The archive holds every generated file under its path, plus:

- ``sample_<n>.metadata`` for each sample: the property values drawn for it and, when the run has a
  succeeded evaluation, how the judge classified it;
- ``top_level.metadata``: the run summary (candidates, pass rate, rejections, cost) and, with an
  evaluation, its summary (conformance score, distribution analysis, conformant and non-conformant areas).

Nothing is staged on local disk: each file is copied from its blob into the archive, which is written
straight into ``generated/<tenant>/<run>/_zip/<job>.zip``. A file that cannot be read from storage fails the
job with a message naming it (`datamill.services.jobs.zip_archive.zip_failure`).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from datamill.core.error_codes import ErrorCode, error_data
from datamill.runners.execution import LiveRun, RunTicket
from datamill.services.jobs.zip_archive import StoredFileUnreadable, copy_blob, zip_failure, zip_into_blob
from datamill.services.settings.runs import RunSettings
from datamill.store import BlobStore, Store
from datamill.store.generation_models import GenerationEvaluation, GenerationRun
from datamill.store.generation_runs import evaluations_of_run, files_of_run, zip_blob_key
from datamill.store.jobs import get_job
from datamill.store.runs import RunOutcome

_METADATA_SUFFIX = ".metadata.json"


class ZipJobExecutor:
    """Executes ZIP jobs for a worker; see the module docstring."""

    def __init__(self, store: Store, blobs: BlobStore, settings: RunSettings, data_dir: Path) -> None:
        self._store, self._blobs = store, blobs

    async def __call__(self, ticket: RunTicket, live: LiveRun) -> RunOutcome:
        run_id = ticket.source_dataset_id
        with self._store.session() as session:
            run = session.get(GenerationRun, run_id)
            if run is None:
                return RunOutcome(
                    "failed", error_data=error_data(ErrorCode.REQUEST_UNFIT, "the run was deleted")
                )
            files = [(f.path, f.blob_key) for f in files_of_run(session, run_id)]
            summary = dict(run.summary or {})
            evaluation = _newest_result(session, run)
        live.total_rows = len(files)
        try:
            with zip_into_blob(self._blobs, zip_blob_key(ticket.tenant_id, run_id, ticket.id)) as archive:
                drawn = self._add_files(archive, files, live)
                _add_metadata(archive, drawn, summary, evaluation)
        except (StoredFileUnreadable, OSError) as exc:
            return zip_failure(ticket.id, exc)
        return RunOutcome("succeeded", rows_out=len(files))

    def _add_files(
        self, archive: zipfile.ZipFile, files: list[tuple[str, str]], live: LiveRun
    ) -> dict[str, Any]:
        """Copy each file in; returns each sample's drawn properties, read from its metadata file."""
        drawn: dict[str, Any] = {}
        for path, key in files:
            metadata = path.endswith(_METADATA_SUFFIX)
            kept = copy_blob(self._blobs, key, archive, path, keep=metadata)
            if metadata:
                drawn[path.removesuffix(_METADATA_SUFFIX)] = _properties(kept)
            live.counters.rows_done += 1
        return drawn


def _newest_result(session: Session, run: GenerationRun) -> dict[str, Any] | None:
    for evaluation in reversed(evaluations_of_run(session, run.id)):
        job = get_job(session, run.tenant_id, evaluation.job_id)
        if job is not None and job.status == "succeeded" and evaluation.result:
            return _evaluation_summary(evaluation)
    return None


def _evaluation_summary(evaluation: GenerationEvaluation) -> dict[str, Any]:
    return {"id": evaluation.id, "evaluation_model": evaluation.evaluation_model, **(evaluation.result or {})}


def _properties(raw: bytes) -> Any:
    try:
        return json.loads(raw).get("properties")
    except (ValueError, AttributeError):
        return None


def _add_metadata(
    archive: zipfile.ZipFile,
    drawn: dict[str, Any],
    summary: dict[str, Any],
    evaluation: dict[str, Any] | None,
) -> None:
    """Write ``sample_<n>.metadata`` per sample and ``top_level.metadata``."""
    classified = {
        str(item.get("sample_identifier")): item.get("classifications")
        for item in (evaluation or {}).get("sample_classifications") or []
        if isinstance(item, dict)
    }
    for sample, properties in drawn.items():
        body = {"sample": sample, "properties": properties, "classifications": classified.get(sample)}
        archive.writestr(f"{sample}.metadata", json.dumps(body, ensure_ascii=False, indent=2))
    top = {"run_summary": summary, "evaluation": _top_evaluation(evaluation)}
    archive.writestr("top_level.metadata", json.dumps(top, ensure_ascii=False, indent=2, default=str))


def _top_evaluation(evaluation: dict[str, Any] | None) -> dict[str, Any] | None:
    if evaluation is None:
        return None
    return {k: v for k, v in evaluation.items() if k != "sample_classifications"}
