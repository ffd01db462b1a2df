"""Failures and context on a server whose database is PostgreSQL (skipped without a test server)."""

from __future__ import annotations

import pytest
import test_insights as insights
from test_red_team_postgres import pg_client, pg_server

import dataframer

__all__ = ["pg_client", "pg_server"]  # the fixtures, shared with the red-teaming tests


@pytest.mark.parametrize(
    "check",
    [
        insights.test_a_new_tenant_has_no_failures_and_an_empty_context,
        insights.test_a_failed_run_and_its_rejected_samples_are_failures,
        insights.test_failing_judge_verdicts_are_failures,
        insights.test_context_holds_the_tenants_rubrics_and_facts,
    ],
)
def test_insights_on_postgresql(check: object, pg_client: dataframer.Dataframer) -> None:
    assert callable(check)
    check(pg_client)
