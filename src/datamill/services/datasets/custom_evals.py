"""Custom evaluations: an LLM judge scores a sample of a dataset's rows against the user's rubric.

`CustomEvalService.create` records a ``pending`` evaluation; `BackgroundCustomEvals` runs it as an asyncio
task on the server's loop: ``running``, then ``succeeded`` with the scores or ``failed`` with an
``error_message``. What is judged (`api.custom_judge`): when the dataset's run has output, a sample of its
rows before (original columns) and after (enhanced columns), with ``improvement_percent`` the change; else a
sample of the dataset's own rows, before only (``score_after`` null). The sample is drawn with a fixed seed,
so rubrics compared on one dataset see the same rows, and judge calls go through the gateway and its
response cache, so an evaluation a restart interrupted runs again (it is picked up on the next start) and
pays only for the calls it had not made.

An evaluation is a paid job (`datamill.services.generation.credits`): creating it reserves
``minimum_credits`` in the same transaction that records it (402 ``insufficient_credits``, and nothing
recorded, when the balance does not cover that); when it ends, succeeded or failed, it is charged
``PriceTable.credits(0, judge spend)`` and the rest of the reservation is given back, once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from datamill.core.credits import PriceTable
from datamill.core.errors import DatamillError, Issue, ValidationError
from datamill.llm.gateway import Gateway
from datamill.services.datasets.catalog import DatasetService
from datamill.services.datasets.custom_judge import RubricJudge, Verdict, example_sides, summarize
from datamill.services.datasets.output import DatasetOutputs, DatasetRows
from datamill.services.errors import ConflictError, NotFoundError, NotReadyError
from datamill.services.generation.credits import reserve
from datamill.store import Store, utcnow
from datamill.store import custom_evals as repo
from datamill.store.ids import new_id
from datamill.store.models import CustomEval

log = logging.getLogger(__name__)

DEFAULT_SAMPLE_SIZE = 50
MAX_SAMPLE_SIZE = 500
MAX_RUBRIC_CHARS = 20_000
SAMPLE_SEED = 0


@dataclass(frozen=True)
class CustomEvalView:
    """A custom evaluation as the wire APIs show it; `results` holds the per-row verdicts."""

    id: str
    dataset_id: str
    status: str
    judge_prompt: str
    name: str | None
    score_before: float | None
    score_after: float | None
    improvement_percent: float | None
    scored_rows: int | None
    error_message: str | None
    created_at: dt.datetime
    completed_at: dt.datetime | None
    run_id: str | None
    model: str | None
    sample_size: int
    results: dict[str, Any] | None

    @classmethod
    def of(cls, row: CustomEval) -> CustomEvalView:
        # The table's columns carry the same names as the fields.
        return cls(**{name: getattr(row, name) for name in cls.__dataclass_fields__})


def _check(judge_prompt: str, name: str | None, sample_size: int | None) -> int:
    issues = []
    if not judge_prompt.strip():
        issues.append(Issue("judge_prompt", "required: the rubric the judge scores rows against"))
    elif len(judge_prompt) > MAX_RUBRIC_CHARS:
        issues.append(Issue("judge_prompt", f"must be at most {MAX_RUBRIC_CHARS} characters"))
    if name is not None and len(name) > 512:
        issues.append(Issue("name", "must be at most 512 characters"))
    size = DEFAULT_SAMPLE_SIZE if sample_size is None else sample_size
    if not 1 <= size <= MAX_SAMPLE_SIZE:
        issues.append(Issue("sample_size", f"must be from 1 to {MAX_SAMPLE_SIZE}"))
    if issues:
        raise ValidationError(issues)
    return size


class CustomEvalService:
    """Records and runs custom evaluations.

    Args:
        store: The metadata database.
        outputs: Reads the datasets' rows and their runs' output.
        gateway_factory: Makes the gateway one evaluation's judge calls go through (closed after it).
        model: The judge model; None means the routing file's default model.
        prices: What an evaluation reserves and is charged (the defaults when None).
    """

    def __init__(
        self,
        store: Store,
        outputs: DatasetOutputs,
        gateway_factory: Callable[[], Gateway],
        model: str | None,
        prices: PriceTable | None = None,
    ) -> None:
        self._store, self._outputs = store, outputs
        self._datasets = DatasetService(store)
        self._gateway_factory, self._model = gateway_factory, model
        self._prices = prices or PriceTable()

    def create(
        self,
        tenant_id: str,
        dataset_id: str,
        judge_prompt: str,
        name: str | None,
        sample_size: int | None = None,
    ) -> CustomEvalView:
        """Record a pending evaluation of the dataset (`BackgroundCustomEvals.submit` runs it).

        Raises:
            NotFoundError: No such dataset for this tenant.
            ValidationError: An empty or too long rubric or name, or a sample size out of range.
            NotReadyError: The dataset has not been read yet, or failed.
            ConflictError: A run is processing the dataset.
            InsufficientCreditsError: The tenant's balance does not cover the reservation (nothing recorded).
        """
        size = _check(judge_prompt, name, sample_size)
        view = self._datasets.get(tenant_id, dataset_id)
        if view.status == "running":
            raise ConflictError(
                f"dataset {dataset_id!r} is being processed; evaluate it when its run has ended"
            )
        if view.row_count is None or view.status in ("pending", "failed"):
            raise NotReadyError(f"dataset {dataset_id!r} has no rows to judge (status {view.status})")
        row = CustomEval(
            id=new_id("ce"),
            tenant_id=tenant_id,
            dataset_id=dataset_id,
            name=name,
            judge_prompt=judge_prompt,
            sample_size=size,
            status="pending",
            created_at=utcnow(),
        )
        with self._store.session() as session:
            row.credits_reserved = reserve(
                session, tenant_id, self._prices.minimum_credits, "a custom evaluation"
            )
            return CustomEvalView.of(repo.add_custom_eval(session, row))

    def list_for_dataset(self, tenant_id: str, dataset_id: str) -> list[CustomEvalView]:
        """The dataset's evaluations, newest first; raises NotFoundError for another tenant's dataset."""
        self._datasets.get(tenant_id, dataset_id)
        with self._store.session() as session:
            return [CustomEvalView.of(row) for row in repo.list_custom_evals(session, tenant_id, dataset_id)]

    def get(self, tenant_id: str, dataset_id: str, eval_id: str) -> CustomEvalView:
        """One evaluation; raises NotFoundError unless it is of this tenant's dataset."""
        self._datasets.get(tenant_id, dataset_id)
        with self._store.session() as session:
            row = repo.get_custom_eval(session, tenant_id, dataset_id, eval_id)
            if row is None:
                raise NotFoundError("custom evaluation", eval_id)
            return CustomEvalView.of(row)

    def unfinished(self) -> list[str]:
        """Ids of the evaluations left pending or running."""
        with self._store.session() as session:
            return repo.unfinished_ids(session)

    async def run(self, eval_id: str) -> None:
        """Judge the evaluation's sample and record the outcome; any failure is recorded, not raised."""
        row = await asyncio.to_thread(self._claim, eval_id)
        if row is None:
            return
        gateway: Gateway | None = None
        try:
            rows = await asyncio.to_thread(self._rows_of, row)
            gateway = self._gateway_factory()
            values = await self._judge(row, rows, gateway)
        except (DatamillError, OSError) as exc:
            values = {"status": "failed", "error_message": f"{type(exc).__name__}: {exc}"}
        except Exception:
            log.exception("custom evaluation %s failed", eval_id)
            values = {"status": "failed", "error_message": "internal error; the server log has the details"}
        finally:
            if gateway is not None:
                await gateway.aclose()
        spend = gateway.usage.total.cost_usd if gateway is not None else 0.0
        await asyncio.to_thread(self._finish, eval_id, values | {"completed_at": utcnow()}, spend)

    def _claim(self, eval_id: str) -> CustomEval | None:
        with self._store.session() as session:
            row = repo.get_custom_eval_any_tenant(session, eval_id)
            if row is None or row.status not in repo.UNFINISHED:
                return None
            row.status, row.started_at = "running", utcnow()
            return row

    def _rows_of(self, row: CustomEval) -> DatasetRows:
        """The run's output when there is one, else the dataset's own rows (NotFoundError if deleted)."""
        view = self._datasets.get(row.tenant_id, row.dataset_id)
        rows = self._outputs.run_rows(view) or self._outputs.own_rows(view)
        self._save(row.id, {"run_id": rows.run.run_id if rows.run else None})
        return rows

    async def _judge(self, row: CustomEval, rows: DatasetRows, gateway: Gateway) -> dict[str, Any]:
        sample = await asyncio.to_thread(_sample, rows, row.sample_size)
        mapping = rows.dataset.configured_column_mapping
        model = gateway.model(self._model or gateway.default_model)
        judge = RubricJudge(model, row.judge_prompt)
        verdicts = await asyncio.gather(*(_judge_row(judge, r, mapping) for _, r in sample))
        scores = summarize(verdicts)
        results = {
            "judged": "run_output" if rows.run else "dataset_rows",
            "model": model.name,
            "rows": [
                {"row": index, "before": b.to_dict(), "after": a.to_dict() if a else None}
                for (index, _), (b, a) in zip(sample, verdicts, strict=True)
            ],
        }
        outcome: dict[str, Any] = {"model": model.name, "results": results, "scored_rows": scores.scored_rows}
        if scores.scored_rows == 0:
            return outcome | {"status": "failed", "error_message": scores.first_error or "there were no rows"}
        return outcome | {
            "status": "succeeded",
            "score_before": scores.score_before,
            "score_after": scores.score_after,
            "improvement_percent": scores.improvement_percent,
        }

    def _finish(self, eval_id: str, values: dict[str, Any], spend_usd: float) -> None:
        """Record the outcome and settle the credits: charged the judge's spend, the rest given back."""
        with self._store.session() as session:
            repo.finish_custom_eval(session, eval_id, values, self._prices.credits(0, spend_usd))

    def _save(self, eval_id: str, values: dict[str, Any]) -> None:
        with self._store.session() as session:
            row = repo.get_custom_eval_any_tenant(session, eval_id)
            if row is not None:
                for key, value in values.items():
                    setattr(row, key, value)


async def _judge_row(
    judge: RubricJudge, row: dict[str, Any], mapping: dict[str, Any] | None
) -> tuple[Verdict, Verdict | None]:
    before, after = example_sides(row, mapping)
    if after is None:
        return await judge.judge(before), None
    first, second = await asyncio.gather(judge.judge(before), judge.judge(after))
    return first, second


def _sample(rows: DatasetRows, size: int) -> list[tuple[int, dict[str, Any]]]:
    """``size`` rows drawn with `SAMPLE_SEED`, as (row index, row), in row order."""
    chosen = set(random.Random(SAMPLE_SEED).sample(range(rows.row_count), min(size, rows.row_count)))
    return [(i, r) for i, r in _indexed(rows) if i in chosen]


def _indexed(rows: DatasetRows) -> Iterator[tuple[int, dict[str, Any]]]:
    offset = 0
    for table in rows.tables():
        for i, row in enumerate(table.to_pylist()):
            yield offset + i, row
        offset += table.num_rows


class BackgroundCustomEvals:
    """Runs evaluations as tasks on the server's event loop; `submit` may be called from any thread."""

    def __init__(self, service: CustomEvalService) -> None:
        self._service = service
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Bind to the running loop and run the evaluations a previous process left unfinished."""
        self._loop = asyncio.get_running_loop()
        for eval_id in await asyncio.to_thread(self._service.unfinished):
            self._spawn(eval_id)

    def submit(self, eval_id: str) -> None:
        """Run one evaluation; before `start` or after `close` it waits for the next start."""
        loop = self._loop
        if loop is None or loop.is_closed():
            log.warning("custom evaluations are not running; %s will run on the next start", eval_id)
            return
        loop.call_soon_threadsafe(self._spawn, eval_id)

    def _spawn(self, eval_id: str) -> None:
        task = asyncio.get_running_loop().create_task(self._service.run(eval_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Stop the running evaluations (they run again on the next start)."""
        self._loop = None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
