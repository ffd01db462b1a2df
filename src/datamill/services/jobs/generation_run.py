"""The ``GENERATION_JOB`` executor: generate a run's samples and store them as its files.

One attempt: load the run's spec version and request, read the spec's seed dataset
(`datamill.services.generation.seed_files`), run `GenerationRun` with its progress mirrored into the job
(accepted samples → ``processed_rows``, rejected candidates → ``rows_rejected``, model spend → ``cost_usd``),
write the samples with `write_generation` (``sample_<n>.txt`` or ``.json``, ``sample_<n>.metadata.json``,
``run_summary.json``), upload each file to ``generated/<tenant>/<run>/``, and record the files, the
summary, the completion time and the models actually used (a model left to the default is named in
``runtime_params``) in the transaction that records the job's success.

When the candidate budget is spent first, the job fails with the pass-rate message and the summary is
kept. A ``databricks/`` model uses the credentials in the job's request (`dataframer_databricks`).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from datamill.core.error_codes import ErrorCode, error_data
from datamill.core.errors import ConfigError, DataFormatError, ModelError, ValidationError
from datamill.core.generation_request import GenerationRequest, parse_generation_request
from datamill.core.spec import parse_spec_yaml
from datamill.llm.gateway import Gateway
from datamill.llm.judge_choice import RUN_SETTING, JudgeChoice
from datamill.pipelines.adapt import RunCounters
from datamill.pipelines.generate import (
    GenerationBudgetSpent,
    GenerationCounters,
    GenerationModels,
    GenerationResult,
    GenerationRun,
    GenerationSummary,
    judge_for,
)
from datamill.pipelines.generate_output import write_generation
from datamill.runners.execution import LiveRun, RunTicket
from datamill.services.adaptation.adapt import make_gateway
from datamill.services.generation.common import file_type
from datamill.services.generation.databricks import model_handle
from datamill.services.generation.seed_files import materialised_seeds
from datamill.services.jobs.failures import job_failure
from datamill.services.settings.runs import RunSettings
from datamill.steps.generation.seeds import SeedSet
from datamill.store import BlobStore, Store
from datamill.store.generation_models import GeneratedFile
from datamill.store.generation_models import GenerationRun as GenerationRunRow
from datamill.store.generation_runs import generated_blob_key, get_generation_run_any_tenant
from datamill.store.ids import new_id
from datamill.store.jobs import CREDENTIALS
from datamill.store.models import utcnow
from datamill.store.runs import RunOutcome
from datamill.store.specs import get_spec_any_tenant, get_version
from datamill.text.fetch_policy import FetchPolicy

log = logging.getLogger(__name__)
_CHUNK = 1 << 20


class MirroredCounters(GenerationCounters):
    """Generation counters that also move the job's live counters, which the heartbeat records."""

    def __init__(self, live: RunCounters) -> None:
        self._live = live
        super().__init__()

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name == "samples_completed":
            self._live.rows_done = value
        elif name == "samples_failed":
            self._live.rows_rejected = value


def _models(
    gateway: Gateway, request: GenerationRequest, credentials: Mapping[str, str], policy: FetchPolicy
) -> GenerationModels:
    generation = model_handle(gateway, request.generation_model, "generation", credentials, policy)
    outline = model_handle(gateway, request.outline_model, "outline", credentials, policy)
    revision = model_handle(gateway, request.revision_model, "revision", credentials, policy)
    if request.judge_model:
        judge = model_handle(gateway, request.judge_model, "judge", credentials, policy)
        choice = JudgeChoice(request.judge_model, generation.name, RUN_SETTING)
    else:
        judge, choice = judge_for(gateway, request, generation)
    return GenerationModels(
        generation,
        outline if request.outline_model else generation,
        revision if request.revision_model else generation,
        judge,
        choice,
    )


def _resolved(request: GenerationRequest, models: GenerationModels) -> dict[str, Any]:
    """The runtime parameters with the models actually used filled in (a default model is named)."""
    params = request.runtime_params()
    params["generation_model"] = models.generation.name
    params["outline_model"] = None if request.skip_outline else models.outline.name
    if params["revision_model"] is not None or request.revision_types or request.filtering_types:
        params["revision_model"] = models.revision.name
    return params


class RunJobExecutor:
    """Executes generation jobs for a worker; see the module docstring."""

    def __init__(self, store: Store, blobs: BlobStore, settings: RunSettings, data_dir: Path) -> None:
        self._store, self._blobs, self._settings, self._data_dir = store, blobs, settings, data_dir

    async def __call__(self, ticket: RunTicket, live: LiveRun) -> RunOutcome:
        loaded = self._load(ticket.source_dataset_id)
        if loaded is None:
            return RunOutcome(
                "failed", error_data=error_data(ErrorCode.REQUEST_UNFIT, "the run or its spec was deleted")
            )
        body, spec_yaml, dataset_id = loaded
        credentials = {str(k): str(v) for k, v in (ticket.request.get(CREDENTIALS) or {}).items()}
        gateway = make_gateway(self._settings.llm_settings(self._data_dir))
        base_cost = ticket.cost_usd
        live.cost_usd = lambda: base_cost + gateway.usage.total.cost_usd
        try:
            request = parse_generation_request({**body, **credentials})
            live.total_rows = request.number_of_samples
            seeds = self._seeds(dataset_id)
            policy = FetchPolicy.with_allowed(self._settings.fetch_allow)
            models = _models(gateway, request, credentials, policy)
            run = GenerationRun(
                parse_spec_yaml(spec_yaml),
                request,
                models,
                seeds,
                gateway=gateway,
                counters=MirroredCounters(live.counters),
            )
            result = await run.run()
        except GenerationBudgetSpent as exc:
            log.warning("generation run %s: %s", ticket.source_dataset_id, exc)
            failure = error_data(ErrorCode.REQUEST_UNFIT, str(exc))
            return self._ended("failed", ticket, live, exc.summary, [], failure)
        except (DataFormatError, ValidationError, ConfigError, ModelError) as exc:
            log.warning("generation run %s failed: %s", ticket.source_dataset_id, exc)
            return RunOutcome(
                "failed", cost_usd=live.cost_usd(), error_data=job_failure(exc, input_name="the seed files")
            )
        finally:
            await gateway.aclose()
        result = GenerationResult(
            result.samples, replace(result.summary, runtime_params=_resolved(request, models))
        )
        files = self._store_files(ticket.tenant_id, ticket.source_dataset_id, result, seeds)
        return self._ended("succeeded", ticket, live, result.summary, files)

    def _ended(
        self,
        status: str,
        ticket: RunTicket,
        live: LiveRun,
        summary: GenerationSummary,
        files: list[GeneratedFile],
        failure: dict[str, Any] | None = None,
    ) -> RunOutcome:
        """The outcome of a run that generated (all or part of its samples), settling its row with `files`."""
        stored = summary.to_dict()
        return RunOutcome(
            status,
            rows_out=summary.delivered,
            rows_rejected=summary.candidates - summary.delivered,
            cost_usd=live.cost_usd(),
            error_data=failure,
            settle=lambda session: self._settle(session, ticket.source_dataset_id, files, stored),
        )

    def _load(self, run_id: str) -> tuple[dict[str, Any], str, str | None] | None:
        """The run's stored body, its spec version's YAML and the spec's dataset id."""
        with self._store.session() as session:
            run = get_generation_run_any_tenant(session, run_id)
            spec = get_spec_any_tenant(session, run.spec_id) if run is not None else None
            version = get_version(session, spec.id, run.spec_version) if run and spec else None
            if run is None or spec is None or version is None:
                return None
            return dict(run.request), version.content_yaml, spec.dataset_id

    def _seeds(self, dataset_id: str | None) -> SeedSet | None:
        if dataset_id is None:
            return None
        with materialised_seeds(self._store, self._blobs, dataset_id) as seeds:
            return seeds

    def _store_files(
        self, tenant_id: str, run_id: str, result: GenerationResult, seeds: SeedSet | None
    ) -> list[GeneratedFile]:
        """Write the samples and summary, upload each file; the rows to insert when the job is recorded."""
        structured = bool(seeds and seeds.structured)
        rows: list[GeneratedFile] = []
        with tempfile.TemporaryDirectory(prefix="datamill-generated-") as tmp:
            root = Path(tmp)
            write_generation(result, root, structured=structured)
            names = []
            for sample in result.samples:
                names += [f"sample_{sample.slot}.{'json' if structured else 'txt'}"]
                names += [f"sample_{sample.slot}.metadata.json"]
            names.append("run_summary.json")
            for position, name in enumerate(names):
                key = generated_blob_key(tenant_id, run_id, name)
                size, digest = self._upload(root / name, key)
                rows.append(
                    GeneratedFile(
                        id=new_id("genfile"),
                        run_id=run_id,
                        position=position,
                        path=name,
                        file_type=file_type(name),
                        blob_key=key,
                        size_bytes=size,
                        sha256=digest,
                    )
                )
        return rows

    def _upload(self, local: Path, key: str) -> tuple[int, str]:
        writer = self._blobs.open_writer(key)
        try:
            with local.open("rb") as handle:
                while chunk := handle.read(_CHUNK):
                    writer.write(chunk)
            info = writer.commit()
        except BaseException:
            writer.abort()
            raise
        return info.size, info.sha256

    @staticmethod
    def _settle(session: Session, run_id: str, files: list[GeneratedFile], summary: dict[str, Any]) -> None:
        run = session.get(GenerationRunRow, run_id)
        if run is None:  # deleted while it ran
            return
        session.add_all(files)
        run.summary = summary
        if "runtime_params" in summary:
            run.runtime_params = dict(summary["runtime_params"])
        run.completed_at = utcnow()
