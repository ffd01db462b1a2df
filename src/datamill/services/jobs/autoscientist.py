"""The ``autoscientist`` job executor: run one AutoScientist loop and record what it finds.

One attempt: read the run and the dataset's finished output (its adaptation's output, or its own rows for a
raw dataset), split it into training and held-out examples, find the base model (converting a GGUF file once
into the training cache), then run `datamill.pipelines.autoscientist.loop.run_loop` with the judge model
(the server's model, ``DATAMILL_MODEL``, else the routing file's judge). Each finished iteration is written
to the run at once; the best adapter so far is packed (`datamill.training.artifact`) into the blob store
and the previous best is deleted. The job's ``rows_out`` is the examples trained on over every iteration
and its ``cost_usd`` the judge's spend, from which the worker charges credits.

An attempt after a worker died (its lease lapsed) or was stopped resumes the loop after the last iteration
the earlier attempts recorded: those iterations stay as they are, and so does the best adapter in the blob
store, which a later iteration replaces only by doing better; an iteration that was under way is trained
again. Each iteration is recorded together with the job's progress (``processed_rows``, the examples
trained on so far) and only while this worker still holds the job (`_Recorder`), so an attempt that recorded
an iteration never counts against the job's attempts, and an attempt that lost its lease records nothing
more. Failures are recorded on the run's ``error``:
a dataset with too few usable rows, a base model that cannot be found or loaded, a judge that cannot be
used or could judge no prompt.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from datamill.core.errors import DatamillError
from datamill.llm.gateway import Gateway, ModelHandle
from datamill.pipelines.autoscientist.examples import Split, split_examples
from datamill.pipelines.autoscientist.judging import PairwiseJudge
from datamill.pipelines.autoscientist.loop import LoopPlan, LoopResult, run_loop
from datamill.runners.execution import LiveRun, RunTicket
from datamill.services.adaptation.adapt import make_gateway
from datamill.services.autoscientist.catalog import find_model
from datamill.services.datasets.catalog import DatasetService
from datamill.services.datasets.output import CheckpointRunOutputs, DatasetOutputs
from datamill.services.jobs.failures import job_failure
from datamill.services.settings.runs import RunSettings
from datamill.store import BlobStore, Store, utcnow
from datamill.store import runs as repo
from datamill.store.autoscientist import artifact_blob_key, get_autoscientist_run_any_tenant
from datamill.store.autoscientist_models import AutoscientistRun
from datamill.store.runs import RunOutcome
from datamill.training.artifact import pack_adapter
from datamill.training.launcher import Launch, processes_per_node
from datamill.training.loading import model_folder, pick_device, use_threads
from datamill.training.rendering import prompt_rendering

log = logging.getLogger(__name__)


class NothingJudged(DatamillError):
    """No held-out prompt of an iteration could be judged."""


class LeaseLost(DatamillError):
    """Another worker took the run over (this worker's lease lapsed): this attempt records nothing more."""


class _Recorder:
    """Writes each finished iteration to the run, and the best adapter to the blob store.

    Each iteration is recorded together with the job's progress (``processed_rows``: the examples trained on
    so far), in one transaction and only while this attempt's worker still holds the job. So an attempt that
    dies after recording an iteration has made progress and does not count against the job's attempts, and
    an attempt whose lease another worker took over cannot record an iteration a second time.
    """

    def __init__(
        self, store: Store, blobs: BlobStore, run: AutoscientistRun, ticket: RunTicket, live: LiveRun
    ) -> None:
        self._store, self._blobs, self._live = store, blobs, live
        self._run_id, self._tenant_id, self._model = run.id, run.tenant_id, run.model
        self._job_id, self._worker_id = ticket.id, ticket.worker_id
        self.rows_per_iteration = 0
        self._rendering: dict[str, Any] = {}

    def resume(self) -> list[dict[str, Any]]:
        """The iterations earlier attempts recorded, which this attempt continues after."""
        found: list[dict[str, Any]] = []

        def read(session: Session, run: AutoscientistRun) -> None:
            run.error = None
            found.extend(_recorded(run, self._blobs))
            # an adapter written by an attempt that died before recording its iteration
            unrecorded = artifact_blob_key(self._tenant_id, self._run_id, len(found) + 1)
            if unrecorded != run.artifact_key:
                self._blobs.delete(unrecorded)

        self._update(read)
        return found

    def start(self, rows_per_iteration: int, done: int, rendering: dict[str, Any]) -> None:
        """Count progress from `done` recorded iterations of `rows_per_iteration` training examples each.

        `rendering` is how prompts are rendered (`datamill.training.rendering.rendering_record`); it goes
        into every adapter's ``datamill.json``.
        """
        self.rows_per_iteration = rows_per_iteration
        self._rendering = rendering
        self._live.counters.rows_done = rows_per_iteration * done

    def iteration_done(self, record: dict[str, Any], adapter: Path, best: bool) -> None:
        if record["judged"] == 0:
            number, error = record["iteration"], record["first_error"]
            raise NothingJudged(f"no held-out prompt could be judged in iteration {number}: {error}")
        rows = self.rows_per_iteration * record["iteration"]
        self._update(lambda session, _run: self._still_held(session, {}))
        key = None
        if best:
            key = artifact_blob_key(self._tenant_id, self._run_id, record["iteration"])
            metadata = {
                "base_model": self._model,
                "autoscientist_run": self._run_id,
                "iteration": record["iteration"],
                "hyperparams": record["hyperparams"],
                "win_rate": record["win_rate"],
                "win_rate_interval": [record["low"], record["high"]],
                "rendering": self._rendering,
            }
            writer = self._blobs.open_writer(key)
            try:
                writer.write(pack_adapter(adapter, metadata))
                writer.commit()
            except BaseException:
                writer.abort()
                raise
        self._live.counters.rows_done = rows  # the heartbeat writes the same progress from now on

        def apply(session: Session, run: AutoscientistRun) -> None:
            self._still_held(session, {"processed_rows": rows}, drop=key, kept=run.artifact_key)
            run.iterations = [*run.iterations, record]
            if key is not None:
                old = run.artifact_key
                run.artifact_key, run.best_iteration = key, record["iteration"]
                run.best_win_rate, run.best_hyperparams = record["win_rate"], record["hyperparams"]
                if old and old != key:
                    self._blobs.delete(old)

        self._update(apply)

    def _still_held(
        self, session: Session, progress: dict[str, Any], drop: str | None = None, kept: str | None = None
    ) -> None:
        """Record `progress` if this attempt still holds the job.

        Otherwise delete the blob `drop` (unless the run keeps it as `kept`) and raise `LeaseLost`.
        """
        if repo.record_progress(session, self._job_id, self._worker_id, progress):
            return
        if drop is not None and drop != kept:
            self._blobs.delete(drop)
        raise LeaseLost(f"AutoScientist run {self._run_id}: another worker took the run over")

    def _update(self, change: Callable[[Session, AutoscientistRun], None]) -> None:
        with self._store.session() as session:
            run = get_autoscientist_run_any_tenant(session, self._run_id)
            if run is not None:
                change(session, run)


def _recorded(run: AutoscientistRun, blobs: BlobStore) -> list[dict[str, Any]]:
    """The run's recorded iterations, numbered 1, 2, ... without a gap; none when its best adapter is lost.

    The best iteration's adapter must still be in the blob store for the loop to go on from it; if it is
    not, the recorded iterations are forgotten and the loop starts again.
    """
    records = [r for r in run.iterations if isinstance(r, dict)]
    numbered = [r.get("iteration") for r in records] == list(range(1, len(records) + 1))
    kept = run.artifact_key is not None and blobs.exists(run.artifact_key)
    if numbered and (not records or kept):
        return records
    if run.artifact_key:
        blobs.delete(run.artifact_key)
    run.iterations, run.artifact_key, run.best_iteration = [], None, None
    run.best_win_rate, run.best_hyperparams = None, None
    return []


class AutoscientistExecutor:
    """Executes AutoScientist jobs for a worker; see the module docstring."""

    def __init__(self, store: Store, blobs: BlobStore, settings: RunSettings, data_dir: Path) -> None:
        self._store, self._blobs, self._settings, self._data_dir = store, blobs, settings, data_dir
        self._outputs = DatasetOutputs(store, blobs, CheckpointRunOutputs(data_dir, settings.run_data_url))

    async def __call__(self, ticket: RunTicket, live: LiveRun) -> RunOutcome:
        run_id = ticket.source_dataset_id
        gateway = make_gateway(self._settings.llm_settings(self._data_dir))
        base_cost = ticket.cost_usd
        live.cost_usd = lambda: base_cost + gateway.usage.total.cost_usd
        work_dir = self._data_dir / "autoscientist" / run_id
        try:
            run = await asyncio.to_thread(self._load, run_id)
            recorder = _Recorder(self._store, self._blobs, run, ticket, live)
            done = await asyncio.to_thread(recorder.resume)
            plan = await asyncio.to_thread(self._plan, run, work_dir)
            live.total_rows = len(plan.split.train) * run.max_iterations
            rendering = await asyncio.to_thread(prompt_rendering, plan.folder, plan.chat)
            recorder.start(len(plan.split.train), len(done), rendering)
            judge = PairwiseJudge(self._judge(gateway))
            result = await run_loop(plan, judge, recorder, done)
        except (DatamillError, OSError) as exc:
            log.warning("autoscientist run %s failed: %s", run_id, exc)
            message = str(exc) if isinstance(exc, DatamillError) else f"{type(exc).__name__}: {exc}"
            error = job_failure(
                exc if isinstance(exc, DatamillError) else DatamillError(message),
                input_name="the dataset",
                model_name="the judge model",
            )
            return RunOutcome(
                "failed",
                cost_usd=live.cost_usd(),
                error_data=error,
                settle=lambda session: _finish(session, run_id, error["message"]),
            )
        finally:
            await gateway.aclose()
            shutil.rmtree(work_dir, ignore_errors=True)
        return RunOutcome(
            "succeeded",
            rows_out=result.trained_rows,
            cost_usd=live.cost_usd(),
            settle=lambda session: _finish(session, run_id, None, result),
        )

    def _load(self, run_id: str) -> AutoscientistRun:
        with self._store.session() as session:
            run = get_autoscientist_run_any_tenant(session, run_id)
            if run is None:
                raise DatamillError(f"AutoScientist run {run_id!r} was deleted")
            session.expunge(run)
            return run

    def _plan(self, run: AutoscientistRun, work_dir: Path) -> LoopPlan:
        view = DatasetService(self._store).get(run.tenant_id, run.dataset_id)
        rows = self._outputs.output_of(view)
        mapping = run.column_mapping or view.configured_column_mapping
        method = "dpo" if run.training_method == "alignment" else "sft"
        split: Split = split_examples(
            (row for table in rows.tables() for row in table.to_pylist()), mapping, method
        )
        training = self._settings.training
        model = find_model(training, run.model)
        use_threads(training.threads)
        folder = model_folder(model, training.cache_for(self._data_dir))
        device = pick_device(training.device)
        launch = Launch(
            procs_per_node=processes_per_node(training.procs_per_node, device),
            nnodes=training.nnodes,
            rdzv_endpoint=training.rdzv_endpoint,
            rdzv_id=training.rdzv_id,
        )
        return LoopPlan(
            folder=folder,
            split=split,
            method=method,
            chat=run.data_format == "chat",
            start=dict(run.hyperparams["start"]),
            fixed=frozenset(run.hyperparams.get("fixed", [])),
            max_iterations=run.max_iterations,
            target_win_rate=run.target_win_rate,
            work_dir=work_dir,
            device=device,
            max_new_tokens=training.max_new_tokens,
            launch=launch,
            threads=training.threads,
        )

    def _judge(self, gateway: Gateway) -> ModelHandle:
        chosen = self._settings.model
        return gateway.model(chosen) if chosen else gateway.role("judge")


def _finish(session: Any, run_id: str, error: str | None, result: LoopResult | None = None) -> None:
    run = get_autoscientist_run_any_tenant(session, run_id)
    if run is None:
        return
    run.completed_at = utcnow()
    run.error = error
    if result is not None:
        run.hyperparams = {**run.hyperparams, "ended": result.reason}
