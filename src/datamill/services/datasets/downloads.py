"""Downloads (Adaption API): a dataset's run output converted to csv, json, jsonl, or parquet (a tar.gz).

``fileFormat`` defaults to csv; anything else than the four formats is a 400 naming ``fileFormat``. A dataset
no run ever started on answers 422. Otherwise the answer is the output of the dataset's latest run in its
current state:

- succeeded: every output row;
- failed: the rows of the batches finished before the failure;
- still running (or queued): the rows finished so far, in input order. Partial rows rather than a 409,
  because they are exactly what a failed run would give, and a 409 would make the SDK retry in vain; the
  ``x-datamill-run-status`` header says the run is not finished.

`DownloadService.prepare_rejected` serves the rows the latest run removed (a datamill route, not part of the
Adaption API: ``GET /api/v1/datasets/{id}/rejected``), as JSON lines: ``{"row_number", "step", "reason",
"row"}``, in input order, under the same rules (422 before any run; the rows removed so far while it runs):
the records of the command line's ``<output>.rejected.jsonl``, by the same writer from the same checkpoint.

A run that ended with rows whose checkpoint this server cannot find (the worker wrote it to run storage
this server does not read: ``DATAMILL_RUN_DATA_URL`` or the data directory differ) answers 503 with
`RunOutputMissingError` and is logged, never an empty file. So does a run still working that has processed
rows when its checkpoint was never opened in this server's run storage (its worker opens it, writing
``manifest.json``, before the first row); a run with no processed row yet answers an empty file.

The file is converted into a temporary file under ``<data_dir>/tmp/downloads`` and streamed from there; the
caller deletes it when the response is sent (`DownloadFile.path`).
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from datamill.core.errors import ValidationError
from datamill.pipelines.checkpoint import CheckpointFiles
from datamill.runners.outputs import EXTENSIONS, MEDIA_TYPES, export, export_rejections
from datamill.runners.run_files import Location, run_location
from datamill.services.adaptation.plans import ADAPT, EXPANSIONS, EXTEND
from datamill.services.datasets.catalog import DatasetService, DatasetView
from datamill.services.errors import RunOutputMissingError
from datamill.store import Store
from datamill.store import runs as repo

FORMATS = tuple(MEDIA_TYPES)
#: Run kinds whose worker opens the run's checkpoint before processing any row (`RunExecutor`).
_CHECKPOINT_FIRST = frozenset({ADAPT, *EXPANSIONS, EXTEND})
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DownloadFile:
    """A converted output, ready to stream; delete `path` once it is sent."""

    path: Path
    media_type: str
    filename: str
    run_status: str


def parse_format(value: str | None) -> str:
    """The download format a ``fileFormat`` value names (csv when absent); ValidationError otherwise."""
    fmt = (value or "csv").strip().lower()
    if fmt not in FORMATS:
        raise ValidationError.of("fileFormat", f"must be one of {', '.join(FORMATS)}, got {value!r}")
    return fmt


#: Extensions a dataset's name often keeps from its uploaded file; the download's own extension replaces them.
_DATA_SUFFIXES = (".csv", ".tsv", ".json", ".jsonl", ".ndjson", ".parquet", ".xlsx", ".xls", ".txt", ".zip")


def _safe_name(name: str) -> str:
    """A file name for the dataset called `name`, its data-file extension dropped.

    ``tickets.csv`` downloads as ``tickets.jsonl``, not ``tickets.csv.jsonl``.
    """
    for suffix in _DATA_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
            break
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return cleaned[:100] or "dataset"


class DownloadService:
    """Converts run outputs for download; see the module docstring."""

    def __init__(
        self, store: Store, datasets: DatasetService, data_dir: Path, *, runs_url: str | None = None
    ) -> None:
        self._store, self._datasets, self._data_dir = store, datasets, data_dir
        self._runs_url = runs_url
        self._folder = data_dir / "tmp" / "downloads"

    def purge(self, older_than_s: float = 3600.0) -> None:
        """Delete converted files left behind (a client that went away before the end, a crash)."""
        cutoff = time.time() - older_than_s
        for path in self._folder.glob("*") if self._folder.is_dir() else ():
            with contextlib.suppress(OSError):  # being sent or deleted right now
                if path.stat().st_mtime < cutoff:
                    path.unlink()

    def prepare(self, tenant_id: str, dataset_id: str, file_format: str | None) -> DownloadFile:
        """Convert the dataset's run output to a temporary file.

        Raises:
            ValidationError: an unknown ``fileFormat``.
            NotFoundError: no such dataset for this tenant.
            NotReadyError: no run has ever started on the dataset (422).
            RunOutputMissingError: the run recorded finished rows this server's run storage does not hold.
        """
        fmt = parse_format(file_format)
        view, run_id, status = self._latest_run(tenant_id, dataset_id)
        location = self._output(tenant_id, run_id)
        dest = self._dest(EXTENSIONS[fmt])
        export(location, fmt, dest)
        return DownloadFile(dest, MEDIA_TYPES[fmt], f"{_safe_name(view.name)}.{EXTENSIONS[fmt]}", status)

    def prepare_rejected(self, tenant_id: str, dataset_id: str) -> DownloadFile:
        """The rows the dataset's latest run removed, with step and reason, as a temporary JSON-lines file.

        Raises:
            NotFoundError: no such dataset for this tenant.
            NotReadyError: no run has ever started on the dataset (422).
            RunOutputMissingError: the run recorded finished rows this server's run storage does not hold.
        """
        view, run_id, status = self._latest_run(tenant_id, dataset_id)
        location = self._output(tenant_id, run_id)
        dest = self._dest("jsonl")
        export_rejections(location, dest)
        name = f"{_safe_name(view.name)}.rejected.jsonl"
        return DownloadFile(dest, MEDIA_TYPES["jsonl"], name, status)

    def _latest_run(self, tenant_id: str, dataset_id: str) -> tuple[DatasetView, str, str]:
        view = self._datasets.check_download(tenant_id, dataset_id)
        assert view.run_id is not None  # check_download answers NotReadyError otherwise
        with self._store.session() as session:
            run = repo.get_run(session, tenant_id, view.run_id)
            status = run.status if run is not None else "succeeded"
        return view, view.run_id, status

    def _output(self, tenant_id: str, run_id: str) -> Location:
        """Where run `run_id`'s checkpoint is; RunOutputMissingError if the run has rows that are not there.

        An ended run has rows when it recorded finished ones (each batch is saved before it counts); a run
        still working, when it processed rows, which its worker does only after opening the checkpoint.
        """
        location = run_location(self._data_dir, run_id, self._runs_url)
        with self._store.session() as session:
            run = repo.get_run(session, tenant_id, run_id)
            ended = run is None or run.rows_out is not None
            if run is None:
                rows = 0
            elif ended:
                rows = (run.rows_out or 0) + (run.rows_rejected or 0)
            else:  # kinds that save their rows only at the end (invent) have nothing to check before
                rows = run.processed_rows if run.kind in _CHECKPOINT_FIRST else 0
        files = CheckpointFiles(location)
        if rows > 0 and not files.completed() and (ended or not files.opened()):
            log.error(
                "run %s has %d %s rows but no checkpoint at %s: the worker that runs it uses other run "
                "storage (check DATAMILL_RUN_DATA_URL and the data directory of every process)",
                run_id,
                rows,
                "finished" if ended else "processed",
                location,
            )
            raise RunOutputMissingError(run_id, rows, running=not ended)
        return location

    def _dest(self, extension: str) -> Path:
        self._folder.mkdir(parents=True, exist_ok=True)
        return self._folder / f"{secrets.token_hex(8)}.{extension}"
