"""Judge evaluations: one grading by a judge, synchronous, of one interaction, a run's samples or a dataset.

``POST /api/dataframer/judges/{judge_id}/evaluations/`` takes, as the SDK sends them, ``messages`` (a chat
transcript) or ``input``, and ``output`` (the answer to grade), with ``name``, ``generation_model`` and
``metadata`` shown to the judge as context and ``model_override`` to grade with another model for this call.
datamill adds two targets: ``run_id`` grades the samples of one of the tenant's SUCCEEDED generation runs,
``dataset_id`` the samples of one of its seed datasets (``sample_size`` of them, in order: 1–200,
default 50). Exactly one target is allowed.

An evaluation is paid like a custom evaluation (`JudgeEvaluationService.evaluate`). The call blocks until
every sample is graded (`DimensionJudge`, concurrently) and answers the stored evaluation: ``status``
``succeeded`` with ``verdict`` (for several samples, each dimension's mean, with ``samples`` holding each
sample's verdict or the reason it has none, and ``summary`` the counts), or ``failed`` with ``error`` when
no sample could be graded. A failed evaluation is kept, so it is listed and shows among the tenant's
failures.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from sqlalchemy import update

from datamill.core.credits import PriceTable
from datamill.core.errors import DataFormatError, Issue, ModelError, ValidationError
from datamill.llm.gateway import Gateway
from datamill.services.errors import NotFoundError
from datamill.services.generation.common import CodedError
from datamill.services.generation.credits import reserve
from datamill.services.generation.run_view import run_status, tenant_run
from datamill.services.generation.seed_files import materialised_seeds
from datamill.services.judges.grader import DimensionJudge, Graded, render, summarize
from datamill.services.judges.judges import Page, dimensions_of, page, tenant_judge
from datamill.store import BlobStore, Store
from datamill.store.generation_runs import files_of_run
from datamill.store.ids import new_id
from datamill.store.judges import get_judge_evaluation, list_judge_evaluations
from datamill.store.models import Tenant, utcnow
from datamill.store.red_team_models import JudgeEvaluation
from datamill.store.specs import get_seed_dataset

DEFAULT_SAMPLES = 50
MAX_SAMPLES = 200
#: Largest interaction accepted, in characters of its JSON (422 above, as the contract says).
MAX_INPUT_CHARS = 2_000_000
MAX_RENDERED = 2_000_000
MAX_MESSAGES = 500


class InputTooLargeError(CodedError):
    """An interaction too large to grade (422, code ``input_too_large``)."""

    status = 422


@dataclass(frozen=True)
class Sample:
    """One thing to grade: its name and the ``(label, value)`` pairs the judge sees."""

    name: str
    fields: list[tuple[str, Any]]


@dataclass(frozen=True)
class Prepared:
    """A validated request with its samples read: everything grading needs, and what to record."""

    tenant_id: str
    judge_id: str
    judge_version: int
    rubric: str
    dimensions: list[Any]
    model: str | None
    target: dict[str, Any]
    samples: list[Sample]


@dataclass(frozen=True, kw_only=True)
class JudgeEvaluationRequest:
    """What to grade: one interaction (its ``(label, value)`` fields), a run's or a dataset's samples.

    `model_override` grades with another model than the judge's for this evaluation; `sample_size` is how
    many samples of the run or dataset are graded, in order.
    """

    interaction: tuple[tuple[str, Any], ...] = ()
    model_override: str | None = None
    run_id: str | None = None
    dataset_id: str | None = None
    sample_size: int = DEFAULT_SAMPLES


@dataclass(frozen=True, kw_only=True)
class SampleTally:
    """The counts and scores of the samples of a run or dataset evaluation."""

    samples: int
    graded: int
    failed: int
    mean_score: float | None
    min_score: float | None
    max_score: float | None


@dataclass(frozen=True, kw_only=True)
class JudgeEvaluationView:
    """A stored evaluation (see the module docstring); `tally` is None for a single interaction."""

    id: str
    judge_id: str
    judge_version: int
    model: str
    status: str
    error: str | None
    source: str
    latency_ms: int
    created_at: dt.datetime
    verdict: Mapping[str, Any] | None
    target: Mapping[str, Any]
    samples: tuple[Mapping[str, Any], ...] | None
    tally: SampleTally | None
    cost_usd: float
    rendered_text: str


def evaluation_view(row: JudgeEvaluation) -> JudgeEvaluationView:
    samples = row.samples
    return JudgeEvaluationView(
        id=row.id,
        judge_id=row.judge_id,
        judge_version=row.judge_version,
        model=row.model,
        status=row.status,
        error=row.error,
        source=row.source,
        latency_ms=row.latency_ms,
        created_at=row.created_at,
        verdict=row.verdict,
        target=row.target,
        samples=tuple(samples) if samples is not None else None,
        tally=_tally(samples) if samples is not None else None,
        cost_usd=round(float(row.cost_usd), 8),
        rendered_text=row.rendered_text,
    )


def _tally(samples: Sequence[Mapping[str, Any]]) -> SampleTally:
    graded = [s["verdict"]["overall_score"] for s in samples if s.get("verdict")]
    return SampleTally(
        samples=len(samples),
        graded=len(graded),
        failed=len(samples) - len(graded),
        mean_score=round(sum(graded) / len(graded), 4) if graded else None,
        min_score=min(graded) if graded else None,
        max_score=max(graded) if graded else None,
    )


class JudgeEvaluationService:
    """Grades with a tenant's judges and keeps the evaluations; see the module docstring.

    Args:
        store, blobs: the metadata database and the files of runs and datasets.
        gateway_factory: the gateway one evaluation's model calls go through (closed after it).
        default_model: the model of a judge that names none.
        prices: what an evaluation reserves and is charged (the defaults when None).
    """

    def __init__(
        self,
        store: Store,
        blobs: BlobStore,
        gateway_factory: Callable[[], Gateway],
        default_model: str | None,
        prices: PriceTable | None = None,
    ) -> None:
        self._store, self._blobs = store, blobs
        self._gateway_factory, self._default = gateway_factory, default_model
        self._prices = prices or PriceTable()

    async def evaluate(
        self, tenant_id: str, judge_id: str, request: JudgeEvaluationRequest
    ) -> JudgeEvaluationView:
        """Read the samples, reserve the minimum charge, grade, then record the evaluation and settle.

        The reservation is taken before any model call (402 ``insufficient_credits`` when the balance does
        not cover it) and settled in the transaction that records the evaluation: it is charged
        ``PriceTable.credits(0, judge spend)`` and the rest comes back; a grading that raised gives it all
        back.
        """
        prepared = await asyncio.to_thread(self.prepare, tenant_id, judge_id, request)
        reserved = await asyncio.to_thread(self._reserve, tenant_id)
        try:
            row = await self.grade(prepared)
        except BaseException:
            await asyncio.to_thread(self._give_back, tenant_id, reserved)
            raise
        return await asyncio.to_thread(self.record, row, reserved)

    def _reserve(self, tenant_id: str) -> float:
        with self._store.session() as session:
            return reserve(session, tenant_id, self._prices.minimum_credits, "a judge evaluation")

    def _give_back(self, tenant_id: str, amount: float) -> None:
        with self._store.session() as session:
            _credit(session, tenant_id, amount)

    def prepare(self, tenant_id: str, judge_id: str, request: JudgeEvaluationRequest) -> Prepared:
        """Read the request's samples (blocking: call it off the event loop)."""
        fields = list(request.interaction)
        with self._store.session() as session:
            judge = tenant_judge(session, tenant_id, judge_id)
            override = request.model_override
            prepared = Prepared(
                tenant_id,
                judge.id,
                judge.version,
                judge.rubric,
                list(judge.dimensions),
                override or judge.model or self._default,
                {"kind": "input"},
                [Sample("input", fields)] if fields else [],
            )
        if request.run_id is not None:
            return self._run_samples(prepared, request.run_id, request.sample_size)
        if request.dataset_id is not None:
            return self._dataset_samples(prepared, request.dataset_id, request.sample_size)
        return prepared

    def _run_samples(self, prepared: Prepared, run_id: str, size: int) -> Prepared:
        with self._store.session() as session:
            run = tenant_run(session, prepared.tenant_id, run_id)
            status = run_status(session, run)
            if status != "SUCCEEDED":
                raise CodedError(
                    f"run {run_id!r} is {status}; its samples can be graded once it SUCCEEDED",
                    "run_not_succeeded",
                    field="run_id",
                )
            files = [
                (f.path, f.blob_key)
                for f in files_of_run(session, run.id)
                if f.path.startswith("sample_") and not f.path.endswith(".metadata.json")
            ][:size]
        samples = []
        for path, key in files:
            with self._blobs.open_read(key) as handle:
                text = handle.read().decode("utf-8", errors="replace")
            samples.append(Sample(PurePosixPath(path).stem, [("Output", text)]))
        return _with(prepared, {"kind": "run", "id": run_id}, samples)

    def _dataset_samples(self, prepared: Prepared, dataset_id: str, size: int) -> Prepared:
        with self._store.session() as session:
            if get_seed_dataset(session, prepared.tenant_id, dataset_id) is None:
                raise NotFoundError("seed dataset", dataset_id)
        try:
            with materialised_seeds(self._store, self._blobs, dataset_id) as seeds:
                picked = seeds.seeds[:size]
        except DataFormatError as exc:
            raise ValidationError(
                [Issue("dataset_id", f"its samples cannot be read: {exc.reason}")]
            ) from None
        samples = [
            Sample(seed.name, [("Sample", seed.fields if seed.fields is not None else seed.text)])
            for seed in picked
        ]
        return _with(prepared, {"kind": "dataset", "id": dataset_id}, samples)

    async def grade(self, prepared: Prepared) -> JudgeEvaluation:
        """Grade every sample; the evaluation row to record (not yet stored)."""
        started = time.perf_counter()
        gateway = self._gateway_factory()
        model_name = prepared.model
        error: str | None = None
        graded: list[Graded] = []
        try:
            model = gateway.model(model_name) if model_name else gateway.role("judge")
            model_name = model.name
            judge = DimensionJudge(model, prepared.rubric, dimensions_of(prepared.dimensions))
            graded = list(await asyncio.gather(*(judge.grade(s.fields) for s in prepared.samples)))
        except ModelError as exc:  # one that fails every sample: no route, no key, no access
            error = f"{type(exc).__name__}: {exc}"
        finally:
            await gateway.aclose()
        single = prepared.target["kind"] == "input"
        verdict = (graded[0].verdict if graded else None) if single else summarize(graded)
        if verdict is None and error is None:
            error = next((g.error for g in graded if g.error), "no sample could be graded")
        samples = None
        if not single:
            samples = [
                {"sample": s.name, "verdict": g.verdict, "error": g.error}
                for s, g in zip(prepared.samples, graded, strict=True)
            ] or [{"sample": s.name, "verdict": None, "error": error} for s in prepared.samples]
        rendered = (
            render(prepared.samples[0].fields) if single else "\n".join(s.name for s in prepared.samples)
        )
        return JudgeEvaluation(
            id=new_id("jeval"),
            tenant_id=prepared.tenant_id,
            judge_id=prepared.judge_id,
            judge_version=prepared.judge_version,
            model=model_name or "",
            status="succeeded" if verdict is not None else "failed",
            error=None if verdict is not None else error,
            source="api",
            latency_ms=round((time.perf_counter() - started) * 1000),
            target=prepared.target,
            verdict=verdict,
            samples=samples,
            rendered_text=rendered[:MAX_RENDERED],
            cost_usd=gateway.usage.total.cost_usd,
            created_at=utcnow(),
        )

    def record(self, row: JudgeEvaluation, reserved: float = 0.0) -> JudgeEvaluationView:
        """Store a graded evaluation and settle its credits."""
        with self._store.session() as session:
            session.add(row)
            _credit(session, row.tenant_id, reserved - self._prices.credits(0, float(row.cost_usd)))
            session.flush()
            return evaluation_view(row)

    def list(
        self, tenant_id: str, judge_id: str, limit: int | None, offset: int | None
    ) -> Page[JudgeEvaluationView]:
        size, start = page(limit, offset)
        with self._store.session() as session:
            judge = tenant_judge(session, tenant_id, judge_id)
            count, rows = list_judge_evaluations(session, tenant_id, judge.id, size, start)
            return Page(count, tuple(evaluation_view(r) for r in rows))

    def get(self, tenant_id: str, judge_id: str, evaluation_id: str) -> JudgeEvaluationView:
        with self._store.session() as session:
            judge = tenant_judge(session, tenant_id, judge_id)
            row = get_judge_evaluation(session, tenant_id, judge.id, evaluation_id)
            if row is None:
                raise NotFoundError("judge evaluation", evaluation_id)
            return evaluation_view(row)


def _credit(session: Any, tenant_id: str, amount: float) -> None:
    """Add `amount` (negative: take it) to the tenant's balance."""
    if amount:
        session.execute(update(Tenant).where(Tenant.id == tenant_id).values(credits=Tenant.credits + amount))


def _with(prepared: Prepared, target: dict[str, Any], samples: list[Sample]) -> Prepared:
    if not samples:
        raise ValidationError(
            [Issue(f"{target['kind']}_id", f"{target['kind']} {target['id']!r} has no samples to grade")]
        )
    return dataclasses.replace(prepared, target=target, samples=samples)
