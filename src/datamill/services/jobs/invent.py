"""`InventExecutor`: the worker's side of invent jobs (`datamill.services.datasets.invent`).

The job's stored spec is generated with the generation engine (`datamill.pipelines.generate`: one slot per
asked row, each drawing its domain and subdomain, a format example standing in for seed rows so samples are
JSON objects with the training type's keys; no outline, so a sample is one drafting call, then the engine's
own checks: empty, cut-off, refused and injected replies are regenerated within its candidate budget). The
delivered samples become rows (`invent_spec.rows_of`), translated or localized when the request asks
(`invent_expand`), written as the dataset's own file and as the job's output (what ``download`` reads); the
dataset then ``succeeded`` with its row count. A job that delivers no usable row, or whose model cannot be
used, fails its dataset with the reason. It is charged ``PriceTable.credits(rows delivered, model spend)``.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa

from datamill.core.error_codes import ErrorCode, error_data
from datamill.core.errors import ConfigError, DataFormatError, ModelError, ValidationError
from datamill.core.generation_request import GenerationRequest
from datamill.core.spec import parse_spec_yaml
from datamill.dataio import open_writer
from datamill.pipelines.checkpoint import Checkpoint
from datamill.pipelines.generate import GenerationBudgetSpent, GenerationModels, GenerationRun
from datamill.runners.execution import LiveRun, RunTicket
from datamill.services.adaptation.adapt import make_gateway
from datamill.services.datasets.invent_spec import format_seeds, rows_of
from datamill.services.jobs.failures import job_failure
from datamill.services.jobs.generation_run import MirroredCounters
from datamill.services.jobs.invent_expand import expand_rows
from datamill.services.settings.runs import RunSettings
from datamill.store import BlobStore, Store
from datamill.store.runs import NewFile, RunOutcome

log = logging.getLogger(__name__)
_CHUNK = 1 << 20


class InventExecutor:
    """Executes invent jobs for a worker; see the module docstring."""

    def __init__(self, store: Store, blobs: BlobStore, settings: RunSettings, data_dir: Path) -> None:
        self._store, self._blobs, self._settings, self._data_dir = store, blobs, settings, data_dir

    async def __call__(self, ticket: RunTicket, live: LiveRun) -> RunOutcome:
        stored = ticket.request
        rows_asked, training = int(stored["rows"]), str(stored["training_type"])
        live.total_rows = rows_asked
        gateway = make_gateway(self._settings.llm_settings(self._data_dir))
        base_cost = ticket.cost_usd
        live.cost_usd = lambda: base_cost + gateway.usage.total.cost_usd
        try:
            request = GenerationRequest(
                number_of_samples=rows_asked,
                generation_model=ticket.model or None,
                skip_outline=True,
                seed=0,
            )
            run = GenerationRun(
                parse_spec_yaml(stored["spec_yaml"]),
                request,
                GenerationModels.resolve(gateway, request),
                format_seeds(training),
                gateway=gateway,
                counters=MirroredCounters(live.counters),
            )
            result = await run.run()
            rows, dropped = rows_of(result.samples, training, stored.get("codes") or {})
            if rows and stored.get("language_expansion"):
                model = GenerationModels.resolve(gateway, request).generation
                rows, rejected = await expand_rows(rows, stored["language_expansion"], model)
                dropped += rejected
        except GenerationBudgetSpent as exc:
            log.warning("invent job %s: %s", ticket.id, exc)
            return self._failed(live, error_data(ErrorCode.REQUEST_UNFIT, str(exc)))
        except (DataFormatError, ValidationError, ConfigError, ModelError) as exc:
            log.warning("invent job %s failed: %s", ticket.id, exc)
            return self._failed(live, job_failure(exc))
        finally:
            await gateway.aclose()
        if not rows:
            message = f"none of the {len(result.samples)} generated samples had every field of {training}"
            return self._failed(live, error_data(ErrorCode.REQUEST_UNFIT, message))
        Checkpoint(self._settings.run_location(self._data_dir, ticket.id), "invent").save(0, rows, [])
        key = f"invented/{ticket.tenant_id}/{ticket.dataset_id}/data.parquet"
        size, digest = self._write(rows, key)
        cost = live.cost_usd()
        return RunOutcome(
            "succeeded",
            rows_out=len(rows),
            rows_rejected=result.summary.candidates - len(result.samples) + dropped,
            credits_used=self._settings.price_table.credits(len(rows), cost),
            cost_usd=cost,
            evaluation_status="skipped",
            evaluation={
                "status": "skipped",
                "quality": None,
                "raw_results": {"reason": "invent jobs are not graded", "dropped_samples": dropped},
            },
            files=[NewFile("data.parquet", "parquet", key, size, digest)],
            columns=list(rows[0]),
            row_count=len(rows),
        )

    def _failed(self, live: LiveRun, failure: dict[str, Any]) -> RunOutcome:
        cost = live.cost_usd()
        return RunOutcome(
            "failed",
            cost_usd=cost,
            credits_used=self._settings.price_table.credits(0, cost) if cost else 0.0,
            error_data=failure,
            evaluation_status="skipped",
            row_count=0,
        )

    def _write(self, rows: list[dict[str, Any]], key: str) -> tuple[int, str]:
        with tempfile.TemporaryDirectory(prefix="datamill-invent-") as tmp:
            path = Path(tmp) / "data.parquet"
            with open_writer(path, format="parquet") as writer:
                writer.write_batch(pa.Table.from_pylist(rows))
            blob = self._blobs.open_writer(key)
            try:
                with path.open("rb") as handle:
                    while chunk := handle.read(_CHUNK):
                        blob.write(chunk)
                info = blob.commit()
            except BaseException:
                blob.abort()
                raise
        return info.size, info.sha256
