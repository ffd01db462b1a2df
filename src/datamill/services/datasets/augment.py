"""Augment (Adaption API): a new dataset holding a dataset's rows plus relevant rows retrieved for it.

``domain_rows`` are retrieved from the tenant's other datasets (up to `MAX_POOL_DATASETS` of them, newest
first, and `MAX_POOL_ROWS` rows in all) that have every column of the source with the same type, ranked by
full-text relevance to the source's rows with near-duplicates of them left out (`retrieval`). The text a
row is compared by is its mapped columns (prompt, completion, chosen, rejected, context) when the source has
a column mapping, else its text columns. ``general_rows`` (a general pool) and ``similar_rows`` (rows
generated in the source's style) need a pool or a generator this server does not have: asking for either
answers 400 naming it.

The recommended fill (``fill_to_recommended: true``, or a quote with no counts) tops a dataset up to
`RECOMMENDED_ROWS` rows, or adds a tenth to one that already has that many, and is capped by the relevant
rows the pool holds; the answer's ``message`` says how it was computed. A body with no counts and no
``estimate`` answers 400 with that message. A pool with no relevant row answers 400 naming ``domain_rows``;
one with fewer than asked adds those it has (the answer's ``domain_rows`` is the number added).

The new dataset (kind ``augmented``, ``source_dataset_id`` set) holds the source's rows, then the retrieved
ones, with two more columns: ``augmentation`` (``domain`` on a retrieved row, null on the source's) and
``augmentation_source`` (the dataset a retrieved row came from). It is made within the request, so it is
``succeeded`` at once: its rows are its file (what ``adapt`` and ``combine`` read) and the output of a
finished run of kind ``augment`` (what ``download`` and ``publish`` read; it has no evaluation). When the
source has a prompt-mode mapping the new dataset has it too. Credits are `PriceTable.credits` of the rows
added (no model is called), taken when the dataset is made; a balance that does not cover them answers 402.
An ``idempotency_key`` replay answers the first call's dataset with 0 rows and 0 credits (a key reused for
another request is refused with a 422 naming ``idempotency_key``).
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from datamill.core.credits import PriceTable
from datamill.core.errors import Issue, ValidationError
from datamill.dataio import open_writer
from datamill.dataio.folder import Location
from datamill.pipelines.checkpoint import Checkpoint, CheckpointFiles
from datamill.services.adaptation.launch import InsufficientCreditsError
from datamill.services.datasets.catalog import DatasetService, DatasetView
from datamill.services.datasets.output import DatasetOutputs, unified_schema
from datamill.services.datasets.retrieval import Ranked, relevant_rows
from datamill.services.errors import ConflictError, NotFoundError, NotReadyError
from datamill.services.idempotency import recorded
from datamill.store import BlobInfo, BlobStore, Dataset, DatasetFile, Run, Store, utcnow
from datamill.store import idempotency as keys
from datamill.store import tenants as tenants_repo
from datamill.store.ids import new_id

IDEMPOTENCY_SCOPE = "augment"
MAX_ROWS = 100_000
MAX_POOL_DATASETS = 200
MAX_POOL_ROWS = 200_000
RECOMMENDED_ROWS = 1_000
READY = ("succeeded", "awaiting_input")
TRAINING_TYPES = ("instruction_dataset", "preference_pairs")
_MAPPED = ("prompt", "completion", "chosen", "rejected")


class AugmentCreditsError(InsufficientCreditsError):
    """The balance does not cover the rows an augment adds (HTTP 402)."""

    def __str__(self) -> str:
        return (
            f"insufficient credits: adding these rows costs {self.needed:g} credits and the balance is "
            f"{self.balance:g}; ask the operator for more (datamill tenants credit) or for fewer domain_rows"
        )


@dataclass(frozen=True)
class AugmentRequest:
    domain_rows: int | None
    fill_to_recommended: bool
    estimate: bool
    idempotency_key: str | None


def _count(body: Mapping[str, Any], field: str, issues: list[Issue]) -> int | None:
    value = body.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        issues.append(Issue(field, f"must be a whole number of rows, got {value!r}"))
    elif value != int(value) or not 0 <= value <= MAX_ROWS:
        issues.append(Issue(field, f"must be a whole number from 0 to {MAX_ROWS}, got {value!r}"))
    else:
        return int(value)
    return None


def parse_augment_request(body: Any) -> AugmentRequest:
    """The checked body. Raises ValidationError naming every bad field."""
    if body is None:
        body = {}
    if not isinstance(body, Mapping):
        raise ValidationError.of("body", "must be a JSON object")
    issues: list[Issue] = []
    domain = _count(body, "domain_rows", issues)
    for field, why in (
        ("general_rows", "this server has no general pool to retrieve rows from: ask for domain_rows"),
        ("similar_rows", "this server does not generate similar rows: ask for domain_rows"),
    ):
        if _count(body, field, issues):
            issues.append(Issue(field, why))
    flags = {}
    for field in ("fill_to_recommended", "estimate"):
        value = body.get(field)
        if value is not None and not isinstance(value, bool):
            issues.append(Issue(field, "must be true or false"))
        flags[field] = value is True
    training_type = body.get("training_type")
    if training_type is not None and training_type not in TRAINING_TYPES:
        issues.append(Issue("training_type", f"must be one of {', '.join(TRAINING_TYPES)}"))
    key = body.get("idempotency_key")
    if key is not None and (not isinstance(key, str) or not key.strip() or len(key) > 255):
        issues.append(Issue("idempotency_key", "must be a non-empty string of at most 255 characters"))
    if issues:
        raise ValidationError(issues)
    return AugmentRequest(
        domain, flags["fill_to_recommended"], flags["estimate"], key.strip() if key else None
    )


def recommended_rows(size: int) -> int:
    """The rows the recommended fill adds to a dataset of `size` rows, before the pool caps it."""
    return RECOMMENDED_ROWS - size if size < RECOMMENDED_ROWS else math.ceil(size / 10)


def _how(size: int, wanted: int, available: int) -> str:
    rule = (
        f"it has {size} rows, fewer than {RECOMMENDED_ROWS}, so it is topped up to {RECOMMENDED_ROWS}"
        if size < RECOMMENDED_ROWS
        else f"it has {size} rows, so a tenth more"
    )
    capped = f"; the pool holds {available} relevant rows" if available < wanted else ""
    return f"recommended fill: {min(wanted, available)} domain_rows ({rule}{capped})"


@dataclass
class _Pool:
    texts: list[str]
    rows: list[dict[str, Any]]
    origins: list[str]


class AugmentService:
    """Quotes and makes augmented datasets; see the module docstring."""

    def __init__(
        self,
        store: Store,
        blobs: BlobStore,
        outputs: DatasetOutputs,
        prices: PriceTable,
        run_location: Callable[[str], Location],
    ) -> None:
        self._store, self._blobs, self._outputs, self._prices = store, blobs, outputs, prices
        self._run_location = run_location
        self._datasets = DatasetService(store)

    def augment(self, tenant_id: str, dataset_id: str, body: Any) -> dict[str, Any]:
        """Quote or make an augmented dataset; the wire response (module docstring).

        Raises:
            ValidationError: a bad body, no counts without ``estimate``, or no relevant row (400).
            NotFoundError: no such dataset for this tenant (404).
            ConflictError, NotReadyError: the source is being processed, or has not been read (409, 422).
            AugmentCreditsError: the balance does not cover the rows added (402).
        """
        request = parse_augment_request(body)
        digest = hashlib.sha256(
            json.dumps([dataset_id, body], sort_keys=True, default=str).encode()
        ).hexdigest()
        if request.idempotency_key and not request.estimate:
            replay = self._replay(tenant_id, request.idempotency_key, digest)
            if replay is not None:
                return _answer(replay, self._status(tenant_id, replay), 0, 0.0, False)
        source = self._datasets.get(tenant_id, dataset_id)
        if source.status == "running":
            raise ConflictError(f"dataset {dataset_id!r} is being processed; augment it when its run ends")
        if source.status not in READY or source.row_count is None:
            raise NotReadyError(
                f"dataset {dataset_id!r} is {source.status}: it can be augmented once it is read"
            )
        schema = unified_schema(self._outputs.own_rows(source).tables) or pa.schema([])
        text_columns = _text_columns(source, schema)
        key_column = _key_column(source, schema)
        source_rows = list(self._source_rows(source))
        source_texts = [_text(row, text_columns) for row in source_rows]
        pool = self._pool(tenant_id, source, schema, text_columns)
        size = source.row_count
        recommended = recommended_rows(size)
        wanted = (
            recommended if request.fill_to_recommended or request.domain_rows is None else request.domain_rows
        )
        found = relevant_rows(
            source_texts,
            pool.texts,
            max(wanted, recommended),
            source_keys=[_text(row, key_column) for row in source_rows] if key_column else None,
            pool_keys=[_text(row, key_column) for row in pool.rows] if key_column else None,
        )
        ranked = found[:wanted]
        how = _how(size, recommended, len(found))
        if request.domain_rows is None and not request.fill_to_recommended and not request.estimate:
            credits = self._prices.credits(min(recommended, len(ranked)), 0.0)
            raise ValidationError.of(
                "domain_rows", f"give domain_rows or fill_to_recommended: {how}, for {credits:g} credits"
            )
        added = len(ranked)
        credits = self._prices.credits(added, 0.0) if added else 0.0
        if request.estimate:
            return _answer(None, None, added, credits, True) | {"message": how}
        if added == 0:
            raise ValidationError.of(
                "domain_rows",
                f"no row of your other datasets with this dataset's columns is relevant to it "
                f"({len(pool.rows)} rows searched): upload rows of that kind with the same columns first",
            )
        made = _Made(new_id("ds"), new_id("run"))
        rows = self._rows_out(source, schema, pool, ranked)
        blob_key = f"augmented/{tenant_id}/{made.dataset_id}/augmented.parquet"
        info = self._write(rows, schema, blob_key)
        answer = _answer(made.dataset_id, "succeeded", added, credits, False) | {"message": how}
        try:
            Checkpoint(self._run_location(made.run_id), "augment").save(0, rows, [])
            with self._store.session() as session:
                tenant = tenants_repo.tenant_by_id(session, tenant_id)
                balance = float(tenant.credits) if tenant is not None else 0.0
                if balance < credits:
                    raise AugmentCreditsError(credits, balance)
                session.add(_dataset_row(made, tenant_id, source, rows, how))
                session.flush()
                session.add(_file_row(made.dataset_id, info))
                session.add(_run_row(made, tenant_id, source.id, request, answer, len(rows), credits))
                tenants_repo.add_credits(session, tenant_id, -credits)
                if request.idempotency_key:
                    keys.add_record(
                        session,
                        tenant_id,
                        IDEMPOTENCY_SCOPE,
                        request.idempotency_key,
                        digest,
                        made.dataset_id,
                    )
        except IntegrityError:  # a concurrent request with the same key won
            self._discard(made, blob_key)
            winner = self._replay(tenant_id, request.idempotency_key or "", digest)
            if winner is None:
                raise
            return _answer(winner, self._status(tenant_id, winner), 0, 0.0, False)
        except BaseException:
            self._discard(made, blob_key)
            raise
        return answer

    def _discard(self, made: _Made, blob_key: str) -> None:
        self._blobs.delete(blob_key)
        CheckpointFiles(self._run_location(made.run_id)).folder.remove()

    def _status(self, tenant_id: str, dataset_id: str) -> str | None:
        try:
            return self._datasets.get(tenant_id, dataset_id).status
        except NotFoundError:  # deleted since: the replay still names it
            return None

    def _replay(self, tenant_id: str, key: str, digest: str) -> str | None:
        with self._store.session() as session:
            return recorded(
                session, tenant_id, IDEMPOTENCY_SCOPE, key, digest, field="idempotency_key", what="augment"
            )

    def _source_rows(self, view: DatasetView) -> Iterator[dict[str, Any]]:
        for table in self._outputs.own_rows(view).tables():
            yield from table.to_pylist()

    def _pool(self, tenant_id: str, source: DatasetView, schema: pa.Schema, columns: list[str]) -> _Pool:
        pool = _Pool([], [], [])
        with self._store.session() as session:
            rows = session.scalars(
                select(Dataset)
                .where(
                    Dataset.tenant_id == tenant_id,
                    Dataset.deleted_at.is_(None),
                    Dataset.id != source.id,
                    Dataset.status.in_(READY),
                    Dataset.row_count.is_not(None),
                )
                .order_by(Dataset.created_at.desc(), Dataset.id)
                .limit(MAX_POOL_DATASETS)
            ).all()
            views = [DatasetView.of(row) for row in rows]
        names = schema.names
        for view in views:
            rows_of = self._outputs.own_rows(view)
            theirs = unified_schema(rows_of.tables)
            if theirs is None or any(
                f.name not in theirs.names or theirs.field(f.name).type != f.type for f in schema
            ):
                continue
            for table in rows_of.tables():
                for row in table.select(names).to_pylist():
                    pool.rows.append(row)
                    pool.texts.append(_text(row, columns))
                    pool.origins.append(view.id)
                    if len(pool.rows) >= MAX_POOL_ROWS:
                        return pool
        return pool

    def _rows_out(
        self, source: DatasetView, schema: pa.Schema, pool: _Pool, ranked: list[Ranked]
    ) -> list[dict[str, Any]]:
        """The source's rows, then the retrieved ones, each with the two augmentation columns."""
        none = {"augmentation": None, "augmentation_source": None}
        rows = [
            row | none
            for table in self._outputs.own_rows(source).tables()
            for row in table.select(schema.names).to_pylist()
        ]
        rows += [
            pool.rows[r.index] | {"augmentation": "domain", "augmentation_source": pool.origins[r.index]}
            for r in ranked
        ]
        return rows

    def _write(self, rows: list[dict[str, Any]], schema: pa.Schema, blob_key: str) -> BlobInfo:
        out = schema.append(pa.field("augmentation", pa.string())).append(
            pa.field("augmentation_source", pa.string())
        )
        with tempfile.TemporaryDirectory(prefix="datamill-augment-") as tmp:
            path = Path(tmp) / "augmented.parquet"
            with open_writer(path, format="parquet") as writer:
                writer.write_batch(pa.Table.from_pylist(rows, schema=out))
            blob = self._blobs.open_writer(blob_key)
            try:
                with path.open("rb") as handle:
                    while chunk := handle.read(1 << 20):
                        blob.write(chunk)
                return blob.commit()
            except BaseException:
                blob.abort()
                raise


def _text_columns(view: DatasetView, schema: pa.Schema) -> list[str]:
    mapping = view.configured_column_mapping or {}
    mapped = [mapping[k] for k in _MAPPED if isinstance(mapping.get(k), str)]
    mapped += [c for c in mapping.get("context") or [] if isinstance(c, str)]
    present = [c for c in mapped if c in schema.names]
    return present or [
        f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
    ]


def _key_column(view: DatasetView, schema: pa.Schema) -> list[str]:
    """The prompt column, which near-duplicates are also judged by, when the mapping names one."""
    prompt = (view.configured_column_mapping or {}).get("prompt")
    return [prompt] if isinstance(prompt, str) and prompt in schema.names else []


def _text(row: Mapping[str, Any], columns: list[str]) -> str:
    return " ".join(str(row[c]) for c in columns if row.get(c) is not None)


def _raw_mapping(view: DatasetView) -> dict[str, Any] | None:
    mapping = view.configured_column_mapping or {}
    if not isinstance(mapping.get("prompt"), str):
        return None
    return {k: mapping[k] for k in (*_MAPPED, "context") if mapping.get(k)}


@dataclass(frozen=True)
class _Made:
    dataset_id: str
    run_id: str


def _dataset_row(
    made: _Made, tenant_id: str, source: DatasetView, rows: list[dict[str, Any]], how: str
) -> Dataset:
    now, mapping = utcnow(), _raw_mapping(source)
    added = sum(1 for row in rows if row["augmentation"] == "domain")
    return Dataset(
        id=made.dataset_id,
        tenant_id=tenant_id,
        name=f"{source.name} (augmented: {added} domain rows)",
        description=f"{source.name} with {added} relevant rows retrieved from other datasets ({how})",
        kind="augmented",
        source_dataset_id=source.id,
        status="succeeded",
        ingest_state="ready",  # written whole here: nothing is left to read
        processing_mode="raw" if mapping else "adapt",
        source_column_mapping=mapping,
        configured_column_mapping=mapping,
        columns=list(rows[0]),
        row_count=len(rows),
        run_id=made.run_id,
        created_at=now,
        updated_at=now,
    )


def _run_row(
    made: _Made,
    tenant_id: str,
    source_id: str,
    request: AugmentRequest,
    answer: dict[str, Any],
    rows: int,
    credits: float,
) -> Run:
    """The finished run whose output is the augmented rows, so they download like any run's output."""
    now = utcnow()
    return Run(
        id=made.run_id,
        tenant_id=tenant_id,
        dataset_id=made.dataset_id,
        source_dataset_id=source_id,
        kind="augment",
        status="succeeded",
        request={"domain_rows": request.domain_rows, "fill_to_recommended": request.fill_to_recommended},
        options={},
        model="",
        idempotency_key=request.idempotency_key,
        launch_response=answer,
        credits_reserved=credits,
        credits_used=credits,
        cost_usd=0.0,
        processed_rows=rows,
        total_rows=rows,
        rows_out=rows,
        rows_rejected=0,
        attempts=0,
        evaluation_status="skipped",
        created_at=now,
        updated_at=now,
        started_at=now,
        finished_at=now,
    )


def _file_row(dataset_id: str, info: BlobInfo) -> DatasetFile:
    return DatasetFile(
        dataset_id=dataset_id,
        position=0,
        file_name="augmented.parquet",
        file_format="parquet",
        blob_key=info.key,
        size_bytes=info.size,
        sha256=info.sha256,
    )


def _answer(
    dataset_id: str | None, status: str | None, rows: int, credits: float, estimate: bool
) -> dict[str, Any]:
    return {
        "dataset_id": dataset_id,
        "status": status,
        "domain_rows": rows,
        "general_rows": 0,
        "estimated_credits_consumed": credits,
        "estimate": estimate,
    }
