"""Purging a deleted dataset's data: its stored files, upload slots and the outputs of its runs.

The Adaption API deletes a dataset softly: the record stays, flagged, so its id answers 404 everywhere and
is never reused, and the runs that billed it stay as the tenant's history. The data does not stay. Right
after the flag is committed, `DatasetPurge` removes the dataset's files from blob storage (each uploaded
file, and every upload slot's bytes), the folder of each of its runs (checkpoint, output, rejected rows,
evaluation report; on the run data URL or the data dir) and the adapters AutoScientist trained on it, then
the file and upload records. The files go
first, so a crash halfway leaves records pointing at nothing rather than files nothing points at;
`sweep` (run when the server starts) finishes any purge a crash cut short, and removes the partial files
a write cut short left in local blob storage (an upload whose process was killed mid-PUT,
`LocalBlobStore.remove_stale_parts`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import Select, delete, select, update

from datamill.dataio.folder import Folder, Location
from datamill.store import BlobStore, Dataset, Run, Store
from datamill.store.autoscientist_models import AutoscientistRun
from datamill.store.blobs.local import LocalBlobStore
from datamill.store.models import DatasetFile, Upload

log = logging.getLogger(__name__)


class DatasetPurge:
    """Removes the data of deleted datasets.

    Args:
        store: The metadata database.
        blobs: Where uploaded files are stored.
        run_location: Where a run (by id) keeps its checkpoint and output.
    """

    def __init__(self, store: Store, blobs: BlobStore, run_location: Callable[[str], Location]) -> None:
        self._store, self._blobs, self._run_location = store, blobs, run_location

    def __call__(self, dataset_id: str) -> None:
        """Remove the data of one dataset (which must already be flagged deleted)."""
        with self._store.session() as session:
            files = list(
                session.scalars(select(DatasetFile.blob_key).where(DatasetFile.dataset_id == dataset_id))
            )
            slots = list(session.scalars(select(Upload.s3_key).where(Upload.dataset_id == dataset_id)))
            runs = list(session.scalars(select(Run.id).where(Run.dataset_id == dataset_id)))
            adapters = [key for key in session.scalars(_adapters_of(dataset_id)) if key]
        for key in dict.fromkeys([*files, *slots, *adapters]):
            self._blobs.delete(key)
        for run_id in runs:
            Folder(self._run_location(run_id)).remove()
        with self._store.session() as session:
            session.execute(delete(DatasetFile).where(DatasetFile.dataset_id == dataset_id))
            session.execute(delete(Upload).where(Upload.dataset_id == dataset_id))
            session.execute(
                update(AutoscientistRun)
                .where(AutoscientistRun.dataset_id == dataset_id)
                .values(artifact_key=None)
                .execution_options(synchronize_session=False)
            )

    def sweep(self) -> int:
        """Purge every deleted dataset that still has files or upload slots; how many there were.

        Stale partial files in local blob storage (`LocalBlobStore.remove_stale_parts`) go too.
        """
        if isinstance(self._blobs, LocalBlobStore):
            try:
                parts = self._blobs.remove_stale_parts()
            except OSError as exc:
                log.warning("could not sweep partial files from %s: %s", self._blobs.root, exc)
            else:
                if parts:
                    log.info("removed %d partial file(s) left by writes cut short", parts)
        with self._store.session() as session:
            deleted = select(Dataset.id).where(Dataset.deleted_at.is_not(None))
            left = set(session.scalars(deleted.where(Dataset.id.in_(select(DatasetFile.dataset_id)))))
            left |= set(session.scalars(deleted.where(Dataset.id.in_(select(Upload.dataset_id)))))
            trained = select(AutoscientistRun.dataset_id).where(AutoscientistRun.artifact_key.is_not(None))
            left |= set(session.scalars(deleted.where(Dataset.id.in_(trained))))
        for dataset_id in sorted(left):
            try:
                self(dataset_id)
            except OSError as exc:  # storage unavailable: the next start tries again
                log.warning("could not purge deleted dataset %s: %s", dataset_id, exc)
        return len(left)


def _adapters_of(dataset_id: str) -> Select[str | None]:
    return select(AutoscientistRun.artifact_key).where(
        AutoscientistRun.dataset_id == dataset_id, AutoscientistRun.artifact_key.is_not(None)
    )
