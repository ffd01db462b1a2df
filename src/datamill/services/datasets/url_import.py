"""Imports by URL: ``POST /datasets`` with ``source.url`` creates a dataset and fetches its file later.

`UrlImportService.create` answers at once with a ``pending`` dataset (``ingest_state: importing``, the URL in
``source_url``, its one file listed with size 0 until fetched). `BackgroundImports` then fetches the file on
a worker thread through the safe fetcher (`datamill.text.fetch`: internal addresses refused unless
``DATAMILL_FETCH_ALLOW`` lists them, at most the upload limit in bytes, at most `IMPORT_TIMEOUT_S` seconds),
streams it into the blob store chunk by chunk as it arrives (never holding the file in memory) and hands
the dataset to ingest, which reads it as it reads an upload. A fetch
that is refused, fails, answers an error status, an empty body or a web page (``text/html``) for a file of
another format (a sign-in page) marks the dataset ``failed`` with
``error_data`` code ``E0104`` and the reason. Datasets still ``importing`` when the server stops are fetched
again on the next start.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable

from datamill.core.error_codes import ErrorCode, error_data
from datamill.services.datasets.queue import DatasetQueue
from datamill.services.datasets.upload_checks import UrlSource, safe_file_name
from datamill.store import BlobInfo, BlobStore, Store, utcnow
from datamill.store import datasets as repo
from datamill.store.blobs import write_stream
from datamill.store.ids import new_id
from datamill.text.fetch import FetchError, SafeFetcher
from datamill.text.fetch_policy import FetchPolicy

log = logging.getLogger(__name__)

#: The longest an import's fetch may take, redirects and body included.
IMPORT_TIMEOUT_S = 300.0


class ImportFailure(Exception):
    """Why the file of an import could not be fetched, in words for ``error_data.message``."""


class UrlImportService:
    """Creates imported datasets and fetches their files (see the module docstring).

    Args:
        store: the database.
        blobs: where the fetched file is stored.
        max_bytes: the largest file imported (the upload limit).
        on_fetched: called with the dataset id once its file is stored (the ingest queue).
        policy: what may be fetched; the ``DATAMILL_FETCH_ALLOW`` setting when None.
    """

    def __init__(
        self,
        store: Store,
        blobs: BlobStore,
        *,
        max_bytes: int,
        on_fetched: Callable[[str], None] = lambda _dataset_id: None,
        policy: FetchPolicy | None = None,
    ) -> None:
        self._store, self._blobs = store, blobs
        self._max = max_bytes
        self._on_fetched = on_fetched
        base = policy if policy is not None else FetchPolicy()
        self._policy = dataclasses.replace(base, max_bytes=max_bytes, timeout_s=IMPORT_TIMEOUT_S)

    def create(self, tenant_id: str, source: UrlSource) -> tuple[str, str]:
        """A pending dataset for ``source``; its (id, status). The fetch is left to `BackgroundImports`."""
        dataset_id = new_id("ds")
        key = f"imports/{tenant_id}/{dataset_id}/{safe_file_name(source.name, source.file_format)}"
        with self._store.session() as session:
            row = repo.add_dataset_with_file(
                session,
                tenant_id=tenant_id,
                name=source.name,
                file=repo.StoredFile(file_name=source.name, file_format=source.file_format, blob_key=key),
                status="pending",
                ingest_state="importing",
                dataset_id=dataset_id,
                processing_mode=source.processing_mode,
                source_column_mapping=source.column_mapping.to_dict() if source.column_mapping else None,
                source_url=source.url,
            )
            return row.id, row.status

    def waiting(self) -> list[str]:
        """Ids of the datasets whose file has not been fetched yet."""
        with self._store.session() as session:
            return repo.dataset_ids_in_ingest_state(session, "importing")

    def tenant_of(self, dataset_id: str) -> str | None:
        """The dataset's tenant, for the fair queue (None when it was deleted)."""
        with self._store.session() as session:
            return repo.tenant_of_dataset(session, dataset_id)

    def process(self, dataset_id: str) -> None:
        """Fetch one dataset's file and queue it for ingest, or mark it failed; others are left alone."""
        with self._store.session() as session:
            row = repo.get_dataset_any_tenant(session, dataset_id)
            if row is None or row.deleted_at is not None or row.ingest_state != "importing":
                return
            url = row.source_url or ""
            (file,) = repo.files_of(session, dataset_id)
            key, file_format = file.blob_key, file.file_format
        try:
            info = asyncio.run(self._fetch(url, key, file_format))
        except ImportFailure as failure:
            self._fail(dataset_id, str(failure))
            return
        except Exception:
            log.exception("import of dataset %s failed", dataset_id)
            self._fail(dataset_id, "internal error while importing the file; the server log has details")
            return
        with self._store.session() as session:
            row = repo.get_dataset_any_tenant(session, dataset_id)
            if row is None or row.ingest_state != "importing":
                return
            (file,) = repo.files_of(session, dataset_id)
            file.size_bytes, file.sha256 = info.size, info.sha256
            row.ingest_state, row.updated_at = "uploaded", utcnow()
        self._on_fetched(dataset_id)

    async def _fetch(self, url: str, key: str, file_format: str) -> BlobInfo:
        """Stream the body at `url` into the blob `key`, chunk by chunk (never held whole in memory)."""
        try:
            async with SafeFetcher(self._policy) as fetcher, fetcher.stream(url) as result:
                if not result.ok:
                    raise ImportFailure(f"cannot import {url}: it answered HTTP {result.status}")
                content_type = str(result.headers.get("content-type", ""))
                if content_type.lower().startswith("text/html") and file_format != "html":
                    raise ImportFailure(
                        f"cannot import {url}: it answered a web page, not a {file_format} file (a sign-in "
                        "page? a Google Sheet must be shared with 'Anyone with the link')"
                    )
                info = await write_stream(self._blobs, key, result.chunks(), max_bytes=self._max)
        except FetchError as exc:
            raise ImportFailure(f"cannot import {exc.url}: {exc.reason}") from exc
        if info.size == 0:
            await asyncio.to_thread(self._blobs.delete, key)
            raise ImportFailure(f"cannot import {url}: it answered an empty body")
        return info

    def _fail(self, dataset_id: str, message: str) -> None:
        with self._store.session() as session:
            row = repo.get_dataset_any_tenant(session, dataset_id)
            if row is None:
                return
            row.status = "failed"
            row.error_data = error_data(ErrorCode.IMPORT_FAILED, message)
            row.ingest_state, row.updated_at = "ready", utcnow()


class BackgroundImports(DatasetQueue):
    """Runs `UrlImportService.process` on worker threads; `start` re-queues unfinished imports.

    An import queued after `close` stays ``importing`` and is fetched on the next start.
    """

    def __init__(
        self, imports: UrlImportService, *, workers: int = 2, max_per_tenant: int | None = None
    ) -> None:
        super().__init__(
            imports, workers=workers, name="import", resumes="fetched", max_per_tenant=max_per_tenant
        )
        self.service = imports
