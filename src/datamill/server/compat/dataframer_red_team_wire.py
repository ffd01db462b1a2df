"""The wire side of red teaming in the Dataframer-compatible API: request bodies in, response models out.

Spec bodies: ``name``, ``app_description`` and ``domain_description`` (required to create) and optional
``concerns`` (null clears them in a PATCH); ``name`` is stored in snake_case. Run bodies:
``red_team_spec_id``, ``model_name`` (one of `RED_TEAM_MODELS`), ``number_of_behaviors`` and
``number_of_prompts_per_behavior`` (their product at most `MAX_PROMPTS`), and, for a ``databricks/`` model,
``databricks_client_id``, ``databricks_client_secret`` and ``databricks_api_base``. Each bad field is named
in one `ValidationError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from datamill.core.dataframer_models import DATABRICKS_PREFIX, RED_TEAM_MODELS
from datamill.core.fields import Issues, read_int, read_object, read_str
from datamill.server.compat.dataframer_red_team_models import (
    RedTeamResults,
    RedTeamRunItem,
    RedTeamRunPublic,
    RedTeamSpecItem,
    RedTeamSpecPublic,
)
from datamill.services.generation.common import iso
from datamill.services.redteam.runs import (
    MAX_PROMPTS,
    RedTeamRunDetail,
    RedTeamRunRequest,
    RedTeamRunSummary,
)
from datamill.services.redteam.specs import (
    RedTeamSpecChanges,
    RedTeamSpecDraft,
    RedTeamSpecView,
    snake_case,
)

SPEC_FIELDS = ("name", "app_description", "domain_description", "concerns")
SPEC_REQUIRED = ("name", "app_description", "domain_description")
MAX_NAME = 200
MAX_TEXT = 20_000
SECRET_FIELDS = ("databricks_client_id", "databricks_client_secret", "databricks_api_base")
RUN_FIELDS = ("red_team_spec_id", "model_name", "number_of_behaviors", "number_of_prompts_per_behavior")


# --- requests ---


def _spec_fields(body: object, *, partial: bool) -> dict[str, str | None]:
    """The checked fields of a create (`partial` False: the required ones present) or a PATCH."""
    issues = Issues()
    values: Mapping[str, object] = read_object(body, "", SPEC_FIELDS, issues) or {}
    out: dict[str, str | None] = {}
    for key in SPEC_FIELDS:
        if key not in values:
            if not partial and key in SPEC_REQUIRED:
                issues.add(key, "is required")
            continue
        if values[key] is None and key == "concerns":
            out[key] = None
            continue
        if values[key] is None:
            issues.add(key, "must be a non-empty string, got null")
            continue
        text = read_str(values[key], key, issues, max_length=MAX_NAME if key == "name" else MAX_TEXT)
        if text is None:
            continue
        if key == "name":
            text = snake_case(text)
            if not text:
                issues.add("name", "must contain letters or digits")
                continue
        out[key] = text
    issues.raise_if_any()
    return out


def parse_spec_create(body: object) -> RedTeamSpecDraft:
    fields = _spec_fields(body, partial=False)
    return RedTeamSpecDraft(
        name=str(fields["name"]),
        app_description=str(fields["app_description"]),
        domain_description=str(fields["domain_description"]),
        concerns=fields.get("concerns"),
    )


def parse_spec_changes(body: object) -> RedTeamSpecChanges:
    fields = _spec_fields(body, partial=True)
    return RedTeamSpecChanges(
        name=fields.get("name"),
        app_description=fields.get("app_description"),
        domain_description=fields.get("domain_description"),
        concerns=fields.get("concerns"),
        clear_concerns="concerns" in fields and fields["concerns"] is None,
    )


def parse_run_create(body: object) -> RedTeamRunRequest:
    """The run to start, with the Databricks credentials the body carries (empty when none)."""
    issues = Issues()
    values: Mapping[str, object] = read_object(body, "", RUN_FIELDS + SECRET_FIELDS, issues) or {}
    for key in RUN_FIELDS:
        if values.get(key) is None and isinstance(body, Mapping):
            issues.add(key, "is required")
    spec_id = read_str(values.get("red_team_spec_id"), "red_team_spec_id", issues)
    model = read_str(values.get("model_name"), "model_name", issues)
    if model is not None and model not in RED_TEAM_MODELS:
        issues.add("model_name", f"must be one of {', '.join(RED_TEAM_MODELS)}; got {model!r}")
    behaviors = read_int(
        values.get("number_of_behaviors"), "number_of_behaviors", issues, minimum=1, maximum=MAX_PROMPTS
    )
    per = read_int(
        values.get("number_of_prompts_per_behavior"),
        "number_of_prompts_per_behavior",
        issues,
        minimum=1,
        maximum=MAX_PROMPTS,
    )
    if behaviors is not None and per is not None and behaviors * per > MAX_PROMPTS:
        issues.add(
            "number_of_prompts_per_behavior",
            f"number_of_behaviors × number_of_prompts_per_behavior must be at most {MAX_PROMPTS}; "
            f"got {behaviors} × {per} = {behaviors * per}",
        )
    credentials = {k: v for k in SECRET_FIELDS if (v := read_str(values.get(k), k, issues)) is not None}
    if isinstance(model, str) and model.startswith(DATABRICKS_PREFIX):
        for key in SECRET_FIELDS:
            if key not in credentials:
                issues.add(key, f"is required when model_name is a databricks/ model ({model})")
        base = credentials.get("databricks_api_base", "https://")
        if not base.startswith(("https://", "http://")):
            issues.add("databricks_api_base", f"must be an http(s) URL, got {base!r}")
    issues.raise_if_any()
    assert spec_id is not None
    assert model is not None
    assert behaviors is not None
    assert per is not None
    return RedTeamRunRequest(
        spec_id=spec_id,
        model_name=model,
        number_of_behaviors=behaviors,
        number_of_prompts_per_behavior=per,
        credentials=credentials,
    )


# --- answers ---


def _spec_item_fields(spec: RedTeamSpecView) -> dict[str, Any]:
    return {
        "id": spec.id,
        "name": spec.name,
        "app_description": spec.app_description,
        "domain_description": spec.domain_description,
        "created_at": iso(spec.created_at),
        "updated_at": iso(spec.updated_at),
        "created_by_email": spec.created_by_email,
    }


def spec_item(spec: RedTeamSpecView) -> RedTeamSpecItem:
    return RedTeamSpecItem(**_spec_item_fields(spec))


def spec_public(spec: RedTeamSpecView) -> RedTeamSpecPublic:
    return RedTeamSpecPublic(**_spec_item_fields(spec), concerns=spec.concerns, created_by=None)


def _run_item_fields(run: RedTeamRunSummary) -> dict[str, Any]:
    return {
        "id": run.id,
        "status": run.status,
        "red_team_spec_id": run.spec_id,
        "spec_name": run.spec_name,
        "model_name": run.model_name,
        "number_of_behaviors": run.number_of_behaviors,
        "number_of_prompts_per_behavior": run.number_of_prompts_per_behavior,
        "created_at": iso(run.created_at),
        "completed_at": iso(run.completed_at),
        "created_by_email": run.created_by_email,
    }


def run_item(run: RedTeamRunSummary) -> RedTeamRunItem:
    return RedTeamRunItem(**_run_item_fields(run))


def run_public(run: RedTeamRunDetail) -> RedTeamRunPublic:
    """The run object; ``task_id`` is its job's id, ``results_json`` its prompts once SUCCEEDED."""
    results = None if run.results is None else RedTeamResults.model_validate(dict(run.results))
    return RedTeamRunPublic(
        **_run_item_fields(run),
        created_by=None,
        error_message=run.error_message,
        task_id=run.job_id,
        results_json=results,
        prompts_completed=run.prompts_completed,
        total_prompts=run.total_prompts,
        total_cost=run.total_cost,
        summary=dict(run.summary) if run.summary is not None else None,
    )
