"""Uploads: create a dataset from a file source, hand out upload slots, receive the bytes, complete.

The flows of the Adaption API (Adaption API) all go through upload slots (`store.models.Upload`):

- ``POST /datasets`` with a file source creates a pending dataset and one slot;
- ``upload/initiate`` creates a slot with no dataset, and ``upload/complete`` turns it into one;
- ``upload/initiate-batch`` creates a pending dataset with a slot per file, ``upload/complete-batch`` ends it.

Bytes arrive through `receive` (the server's signed PUT link), streamed into blob storage with the size limit
enforced as they come. Completing checks the declared size (and sha256) against what arrived. A mismatch is a
400 naming the field and changes nothing: the dataset stays ``pending`` and a corrected complete still
works. A good complete attaches the files and hands the dataset to `on_uploaded` (the ingest queue).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from datamill.core.errors import ValidationError
from datamill.core.fields import join
from datamill.services.datasets.formats import check_homogeneous, check_readable, known_format
from datamill.services.datasets.upload_checks import (
    FileSource,
    check_name,
    check_received,
    check_sha256,
    whole_bytes,
)
from datamill.services.datasets.upload_checks import safe_file_name as _safe
from datamill.services.errors import NotFoundError, PayloadTooLargeError, UploadRejectedError
from datamill.store import BlobInfo, BlobStore, BlobTooLargeError, Dataset, DatasetFile, Store, Upload, utcnow
from datamill.store import datasets as dataset_repo
from datamill.store import uploads as repo
from datamill.store.blobs import write_stream
from datamill.store.ids import new_id


@dataclass(frozen=True)
class UploadTicket:
    """Where one file goes: the slot id (which the server signs into a URL) and its key."""

    upload_id: str
    s3_key: str
    file_name: str
    expires_at: dt.datetime


@dataclass(frozen=True)
class NewDataset:
    """A dataset created for a file upload, and the slot its bytes go to."""

    dataset_id: str
    status: str
    ticket: UploadTicket


@dataclass(frozen=True)
class Completed:
    """The answer of an upload/complete call."""

    dataset_id: str
    status: str


@dataclass(frozen=True)
class BatchFile:
    """One file of a batch: its name, format and declared size (initiate), or its key (complete)."""

    file_name: str
    file_format: str
    file_size_bytes: float
    s3_key: str | None = None


class UploadService:
    """Upload flows over a `Store` and a `BlobStore`; see the module docstring."""

    def __init__(
        self,
        store: Store,
        blobs: BlobStore,
        *,
        max_bytes: int,
        ttl_s: int,
        on_uploaded: Callable[[str], None] = lambda _dataset_id: None,
    ) -> None:
        self._store, self._blobs = store, blobs
        self._max, self._ttl = max_bytes, ttl_s
        self._on_uploaded = on_uploaded

    # -- slots ------------------------------------------------------------------------------------------

    def _slot(
        self, session: Session, tenant_id: str, name: str, fmt: str, dataset_id: str | None, size: int | None
    ) -> UploadTicket:
        upload_id, now = new_id("up"), utcnow()
        file_name = _safe(name, fmt)
        key = f"uploads/{tenant_id}/{upload_id}/{file_name}"
        expires = now + dt.timedelta(seconds=self._ttl)
        session.add(
            Upload(
                id=upload_id,
                tenant_id=tenant_id,
                dataset_id=dataset_id,
                s3_key=key,
                file_name=name,
                file_format=fmt,
                declared_size=size,
                state="pending",
                completed=False,
                created_at=now,
                expires_at=expires,
            )
        )
        return UploadTicket(upload_id, key, name, expires)

    def _new_dataset(self, session: Session, tenant_id: str, name: str, mode: str = "adapt") -> Dataset:
        now = utcnow()
        row = Dataset(
            id=new_id("ds"),
            tenant_id=tenant_id,
            name=name,
            kind="uploaded",
            status="pending",
            ingest_state="awaiting_upload",
            processing_mode=mode,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        session.flush()
        return row

    def create_dataset(self, tenant_id: str, source: FileSource) -> NewDataset:
        """A pending dataset for a file source (see `upload_checks.parse_file_source`) and its upload slot."""
        with self._store.session() as session:
            row = self._new_dataset(session, tenant_id, source.name, source.processing_mode)
            if source.column_mapping is not None:
                row.source_column_mapping = source.column_mapping.to_dict()
            ticket = self._slot(session, tenant_id, source.name, source.file_format, row.id, None)
            return NewDataset(row.id, row.status, ticket)

    def initiate(self, tenant_id: str, name: str, file_format: str) -> UploadTicket:
        """A slot for the two-step flow (``upload/initiate``); no dataset exists until `complete`."""
        name = check_name(name, "name")
        fmt = check_readable(known_format(file_format, "file_format"), "file_format")
        with self._store.session() as session:
            return self._slot(session, tenant_id, name, fmt, None, None)

    def initiate_batch(
        self, tenant_id: str, name: str, files: Sequence[BatchFile]
    ) -> tuple[str, list[UploadTicket]]:
        """A pending dataset with one slot per file (``upload/initiate-batch``).

        Raises:
            ValidationError: No files, a mixed batch, an unreadable format, a bad name or size, or a declared
                size over the upload limit.
        """
        name = check_name(name, "name")
        if not files:
            raise ValidationError.of("files", "list at least one file")
        formats = [
            known_format(f.file_format, join(join("files", i), "file_format")) for i, f in enumerate(files)
        ]
        check_homogeneous(formats, "files")
        sizes = []
        for i, (item, fmt) in enumerate(zip(files, formats, strict=True)):
            field = join("files", i)
            check_readable(fmt, join(field, "file_format"))
            check_name(item.file_name, join(field, "file_name"))
            sizes.append(whole_bytes(item.file_size_bytes, join(field, "file_size_bytes")))
            if sizes[-1] > self._max:
                raise ValidationError.of(
                    join(field, "file_size_bytes"), f"exceeds the upload limit of {self._max} bytes"
                )
        with self._store.session() as session:
            row = self._new_dataset(session, tenant_id, name)
            tickets = [
                self._slot(session, tenant_id, item.file_name, fmt, row.id, size)
                for item, fmt, size in zip(files, formats, sizes, strict=True)
            ]
            return row.id, tickets

    # -- bytes ------------------------------------------------------------------------------------------

    async def receive(
        self, upload_id: str, chunks: AsyncIterator[bytes], content_length: int | None = None
    ) -> BlobInfo:
        """Stream one PUT's bytes into the slot's blob.

        The slot is claimed first, so a second PUT to a used link fails; a failed PUT gives the claim back.

        Raises:
            PayloadTooLargeError: The declared or streamed size passes the limit; nothing is kept.
            UploadRejectedError: The slot is unknown, expired, busy or already used.
        """
        if content_length is not None and content_length > self._max:
            raise PayloadTooLargeError(self._max)
        key = await asyncio.to_thread(self._claim, upload_id)
        try:
            info = await write_stream(
                self._blobs, key, self._touching(upload_id, chunks), max_bytes=self._max
            )
        except BlobTooLargeError:
            await asyncio.to_thread(self._release, upload_id)
            raise PayloadTooLargeError(self._max) from None
        except BaseException:
            await asyncio.to_thread(self._release, upload_id)
            raise
        await asyncio.to_thread(self._mark_received, upload_id, info)
        return info

    def _claim(self, upload_id: str) -> str:
        now = utcnow()
        with self._store.session() as session:
            if repo.claim(session, upload_id, now):
                slot = repo.get_upload(session, upload_id)
                assert slot is not None  # just claimed in this transaction
                return slot.s3_key
            slot = repo.get_upload(session, upload_id)
        if slot is None:
            raise UploadRejectedError("unknown upload link")
        if slot.state == "received":
            raise UploadRejectedError("this upload link has already been used")
        if slot.state == "receiving":
            raise UploadRejectedError("another upload to this link is in progress")
        raise UploadRejectedError("this upload link has expired; create the dataset again for a new one")

    async def _touching(self, upload_id: str, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """The chunks, refreshing the claim as they arrive (`datamill.store.uploads.touch`)."""
        every = repo.TOUCH_EVERY.total_seconds()
        last = time.monotonic()
        async for chunk in chunks:
            if time.monotonic() - last >= every:
                await asyncio.to_thread(self._touch, upload_id)
                last = time.monotonic()
            yield chunk

    def _touch(self, upload_id: str) -> None:
        with self._store.session() as session:
            repo.touch(session, upload_id, utcnow())

    def _release(self, upload_id: str) -> None:
        with self._store.session() as session:
            repo.release(session, upload_id)

    def _mark_received(self, upload_id: str, info: BlobInfo) -> None:
        with self._store.session() as session:
            repo.mark_received(session, upload_id, info.size, info.sha256)

    # -- completing -------------------------------------------------------------------------------------

    def _attach(self, session: Session, row: Dataset, slots: Sequence[Upload]) -> None:
        for position, slot in enumerate(slots):
            assert slot.size_bytes is not None  # state is received
            assert slot.sha256 is not None
            session.add(
                DatasetFile(
                    dataset_id=row.id,
                    position=position,
                    file_name=slot.file_name,
                    file_format=slot.file_format,
                    blob_key=slot.s3_key,
                    size_bytes=slot.size_bytes,
                    sha256=slot.sha256,
                )
            )
            slot.completed, slot.dataset_id = True, row.id
        row.ingest_state, row.updated_at = "uploaded", utcnow()

    def _finish(self, completed: Completed, scheduled: bool) -> Completed:
        if scheduled:  # after the commit, so the ingest worker sees the files
            self._on_uploaded(completed.dataset_id)
        return completed

    def complete_by_id(
        self, tenant_id: str, dataset_id: str, file_size_bytes: float, sha256: str | None = None
    ) -> Completed:
        """Complete the upload of a dataset made by ``POST /datasets`` (``/{id}/upload/complete``).

        Raises:
            NotFoundError: No such dataset for this tenant.
            ValidationError: Nothing uploaded yet, a batch dataset, or a size or sha256 mismatch.
        """
        size, digest = whole_bytes(file_size_bytes, "file_size_bytes"), check_sha256(sha256)
        with self._store.session() as session:
            row = dataset_repo.get_dataset(session, tenant_id, dataset_id, for_update=True)
            if row is None:
                raise NotFoundError("dataset", dataset_id)
            slots = repo.uploads_of_dataset(session, row.id)
            if len(slots) != 1:
                raise ValidationError.of(
                    "dataset_id", "this dataset has no single upload: use complete-batch"
                )
            slot = slots[0]
            if slot.state != "received":
                raise ValidationError.of("file_size_bytes", "no file has been uploaded to this dataset yet")
            check_received(slot.size_bytes, slot.sha256, size, digest)
            scheduled = row.ingest_state == "awaiting_upload"  # else a repeated complete: answer the same
            if scheduled:
                self._attach(session, row, [slot])
            completed = Completed(row.id, row.status)
        return self._finish(completed, scheduled)

    def complete(
        self, tenant_id: str, s3_key: str, name: str, file_format: str, file_size_bytes: float
    ) -> Completed:
        """Turn an initiated upload into a dataset (``upload/complete``); repeating it answers the same.

        Raises:
            ValidationError: An unknown key, a key of a batch, nothing uploaded, or a format or size mismatch.
        """
        name, size = check_name(name, "name"), whole_bytes(file_size_bytes, "file_size_bytes")
        fmt = known_format(file_format, "file_format")
        with self._store.session() as session:
            slot = repo.upload_by_key(session, tenant_id, s3_key)
            if slot is None:
                raise ValidationError.of(
                    "s3_key", "no upload has this key: pass the s3_key upload/initiate gave"
                )
            if slot.completed and slot.dataset_id is not None:
                done = dataset_repo.get_dataset(session, tenant_id, slot.dataset_id)
                if done is None:
                    raise NotFoundError("dataset", slot.dataset_id)
                return Completed(done.id, done.status)
            if slot.dataset_id is not None:
                raise ValidationError.of("s3_key", "this key belongs to a batch: use upload/complete-batch")
            if fmt != slot.file_format:
                raise ValidationError.of("file_format", f"the upload was initiated as {slot.file_format}")
            if slot.state != "received":
                raise ValidationError.of("s3_key", "no file has been uploaded to this key yet")
            check_received(slot.size_bytes, None, size, None)
            row = self._new_dataset(session, tenant_id, name)
            self._attach(session, row, [slot])
            completed = Completed(row.id, row.status)
        return self._finish(completed, True)

    def complete_batch(self, tenant_id: str, dataset_id: str, files: Sequence[BatchFile]) -> Completed:
        """Complete a batch (``upload/complete-batch``): the listed files, in order, become the dataset's.

        Raises:
            NotFoundError: No such dataset for this tenant.
            ValidationError: No files, a key not of this dataset or listed twice, nothing uploaded to a key,
                or a format or size mismatch (each named by its index in ``files``).
        """
        if not files:
            raise ValidationError.of("files", "list at least one uploaded file")
        with self._store.session() as session:
            row = dataset_repo.get_dataset(session, tenant_id, dataset_id, for_update=True)
            if row is None:
                raise NotFoundError("dataset", dataset_id)
            if row.ingest_state != "awaiting_upload":
                return Completed(row.id, row.status)
            slots = _batch_slots(repo.uploads_of_dataset(session, row.id), files)
            self._attach(session, row, slots)
            completed = Completed(row.id, row.status)
        return self._finish(completed, True)


def _batch_slots(known: Sequence[Upload], files: Sequence[BatchFile]) -> list[Upload]:
    by_key = {slot.s3_key: slot for slot in known}
    chosen: list[Upload] = []
    for i, item in enumerate(files):
        field = join("files", i)
        slot = by_key.pop(item.s3_key or "", None)
        if slot is None:
            raise ValidationError.of(join(field, "s3_key"), "not an upload of this dataset, or listed twice")
        if known_format(item.file_format, join(field, "file_format")) != slot.file_format:
            raise ValidationError.of(
                join(field, "file_format"), f"the file was initiated as {slot.file_format}"
            )
        if slot.state != "received":
            raise ValidationError.of(join(field, "s3_key"), "no file has been uploaded to this key yet")
        check_received(
            slot.size_bytes,
            None,
            whole_bytes(item.file_size_bytes, join(field, "file_size_bytes")),
            None,
            field,
        )
        chosen.append(slot)
    return chosen
