"""The anonymization walkthrough on a server whose database is PostgreSQL (skipped without a test server).

The same calls as `test_anonymization.anonymization_walkthrough`, so anonymization runs, their files, the
ZIP and the soft delete go through the PostgreSQL store and its job queue.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_anonymization import anonymization_walkthrough

import dataframer
from conftest import FAKE_MODEL, running_server, write_fake_routes
from datamill.server.context import ServerContext
from datamill.services.settings.runs import RunSettings
from datamill.services.settings.server import ServerSettings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "server"))
from pg_helpers import fresh_database, postgres_url


@pytest.fixture
def pg_client(tmp_path: Path) -> Iterator[dataframer.Dataframer]:
    with fresh_database(postgres_url()) as url:
        routes = write_fake_routes(tmp_path / "routes.yaml")
        runs = RunSettings(model=FAKE_MODEL, routes_path=routes, poll_s=0.1)
        settings = ServerSettings.for_data_dir(tmp_path / "data", database_url=url)
        context = ServerContext.build(settings, runs=runs)
        with running_server(settings, context=context) as server:
            assert context.store.engine.dialect.name == "postgresql"
            client = dataframer.Dataframer(
                base_url=server.base_url, api_key=server.new_key("pg-anonymization"), max_retries=0
            )
            yield client
            client.close()


def test_the_anonymization_walkthrough_on_postgresql(pg_client: dataframer.Dataframer) -> None:
    anonymization_walkthrough(pg_client)
