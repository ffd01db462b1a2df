"""Launching runs: ``POST /datasets/{id}/run`` and ``/adapt`` (Adaption API) as a service.

`RunService.adapt` takes the request as `parse_adapt_request` validated it (the one validation every entry
point shares; the wire layer parses the body once), checks the dataset can be run, and plans and quotes the
run once (`RunQuoter`). It answers a typed `Launch`; the wire layer writes the response. An estimate stops
there and persists nothing. A real launch then, in one transaction:

1. reserves the estimated credits with a conditional UPDATE that succeeds only if the balance covers them
   (else `InsufficientCreditsError`, 402);
2. marks the dataset ``running`` with the run's id and mapping (``configured_column_mapping``), again only if
   it is still ready and idle (else `ConflictError`, 409);
3. inserts the run, ``queued``, with its idempotency key and its plan (`RunPlan`: the request with its
   mapping filled in, the model, the options, the estimate), which the worker executes without planning
   or estimating again.

An idempotency key (``job_specification.idempotency_key``) names one launch of the tenant for its kind
(`datamill.services.idempotency`): it is recorded with the run, with the fingerprint of the dataset and the
request as parsed. A launch with the same key and the same request answers the original launch (from the
stored run) and starts nothing; the same key with another dataset, other steps or other options is refused
(`IdempotencyKeyReusedError`, 422) and starts nothing either. Two concurrent launches with one key race on
the record (and the run's unique key) and the loser answers the winner's launch. Afterwards the worker is
woken to claim the run at once.

A dataset can be run once its files have been read (``ingest_state`` ready): while it is still being read
the answer is 409, and when its upload failed (nothing readable) 400. A dataset that already has a run in
progress answers 409. A ``language_expansion`` left out keeps the one of the dataset's previous adaptation
(contract: "omitted: keep the existing config"); ``null`` clears it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.exc import IntegrityError

from datamill.core.adapt_request import AdaptRequest
from datamill.core.errors import Issue, ValidationError
from datamill.core.expansion import read_language_expansion
from datamill.core.fields import parse_with
from datamill.core.mapping import read_column_mapping
from datamill.services.adaptation.plans import ADAPT
from datamill.services.adaptation.quote import DatasetNotRunnableError, Quote, RunQuoter
from datamill.services.errors import ConflictError, NotFoundError, ServiceError
from datamill.services.idempotency import fingerprint, recorded
from datamill.steps.prompt_step import steps_from_specs
from datamill.steps.templates import compile_documents
from datamill.store import Dataset, Run, Store, utcnow
from datamill.store import datasets as datasets_repo
from datamill.store import idempotency as records
from datamill.store import runs as repo
from datamill.store import tenants as tenants_repo
from datamill.store.ids import new_id


@dataclass(frozen=True)
class Launch:
    """What a quote or a launch answers: the estimate's figures and, once launched, the queued run.

    Attributes:
        run_id: the queued run; None for an estimate.
        estimate: whether this was only a quote.
        minutes: the estimated duration.
        credits: the estimated credits (reserved by a launch).
        multimodal_pricing_applied: whether images made the run multimodal.
        credit_multiplier: the multimodal credit multiplier, when it applies.
    """

    run_id: str | None
    estimate: bool
    minutes: float
    credits: float
    multimodal_pricing_applied: bool
    credit_multiplier: float | None

    @classmethod
    def of(cls, estimate: Mapping[str, Any], run_id: str | None) -> Launch:
        """The answer of an estimate (`Estimate.to_dict`, as stored with a run) and its run, if launched."""
        multiplier = estimate.get("credit_multiplier")
        return cls(
            run_id=run_id,
            estimate=run_id is None,
            minutes=float(estimate["minutes"]),
            credits=float(estimate["credits"]),
            multimodal_pricing_applied=bool(estimate["multimodal_pricing_applied"]),
            credit_multiplier=float(multiplier) if multiplier is not None else None,
        )


@dataclass(frozen=True)
class LaunchKey:
    """A launch's idempotency key, with the fingerprint of the request it came with.

    Attributes:
        key: the key.
        digest: the request's `fingerprint` (its dataset and its parsed body).
        field: where the request carries the key, for the error that refuses its reuse.
    """

    key: str
    digest: str
    field: str

    @classmethod
    def of(cls, key: str | None, field: str, *request: object) -> LaunchKey | None:
        """The key of a request (None when it has none), fingerprinting the `request` parts."""
        return None if key is None else cls(key, fingerprint(*request), field)


def run_scope(kind: str) -> str:
    """The idempotency scope of the runs of `kind`: a key names one launch per tenant and kind."""
    return f"run:{kind}"


class InsufficientCreditsError(ServiceError):
    """The tenant's balance does not cover a run's estimate (HTTP 402)."""

    #: The request fields the refusal names, each with its reason (none: the request as a whole).
    issues: tuple[Issue, ...] = ()

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


def check_own_steps(request: AdaptRequest) -> None:
    """Check a request's own steps and prompt templates before anything else is done with it.

    Each is compiled in the template sandbox (`datamill.steps.sandbox`): a template that is not valid Jinja,
    that names an attribute starting with ``_``, a schema that is not a JSON schema, an ``after`` that names
    no step, or a prompt name no built-in template has is a `ValidationError` naming its field (400).
    """
    steps_from_specs(request.custom_steps)
    compile_documents(request.prompt_templates)


class RunService:
    """Launches adaptation runs; `expand.ExpandService` does translate and localize."""

    def __init__(
        self, store: Store, quoter: RunQuoter, *, on_queued: Callable[[], None] | None = None
    ) -> None:
        self._store, self._quoter = store, quoter
        self._on_queued = on_queued or (lambda: None)

    def adapt(self, tenant_id: str, dataset_id: str, request: AdaptRequest) -> Launch:
        """Quote or launch an adaptation of the validated `request` (`parse_adapt_request`).

        Raises:
            ValidationError: a mapping this dataset or model cannot serve, or own steps or templates
                that are not valid (400).
            NotFoundError: no such dataset for this tenant (404).
            ConflictError: the dataset is still being read, or a run is processing it (409).
            DatasetNotRunnableError: the dataset holds no readable data (400).
            InsufficientCreditsError: the balance does not cover the estimate (402).
        """
        check_own_steps(request)
        row = self.dataset(tenant_id, dataset_id)
        key = LaunchKey.of(
            request.job.idempotency_key, "job_specification.idempotency_key", row.id, request.to_dict()
        )
        if (
            key is not None
            and not request.estimate
            and (replay := self.replay(tenant_id, ADAPT, row.id, key))
        ):
            return Launch.of(replay.estimate or {}, replay.id)
        check_runnable(row)
        quote = self._quoter.quote(ADAPT, row.id, self._effective_request(request, row))
        if request.estimate:
            return Launch.of(quote.estimate.to_dict(), None)
        run = new_run(tenant_id, ADAPT, row.id, row.id, quote, key)
        mapping = run.request.get("column_mapping")
        launched = self.launch(run, lambda s: self._start(s, row, run.id, mapping), key)
        return Launch.of(launched.estimate or {}, launched.id)

    def dataset(self, tenant_id: str, dataset_id: str) -> Dataset:
        with self._store.session() as session:
            row = datasets_repo.get_dataset(session, tenant_id, dataset_id)
        if row is None:
            raise NotFoundError("dataset", dataset_id)
        return row

    def replay(self, tenant_id: str, kind: str, source_id: str, key: LaunchKey) -> Run | None:
        """The run an earlier launch with this idempotency key made, if any.

        Raises:
            IdempotencyKeyReusedError: the key was first used with another dataset or request (422).
        """
        with self._store.session() as session:
            args = (session, tenant_id, run_scope(kind), key.key, key.digest)
            run_id = recorded(*args, field=key.field, what=kind)
            if run_id is not None:
                return repo.get_run(session, tenant_id, run_id)
            # A run launched before keys were recorded with their request has only its key.
            return repo.run_by_key(session, tenant_id, kind, source_id, key.key)

    def launch(self, run: Run, claim_dataset: Callable[[Any], None], key: LaunchKey | None) -> Run:
        """Reserve the credits, claim the dataset (`claim_dataset`) and queue `run`, in one transaction.

        With a `key`, the key is recorded with the run. A launch that loses a race to another with the same
        key (its insert breaks the key's uniqueness, or its claim finds the dataset taken by that launch's
        run) answers the winner's run, so every caller of one key gets the same answer (or the 422 of a key
        reused for another request); nothing of the loser is kept.
        """
        try:
            with self._store.session() as session:
                if not repo.reserve_credits(session, run.tenant_id, float(run.credits_reserved)):
                    tenant = tenants_repo.tenant_by_id(session, run.tenant_id)
                    balance = float(tenant.credits) if tenant is not None else 0.0
                    raise InsufficientCreditsError(float(run.credits_reserved), balance)
                claim_dataset(session)
                repo.add_run(session, run)
                if key is not None:
                    scope = run_scope(run.kind)
                    records.add_record(session, run.tenant_id, scope, key.key, key.digest, run.id)
        except (IntegrityError, ConflictError):
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

    def _effective_request(self, request: AdaptRequest, row: Dataset) -> AdaptRequest:
        """The request with what it leaves to the dataset filled in: an estimate's mapping, the expansion."""
        if request.column_mapping is None:
            if not row.configured_column_mapping:
                raise ValidationError.of(
                    "column_mapping",
                    "this dataset has no column mapping yet: give column_mapping to quote it "
                    f"(columns: {', '.join(map(str, row.columns or []))})",
                )
            mapping = _adapt_mapping(row.configured_column_mapping)
            request = replace(
                request, column_mapping=parse_with(read_column_mapping, mapping, "column_mapping")
            )
        if not request.language_expansion_given and row.run_id is not None:
            with self._store.session() as session:
                previous = repo.get_run(session, row.tenant_id, row.run_id)
                if previous is not None and previous.kind == ADAPT:
                    expansion = previous.request.get("language_expansion")
                    if expansion is not None:
                        kept = parse_with(read_language_expansion, expansion, "language_expansion")
                        request = replace(request, language_expansion=kept, language_expansion_given=True)
        return request


def _adapt_mapping(configured: Mapping[str, Any]) -> dict[str, Any]:
    """A configured mapping as a run/adapt mapping (a raw upload's chosen/rejected roles do not apply)."""
    return {k: v for k, v in configured.items() if k not in ("chosen", "rejected") and v not in (None, [])}


def new_run(
    tenant_id: str, kind: str, dataset_id: str, source_id: str, quote: Quote, key: LaunchKey | None
) -> Run:
    """A queued run for `quote` (its stored plan), reserving its estimated credits."""
    now = utcnow()
    return Run(
        id=new_id("run"),
        tenant_id=tenant_id,
        dataset_id=dataset_id,
        source_dataset_id=source_id,
        kind=kind,
        status="queued",
        request=quote.plan.request.to_dict(),
        options=quote.plan.options_record(),
        model=quote.plan.model,
        estimate=quote.estimate.to_dict(),
        idempotency_key=key.key if key is not None else None,
        launch_response={},
        credits_reserved=quote.estimate.credits,
        cost_usd=0.0,
        processed_rows=0,
        total_rows=quote.estimate.rows_selected,
        attempts=0,
        created_at=now,
        updated_at=now,
    )
