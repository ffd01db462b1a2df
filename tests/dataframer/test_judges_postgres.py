"""Judges and judge evaluations on a server whose database is PostgreSQL (skipped without a test server).

The SDK tests of `test_judges` that need only a client run again on the PostgreSQL store.
"""

from __future__ import annotations

import pytest
import test_judges as judges
from test_red_team_postgres import pg_client, pg_server

import dataframer
from conftest import RunningServer

__all__ = ["pg_client", "pg_server"]  # the fixtures, shared with the red-teaming tests


@pytest.mark.parametrize(
    "check",
    [
        judges.test_define_list_and_retrieve_a_judge,
        judges.test_editing_the_rubric_makes_a_new_version,
        judges.test_bad_judges_are_refused_naming_the_field,
        judges.test_grade_one_interaction,
        judges.test_grade_a_runs_samples_and_a_seed_dataset,
        judges.test_bad_evaluations_are_refused_naming_the_field,
    ],
)
def test_judges_on_postgresql(check: object, pg_client: dataframer.Dataframer) -> None:
    assert callable(check)
    check(pg_client)


def test_judge_tenancy_on_postgresql(pg_server: RunningServer, pg_client: dataframer.Dataframer) -> None:
    judges.test_another_tenant_sees_no_judge(pg_server, pg_client)
