"""Invent (Adaption API): a new dataset generated from catalogue codes or a description, on the job queue.

``POST /api/v1/datasets/invent`` checks the body (`invent_request`), builds the seedless generation spec
(`invent_spec`) and, unless it is an estimate, in one transaction: reserves the credits, creates the dataset
(kind ``invented``, status ``running``) and queues a job of kind ``invent`` that the worker executes with the
generation engine (`datamill.services.jobs.invent`). The spec and the codes of its values are stored with
the job, so an operator's later change to the catalogue does not change a queued job.

The answer (contract: ``id``, not ``dataset_id``): ``{estimate, id, name, training_type, domains,
subdomains, rows, status, created_at, estimated_credits, available_credits}``; on an estimate the dataset
fields are null and nothing is created or reserved. ``domains`` and ``subdomains`` are the codes generated.

Credits: ``PriceTable.credits(rows, 0)`` is reserved at launch (the row fee of every asked row, as for a
generation run; with a ``language_expansion``, of the rows expected after it); the job is charged
``PriceTable.credits(rows delivered, model spend)`` when it ends and the rest is given back. A balance that
does not cover the reservation answers 402 and creates nothing. An ``idempotency_key`` replay answers the
first call's dataset with 0 estimated credits; the key reused for another request is a 422 naming it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError

from datamill.core.credits import PriceTable
from datamill.services.adaptation.launch import InsufficientCreditsError
from datamill.services.datasets.invent_catalog import Domain
from datamill.services.datasets.invent_request import InventRequest, parse_invent_request
from datamill.services.datasets.invent_spec import invent_spec
from datamill.services.idempotency import recorded
from datamill.store import Dataset, Run, Store, utcnow
from datamill.store import datasets as datasets_repo
from datamill.store import idempotency as keys
from datamill.store import runs as repo
from datamill.store import tenants as tenants_repo
from datamill.store.ids import new_id

INVENT_JOB = "invent"
IDEMPOTENCY_SCOPE = "invent"


class InventService:
    """Quotes and launches invent jobs; see the module docstring."""

    def __init__(
        self,
        store: Store,
        prices: PriceTable,
        catalogue: Sequence[Domain],
        *,
        model: str | None = None,
        on_queued: Callable[[], None] = lambda: None,
    ) -> None:
        self._store, self._prices, self._catalogue = store, prices, list(catalogue)
        self._model, self._on_queued = model, on_queued

    def invent(self, tenant_id: str, body: Any) -> dict[str, Any]:
        """Quote or launch an invent job; the wire answer.

        Raises:
            ValidationError: a bad body (400, naming each field).
            InsufficientCreditsError: the balance does not cover the reservation (402).
        """
        request = parse_invent_request(body, self._catalogue)
        digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
        key = request.idempotency_key
        if key is not None and not request.estimate:
            replayed = self._replay(tenant_id, key, digest)
            if replayed is not None:
                return self._replayed(tenant_id, request, replayed)
        credits = self._prices.credits(request.rows_out, 0.0)
        if request.estimate:
            return _answer(request, None, credits, self._balance(tenant_id)) | {"name": self.name_of(request)}
        made = self._dataset(tenant_id, request)
        run = self._run(tenant_id, made.id, request, credits)
        made.run_id = run.id
        try:
            with self._store.session() as session:
                if not repo.reserve_credits(session, tenant_id, credits):
                    raise InsufficientCreditsError(credits, self._balance(tenant_id))
                session.add(made)
                session.flush()
                repo.add_run(session, run)
                if key is not None:
                    keys.add_record(session, tenant_id, IDEMPOTENCY_SCOPE, key, digest, made.id)
        except IntegrityError:  # a concurrent request with the same key won
            winner = self._replay(tenant_id, key or "", digest)
            if winner is None:
                raise
            return self._replayed(tenant_id, request, winner)
        self._on_queued()
        return _answer(request, made, credits, self._balance(tenant_id))

    def _balance(self, tenant_id: str) -> float:
        with self._store.session() as session:
            tenant = tenants_repo.tenant_by_id(session, tenant_id)
            return float(tenant.credits) if tenant is not None else 0.0

    def _replay(self, tenant_id: str, key: str, digest: str) -> tuple[str, Dataset | None] | None:
        """The dataset an earlier call with this key made (None in the pair when it was deleted since)."""
        with self._store.session() as session:
            made = recorded(
                session, tenant_id, IDEMPOTENCY_SCOPE, key, digest, field="idempotency_key", what="invent"
            )
            if made is None:
                return None
            return made, datasets_repo.get_dataset(session, tenant_id, made)

    def _replayed(
        self, tenant_id: str, request: InventRequest, found: tuple[str, Dataset | None]
    ) -> dict[str, Any]:
        dataset_id, made = found
        answer = _answer(request, made, 0.0, self._balance(tenant_id))
        return answer | {
            "estimate": False,
            "id": dataset_id,
            "name": made.name if made else self.name_of(request),
        }

    def _topics(self, request: InventRequest) -> str:
        titles = {d.code: d.title for d in self._catalogue}
        return ", ".join(titles.get(code, code) for code in request.domains)

    def name_of(self, request: InventRequest) -> str:
        """The dataset's name: the one asked for, else one made of the domains' titles."""
        return request.name or f"Invented: {self._topics(request)}"[:512]

    def _dataset(self, tenant_id: str, request: InventRequest) -> Dataset:
        now = utcnow()
        description = (
            request.dataset_prompt or f"Invented {request.training_type} data: {self._topics(request)}"
        )
        return Dataset(
            id=new_id("ds"),
            tenant_id=tenant_id,
            name=self.name_of(request),
            description=description[:2000],
            kind="invented",
            status="running",
            ingest_state=repo.DERIVING,
            processing_mode="adapt",
            configured_column_mapping=_mapping(request.training_type),
            created_at=now,
            updated_at=now,
        )

    def _run(self, tenant_id: str, dataset_id: str, request: InventRequest, credits: float) -> Run:
        built = invent_spec(request.to_record(), self._catalogue)
        now = utcnow()
        body = {k: v for k, v in request.to_record().items() if v is not None}
        body["subdomains"] = request.subdomain_codes
        return Run(
            id=new_id("run"),
            tenant_id=tenant_id,
            dataset_id=dataset_id,
            source_dataset_id=dataset_id,
            kind=INVENT_JOB,
            status="queued",
            request={
                "body": body,
                "rows": request.rows,
                "training_type": request.training_type,
                "language_expansion": body.get("language_expansion"),
                "spec_yaml": built.spec.to_yaml(),
                "codes": built.codes,
            },
            options={},
            model=self._model or "",
            estimate={"credits": credits},
            idempotency_key=None,
            launch_response={},
            credits_reserved=credits,
            cost_usd=0.0,
            processed_rows=0,
            total_rows=request.rows,
            attempts=0,
            created_at=now,
            updated_at=now,
        )


def _mapping(training_type: str) -> dict[str, str]:
    if training_type == "preference_pairs":
        return {"prompt": "enhanced_prompt", "chosen": "chosen", "rejected": "rejected"}
    return {"prompt": "enhanced_prompt", "completion": "enhanced_completion"}


def _answer(request: InventRequest, made: Dataset | None, credits: float, balance: float) -> dict[str, Any]:
    return {
        "estimate": made is None,
        "id": made.id if made is not None else None,
        "name": made.name if made is not None else request.name,
        "training_type": request.training_type,
        "domains": list(request.domains),
        "subdomains": request.subdomain_codes,
        "rows": request.rows,
        "status": made.status if made is not None else None,
        "created_at": made.created_at if made is not None else None,
        "estimated_credits": credits,
        "available_credits": balance,
    }
