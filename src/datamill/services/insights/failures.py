"""Failures (the Dataframer API's ``/api/dataframer/failures/``): what went wrong in a tenant's work, why.

The hosted service reads failures out of production LLM traces; datamill has its own work instead, and
shows its failures in the same shape. A failure is one of:

==================  ==========================================================================================
id                  what failed
==================  ==========================================================================================
``fail_job_<id>``   a job that FAILED (a spec analysis, a generation run, an evaluation, a red-team run, an
                    adaptation run...): one cause, the job's error code and message
``fail_rej_<id>``   a job that finished but rejected samples (a generation run's rejected candidates, an
                    adaptation run's rejected rows): one cause per rejection gate, with its count
``fail_judge_<id>`` a judge evaluation that failed, or graded samples as failing (a required ``pass_fail``
                    dimension not passed, or an overall score below `FAILING_SCORE`): its judgments
==================  ==========================================================================================

The failure of a run, spec or evaluation that was deleted since goes with it. ``trace_count`` is the
number of samples (or 1 for a whole job) the failure covers; datamill has no projects, so a
``project_id`` filter matches nothing. A `Failure` holds its causes and, for a judge's, the judge's
findings. Newest first.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from datamill.services.errors import NotFoundError
from datamill.services.generation.common import iso
from datamill.store import Store
from datamill.store.anonymization_models import (
    ANONYMIZATION_JOB,
    ANONYMIZATION_ZIP_JOB,
    AnonymizationRun,
)
from datamill.store.generation_models import GenerationEvaluation, GenerationRun, Spec
from datamill.store.models import Run
from datamill.store.red_team_models import Judge, JudgeEvaluation, RedTeamRun

#: An overall score below this is a failing sample.
FAILING_SCORE = 0.5
#: What each job kind is, as a failure's name says it.
KIND_NAMES = {
    "spec_analysis": "spec analysis",
    "generation": "generation run",
    "generation_eval": "run evaluation",
    "generation_zip": "ZIP of a run's files",
    "red_team": "red-team run",
}


@dataclass(frozen=True, kw_only=True)
class FailureCause:
    """One cause of a failure: `count` of the failure's `total` samples, ranked by count (1 first)."""

    id: str
    title: str
    description: str
    count: int
    total: int
    rank: int
    when: dt.datetime | None
    source_id: str

    @property
    def probability(self) -> float:
        return round(self.count / self.total, 4) if self.total else 1.0


@dataclass(frozen=True)
class DimensionLabel:
    """A dimension's verdict as the label of the level it picked (1-5, or pass / fail)."""

    dimension: str
    label: str
    notes: str | None


@dataclass(frozen=True, kw_only=True)
class Judgment:
    """A judge's verdict on one failing sample (None scores when it could not grade it)."""

    judge_id: str
    judge_name: str
    model: str
    overall_score: float | None
    confidence: float | None
    source_id: str
    evaluated_at: dt.datetime
    verdicts: tuple[DimensionLabel, ...]


@dataclass(frozen=True, kw_only=True)
class JudgeFindings:
    """What a judge found over a failure's samples."""

    average_score: float | None
    coverage: float
    judged_trace_count: int
    judgments: tuple[Judgment, ...]


@dataclass(frozen=True)
class RubricRef:
    id: str
    name: str


@dataclass(frozen=True, kw_only=True)
class Failure:
    """One failure (see the module docstring): its causes, most samples first, and a judge's findings."""

    id: str
    name: str
    description: str
    trace_count: int
    when: dt.datetime | None
    causes: tuple[FailureCause, ...]
    rubrics: tuple[RubricRef, ...] = ()
    judge: JudgeFindings | None = None


def _kind(kind: str) -> str:
    return KIND_NAMES.get(kind, f"{kind} run")


def _cause(
    cause_id: str, title: str, description: str, count: int, total: int, when: dt.datetime | None, source: str
) -> FailureCause:
    return FailureCause(
        id=cause_id,
        title=title,
        description=description,
        count=count,
        total=total,
        rank=0,
        when=when,
        source_id=source,
    )


def _ranked(causes: list[FailureCause]) -> tuple[FailureCause, ...]:
    ordered = sorted(causes, key=lambda c: -c.count)
    return tuple(dataclasses.replace(cause, rank=rank) for rank, cause in enumerate(ordered, 1))


def _failed_job(job: Run) -> Failure:
    error = job.error_data or {}
    message = str(error.get("message") or "the job failed")
    when = job.finished_at or job.updated_at
    cause = _cause(
        f"cause_{job.id}", str(error.get("code") or "failed"), message, 1, 1, when, job.source_dataset_id
    )
    name = f"The {_kind(job.kind)} {job.source_dataset_id} failed"
    return Failure(
        id=f"fail_job_{job.id}",
        name=name,
        description=message,
        trace_count=1,
        when=when,
        causes=_ranked([cause]),
    )


def _rejections(job: Run, gates: dict[str, int]) -> Failure:
    total = sum(gates.values())
    when = job.finished_at or job.updated_at
    causes = [
        _cause(
            f"cause_{job.id}_{gate}",
            f"rejected by {gate}",
            f"{count} of {total} rejected samples failed the {gate} check",
            count,
            total,
            when,
            job.source_dataset_id,
        )
        for gate, count in gates.items()
        if count
    ]
    name = f"The {_kind(job.kind)} {job.source_dataset_id} rejected {total} samples"
    return Failure(
        id=f"fail_rej_{job.id}",
        name=name,
        description="; ".join(c.description for c in causes),
        trace_count=total,
        when=when,
        causes=_ranked(causes),
    )


def _failing(verdict: Mapping[str, Any] | None) -> bool:
    if verdict is None:
        return True
    if any(d.get("passed") is False for d in verdict["dimensions"]):
        return True
    return float(verdict["overall_score"]) < FAILING_SCORE


def _label(dimension: Mapping[str, Any]) -> str:
    """The label of the level a dimension's verdict picked (the context's rubric levels say them)."""
    if dimension["scoring_model"] == "pass_fail":
        return "pass" if dimension.get("passed") else "fail"
    return str(round(float(dimension["score"]) * 4) + 1)


def _judgment(row: JudgeEvaluation, judge: Judge, source: str, verdict: Mapping[str, Any] | None) -> Judgment:
    return Judgment(
        judge_id=judge.id,
        judge_name=judge.name,
        model=row.model,
        overall_score=verdict["overall_score"] if verdict else None,
        confidence=verdict["confidence"] if verdict else None,
        source_id=source,
        evaluated_at=row.created_at,
        verdicts=tuple(
            DimensionLabel(d["name"], _label(d), d.get("notes"))
            for d in (verdict or {}).get("dimensions", [])
        ),
    )


def _judge_failure(row: JudgeEvaluation, judge: Judge) -> Failure | None:
    """The failure of one judge evaluation: failed itself, or some samples failing; None when all passed."""
    samples: list[Mapping[str, Any]] = (
        row.samples
        if row.samples is not None
        else [{"sample": "input", "verdict": row.verdict, "error": row.error}]
    )
    bad = [s for s in samples if s.get("error") or _failing(s.get("verdict"))]
    if row.status != "failed" and not bad:
        return None
    when = row.created_at
    ungraded = [s for s in bad if s.get("verdict") is None]
    causes = []
    if ungraded:
        reason = str(ungraded[0].get("error") or row.error or "the judge could not grade")
        causes.append(
            _cause(f"cause_{row.id}_ungraded", "not graded", reason, len(ungraded), len(bad), when, row.id)
        )
    if failing := [s for s in bad if s.get("verdict") is not None]:
        what = f"{len(failing)} samples failed the rubric of the judge {judge.name!r}"
        causes.append(
            _cause(f"cause_{row.id}_rubric", "failed the rubric", what, len(failing), len(bad), when, row.id)
        )
    judgments = [_judgment(row, judge, str(s["sample"]), s.get("verdict")) for s in bad]
    graded = [j.overall_score for j in judgments if j.overall_score is not None]
    return Failure(
        id=f"fail_judge_{row.id}",
        name=f"The judge {judge.name!r} failed {len(bad)} of {len(samples)} samples",
        description="; ".join(c.description for c in causes),
        trace_count=len(bad),
        when=when,
        causes=_ranked(causes),
        rubrics=(RubricRef(judge.id, judge.name),),
        judge=JudgeFindings(
            average_score=round(sum(graded) / len(graded), 4) if graded else None,
            coverage=round(len(graded) / len(judgments), 4) if judgments else 0.0,
            judged_trace_count=len(graded),
            judgments=tuple(judgments),
        ),
    )


def _all(session: Session, tenant_id: str) -> list[Failure]:
    found: list[Failure] = []
    jobs = session.scalars(
        select(Run).where(Run.tenant_id == tenant_id, or_(Run.status == "failed", Run.rows_rejected > 0))
    )
    for job in jobs:
        if _resource_gone(session, job):
            continue
        if job.status == "failed":
            found.append(_failed_job(job))
        if job.rows_rejected:
            found.append(_rejections(job, _gates(session, job)))
    evaluations = session.scalars(select(JudgeEvaluation).where(JudgeEvaluation.tenant_id == tenant_id))
    judges = {j.id: j for j in session.scalars(select(Judge).where(Judge.tenant_id == tenant_id))}
    for row in evaluations:
        judged = _judge_failure(row, judges[row.judge_id]) if row.judge_id in judges else None
        if judged is not None:
            found.append(judged)
    return sorted(found, key=lambda f: (iso(f.when) or "", f.id), reverse=True)


#: The row each kind of job works on; a job whose row was deleted shows no failure.
RESOURCES: dict[str, type[Any]] = {
    "spec_analysis": Spec,
    "generation": GenerationRun,
    "generation_eval": GenerationEvaluation,
    "generation_zip": GenerationRun,
    "red_team": RedTeamRun,
    ANONYMIZATION_JOB: AnonymizationRun,
    ANONYMIZATION_ZIP_JOB: AnonymizationRun,
}


def _resource_gone(session: Session, job: Run) -> bool:
    """The job's resource was deleted: its row is gone, or flagged deleted (a soft delete)."""
    table = RESOURCES.get(job.kind)
    if table is None:
        return False
    row = session.get(table, job.source_dataset_id)
    return row is None or getattr(row, "deleted_at", None) is not None


def _gates(session: Session, job: Run) -> dict[str, int]:
    """The rejections of a job by gate: a generation run's summary says; otherwise one count."""
    run = session.get(GenerationRun, job.source_dataset_id) if job.kind == "generation" else None
    gates = (run.summary or {}).get("rejected_by_gate") if run is not None else None
    if isinstance(gates, dict) and any(gates.values()):
        return {str(k): int(v) for k, v in gates.items()}
    return {"validation": int(job.rows_rejected or 0)}


class FailureService:
    """The tenant's failures; see the module docstring."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def list(
        self, tenant_id: str, *, project_id: str | None = None, updated_since: dt.datetime | None = None
    ) -> list[Failure]:
        """The tenant's failures, newest first; those refreshed since `updated_since` when given."""
        with self._store.session() as session:
            found = [] if project_id is not None else _all(session, tenant_id)
        if updated_since is not None:
            since = updated_since if updated_since.tzinfo else updated_since.replace(tzinfo=dt.UTC)
            found = [f for f in found if f.when is not None and _aware(f.when) >= since]
        return found

    def get(self, tenant_id: str, failure_id: str) -> Failure:
        with self._store.session() as session:
            found = next((f for f in _all(session, tenant_id) if f.id == failure_id), None)
        if found is None:
            raise NotFoundError("failure", failure_id)
        return found


def _aware(moment: dt.datetime) -> dt.datetime:
    """`moment` in UTC with its zone (a naive one, as SQLite returns them, is UTC)."""
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
