"""Launching runs: ``POST /datasets/{id}/run`` and ``/adapt`` (Adaption API) as a service.

`RunService.adapt` validates the body with `parse_adapt_request` (the one validation every entry point
shares), checks the dataset can be run, and quotes the run (`RunQuoter`). An estimate stops there and
persists nothing. A real launch then, in one transaction:

1. reserves the estimated credits with a conditional UPDATE that succeeds only if the balance covers them
   (else `InsufficientCreditsError`, 402);
2. marks the dataset ``running`` with the run's id and mapping (``configured_column_mapping``), again only if
   it is still ready and idle (else `ConflictError`, 409);
3. inserts the run, ``queued``, with its idempotency key and the launch response.

An idempotency key (``job_specification.idempotency_key``) is unique per tenant, kind and dataset: a launch
whose key was used before returns the original launch response and starts nothing; two concurrent launches
with one key race on the unique constraint and the loser answers the winner's response. Afterwards the
worker is woken to claim the run at once.

A dataset can be run once its files have been read (``ingest_state`` ready): while it is still being read
the answer is 409, and when its upload failed (nothing readable) 400. A dataset that already has a run in
progress answers 409. A ``language_expansion`` left out keeps the one of the dataset's previous adaptation
(contract: "omitted: keep the existing config"); ``null`` clears it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.exc import IntegrityError

from datamill.core.adapt_request import AdaptRequest, parse_adapt_request
from datamill.core.errors import ValidationError
from datamill.services.adaptation.plans import ADAPT
from datamill.services.adaptation.quote import DatasetNotRunnableError, Quote, RunQuoter
from datamill.services.errors import ConflictError, NotFoundError, ServiceError
from datamill.store import Dataset, Run, Store, utcnow
from datamill.store import datasets as datasets_repo
from datamill.store import runs as repo
from datamill.store import tenants as tenants_repo
from datamill.store.ids import new_id


class InsufficientCreditsError(ServiceError):
    """The tenant's balance does not cover a run's estimate (HTTP 402)."""

    def __init__(self, needed: float, balance: float) -> None:
        self.needed, self.balance = needed, balance
        super().__init__(
            f"insufficient credits: this run needs {needed:g} credits and the balance is {balance:g}; "
            "ask the operator for more (datamill tenants credit) or process fewer rows "
            "(job_specification.max_rows)"
        )


def check_runnable(row: Dataset) -> None:
    """Raise unless the dataset's files have been read and hold data.

    Raises:
        ConflictError: the files are still being read (a retry later will work).
        DatasetNotRunnableError: the upload failed, so there is nothing to run on.
    """
    if row.ingest_state != "ready":
        raise ConflictError(
            f"dataset {row.id!r} is not ready yet (its data is still being read or made); "
            "poll datasets.get_status until it leaves 'pending'"
        )
    if not row.columns:
        reason = (row.error_data or {}).get("message") or "it has no readable rows"
        raise DatasetNotRunnableError(f"dataset {row.id!r} cannot be run: {reason}; upload the file again")


class RunService:
    """Launches adaptation runs; `expand.ExpandService` does translate and localize."""

    def __init__(
        self, store: Store, quoter: RunQuoter, *, on_queued: Callable[[], None] | None = None
    ) -> None:
        self._store, self._quoter = store, quoter
        self._on_queued = on_queued or (lambda: None)

    def adapt(self, tenant_id: str, dataset_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Quote or launch an adaptation; returns the run/adapt response (camelCase keys, the Adaption API).

        Raises:
            ValidationError: a bad body, or a mapping this dataset or model cannot serve (400).
            NotFoundError: no such dataset for this tenant (404).
            ConflictError: the dataset is still being read, or a run is processing it (409).
            DatasetNotRunnableError: the dataset holds no readable data (400).
            InsufficientCreditsError: the balance does not cover the estimate (402).
        """
        request = parse_adapt_request(body)
        row = self.dataset(tenant_id, dataset_id)
        key = request.job.idempotency_key
        if (
            key is not None
            and not request.estimate
            and (replay := self.replay(tenant_id, ADAPT, row.id, key))
        ):
            return dict(replay.launch_response)
        check_runnable(row)
        quote = self._quoter.quote(ADAPT, row.id, self._effective_body(request, row))
        if request.estimate:
            return quote.estimate.to_wire()
        run = new_run(tenant_id, ADAPT, row.id, row.id, quote, key)
        run.launch_response = quote.estimate.to_wire() | {"run_id": run.id, "estimate": False}
        mapping = quote.request.get("column_mapping")
        return self.launch(run, lambda s: self._start(s, row, run.id, mapping)).launch_response

    def dataset(self, tenant_id: str, dataset_id: str) -> Dataset:
        with self._store.session() as session:
            row = datasets_repo.get_dataset(session, tenant_id, dataset_id)
        if row is None:
            raise NotFoundError("dataset", dataset_id)
        return row

    def replay(self, tenant_id: str, kind: str, source_id: str, key: str) -> Run | None:
        """The run an earlier launch with this idempotency key made, if any."""
        with self._store.session() as session:
            return repo.run_by_key(session, tenant_id, kind, source_id, key)

    def launch(self, run: Run, claim_dataset: Callable[[Any], None]) -> Run:
        """Reserve the credits, claim the dataset (`claim_dataset`) and queue `run`, in one transaction."""
        try:
            with self._store.session() as session:
                if not repo.reserve_credits(session, run.tenant_id, float(run.credits_reserved)):
                    tenant = tenants_repo.tenant_by_id(session, run.tenant_id)
                    balance = float(tenant.credits) if tenant is not None else 0.0
                    raise InsufficientCreditsError(float(run.credits_reserved), balance)
                claim_dataset(session)
                repo.add_run(session, run)
        except IntegrityError:
            # Another launch with the same idempotency key won the race: answer what it answered.
            key = run.idempotency_key
            winner = self.replay(run.tenant_id, run.kind, run.source_dataset_id, key) if key else None
            if winner is None:
                raise
            return winner
        self._on_queued()
        return run

    def _start(self, session: Any, row: Dataset, run_id: str, mapping: Any) -> None:
        values = {"run_id": run_id, "configured_column_mapping": mapping}
        if repo.start_dataset_run(session, row.tenant_id, row.id, values):
            return
        current = datasets_repo.get_dataset(session, row.tenant_id, row.id)
        if current is None:
            raise NotFoundError("dataset", row.id)
        if current.status == "running":
            raise ConflictError(f"dataset {row.id!r} is being processed by a run; launch again when it ends")
        check_runnable(current)
        raise ConflictError(f"dataset {row.id!r} changed while the run was launched; try again")

    def _effective_body(self, request: AdaptRequest, row: Dataset) -> dict[str, Any]:
        """The request with what it leaves to the dataset filled in: an estimate's mapping, the expansion."""
        body = request.to_dict()
        if request.column_mapping is None:
            if not row.configured_column_mapping:
                raise ValidationError.of(
                    "column_mapping",
                    "this dataset has no column mapping yet: give column_mapping to quote it "
                    f"(columns: {', '.join(map(str, row.columns or []))})",
                )
            body["column_mapping"] = _adapt_mapping(row.configured_column_mapping)
        if not request.language_expansion_given and row.run_id is not None:
            with self._store.session() as session:
                previous = repo.get_run(session, row.tenant_id, row.run_id)
                if previous is not None and previous.kind == ADAPT:
                    expansion = previous.request.get("language_expansion")
                    if expansion is not None:
                        body["language_expansion"] = expansion
        return body


def _adapt_mapping(configured: Mapping[str, Any]) -> dict[str, Any]:
    """A configured mapping as a run/adapt mapping (a raw upload's chosen/rejected roles do not apply)."""
    return {k: v for k, v in configured.items() if k not in ("chosen", "rejected") and v not in (None, [])}


def new_run(tenant_id: str, kind: str, dataset_id: str, source_id: str, quote: Quote, key: str | None) -> Run:
    """A queued run for `quote`, reserving its estimated credits; the caller sets `launch_response`."""
    now = utcnow()
    return Run(
        id=new_id("run"),
        tenant_id=tenant_id,
        dataset_id=dataset_id,
        source_dataset_id=source_id,
        kind=kind,
        status="queued",
        request=quote.request | {"estimate": False},
        options=quote.options,
        model=quote.model,
        estimate=quote.estimate.to_dict(),
        idempotency_key=key,
        launch_response={},
        credits_reserved=quote.estimate.credits,
        cost_usd=0.0,
        processed_rows=0,
        total_rows=quote.estimate.rows_selected,
        attempts=0,
        created_at=now,
        updated_at=now,
    )
