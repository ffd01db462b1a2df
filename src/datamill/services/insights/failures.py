"""Failures (Dataframer-compatible ``/api/dataframer/failures/``): what went wrong in a tenant's work, why.

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
number of samples (or 1 for a whole job) the failure covers; ``project`` is null (datamill has no
projects, so a ``project_id`` filter matches nothing); ``analysis`` holds the causes, ``llm_judge`` the
judge's verdicts; ``human_review`` is empty (datamill takes no human reviews). Newest first;
``detail=summary`` leaves out the causes, the rubrics and the review and judge blocks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from datamill.core.fields import Issues
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
MAX_PAGE = 100
#: What each job kind is, as a failure's name says it.
KIND_NAMES = {
    "spec_analysis": "spec analysis",
    "generation": "generation run",
    "generation_eval": "run evaluation",
    "generation_zip": "ZIP of a run's files",
    "red_team": "red-team run",
}
INCLUDES = ("reviews", "judgments", "context")


def _kind(kind: str) -> str:
    return KIND_NAMES.get(kind, f"{kind} run")


def _cause(
    cause_id: str, title: str, description: str, count: int, total: int, when: str | None, source: str
) -> dict[str, Any]:
    return {
        "id": cause_id,
        "title": title,
        "description": description,
        "probability": round(count / total, 4) if total else 1.0,
        "rank": 0,
        "attributed_trace_count": count,
        "status": "active",
        "first_detected_at": when,
        "last_confirmed_at": when,
        "updated_at": when,
        "examples": [{"quote": description, "source_id": source, "source_url": None, "occurred_at": when}],
        "remediation": None,
    }


def _failure(
    failure_id: str, name: str, description: str, traces: int, when: str | None, causes: list[dict[str, Any]]
) -> dict[str, Any]:
    for rank, cause in enumerate(sorted(causes, key=lambda c: -c["attributed_trace_count"]), 1):
        cause["rank"] = rank
    return {
        "id": failure_id,
        "name": name,
        "description": description,
        "trace_count": traces,
        "first_tracked_at": when,
        "last_refreshed_at": when,
        "project": None,
        "rubrics": [],
        "analysis": {
            "status": "ready",
            "cause_count": len(causes),
            "causes": sorted(causes, key=lambda c: c["rank"]),
            "prompt_template_count": 0,
            "prompt_templates": [],
            "last_analyzed_at": when,
            "new_traces_since_analysis": 0,
        },
        "human_review": _no_review(),
        "llm_judge": None,
    }


def _no_review() -> dict[str, Any]:
    return {
        "average_score": None,
        "coverage": 0.0,
        "review_count": 0,
        "reviewed_trace_count": 0,
        "severity_distribution": {"low": 0, "medium": 0, "high": 0, "critical": 0},
        "reviews": [],
    }


def _failed_job(job: Run) -> dict[str, Any]:
    error = job.error_data or {}
    message = str(error.get("message") or "the job failed")
    when = iso(job.finished_at or job.updated_at)
    cause = _cause(
        f"cause_{job.id}", str(error.get("code") or "failed"), message, 1, 1, when, job.source_dataset_id
    )
    name = f"The {_kind(job.kind)} {job.source_dataset_id} failed"
    return _failure(f"fail_job_{job.id}", name, message, 1, when, [cause])


def _rejections(job: Run, gates: dict[str, int]) -> dict[str, Any]:
    total = sum(gates.values())
    when = iso(job.finished_at or job.updated_at)
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
    return _failure(
        f"fail_rej_{job.id}", name, "; ".join(c["description"] for c in causes), total, when, causes
    )


def _failing(verdict: dict[str, Any] | None) -> bool:
    if verdict is None:
        return True
    if any(d.get("passed") is False for d in verdict["dimensions"]):
        return True
    return float(verdict["overall_score"]) < FAILING_SCORE


def _label(dimension: dict[str, Any]) -> str:
    """The label of the level a dimension's verdict picked (the context's rubric levels say them)."""
    if dimension["scoring_model"] == "pass_fail":
        return "pass" if dimension.get("passed") else "fail"
    return str(round(float(dimension["score"]) * 4) + 1)


def _judgment(
    row: JudgeEvaluation, judge: Judge, source: str, verdict: dict[str, Any] | None
) -> dict[str, Any]:
    return {
        "judge": {"id": judge.id, "name": judge.name, "model": row.model},
        "overall_score": verdict["overall_score"] if verdict else None,
        "confidence": verdict["confidence"] if verdict else None,
        "rubric": judge.name,
        "rubric_id": judge.id,
        "source_id": source,
        "source_url": None,
        "evaluated_at": iso(row.created_at),
        "verdicts": [
            {"dimension": d["name"], "score": _label(d), "notes": d.get("notes")}
            for d in (verdict or {}).get("dimensions", [])
        ],
    }


def _judge_failure(row: JudgeEvaluation, judge: Judge) -> dict[str, Any] | None:
    """The failure of one judge evaluation: failed itself, or some samples failing; None when all passed."""
    samples: list[dict[str, Any]] = (
        row.samples
        if row.samples is not None
        else [{"sample": "input", "verdict": row.verdict, "error": row.error}]
    )
    bad = [s for s in samples if s.get("error") or _failing(s.get("verdict"))]
    if row.status != "failed" and not bad:
        return None
    when = iso(row.created_at)
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
    failure = _failure(
        f"fail_judge_{row.id}",
        f"The judge {judge.name!r} failed {len(bad)} of {len(samples)} samples",
        "; ".join(c["description"] for c in causes),
        len(bad),
        when,
        causes,
    )
    failure["rubrics"] = [{"id": judge.id, "name": judge.name}]
    judgments = [_judgment(row, judge, str(s["sample"]), s.get("verdict")) for s in bad]
    graded = [j["overall_score"] for j in judgments if j["overall_score"] is not None]
    failure["llm_judge"] = {
        "average_score": round(sum(graded) / len(graded), 4) if graded else None,
        "coverage": round(len(graded) / len(judgments), 4) if judgments else 0.0,
        "judged_trace_count": len(graded),
        "judgment_count": len(judgments),
        "judgments": judgments,
    }
    return failure


def _all(session: Session, tenant_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
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
    return sorted(found, key=lambda f: (f["first_tracked_at"] or "", f["id"]), reverse=True)


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


def _shaped(failure: dict[str, Any], detail: str | None, include: Iterable[str]) -> dict[str, Any]:
    """`failure` as the query asks: ``summary`` keeps counts only; reviews and judgments when included."""
    out = dict(failure)
    if detail == "summary":
        out.pop("rubrics")
        out["analysis"] = {
            k: v for k, v in out["analysis"].items() if k not in ("causes", "prompt_templates")
        }
        out.pop("human_review")
        out.pop("llm_judge")
        return out
    if "reviews" not in include:
        out["human_review"] = {k: v for k, v in out["human_review"].items() if k != "reviews"}
    if out["llm_judge"] is not None and "judgments" not in include:
        out["llm_judge"] = {k: v for k, v in out["llm_judge"].items() if k != "judgments"}
    return out


def _moment(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def parse_include(
    value: str | None, field: str, issues: Issues, allowed: tuple[str, ...] = INCLUDES
) -> set[str]:
    """A comma-separated list of `allowed` names (each one refused by name)."""
    names = {part.strip() for part in (value or "").split(",") if part.strip()}
    for name in sorted(names - set(allowed)):
        issues.add(field, f"unknown value {name!r}; allowed: {', '.join(allowed)}")
    return names


class FailureService:
    """The tenant's failures; see the module docstring.

    Args:
        store: the metadata database.
        context: the tenant's context (`datamill.services.insights.context`), for ``include=context``.
    """

    def __init__(self, store: Store, context: Any) -> None:
        self._store, self._context = store, context

    def list(
        self,
        tenant_id: str,
        *,
        detail: str | None,
        include: str | None,
        limit: int | None,
        offset: int | None,
        project_id: str | None,
        updated_since: dt.datetime | None,
    ) -> dict[str, Any]:
        issues = Issues()
        if detail not in (None, "full", "summary"):
            issues.add("detail", f"must be full or summary, got {detail!r}")
        names = parse_include(include, "include", issues)
        size = 20 if limit is None else limit
        start = 0 if offset is None else offset
        if not 1 <= size <= MAX_PAGE:
            issues.add("limit", f"must be from 1 to {MAX_PAGE}, got {size}")
        if start < 0:
            issues.add("offset", f"must be at least 0, got {start}")
        issues.raise_if_any()
        with self._store.session() as session:
            found = [] if project_id is not None else _all(session, tenant_id)
        if updated_since is not None:
            since = updated_since if updated_since.tzinfo else updated_since.replace(tzinfo=dt.UTC)
            found = [f for f in found if f["last_refreshed_at"] and _moment(f["last_refreshed_at"]) >= since]
        body: dict[str, Any] = {
            "count": len(found),
            "results": [_shaped(f, detail, names) for f in found[start : start + size]],
        }
        if "context" in names:
            body["context"] = self._context.get(tenant_id, None, None)
        return body

    def get(
        self, tenant_id: str, failure_id: str, include: str | None, exclude: str | None
    ) -> dict[str, Any]:
        issues = Issues()
        names = parse_include(include, "include", issues, ("context",))
        dropped = parse_include(exclude, "exclude", issues, ("reviews", "judgments"))
        issues.raise_if_any()
        with self._store.session() as session:
            found = next((f for f in _all(session, tenant_id) if f["id"] == failure_id), None)
        if found is None:
            raise NotFoundError("failure", failure_id)
        out = _shaped(found, "full", {"reviews", "judgments"} - dropped)
        out["context"] = self._context.get(tenant_id, None, None) if "context" in names else None
        return out
