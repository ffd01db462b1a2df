"""The ``SPEC_JOB`` executor: analyse a spec's seed dataset (or its objectives) and store version 1.

The seed files are copied from the blob store and read as the dataset type means
(`datamill.services.generation.seed_files`); `analyse_seeds` or `spec_from_objectives` writes the spec with
the
create options; the read-only ``metadata`` records the dataset (id, name, type), the model, the options and
how many seeds the model read. Version 1 is written in the transaction that records the job's success, so
a spec is never SUCCEEDED without YAML. A failure the job understands (unreadable seeds, a model that
cannot be used) fails the job with its message, which the spec shows as ``error``.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from datamill.core.error_codes import ErrorCode, error_data
from datamill.core.errors import ConfigError, DataFormatError, ModelError, ValidationError
from datamill.llm.gateway import Gateway
from datamill.pipelines.spec_analysis import (
    SpecAnalysisOptions,
    SpecDraft,
    analyse_seeds,
    spec_from_objectives,
)
from datamill.runners.execution import LiveRun, RunTicket
from datamill.services.adaptation.adapt import make_gateway
from datamill.services.generation.seed_files import materialised_seeds
from datamill.services.jobs.failures import job_failure
from datamill.services.settings.runs import RunSettings
from datamill.store import BlobStore, Store
from datamill.store.generation_models import SeedDataset, Spec
from datamill.store.runs import RunOutcome
from datamill.store.specs import add_version, get_spec_any_tenant

log = logging.getLogger(__name__)


class SpecJobExecutor:
    """Executes spec analysis jobs for a worker; see the module docstring."""

    def __init__(self, store: Store, blobs: BlobStore, settings: RunSettings, data_dir: Path) -> None:
        self._store, self._blobs, self._settings, self._data_dir = store, blobs, settings, data_dir

    async def __call__(self, ticket: RunTicket, live: LiveRun) -> RunOutcome:
        spec_id = ticket.source_dataset_id
        with self._store.session() as session:
            spec = get_spec_any_tenant(session, spec_id)
            if spec is None:
                return RunOutcome(
                    "failed", error_data=error_data(ErrorCode.REQUEST_UNFIT, "the spec was deleted")
                )
            dataset_id, objectives = spec.dataset_id, spec.generation_objectives
            dataset_name = _dataset_name(session, dataset_id)
        gateway = make_gateway(self._settings.llm_settings(self._data_dir))
        base_cost = ticket.cost_usd
        live.cost_usd = lambda: base_cost + gateway.usage.total.cost_usd
        try:
            draft = await self._analyse(gateway, ticket.request, dataset_id, objectives)
        except (DataFormatError, ValidationError, ConfigError, ModelError) as exc:
            log.warning("spec %s: analysis failed: %s", spec_id, exc)
            return RunOutcome(
                "failed", cost_usd=live.cost_usd(), error_data=job_failure(exc, input_name="the seed files")
            )
        finally:
            await gateway.aclose()
        metadata = {"dataset_id": dataset_id, "dataset_name": dataset_name, **draft.spec.metadata}
        content = replace(draft.spec, metadata=metadata).to_yaml()

        def settle(session: Session) -> None:
            row = session.get(Spec, spec_id)
            if row is not None:  # deleted while it was analysed: nothing to write
                add_version(session, row, content)

        return RunOutcome("succeeded", cost_usd=live.cost_usd(), settle=settle)

    async def _analyse(
        self, gateway: Gateway, request: dict[str, Any], dataset_id: str | None, objectives: str | None
    ) -> SpecDraft:
        name = request.get("spec_generation_model_name")
        model = gateway.model(name) if name else gateway.role("spec")
        options = SpecAnalysisOptions(
            extrapolate_values=bool(request.get("extrapolate_values")),
            extrapolate_axes=bool(request.get("extrapolate_axes")),
            generate_distributions=request.get("generate_distributions") is not False,
            generate_conditional_distributions=bool(request.get("generate_conditional_distributions")),
        )
        if dataset_id is None:
            return await spec_from_objectives(objectives or "", model, options)
        with materialised_seeds(self._store, self._blobs, dataset_id) as seeds:
            return await analyse_seeds(seeds, model, options, objectives=objectives)


def _dataset_name(session: Session, dataset_id: str | None) -> str | None:
    dataset = session.get(SeedDataset, dataset_id) if dataset_id else None
    return dataset.name if dataset else None
