"""Repository of judges and judge evaluations; every query is scoped by tenant."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from datamill.store.red_team_models import Judge, JudgeEvaluation


def get_judge(session: Session, tenant_id: str, judge_id: str) -> Judge | None:
    """The tenant's judge `judge_id`, or None (another tenant's id reads as absent)."""
    return session.scalar(select(Judge).where(Judge.id == judge_id, Judge.tenant_id == tenant_id))


def judge_named(session: Session, tenant_id: str, name: str) -> Judge | None:
    return session.scalar(select(Judge).where(Judge.tenant_id == tenant_id, Judge.name == name))


def list_judges(session: Session, tenant_id: str, limit: int, offset: int) -> tuple[int, list[Judge]]:
    """How many judges the tenant has, and a page of them, newest first."""
    where = Judge.tenant_id == tenant_id
    count = session.scalar(select(func.count()).select_from(Judge).where(where)) or 0
    query = select(Judge).where(where).order_by(Judge.created_at.desc(), Judge.id.desc())
    return count, list(session.scalars(query.limit(limit).offset(offset)))


def get_judge_evaluation(
    session: Session, tenant_id: str, judge_id: str, evaluation_id: str
) -> JudgeEvaluation | None:
    query = select(JudgeEvaluation).where(
        JudgeEvaluation.id == evaluation_id,
        JudgeEvaluation.judge_id == judge_id,
        JudgeEvaluation.tenant_id == tenant_id,
    )
    return session.scalar(query)


def list_judge_evaluations(
    session: Session, tenant_id: str, judge_id: str, limit: int, offset: int
) -> tuple[int, list[JudgeEvaluation]]:
    """How many evaluations the judge has, and a page of them, newest first."""
    where = (JudgeEvaluation.tenant_id == tenant_id, JudgeEvaluation.judge_id == judge_id)
    count = session.scalar(select(func.count()).select_from(JudgeEvaluation).where(*where)) or 0
    query = (
        select(JudgeEvaluation)
        .where(*where)
        .order_by(JudgeEvaluation.created_at.desc(), JudgeEvaluation.id.desc())
    )
    return count, list(session.scalars(query.limit(limit).offset(offset)))


def delete_judge(session: Session, judge: Judge) -> None:
    """Delete a judge and its evaluations."""
    session.execute(delete(JudgeEvaluation).where(JudgeEvaluation.judge_id == judge.id))
    session.delete(judge)
