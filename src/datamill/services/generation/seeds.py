"""Seed datasets of the Dataframer-compatible API: create (files or a ZIP), list, read, delete, download.

A create checks every rule first (`dataframer_seed_rules`, `dataframer_zip`), then writes the blobs under
``seeds/{tenant}/{dataset}/{n}-{name}`` (hashing them as they pass), counts the rows of a single file with
`datamill.dataio`, and only then inserts the dataset and its files in one transaction. If anything fails
the blobs written so far are deleted: there is never half a dataset. Names are unique per tenant (400
``name_taken``). A dataset a spec was written from cannot be deleted (400 ``in_use``).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import BinaryIO

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from datamill.core.errors import DataFormatError, Issue, ValidationError
from datamill.dataio import count_rows
from datamill.services.errors import NotFoundError
from datamill.services.generation.common import (
    DownloadTarget,
    InUseError,
    NameTakenError,
    creator_email,
)
from datamill.services.generation.seed_rules import (
    MIN_ROWS,
    MULTI_FOLDER,
    SINGLE_FILE,
    IncomingFile,
    PlannedFile,
    check_name,
    parse_dataset_type,
    plan_files,
)
from datamill.services.generation.seed_zip import read_zip
from datamill.services.tenants import TenantView
from datamill.store import BlobStore, Store, utcnow
from datamill.store import seed_datasets as repo
from datamill.store.generation_models import SeedDataset, SeedFile
from datamill.store.ids import new_id

_CHUNK = 1 << 20
_KIND = "seed dataset"


@dataclass(frozen=True)
class SeedDatasetView:
    """A seed dataset and its files (`files` is None in listings)."""

    row: SeedDataset
    files: list[SeedFile] | None = None


def _key_part(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")[:120] or "file"


class SeedDatasetService:
    """The operations of the module docstring over one store and blob store."""

    def __init__(self, store: Store, blobs: BlobStore) -> None:
        self._store, self._blobs = store, blobs

    def create(
        self,
        tenant: TenantView,
        *,
        name: str | None,
        description: str | None,
        dataset_type: str | None,
        files: list[IncomingFile],
        folder_names: list[str] | None,
    ) -> SeedDatasetView:
        """Create a dataset from uploaded files; ValidationError / NameTakenError when refused."""
        clean_name = check_name(name)
        kind = parse_dataset_type(dataset_type)
        planned = plan_files(kind, files, folder_names if kind == MULTI_FOLDER else None)
        self._check_name_free(tenant, clean_name)
        return self._store_dataset(tenant, clean_name, description, kind, planned)

    def create_from_zip(
        self, tenant: TenantView, *, name: str | None, description: str | None, archive: BinaryIO | None
    ) -> SeedDatasetView:
        """Create a dataset from a ZIP, its type read from the archive (see `dataframer_zip`)."""
        clean_name = check_name(name)
        if archive is None:
            raise ValidationError.of("zip_file", "zip_file is required: upload a .zip archive")
        self._check_name_free(tenant, clean_name)
        contents = read_zip(archive)
        try:
            planned = plan_files(contents.dataset_type, contents.files, contents.folder_names)
            return self._store_dataset(tenant, clean_name, description, contents.dataset_type, planned)
        except ValidationError as exc:  # the rules name files[i]; the request has only zip_file
            raise ValidationError([Issue("zip_file", issue.reason) for issue in exc.issues]) from exc
        finally:
            contents.close()

    def list_datasets(self, tenant: TenantView) -> list[SeedDatasetView]:
        with self._store.session() as session:
            rows = repo.list_datasets(session, tenant.id)
            session.expunge_all()
        return [SeedDatasetView(row) for row in rows]

    def get(self, tenant: TenantView, dataset_id: str) -> SeedDatasetView:
        """The dataset with its files; NotFoundError for an unknown (or another tenant's) id."""
        with self._store.session() as session:
            row = _dataset(session, tenant.id, dataset_id)
            files = repo.files_of(session, row.id)
            session.expunge_all()
        return SeedDatasetView(row, files)

    def delete(self, tenant: TenantView, dataset_id: str) -> None:
        """Delete the dataset and its files; InUseError while a spec references it."""
        with self._store.session() as session:
            row = _dataset(session, tenant.id, dataset_id)
            specs = repo.spec_names_using(session, row.id)
            if specs:
                shown = ", ".join(repr(s) for s in specs[:5]) + (" ..." if len(specs) > 5 else "")
                raise InUseError(
                    f"seed dataset {row.name!r} is used by {len(specs)} spec(s) ({shown}); delete them first"
                )
            keys = [f.blob_key for f in repo.files_of(session, row.id)]
            repo.delete_dataset(session, row)
        for key in keys:  # after the commit: a failed delete leaves rows and bytes as they were
            self._blobs.delete(key)

    def file_download(self, tenant: TenantView, dataset_id: str, file_id: str) -> DownloadTarget:
        """What to serve for one file of the dataset; NotFoundError for an unknown dataset or file."""
        with self._store.session() as session:
            if repo.get_dataset(session, tenant.id, dataset_id) is None:
                raise NotFoundError(_KIND, dataset_id)
            file = repo.get_file(session, dataset_id, file_id)
            if file is None:
                raise NotFoundError("seed file", file_id)
            return DownloadTarget(file.blob_key, file.path.rsplit("/", 1)[-1], file.file_type)

    def _check_name_free(self, tenant: TenantView, name: str) -> None:
        with self._store.session() as session:
            if repo.name_taken(session, tenant.id, name):
                raise NameTakenError(_KIND, name)

    def _store_dataset(
        self, tenant: TenantView, name: str, description: str | None, kind: str, planned: list[PlannedFile]
    ) -> SeedDatasetView:
        dataset_id = new_id("sds")
        written: list[str] = []
        try:
            files = [self._write(tenant, dataset_id, n, f, written) for n, f in enumerate(planned)]
            samples = self._count_rows(files[0], planned[0]) if kind == SINGLE_FILE else None
            row = SeedDataset(
                id=dataset_id,
                tenant_id=tenant.id,
                name=name,
                description=description,
                dataset_type=kind,
                file_count=len(files),
                folder_count=len({f.folder for f in planned if f.folder}) if kind == MULTI_FOLDER else 0,
                sample_count=samples,
                created_by_email=creator_email(tenant),
                created_at=utcnow(),
            )
            with self._store.session() as session:
                repo.add_dataset(session, row, files)
                session.expunge_all()
        except IntegrityError:
            self._discard(written)
            raise NameTakenError(_KIND, name) from None
        except BaseException:
            self._discard(written)
            raise
        return SeedDatasetView(row, files)

    def _write(
        self, tenant: TenantView, dataset_id: str, position: int, file: PlannedFile, written: list[str]
    ) -> SeedFile:
        key = f"seeds/{tenant.id}/{dataset_id}/{position}-{_key_part(file.name)}"
        writer = self._blobs.open_writer(key)
        try:
            stream = file.incoming.stream
            stream.seek(0)
            while chunk := stream.read(_CHUNK):
                writer.write(chunk)
            info = writer.commit()
        except BaseException:
            writer.abort()
            raise
        written.append(key)
        return SeedFile(
            id=new_id("sf"),
            dataset_id=dataset_id,
            position=position,
            path=file.path,
            folder=file.folder,
            file_type=file.file_type,
            blob_key=key,
            size_bytes=info.size,
            sha256=info.sha256,
        )

    def _count_rows(self, file: SeedFile, planned: PlannedFile) -> int:
        try:
            with self._blobs.local_path(file.blob_key) as path:
                rows = count_rows(path, format=planned.extension.lstrip("."))
        except DataFormatError as exc:  # its message names the server's path: name the user's file instead
            where = "" if exc.line is None else f"line {exc.line}: "
            raise ValidationError.of(
                "files[0]", f"File {planned.name} cannot be read: {where}{exc.reason}"
            ) from None
        if rows < MIN_ROWS:
            raise ValidationError.of(
                "files[0]", f"SINGLE_FILE dataset requires at least {MIN_ROWS} rows, found {rows}."
            )
        return rows

    def _discard(self, keys: list[str]) -> None:
        for key in keys:
            with contextlib.suppress(Exception):  # best effort; the original failure is what matters
                self._blobs.delete(key)


def _dataset(session: Session, tenant_id: str, dataset_id: str) -> SeedDataset:
    """The tenant's seed dataset; NotFoundError for an unknown (or another tenant's) id."""
    row = repo.get_dataset(session, tenant_id, dataset_id)
    if row is None:
        raise NotFoundError(_KIND, dataset_id)
    return row
