"""Red teaming on a server whose database is PostgreSQL (skipped without a test server).

The SDK tests of `test_red_team` that need only a client run again, so red-team specs (the unique
snake_case names included) and runs (the job queue, the results, deletion) go through the PostgreSQL store.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import test_red_team as red_team

import dataframer
from conftest import FAKE_MODEL, RunningServer, running_server, write_fake_routes
from datamill.server.context import ServerContext
from datamill.services.settings.runs import RunSettings
from datamill.services.settings.server import ServerSettings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "server"))
from pg_helpers import fresh_database, postgres_url


@pytest.fixture(scope="module")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with fresh_database(postgres_url()) as url:
        data_dir = tmp_path_factory.mktemp("red-team-pg")
        routes = write_fake_routes(data_dir / "routes.yaml")
        runs = RunSettings(model=FAKE_MODEL, routes_path=routes, batch_size=4, poll_s=0.1)
        settings = ServerSettings.for_data_dir(data_dir / "data", database_url=url)
        context = ServerContext.build(settings, runs=runs)
        with running_server(settings, context=context) as server:
            assert context.store.engine.dialect.name == "postgresql"
            yield server


@pytest.fixture
def pg_client(pg_server: RunningServer) -> Iterator[dataframer.Dataframer]:
    with dataframer.Dataframer(
        base_url=pg_server.base_url, api_key=pg_server.new_key(), max_retries=0
    ) as made:
        yield made


@pytest.mark.parametrize(
    "check",
    [
        red_team.test_spec_names_are_snake_case_and_unique,
        red_team.test_spec_retrieve_patch_and_delete,
        red_team.test_bad_spec_input_names_the_field,
        red_team.test_run_writes_exactly_behaviors_times_prompts,
        red_team.test_bad_run_input_names_the_field,
        red_team.test_delete_run_and_spec_with_runs,
    ],
)
def test_red_team_on_postgresql(check: object, pg_client: dataframer.Dataframer) -> None:
    assert callable(check)
    check(pg_client)


def test_tenancy_on_postgresql(pg_server: RunningServer, pg_client: dataframer.Dataframer) -> None:
    red_team.test_another_tenant_sees_nothing(pg_server, pg_client)
