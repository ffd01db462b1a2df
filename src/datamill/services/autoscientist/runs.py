"""AutoScientist runs: create (a queued ``autoscientist`` job), get, list, cancel, and the best adapter.

Creating a run checks the body (`request.parse_create`), the dataset (it must have a finished output: an
adaptation's output, or a raw dataset's own rows) and the base model; resolves the training method (a
requested ``alignment`` becomes ``instruction`` unless the dataset holds preference pairs), the starting
hyperparameters (the recommendation for the dataset's size, `datamill.services.training.hyperparams`, with
the caller's overrides, which the search then leaves alone), the target win rate (0.7 for a model under a
billion parameters, else 0.8) and the credits to reserve; then, in one transaction, takes the credits,
records the run and queues its job.

Credits: a run reserves ``PriceTable.credits(rows × max_iterations, 0)``, the row fee of every example of
the dataset trained on in every iteration; when it ends it is charged for the examples it actually trained on
(fewer when it reached the target early, or held some out) and the judge's model spend, and the rest is given
back. A cancelled run gets its whole reservation back.

An ``idempotency_key`` is scoped to the dataset: while a run started with it has not ended, the same key
with the same settings answers that run (the same key with another model, method, format, mapping,
hyperparameters, iterations or target is refused with `IdempotencyKeyReusedError`, 422); once it ended, the
key starts a new run. The key is recorded with the run it started (`datamill.store.idempotency`, inserted, or
swapped from the ended run it named), so of many requests sending one key at once exactly one starts a run
and the others answer it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from sqlalchemy.exc import IntegrityError

from datamill.core.credits import PriceTable
from datamill.services.adaptation.launch import InsufficientCreditsError
from datamill.services.autoscientist.catalog import find_model
from datamill.services.autoscientist.request import LARGE_TARGET, SMALL_TARGET, CreateRequest, parse_create
from datamill.services.autoscientist.view import run_status, run_wire, tenant_run
from datamill.services.datasets.catalog import DatasetService, DatasetView
from datamill.services.datasets.listing import ListQuery, decode_cursor, encode_cursor, parse_list_query
from datamill.services.datasets.output import DatasetOutputs
from datamill.services.errors import ConflictError, IdempotencyKeyReusedError, NotReadyError
from datamill.services.settings.training import TrainingSettings
from datamill.services.training.hyperparams import recommend
from datamill.store import BlobStore, Store, utcnow
from datamill.store import idempotency as records
from datamill.store.autoscientist import add_autoscientist_run, in_progress_with_key, page_autoscientist_runs
from datamill.store.autoscientist_models import AUTOSCIENTIST_JOB, AutoscientistRun
from datamill.store.ids import new_id
from datamill.store.jobs import add_job, cancel_job
from datamill.store.models import Tenant
from datamill.store.runs import reserve_credits
from datamill.training.base_models import BaseModel


class _LostRace(Exception):
    """Another request swapped the idempotency record first."""


class TrainingCreditsError(InsufficientCreditsError):
    """The balance does not cover a run's reservation (402)."""

    def __init__(self, needed: float, balance: float) -> None:
        self.needed, self.balance = needed, balance
        Exception.__init__(
            self,
            f"insufficient credits: this run reserves {needed:g} credits and the balance is {balance:g}; ask "
            "the operator for more (datamill tenants credit), or lower max_iterations",
        )


@dataclass(frozen=True)
class Download:
    """The best adapter's blob and the file name to give it."""

    blob_key: str
    filename: str


def _settings(run: AutoscientistRun) -> tuple[Any, ...]:
    """What a run was asked to do, to tell a replay of its create request from another request."""
    return (
        run.dataset_id,
        run.model,
        run.training_method,
        run.data_format,
        run.column_mapping,
        run.hyperparams,
        run.max_iterations,
        run.target_win_rate,
    )


def target_for(model: BaseModel) -> float:
    """The default target win rate: `SMALL_TARGET` for a model under a billion parameters."""
    size = (model.model_size or "").upper()
    return SMALL_TARGET if size.endswith(("M", "K")) else LARGE_TARGET


def _preference(view: DatasetView, mapping: Mapping[str, Any] | None, columns: set[str]) -> bool:
    names = mapping or {}
    return bool(names.get("chosen") and names.get("rejected")) or {"chosen", "rejected"} <= columns


class AutoscientistService:
    """The run operations of one tenant's requests; see the module docstring."""

    def __init__(
        self,
        store: Store,
        blobs: BlobStore,
        outputs: DatasetOutputs,
        training: TrainingSettings,
        prices: PriceTable,
        on_queued: Callable[[], None] = lambda: None,
    ) -> None:
        self._store, self._blobs, self._outputs = store, blobs, outputs
        self._datasets = DatasetService(store)
        self._training, self._prices, self._on_queued = training, prices, on_queued

    def create(self, tenant_id: str, body: Any) -> dict[str, Any]:
        """Start a run (or answer the run in progress with the same key, or a quote for ``estimate``)."""
        request = parse_create(body)
        view = self._datasets.get(tenant_id, request.dataset_id)
        rows = self._outputs.output_of(view)  # 409 while processing, 422 without a finished output
        model = find_model(self._training, request.model)
        columns = _first_columns(rows.tables())
        mapping = request.column_mapping or view.configured_column_mapping
        preference = _preference(view, mapping, columns)
        method = "alignment" if request.training_method == "alignment" and preference else "instruction"
        start = recommend(rows.row_count, preference=method == "alignment") | request.hyperparams
        start["training_method"] = method
        target = request.target_win_rate or target_for(model)
        credits = self._prices.credits(rows.row_count * request.max_iterations, 0.0)
        if request.estimate:
            return {
                "estimate": True,
                "estimated_credits_consumed": credits,
                "model": model.id,
                "training_method": method,
                "max_iterations": request.max_iterations,
                "target_win_rate": target,
                "training_rows": rows.row_count,
                "hyperparams": start,
            }
        run = self._new_run(tenant_id, request, model, method, start, target)
        key, scope = request.idempotency_key, f"asr:{view.id}"
        try:
            with self._store.session() as session:
                if key:
                    # The record first, then the run in progress: a run started after the record was read
                    # has swapped it, so the swap below fails, and one started before is found here.
                    recorded = records.find_record(session, tenant_id, scope, key)
                    replayed = self._replay(session, tenant_id, view.id, run)
                    if replayed is not None:
                        return replayed
                if credits > 0 and not reserve_credits(session, tenant_id, credits):
                    tenant = session.get(Tenant, tenant_id)
                    raise TrainingCreditsError(credits, float(tenant.credits) if tenant is not None else 0.0)
                add_autoscientist_run(session, run)
                job = add_job(
                    session, tenant_id, AUTOSCIENTIST_JOB, run.id, {}, model.id, credits_reserved=credits
                )
                run.job_id = job.id
                if key:
                    if recorded is None:
                        records.add_record(session, tenant_id, scope, key, "", run.id)
                    elif not records.swap_record(
                        session, tenant_id, scope, key, recorded.resource_id, run.id
                    ):
                        raise _LostRace
                wire = run_wire(session, run)
        except (IntegrityError, _LostRace):
            if not key:
                raise
            # Another request with this key started its run first: answer that one (nothing of ours is kept).
            with self._store.session() as session:
                replayed = self._replay(session, tenant_id, view.id, run)
            if replayed is None:
                raise ConflictError(
                    f"another AutoScientist run with idempotency_key {key!r} was just started and has "
                    "already ended; send the request again"
                ) from None
            return replayed
        self._on_queued()
        return wire

    @staticmethod
    def _replay(
        session: Any, tenant_id: str, dataset_id: str, run: AutoscientistRun
    ) -> dict[str, Any] | None:
        """The answer of the run in progress started with `run`'s key; None when there is none."""
        assert run.idempotency_key is not None
        found = in_progress_with_key(session, tenant_id, dataset_id, run.idempotency_key)
        if found is None:
            return None
        if _settings(found) != _settings(run):
            raise IdempotencyKeyReusedError("idempotency_key", run.idempotency_key, "autoscientist")
        return run_wire(session, found)

    @staticmethod
    def _new_run(
        tenant_id: str,
        request: CreateRequest,
        model: BaseModel,
        method: str,
        start: dict[str, Any],
        target: float,
    ) -> AutoscientistRun:
        return AutoscientistRun(
            id=new_id("asr"),
            tenant_id=tenant_id,
            dataset_id=request.dataset_id,
            model=model.id,
            training_method=method,
            data_format=request.data_format,
            column_mapping=request.column_mapping,
            hyperparams={"start": start, "fixed": sorted(request.hyperparams)},
            max_iterations=request.max_iterations,
            target_win_rate=target,
            idempotency_key=request.idempotency_key,
            job_id="",
            iterations=[],
            created_at=utcnow(),
        )

    def get(self, tenant_id: str, run_id: str) -> dict[str, Any]:
        with self._store.session() as session:
            return run_wire(session, tenant_run(session, tenant_id, run_id))

    def list(
        self, tenant_id: str, limit: str | None, cursor: str | None, dataset_id: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of runs, newest first, and the cursor of the next page (None on the last)."""
        query: ListQuery = parse_list_query({"limit": limit, "cursor": cursor})
        after = decode_cursor(query)
        if dataset_id:
            self._datasets.get(tenant_id, dataset_id)
        with self._store.session() as session:
            found = page_autoscientist_runs(
                session, tenant_id, dataset_id or None, _as_after(after), query.limit + 1
            )
            page = found[: query.limit]
            wires = [run_wire(session, run) for run in page]
            more = len(found) > query.limit
            last = page[-1] if page else None
            next_cursor = encode_cursor(query, last.created_at, last.id) if more and last else None
        return wires, next_cursor

    def cancel(self, tenant_id: str, run_id: str) -> dict[str, Any]:
        """Cancel a pending or running run; its worker stops after the step in progress."""
        with self._store.session() as session:
            run = tenant_run(session, tenant_id, run_id)
            if not cancel_job(session, tenant_id, run.job_id):
                raise ConflictError(
                    f"AutoScientist run {run_id!r} is {run_status(session, run)}; only pending or running "
                    "runs can be cancelled"
                )
            run.completed_at = utcnow()
            return run_wire(session, run)

    def download(self, tenant_id: str, run_id: str) -> Download:
        """The best adapter so far (a run need not have ended).

        Raises:
            NotReadyError: no iteration has finished yet.
        """
        with self._store.session() as session:
            run = tenant_run(session, tenant_id, run_id)
            key, status = run.artifact_key, run_status(session, run)
        if key is None or not self._blobs.exists(key):
            raise NotReadyError(
                f"AutoScientist run {run_id!r} ({status}) has no trained model yet: it is downloadable once "
                "an iteration has finished (download_available)"
            )
        return Download(key, f"{run_id}.tar.gz")


def _first_columns(tables: Iterator[pa.Table]) -> set[str]:
    """The columns of the first table, reading no further (the rest of the pass is closed)."""
    try:
        first = next(tables, None)
    finally:
        close = getattr(tables, "close", None)
        if close is not None:
            close()
    return set(first.column_names) if first is not None else set()


def _as_after(after: tuple[Any, str] | None) -> tuple[dt.datetime, str] | None:
    if after is None:
        return None
    value, ident = after
    return (value, ident) if isinstance(value, dt.datetime) else None
