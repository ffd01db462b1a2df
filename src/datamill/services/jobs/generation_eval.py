"""The ``GENERATION_EVAL_JOB`` executor: classify a run's samples and store the evaluation.

One attempt: load the evaluation, its run's spec version and the run's sample files from the blob store
(``sample_<n>.txt`` or ``.json`` with ``sample_<n>.metadata.json``, which holds the values drawn for the
sample), classify every sample with the judge model (`datamill.pipelines.generation_eval`) while the job's
``processed_rows`` counts the samples classified and ``cost_usd`` the model spend, then record the result
and the completion time in the transaction that records the job's success.

The judge is the evaluation's ``evaluation_model``, else the server's model (``DATAMILL_MODEL``), else the
routing file's default. The job fails with a clear ``error_message`` when the run or its spec is gone, the
model cannot be used, or no sample could be classified.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from datamill.core.errors import DatamillError, ValidationError
from datamill.core.spec import Spec, parse_spec_yaml
from datamill.llm.gateway import Gateway, ModelHandle
from datamill.pipelines.adapt import RunCounters
from datamill.pipelines.generation_eval import EvalCounters, EvalSample, evaluate_generation
from datamill.pipelines.generation_eval_samples import samples_from_files
from datamill.runners.execution import LiveRun, RunTicket
from datamill.services.adaptation.adapt import make_gateway
from datamill.services.generation.common import iso
from datamill.services.jobs.failures import job_failure
from datamill.services.settings.runs import RunSettings
from datamill.store import BlobStore, Store
from datamill.store.generation_evals import get_evaluation_any_tenant, record_result
from datamill.store.generation_runs import files_of_run, get_generation_run_any_tenant
from datamill.store.ids import new_id
from datamill.store.models import utcnow
from datamill.store.runs import RunOutcome
from datamill.store.specs import get_version

log = logging.getLogger(__name__)
_SAMPLE_SUFFIXES = (".txt", ".json")


class MirroredEvalCounters(EvalCounters):
    """Evaluation counters that also move the job's live counters, which the heartbeat records."""

    def __init__(self, live: RunCounters) -> None:
        self._live = live
        super().__init__()

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name == "done":
            self._live.rows_done = value
        elif name == "failed":
            self._live.rows_rejected = value


@dataclass(frozen=True)
class _Loaded:
    spec: Spec
    blob_keys: dict[str, str]
    model: str | None


class EvalJobExecutor:
    """Executes evaluation jobs for a worker; see the module docstring."""

    def __init__(self, store: Store, blobs: BlobStore, settings: RunSettings, data_dir: Path) -> None:
        self._store, self._blobs, self._settings, self._data_dir = store, blobs, settings, data_dir

    async def __call__(self, ticket: RunTicket, live: LiveRun) -> RunOutcome:
        evaluation_id = ticket.source_dataset_id
        gateway = make_gateway(self._settings.llm_settings(self._data_dir))
        base_cost = ticket.cost_usd
        live.cost_usd = lambda: base_cost + gateway.usage.total.cost_usd
        try:
            loaded = self._load(evaluation_id)
            samples = self._samples(loaded.blob_keys)
            live.total_rows = len(samples)
            model = self._model(gateway, loaded.model)
            counters = MirroredEvalCounters(live.counters)
            found = await evaluate_generation(loaded.spec, samples, model, counters=counters)
        except DatamillError as exc:
            log.warning("evaluation %s failed: %s", evaluation_id, exc)
            return RunOutcome(
                "failed",
                cost_usd=live.cost_usd(),
                error_data=job_failure(exc, input_name="the samples", model_name="the evaluation model"),
                settle=lambda session: record_result(session, evaluation_id, None, None),
            )
        finally:
            await gateway.aclose()
        result = found.to_dict()
        result["evaluation_model"] = model.name
        return RunOutcome(
            "succeeded",
            rows_out=found.samples_analysed,
            rows_rejected=len(found.samples) - found.samples_analysed,
            cost_usd=live.cost_usd(),
            settle=lambda session: _settle(session, evaluation_id, result, model.name),
        )

    def _model(self, gateway: Gateway, name: str | None) -> ModelHandle:
        chosen = name or self._settings.model
        return gateway.model(chosen) if chosen else gateway.role("judge")

    def _load(self, evaluation_id: str) -> _Loaded:
        """The run's spec and the blob keys of its files by path; `ValidationError` when gone."""
        with self._store.session() as session:
            evaluation = get_evaluation_any_tenant(session, evaluation_id)
            run = get_generation_run_any_tenant(session, evaluation.run_id) if evaluation else None
            version = get_version(session, run.spec_id, run.spec_version) if run else None
            if evaluation is None or run is None or version is None:
                raise ValidationError.of("run_id", "the run, its spec version or the evaluation was deleted")
            keys = {f.path: f.blob_key for f in files_of_run(session, run.id)}
            return _Loaded(parse_spec_yaml(version.content_yaml), keys, evaluation.evaluation_model)

    def _samples(self, blob_keys: dict[str, str]) -> list[EvalSample]:
        wanted = {p: k for p, k in blob_keys.items() if Path(p).name.startswith("sample_")}
        wanted = {p: k for p, k in wanted.items() if p.endswith(_SAMPLE_SUFFIXES)}
        contents = {}
        for path, key in wanted.items():
            try:
                with self._blobs.open_read(key) as handle:
                    contents[path] = handle.read()
            except OSError as exc:  # the message names the run's file, never the storage's own paths
                raise ValidationError.of("run_id", f"the run's file {path} cannot be read") from exc
        return samples_from_files(contents)


def _settle(session: Session, evaluation_id: str, result: dict[str, Any], model: str) -> None:
    """Give each sample classification its id, parent and time, then store the result."""
    evaluation = get_evaluation_any_tenant(session, evaluation_id)
    if evaluation is None:  # deleted with its run while it was being evaluated
        return
    now = iso(utcnow())
    result["sample_classifications"] = [
        {"id": new_id("samplecls"), "evaluation_id": evaluation_id, **item, "created_at": now}
        for item in result["sample_classifications"]
    ]
    record_result(session, evaluation_id, result, model)
