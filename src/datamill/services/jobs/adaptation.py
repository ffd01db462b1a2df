"""Executing a claimed run: the `RunExecutor` the server's worker is built with.

One attempt: read the input dataset's files as one local file, rebuild the steps of the plan the launch
stored with the run (`RunPlan.of_record`: its request, model, options and estimate; nothing is counted,
sampled or estimated again), stream the batches through `prepare.execute` into the checkpoint at the run's
location (``<data_dir>/runs/<run_id>/``, or under ``DATAMILL_RUN_DATA_URL`` on object storage; a resumed
run skips the batches already there; the persistent response cache makes the calls it repeats free), then
for an adaptation grade it (`grade_run`, the grading of the command line too, with the package's own judge
prompts: a tenant's ``prompt_templates`` change its own steps, never the judges behind its grade) and for a
translate or localize run store its output as the derived dataset's file. Credits are settled from what the
run produced and spent: output rows (new rows for translate/localize) and model spend, as `PriceTable`
prices them.

Beside the checkpoint the run writes ``request.json`` and, once graded, ``evaluation.json`` (the report) and
``report.html`` (`write_report`), for readers of its output (dataset cards). A failure that stops the run
becomes a failed outcome whose ``error_data`` code (`datamill.core.error_codes`) says what kind it is, as
`job_failure` maps it.

The rows of the batches finished before a failure stay downloadable and are charged for.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow.compute as pc

from datamill.core.error_codes import ErrorCode, error_data
from datamill.core.errors import ConfigError, DataFormatError, ModelError, ValidationError
from datamill.dataio.folder import Location
from datamill.llm.gateway import Gateway
from datamill.llm.limits.shared import ConcurrencyBudget
from datamill.pipelines.adapt import AdaptResult
from datamill.pipelines.checkpoint import Checkpoint, CheckpointFiles
from datamill.pipelines.export import write_parquet
from datamill.runners.execution import LiveRun, RunTicket
from datamill.runners.inputs import dataset_input
from datamill.services.adaptation.adapt import batch_journal_path, make_gateway
from datamill.services.adaptation.evaluate import grade_run, plan_summary, write_report
from datamill.services.adaptation.plans import ADAPT, input_cache_dir
from datamill.services.adaptation.prepare import RunSource, build_run, execute
from datamill.services.adaptation.ray_actors import ray_runners
from datamill.services.adaptation.run_plan import RunPlan, run_fingerprint, run_identity
from datamill.services.adaptation.step_services import close_services
from datamill.services.jobs.failures import job_failure
from datamill.services.settings.runs import RunSettings
from datamill.steps.templates import package_templates
from datamill.store import BlobStore, Store
from datamill.store.runs import NewFile, RunOutcome
from datamill.text.fetch_policy import FetchPolicy

log = logging.getLogger(__name__)


class RunExecutor:
    """Executes adapt, translate and localize runs for a `Worker`; see the module docstring."""

    def __init__(
        self,
        store: Store,
        blobs: BlobStore,
        settings: RunSettings,
        data_dir: Path,
        *,
        budget: ConcurrencyBudget | None = None,
    ) -> None:
        self._store, self._blobs, self._settings, self._data_dir = store, blobs, settings, data_dir
        self._budget = budget

    async def __call__(self, ticket: RunTicket, live: LiveRun) -> RunOutcome:
        root = self._settings.run_location(self._data_dir, ticket.id)
        gateway = make_gateway(
            self._settings.llm_settings(self._data_dir),
            cache_commit_every=self._settings.cache_commit_every,
            budget=self._budget,
        )
        base_cost = ticket.cost_usd
        live.cost_usd = lambda: base_cost + gateway.usage.total.cost_usd
        try:
            cache = input_cache_dir(self._data_dir)
            with dataset_input(self._store, self._blobs, ticket.source_dataset_id, cache) as found:
                source = RunSource(found.path, found.format, local_image_files=False)
                return await self._execute(ticket, live, source, gateway, root)
        except (DataFormatError, ValidationError, ConfigError, ModelError) as exc:
            log.warning("run %s failed: %s", ticket.id, exc)
            return self._failed(ticket, root, live, job_failure(exc))
        finally:
            await gateway.aclose()

    async def _execute(
        self, ticket: RunTicket, live: LiveRun, source: RunSource, gateway: Gateway, root: Location
    ) -> RunOutcome:
        plan = RunPlan.of_record(ticket.kind, ticket.request, ticket.model, ticket.options, ticket.estimate)
        policy = FetchPolicy.with_allowed(self._settings.fetch_allow)
        prepared = await build_run(
            plan,
            source,
            gateway,
            self._data_dir,
            fetch_policy=policy,
            search_key=self._settings.grounding_search_key,
        )
        live.total_rows = prepared.steps.rows_selected
        fingerprint = run_fingerprint(run_identity(ticket.id), plan, prepared.documents)
        checkpoint = Checkpoint(root, fingerprint)
        # Routes set to `batch: true` keep their batches here: a restarted run polls them, never resubmits.
        gateway.use_batches(journal=batch_journal_path(root, Path(self._data_dir)))
        checkpoint.folder.write_json("request.json", ticket.request)
        runners = None
        if self._settings.executor == "ray":
            runners = ray_runners(
                self._settings,
                self._data_dir,
                self._store,
                self._blobs,
                _run_fields(ticket),
                source,
                partial(Checkpoint, root, fingerprint),
            )
            spent = live.cost_usd
            live.cost_usd = lambda: spent() + runners.cost_usd
        try:
            result = await execute(
                prepared,
                source,
                checkpoint,
                counters=live.counters,
                # Two batches per actor keep every actor busy while the next batch is prepared.
                batches_in_flight=max(4, 2 * self._settings.ray_actors) if runners else 4,
                batch_runner=runners,
            )
        finally:
            await close_services(prepared.services)
            if runners is not None:
                await runners.aclose()
                log.info("run %s: %d batches executed on Ray actors", ticket.id, runners.batches)
        for step in prepared.steps.batch_steps:
            step.forget()  # every batch is done: a dedup's index must not sit beside the evaluation's
        if result.failure is not None:
            return self._failed(ticket, root, live, error_data(ErrorCode.NOTHING_DELIVERED, result.failure))
        if ticket.kind != ADAPT:
            return self._derived(ticket, root, result, live.cost_usd())
        if plan.options.evaluate:
            live.evaluation_status = "running"
        with package_templates():  # the tenant's templates change its steps, never the judges of its grade
            grade = await grade_run(prepared, source, checkpoint, result.rejections_by_step)
        rows = {"in": result.rows_in, "out": result.rows_out, "rejected": result.rows_rejected}
        write_report(
            checkpoint.folder,
            ("evaluation.json", "report.html"),
            grade,
            title=f"datamill: run {ticket.id}",
            plan_summary=plan_summary(prepared, source, rows, grade),
        )
        credits = self._settings.price_table.credits(
            result.rows_out, live.cost_usd(), multimodal=plan.multimodal
        )
        return RunOutcome(
            "succeeded",
            rows_out=result.rows_out,
            rows_rejected=result.rows_rejected,
            credits_used=credits,
            cost_usd=live.cost_usd(),
            evaluation_status=grade.status,
            evaluation=grade.report,
        )

    def _derived(self, ticket: RunTicket, root: Location, result: AdaptResult, cost: float) -> RunOutcome:
        """Store a translate/localize run's output as its dataset's own file, and charge for the new rows."""
        local = self._data_dir / "tmp" / f"{ticket.id}.data.parquet"
        local.parent.mkdir(parents=True, exist_ok=True)
        columns, rows = write_parquet(CheckpointFiles(root), local)
        key = f"derived/{ticket.tenant_id}/{ticket.dataset_id}/data.parquet"
        writer = self._blobs.open_writer(key)
        try:
            with local.open("rb") as handle:
                while chunk := handle.read(1 << 20):
                    writer.write(chunk)
            info = writer.commit()
        except BaseException:
            writer.abort()
            raise
        local.unlink(missing_ok=True)
        new_rows = _new_rows(root)
        return RunOutcome(
            "succeeded",
            rows_out=result.rows_out,
            rows_rejected=result.rows_rejected,
            credits_used=self._settings.price_table.credits(new_rows, cost),
            cost_usd=cost,
            evaluation_status="skipped",
            evaluation={
                "status": "skipped",
                "quality": None,
                "raw_results": {"reason": f"{ticket.kind} runs are not graded"},
            },
            files=[NewFile("data.parquet", "parquet", key, info.size, info.sha256)],
            columns=columns,
            row_count=rows,
        )

    def _failed(self, ticket: RunTicket, root: Location, live: LiveRun, error: dict[str, Any]) -> RunOutcome:
        """A failed outcome that charges for the rows finished before the failure."""
        rows = CheckpointFiles(root).output_rows()
        billed = rows if ticket.kind == ADAPT else _new_rows(root)
        cost = live.cost_usd()
        return RunOutcome(
            "failed",
            rows_out=rows,
            rows_rejected=live.counters.rows_rejected,
            credits_used=self._settings.price_table.credits(billed, cost) if rows or cost else 0.0,
            cost_usd=cost,
            error_data=error,
            evaluation_status="skipped",
            row_count=rows if ticket.kind != ADAPT else None,
        )


def _run_fields(ticket: RunTicket) -> dict[str, Any]:
    return {
        "kind": ticket.kind,
        "model": ticket.model,
        "options": ticket.options,
        "request": ticket.request,
        "estimate": ticket.estimate,
        "source_dataset_id": ticket.source_dataset_id,
    }


def _new_rows(root: Location) -> int:
    """Rows a derived run made: with ``expansion`` (translate, localize) or ``extended_prompt`` (extend)."""
    total = 0
    for table in CheckpointFiles(root).iter_output():
        for column in ("expansion", "extended_prompt"):
            if column in table.column_names:
                total += int(pc.count(table.column(column)).as_py())
    return total
