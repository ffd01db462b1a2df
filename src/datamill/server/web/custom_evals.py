"""Custom evaluations on a dataset's page: judge a sample of its rows against the user's own rubric.

The form posts to ``/datasets/{id}/custom-evals`` and calls the same service as
``POST /api/v1/datasets/{id}/custom-evals`` (its checks, messages and credit reservation), then the
background runner judges the rows. The dataset page lists the dataset's evaluations with their scores before
and after its run, and polls ``custom-evals/status.json`` while one is pending or running.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from datamill.core.errors import ValidationError
from datamill.server.web.deps import PostSession, SessionDep, WebDep

router = APIRouter()

#: The statuses of an evaluation that has not ended.
ACTIVE = ("pending", "running")


@router.post("/datasets/{dataset_id}/custom-evals", status_code=201)
def create(
    dataset_id: str, web: WebDep, session: PostSession, body: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    """Start judging the dataset against ``judge_prompt`` (``name`` and ``sample_size`` optional)."""
    prompt, name, size = body.get("judge_prompt", ""), body.get("name"), body.get("sample_size")
    if not isinstance(prompt, str):
        raise ValidationError.of("judge_prompt", "must be text")
    if name is not None and not isinstance(name, str):
        raise ValidationError.of("name", "must be text")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool)):
        raise ValidationError.of("sample_size", "must be a whole number")
    view = web.context.custom_evals.create(session.tenant.id, dataset_id, prompt, name, size)
    web.context.custom_eval_runner.submit(view.id)
    return {"id": view.id, "url": f"/datasets/{dataset_id}?custom_eval={view.id}#custom-evals"}


@router.get("/datasets/{dataset_id}/custom-evals/status.json")
def status(dataset_id: str, web: WebDep, session: SessionDep) -> dict[str, Any]:
    """``running`` while one of the dataset's evaluations has not ended, else ``done``."""
    views = web.context.custom_evals.list_for_dataset(session.tenant.id, dataset_id)
    return {"status": "running" if any(v.status in ACTIVE for v in views) else "done"}
