"""Response models of the red-team routes of the Dataframer-compatible API (specs and runs).

The routes declare them as their ``response_model``, so ``/openapi.json`` documents every answer and the
schema fuzzer checks every body it gets back.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from datamill.server.compat.dataframer_schemas import RunStatus


class _Wire(BaseModel):
    """Every answer lists exactly its declared fields: an undeclared one is a bug, caught before it leaves."""

    model_config = ConfigDict(extra="forbid")


def _time(description: str) -> Any:
    return Field(description=description, json_schema_extra={"format": "date-time"})


class RedTeamSpecItem(_Wire):
    """A red-team spec in the list."""

    id: str
    name: str = Field(description="snake_case, unique among the tenant's red-team specs.")
    app_description: str
    domain_description: str
    created_at: str = _time("When the spec was created.")
    updated_at: str = _time("When the spec was last changed.")
    created_by_email: str


class RedTeamSpecPublic(RedTeamSpecItem):
    """A red-team spec: what create, retrieve and PATCH answer."""

    concerns: str | None
    created_by: int | None = Field(description="Always null: keys belong to tenants, not to numbered users.")


class EnhancedQuery(_Wire):
    """One adversarial prompt: the plain query, its disguised form and the attack style used."""

    query: str
    adversarial_prompt: str
    attack_style: Literal["role_play", "obfuscation", "multi_step", "payload_splitting"]


class RedTeamResults(_Wire):
    """``{behaviour: [prompt]}``, the behaviours in the order the model listed them."""

    behavior_to_enhanced_queries: dict[str, list[EnhancedQuery]]


class RedTeamRunItem(_Wire):
    """A red-team run in the list."""

    id: str
    status: RunStatus
    red_team_spec_id: str
    spec_name: str | None
    model_name: str
    number_of_behaviors: int
    number_of_prompts_per_behavior: int
    created_at: str = _time("When the run was created.")
    completed_at: str | None = _time("When the run ended; null while it runs.")
    created_by_email: str


class RedTeamRunPublic(RedTeamRunItem):
    """A red-team run: what create, retrieve and status answer; ``results_json`` once SUCCEEDED."""

    created_by: int | None = Field(description="Always null: keys belong to tenants, not to numbered users.")
    error_message: str | None = Field(description="Why the run FAILED.")
    task_id: str = Field(description="The id of the run's job in the queue.")
    results_json: RedTeamResults | None
    prompts_completed: int = Field(description="Prompts written so far.")
    total_prompts: int = Field(description="number_of_behaviors × number_of_prompts_per_behavior.")
    total_cost: float = Field(description="Model spend in USD.")
    summary: dict[str, Any] | None = Field(
        description="Prompts per attack style, dropped items, model calls."
    )
